//! The receive loops of plain WebSocket, SSE and long-poll clients: threads that read lent
//! sockets with an epoll of their own, so receiving an event costs little more than reading
//! its bytes.
//!
//! Why: at 10,000 `ws` clients × 1 event/s, each on a tokio task of its group reading
//! through tokio-tungstenite, the load generator spent 1.59× the floor's reader per
//! delivered event (`scripts/floor-compare.sh`), and its profile (`perf record` of
//! `feedbench load --transport ws --clients 10000 --rate 1`) put about a third of it in user
//! space above the read: the futures group's wake-ups and polls (13%), the counted stream's
//! and tokio's readiness machinery (8%), tungstenite's framing (4%). These loops are the
//! shape of `scripts/ws-client-floor.c`: one `epoll_wait` for whatever is ready, one read
//! per ready socket into one shared buffer, frames or answers parsed where they lie.
//!
//! How a socket moves. A plain (not TLS) HTTP/1.1 client lends its socket with
//! [`ReceiveLoops::lend`] once its setup is done: a `ws://` client after the upgrade (with
//! the bytes read past the upgrade's head), an SSE client after the response head (with the
//! body bytes read with it), a long-poll client after its first answer (with its cursor). The socket leaves tokio's reactor and joins the epoll of loop `index % n`
//! (one loop per tokio worker), with the client's sequence state. The client's task sleeps
//! until the socket comes back as a [`Return`], which happens:
//! - at stop ([`Why::Stopped`]), so the client says goodbye (the close handshake, or the
//!   half-close that abandons a parked long-poll) as its own reader would;
//! - at something the loop does not take ([`Why::Resume`]), with the unparsed bytes from
//!   its first byte on, for the client's own reader (tungstenite, the HTTP client) to take
//!   from there, so every protocol rule and error kind stays theirs:
//!   - WebSocket: anything but a complete, final, unmasked text or binary frame no larger
//!     than the read buffer (close, ping, pong, fragments, reserved bits), or a text frame
//!     that is not UTF-8;
//!   - long-poll: an answer that is not a kept-alive `200` with a `content-length` that fits
//!     the buffer, handed over with its request in flight ([`Pending`]);
//!   - SSE: nothing; the loop decodes the body with the client's own [`ChunkedDecoder`] and
//!     [`SseParser`], whose state goes with the socket both ways;
//! - at the end of the stream ([`Why::Ended`]), a read or write error, an answer overdue,
//!   a body that is no poll answer, or an SSE body that ends or breaks a rule
//!   ([`Why::Lost`], its kind).
//!
//! A lent long-poll is driven here end to end: when an answer is whole and accounted, the
//! loop writes the next request itself, with the bytes the client would write
//! ([`RequestTemplate`]), counted as the client counts requests.
//!
//! Invariants:
//! - Bytes are counted on the connection's own counters at the read that returned them
//!   ([`ConnCounters::count_read`]), and that instant is the receive timestamp of every
//!   event parsed out of them, exactly as [`crate::counting::CountingStream`] does.
//! - Events are accounted as every client accounts them ([`receive`]), into the loop's own
//!   [`GroupStats`], which [`ReceiveLoops::finish`] hands over to be merged with the groups'.
//! - Every loop and its thread end: at [`ReceiveLoops::finish`], or when the receivers are
//!   dropped. A socket never stays behind: what a loop still holds when it ends goes back
//!   to its client, and a loan that arrives after is refused ([`ReceiveLoops::lend`]).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rustix::buffer::spare_capacity;
use rustix::event::{epoll, eventfd, EventfdFlags};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::client::{receive, record_us, ClientState, GroupStats, LiveStats, Seqs};
use crate::clock::unix_nanos;
use crate::counting::{ConnCounters, CountingStream, Window};
use crate::event::{parse_event, read_answer, EventHead};
use crate::http::{io_error_kind, parse_head, BodyFraming, ChunkedDecoder};
use crate::sse_parser::SseParser;

/// The shared read buffer: one read takes at most this much, and a frame or answer larger
/// than this goes to the client's own reader.
const READ_BUF: usize = 64 * 1024;
/// Ready sockets taken per `epoll_wait`.
const EVENTS_PER_WAIT: usize = 256;
/// The epoll key of a loop's doorbell; sockets are keyed by their slot.
const DOORBELL: u64 = u64::MAX;
/// How often a loop with long-polls looks for answers overdue.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The receive loops of one scenario's plain WebSocket or long-poll clients.
#[derive(Debug)]
pub struct ReceiveLoops {
    loops: Vec<Arc<Shared>>,
    threads: Mutex<Vec<JoinHandle<GroupStats>>>,
    /// Tells the loops when the run stops.
    watcher: Option<tokio::task::JoinHandle<()>>,
}

/// What a loop and the clients share.
#[derive(Debug)]
struct Shared {
    /// Loans not yet taken in; `None` once the loop has ended (later loans are refused).
    inbox: Mutex<Option<Vec<Loan>>>,
    /// An eventfd in the loop's epoll: written for every loan, at stop and at close.
    doorbell: OwnedFd,
    /// The run is stopping: every socket goes back, and every later loan at once.
    stopping: AtomicBool,
    /// The loop ends.
    closed: AtomicBool,
}

impl Shared {
    fn inbox(&self) -> MutexGuard<'_, Option<Vec<Loan>>> {
        // A poisoned lock means a panic while pushing or taking a `Vec`; the list is whole.
        self.inbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ring(&self) {
        // Fails only when the counter would overflow (2^64 - 2 rings unread): it is rung.
        let _ = rustix::io::write(&self.doorbell, &1u64.to_ne_bytes());
    }
}

/// What moves between a client and a loop: the socket and what was read from it but not
/// yet parsed, and the client's sequence state.
#[derive(Debug)]
struct Conn {
    /// The socket, non-blocking, outside tokio's reactor.
    pub stream: TcpStream,
    /// Bytes read (and counted) but not parsed: a frame's first part, or from a frame the
    /// loop does not take onward.
    pub part: Vec<u8>,
    /// The client's sequence accounting.
    pub seqs: Seqs,
    /// What the connection carries, and its state.
    pub lent: Lent,
}

/// What a lent connection carries.
#[derive(Debug)]
pub(crate) enum Lent {
    /// WebSocket frames (after the upgrade).
    Ws,
    /// Long-poll answers, each followed by the next request, which the loop writes.
    LongPoll(LongPollState),
    /// An SSE body (after the response head). Boxed: the parser's state is several times
    /// the size of the other variants'.
    Sse(Box<SseState>),
}

/// A lent SSE stream's state: where its body's decoding and its event parsing stand, kept
/// across reads and handed back with the socket.
#[derive(Debug)]
pub(crate) struct SseState {
    /// The chunked decoder, for a chunked body; `None` for a body the connection's end
    /// delimits.
    pub chunked: Option<ChunkedDecoder>,
    /// The event-stream parser.
    pub parser: SseParser,
}

/// A lent long-poll connection's state.
#[derive(Debug)]
pub(crate) struct LongPollState {
    /// How its requests look and how long an answer may take.
    pub template: Arc<RequestTemplate>,
    /// The cursor: the next request asks for events after it.
    pub cursor: u64,
    /// The request in flight, if any.
    pub pending: Option<Pending>,
}

/// A long-poll request in flight.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    /// Sent inside the measure window (its latency counts).
    pub in_window: bool,
    /// When it was sent.
    pub started: Instant,
}

/// The bytes of a client's long-poll requests, `PREFIX CURSOR SUFFIX`, made by the
/// long-poll client from the request [`crate::http::format_request`] makes, and the time an
/// answer may take before the exchange counts as failed.
#[derive(Debug)]
pub(crate) struct RequestTemplate {
    /// Up to the cursor.
    pub prefix: Vec<u8>,
    /// After the cursor.
    pub suffix: Vec<u8>,
    /// The longest wait for an answer.
    pub answer_wait: Duration,
}

impl RequestTemplate {
    /// Appends the request for events after `cursor` to `out`.
    pub fn write(&self, out: &mut Vec<u8>, cursor: u64) {
        use std::io::Write as _;
        out.extend_from_slice(&self.prefix);
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{cursor}");
        out.extend_from_slice(&self.suffix);
    }
}

/// A socket on loan to a loop.
#[derive(Debug)]
struct Loan {
    conn: Conn,
    counters: Arc<ConnCounters>,
    index: usize,
    reply: oneshot::Sender<Return>,
}

/// A lent socket back with its client ([`ReceiveLoops::lend_socket`]).
#[derive(Debug)]
pub(crate) struct Back {
    /// The socket, counted as before, in tokio's reactor again.
    pub stream: CountingStream<tokio::net::TcpStream>,
    /// Bytes read (and counted) but not parsed, for the client's own reader.
    pub part: Vec<u8>,
    /// What it carried, as the loop left it.
    pub lent: Lent,
    /// Why it came back.
    pub why: Why,
}

/// A socket given back to its client.
#[derive(Debug)]
struct Return {
    /// The socket, its unparsed bytes and sequence state.
    pub conn: Conn,
    /// Why it came back.
    pub why: Why,
}

/// Why a socket came back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// The run is stopping: say goodbye.
    Stopped,
    /// Something for the client's own reader: a frame for tungstenite, a long-poll answer
    /// that is not a kept-alive `200` with a length (its request is in `pending`), or, for
    /// a long-poll with nothing in flight, a request that could not be written at once.
    Resume,
    /// The end of the stream, with every whole frame before it taken: what is left
    /// (`part`) is at most the start of a frame. The client knows the outcome at once,
    /// without waiting for tokio to see the socket readable again, which a stop may beat.
    Ended,
    /// The read failed; the error kind.
    Lost(String),
}

/// Where a loop accounts events.
#[derive(Debug)]
struct Sink {
    window: Arc<Window>,
    live: Arc<LiveStats>,
    to_server_ns: i64,
}

impl Sink {
    /// Accounts event `ev` (`json_len` bytes of JSON) of client `index`, read at `recv_ns`,
    /// into `stats` and the client's `seqs`, as every client accounts one.
    fn account(
        &self,
        stats: &mut GroupStats,
        index: usize,
        seqs: &mut Seqs,
        ev: EventHead,
        json_len: usize,
        recv_ns: u64,
    ) {
        let receipt = receive(
            &self.window,
            &self.live,
            self.to_server_ns,
            index,
            seqs,
            ev,
            json_len,
            recv_ns,
        );
        if let Some(r) = receipt {
            r.record(stats, &self.live);
        }
    }

    /// [`Sink::account`] for an event's JSON; one that is no event counts as `bad_event`,
    /// as a client counts it.
    fn account_json(
        &self,
        stats: &mut GroupStats,
        index: usize,
        seqs: &mut Seqs,
        json: &[u8],
        recv_ns: u64,
    ) {
        match parse_event(json) {
            Ok(ev) => self.account(stats, index, seqs, ev, json.len(), recv_ns),
            Err(_) => {
                self.live.errors.fetch_add(1, Ordering::Relaxed);
                *stats.errors.entry("bad_event".into()).or_default() += 1;
            }
        }
    }
}

impl ReceiveLoops {
    /// Starts `n_loops` loops (at least one), each on a thread of its own, accounting events
    /// against `window` and `live` with the server's clock `to_server_ns` ahead; they hand
    /// every socket back when `stop` is cancelled. Must be called inside a tokio runtime.
    pub fn start(
        n_loops: usize,
        window: &Arc<Window>,
        live: &Arc<LiveStats>,
        to_server_ns: i64,
        stop: &CancellationToken,
    ) -> std::io::Result<Self> {
        let mut receivers = Self {
            loops: Vec::new(),
            threads: Mutex::new(Vec::new()),
            watcher: None,
        };
        for i in 0..n_loops.max(1) {
            let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
            let doorbell = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
            epoll::add(
                &ep,
                &doorbell,
                epoll::EventData::new_u64(DOORBELL),
                epoll::EventFlags::IN,
            )?;
            let shared = Arc::new(Shared {
                inbox: Mutex::new(Some(Vec::new())),
                doorbell,
                stopping: AtomicBool::new(false),
                closed: AtomicBool::new(false),
            });
            let sink = Sink {
                window: window.clone(),
                live: live.clone(),
                to_server_ns,
            };
            let lp = Loop::new(shared.clone(), ep, sink);
            // On failure `receivers` is dropped, which ends the loops already started.
            let thread = std::thread::Builder::new()
                .name(format!("fb-recv-{i}"))
                .spawn(move || lp.run())?;
            receivers.loops.push(shared);
            receivers.lock_threads().push(thread);
        }
        let (loops, stop) = (receivers.loops.clone(), stop.clone());
        receivers.watcher = Some(tokio::spawn(async move {
            stop.cancelled().await;
            for l in &loops {
                l.stopping.store(true, Ordering::Release);
                l.ring();
            }
        }));
        Ok(receivers)
    }

    fn lock_threads(&self) -> MutexGuard<'_, Vec<JoinHandle<GroupStats>>> {
        self.threads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lends client `index`'s socket (counted on `counters`) to its loop; the receiver
    /// resolves when the socket comes back. `Err` gives the socket back at once when the
    /// loop has ended.
    fn lend(
        &self,
        index: usize,
        conn: Conn,
        counters: Arc<ConnCounters>,
    ) -> Result<oneshot::Receiver<Return>, Conn> {
        let shared = &self.loops[index % self.loops.len()];
        let (reply, back) = oneshot::channel();
        {
            let mut inbox = shared.inbox();
            let Some(loans) = inbox.as_mut() else {
                return Err(conn);
            };
            loans.push(Loan {
                conn,
                counters,
                index,
                reply,
            });
        }
        shared.ring();
        Ok(back)
    }

    /// Lends client `st`'s plain socket, carrying `lent`, to its loop with `part` (bytes
    /// read and not parsed yet) and the client's sequence state, and waits for it to come
    /// back: out of tokio's reactor and into it again, the sequence state restored. A loop
    /// that has ended gives the socket back at once, to be read on ([`Why::Resume`]).
    /// `Err` names how the socket was lost on the way (its bytes stay on its counters),
    /// with what it carried when the loop had it.
    pub(crate) async fn lend_socket(
        &self,
        st: &mut ClientState<'_>,
        stream: CountingStream<tokio::net::TcpStream>,
        part: Vec<u8>,
        lent: Lent,
    ) -> Result<Back, (String, Option<Lent>)> {
        let (tcp, counters) = stream.into_parts();
        let std = tcp
            .into_std()
            .map_err(|e| (io_error_kind(&e).to_string(), None))?;
        let conn = Conn {
            stream: std,
            part,
            seqs: st.lend_seqs(),
            lent,
        };
        let (conn, why) = match self.lend(st.index, conn, counters.clone()) {
            Ok(rx) => match rx.await {
                Ok(Return { conn, why }) => (conn, why),
                // The loop ended without giving the socket back: it panicked, and the
                // socket and the client's sequence state went with it.
                Err(_) => return Err(("receive_loop_lost".into(), None)),
            },
            Err(conn) => (conn, Why::Resume),
        };
        st.restore_seqs(conn.seqs);
        match tokio::net::TcpStream::from_std(conn.stream) {
            Ok(tcp) => Ok(Back {
                stream: CountingStream::from_parts(tcp, counters),
                part: conn.part,
                lent: conn.lent,
                why,
            }),
            Err(e) => Err((io_error_kind(&e).to_string(), Some(conn.lent))),
        }
    }

    /// Ends the loops and returns what they accounted. Call it after every client has
    /// ended; a socket a loop still holds goes back to its client (or is closed, if the
    /// client is gone).
    pub async fn finish(&self) -> GroupStats {
        for l in &self.loops {
            l.closed.store(true, Ordering::Release);
            l.ring();
        }
        let threads = std::mem::take(&mut *self.lock_threads());
        let joined = tokio::task::spawn_blocking(move || {
            let mut merged = GroupStats::new();
            for t in threads {
                // A loop that panicked has lost its figures; the clients' errors show it.
                if let Ok(g) = t.join() {
                    merged.merge(g);
                }
            }
            merged
        });
        joined.await.unwrap_or_default()
    }
}

impl Drop for ReceiveLoops {
    fn drop(&mut self) {
        // Ends loops that were not finished (a scenario that failed part-way); they hand
        // back or close what they hold and their threads exit on their own.
        for l in &self.loops {
            l.closed.store(true, Ordering::Release);
            l.ring();
        }
        if let Some(w) = &self.watcher {
            w.abort();
        }
    }
}

/// One lent socket.
#[derive(Debug)]
struct Entry {
    conn: Conn,
    counters: Arc<ConnCounters>,
    index: usize,
    reply: oneshot::Sender<Return>,
}

/// One receive loop: its epoll, its sockets by slot, its read buffer and its figures.
struct Loop {
    shared: Arc<Shared>,
    ep: OwnedFd,
    sink: Sink,
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    buf: Box<[u8]>,
    stats: GroupStats,
    /// Long-poll connections held: while there are any, the loop wakes every
    /// [`SWEEP_EVERY`] to fail answers overdue.
    long_polls: usize,
    next_sweep: Instant,
    /// Where a request is put together before it is written.
    request: Vec<u8>,
    /// Where an SSE body's chunks are decoded before they are parsed.
    decoded: BytesMut,
}

impl Loop {
    fn new(shared: Arc<Shared>, ep: OwnedFd, sink: Sink) -> Self {
        Self {
            shared,
            ep,
            sink,
            slots: Vec::new(),
            free: Vec::new(),
            buf: vec![0; READ_BUF].into_boxed_slice(),
            stats: GroupStats::new(),
            long_polls: 0,
            next_sweep: Instant::now() + SWEEP_EVERY,
            request: Vec::with_capacity(256),
            decoded: BytesMut::new(),
        }
    }

    /// Reads until closed; returns the figures.
    fn run(mut self) -> GroupStats {
        let mut events = Vec::with_capacity(EVENTS_PER_WAIT);
        'wait: loop {
            events.clear();
            let timeout = (self.long_polls > 0).then(|| {
                let left = self.next_sweep.saturating_duration_since(Instant::now());
                rustix::time::Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: i64::from(left.subsec_nanos()),
                }
            });
            match epoll::wait(&self.ep, spare_capacity(&mut events), timeout.as_ref()) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    // Nothing here can make `epoll_wait` fail (the descriptors are ours and
                    // the buffer valid); if it does, the clients read every socket instead.
                    tracing::error!("websocket receive loop: epoll_wait failed: {e}");
                    break 'wait;
                }
            }
            // The doorbell is answered after the batch's sockets: what they read before a
            // stop (a server's close, the end of the stream) is theirs, not the stop's, as
            // it is for a client reading its own socket.
            let mut rung = false;
            for ev in &events {
                match ev.data.u64() {
                    DOORBELL => rung = true,
                    slot => self.read(slot as usize),
                }
            }
            if rung && !self.answer_doorbell() {
                break 'wait;
            }
            if self.long_polls > 0 && Instant::now() >= self.next_sweep {
                self.sweep();
            }
        }
        self.end();
        self.stats
    }

    /// Takes in new loans, hands everything back when stopping; `false` once closed.
    fn answer_doorbell(&mut self) -> bool {
        let mut count = [0u8; 8];
        // Resets the eventfd's counter; it is non-blocking, and a spurious wake-up reads
        // nothing.
        let _ = rustix::io::read(&self.shared.doorbell, &mut count);
        if self.shared.closed.load(Ordering::Acquire) {
            return false;
        }
        let loans = self
            .shared
            .inbox()
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        for loan in loans {
            self.admit(loan);
        }
        if self.shared.stopping.load(Ordering::Acquire) {
            self.hand_back_all(|| Why::Stopped);
        }
        true
    }

    /// Ends the loop: later loans are refused, and every socket goes back (as stopped when
    /// the run stopped, else to be read on by the client's own reader).
    fn end(&mut self) {
        let late = self.shared.inbox().take().unwrap_or_default();
        let stopping = self.shared.stopping.load(Ordering::Acquire);
        let why = || if stopping { Why::Stopped } else { Why::Resume };
        for loan in late {
            let _ = loan.reply.send(Return {
                conn: loan.conn,
                why: why(),
            });
        }
        self.hand_back_all(why);
        self.stats.flush_recent(&self.sink.live);
    }

    /// Takes in a loan: registers its socket and parses what it brought.
    fn admit(&mut self, loan: Loan) {
        let Loan {
            conn,
            counters,
            index,
            reply,
        } = loan;
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let registered = conn.stream.set_nonblocking(true).is_ok()
            && epoll::add(
                &self.ep,
                &conn.stream,
                epoll::EventData::new_u64(slot as u64),
                epoll::EventFlags::IN,
            )
            .is_ok();
        let recv_ns = counters.last_read_ns();
        self.long_polls += matches!(conn.lent, Lent::LongPoll(_)) as usize;
        self.slots[slot] = Some(Entry {
            conn,
            counters,
            index,
            reply,
        });
        if !registered {
            // The client's own reader reads it instead.
            self.hand_back(slot, Why::Resume);
            return;
        }
        // The bytes read past the upgrade's head came with the read that ended it.
        let Some(e) = self.slots[slot].as_mut() else {
            return;
        };
        let n = e.conn.part.len();
        self.buf[..n].copy_from_slice(&e.conn.part);
        e.conn.part.clear();
        self.parse(slot, n, recv_ns);
    }

    /// Reads the socket in `slot` once and parses what it holds.
    fn read(&mut self, slot: usize) {
        // An event for a slot handed back earlier in the same batch: nothing to do (and a
        // slot taken again since reads nothing, or what is there).
        let Some(e) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let kept = e.conn.part.len();
        self.buf[..kept].copy_from_slice(&e.conn.part);
        match (&e.conn.stream).read(&mut self.buf[kept..]) {
            Ok(0) => self.hand_back(slot, Why::Ended),
            Ok(n) => {
                let recv_ns = e.counters.count_read(n as u64);
                e.conn.part.clear();
                self.parse(slot, kept + n, recv_ns);
            }
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(err) => self.hand_back(slot, Why::Lost(io_error_kind(&err).into())),
        }
    }

    /// Parses `buf[..len]`, read at `recv_ns` for the socket in `slot`, as what the
    /// connection carries.
    fn parse(&mut self, slot: usize, len: usize, recv_ns: u64) {
        match self.slots[slot].as_ref().map(|e| &e.conn.lent) {
            Some(Lent::Ws) => self.parse_ws(slot, len, recv_ns),
            Some(Lent::LongPoll(_)) => self.parse_long_poll(slot, len, recv_ns),
            Some(Lent::Sse(_)) => self.parse_sse(slot, len, recv_ns),
            None => {}
        }
    }

    /// Parses WebSocket frames: accounts every whole data frame, keeps a partial one, hands
    /// the socket back at any other frame.
    fn parse_ws(&mut self, slot: usize, len: usize, recv_ns: u64) {
        let Self {
            slots,
            buf,
            sink,
            stats,
            ..
        } = self;
        let Some(e) = slots[slot].as_mut() else {
            return;
        };
        let mut pos = 0;
        let foreign = loop {
            let (header, total, text) = match next_frame(&buf[pos..len]) {
                Next::Data {
                    header,
                    total,
                    text,
                } => (header, total, text),
                Next::Partial => break false,
                Next::Foreign => break true,
            };
            let payload = &buf[pos + header..pos + total];
            if text && std::str::from_utf8(payload).is_err() {
                break true;
            }
            pos += total;
            sink.account_json(stats, e.index, &mut e.conn.seqs, payload, recv_ns);
        };
        keep_rest(&mut e.conn.part, &buf[pos..len]);
        if foreign {
            self.hand_back(slot, Why::Resume);
        }
    }

    /// Decodes an SSE body and accounts every event it completes, as the client's own
    /// reader does (`sse::read_events`): the chunked framing and the event stream are
    /// decoded by the same [`ChunkedDecoder`] and [`SseParser`], whose state stays with the
    /// connection. Keeps what the decoder did not take (a partial chunk-size line); hands
    /// the socket back when the body ends or breaks a rule, with the kind the client gives
    /// it.
    fn parse_sse(&mut self, slot: usize, len: usize, recv_ns: u64) {
        let Self {
            slots,
            buf,
            sink,
            stats,
            decoded,
            ..
        } = self;
        let Some(e) = slots[slot].as_mut() else {
            return;
        };
        let Lent::Sse(sse) = &mut e.conn.lent else {
            return;
        };
        let input = &buf[..len];
        let (used, done, body) = match sse.chunked.as_mut() {
            Some(dec) => match dec.decode_slice(input, decoded) {
                Ok((used, done)) => (used, done, &decoded[..]),
                Err(_) => {
                    decoded.clear();
                    self.hand_back(slot, Why::Lost("bad_chunk".into()));
                    return;
                }
            },
            // The connection's end delimits the body: every byte is the stream's.
            None => (len, false, input),
        };
        let (index, seqs) = (e.index, &mut e.conn.seqs);
        let fed = sse.parser.feed(body, |ev| {
            sink.account_json(stats, index, seqs, ev.data, recv_ns)
        });
        decoded.clear();
        keep_rest(&mut e.conn.part, &input[used..]);
        let lost = match (fed, done) {
            (Err(_), _) => Some("sse_line_too_long"),
            (Ok(()), true) => Some("stream_ended"),
            (Ok(()), false) => None,
        };
        if let Some(kind) = lost {
            self.hand_back(slot, Why::Lost(kind.into()));
        }
    }

    /// Parses long-poll answers: accounts every whole, kept-alive `200` answer with a
    /// length that fits the buffer as `long_poll::answered` does, then writes the next
    /// request; keeps a partial answer; hands the socket back at any other answer, with its
    /// request, for the client to finish, and at a body that is no poll answer.
    fn parse_long_poll(&mut self, slot: usize, len: usize, recv_ns: u64) {
        let Self {
            slots,
            buf,
            sink,
            stats,
            ..
        } = self;
        let Some(e) = slots[slot].as_mut() else {
            return;
        };
        let Lent::LongPoll(lp) = &mut e.conn.lent else {
            return;
        };
        let mut pos = 0;
        let step = loop {
            let b = &buf[pos..len];
            if b.is_empty() {
                break Step::Done;
            }
            let head = match parse_head(b) {
                Ok(Some(head)) => head,
                Ok(None) => break Step::Done,
                Err(_) => break Step::Resume,
            };
            let body_len = match head.framing {
                BodyFraming::Length(n) if n <= (READ_BUF - head.head_len) as u64 => n as usize,
                _ => break Step::Resume,
            };
            if head.status != 200 || !head.keep_alive {
                break Step::Resume;
            }
            let Some(pending) = lp.pending else {
                // An answer to no request: the client's reader makes of it what it would.
                break Step::Resume;
            };
            let end = head.head_len + body_len;
            if b.len() < end {
                break Step::Done;
            }
            lp.pending = None;
            if pending.in_window {
                record_us(
                    &mut stats.request_latency,
                    pending.started.elapsed().as_micros() as u64,
                );
            }
            let answer = read_answer(&b[head.head_len..end], |ev, json_len| {
                sink.account(stats, e.index, &mut e.conn.seqs, ev, json_len, recv_ns)
            });
            pos += end;
            match answer {
                Ok(a) => {
                    stats.server_missed += a.missed;
                    stats.empty += (a.n_events == 0 && pending.in_window) as u64;
                    lp.cursor = a.next.max(lp.cursor);
                }
                Err(kind) => break Step::Lost(kind),
            }
        };
        let idle = lp.pending.is_none();
        keep_rest(&mut e.conn.part, &buf[pos..len]);
        match step {
            Step::Done if idle => self.send_request(slot),
            Step::Done => {}
            Step::Resume => self.hand_back(slot, Why::Resume),
            Step::Lost(kind) => self.hand_back(slot, Why::Lost(kind.into())),
        }
    }

    /// Writes the long-poll request for the cursor of the connection in `slot`, counted as
    /// `long_poll::begin_long_poll` counts it. A request is about a hundred bytes written to
    /// a socket with nothing else in flight, so it goes out whole; if it does not, the
    /// exchange fails as a short write.
    fn send_request(&mut self, slot: usize) {
        let Self {
            slots,
            sink,
            stats,
            request,
            ..
        } = self;
        let Some(e) = slots[slot].as_mut() else {
            return;
        };
        let Lent::LongPoll(lp) = &mut e.conn.lent else {
            return;
        };
        request.clear();
        lp.template.write(request, lp.cursor);
        let in_window = sink.window.contains(unix_nanos());
        stats.requests_total += 1;
        stats.requests_sent += in_window as u64;
        let started = Instant::now();
        let failed = match (&e.conn.stream).write(request) {
            Ok(n) => {
                e.counters.count_write(n as u64);
                (n < request.len()).then_some("short_write")
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock => Some("short_write"),
            Err(err) => Some(io_error_kind(&err)),
        };
        match failed {
            None => lp.pending = Some(Pending { in_window, started }),
            Some(kind) => self.hand_back(slot, Why::Lost(kind.into())),
        }
    }

    /// Fails the long-polls whose answers are overdue, as the client's own deadline would.
    fn sweep(&mut self) {
        let now = Instant::now();
        self.next_sweep = now + SWEEP_EVERY;
        for slot in 0..self.slots.len() {
            let Some(Lent::LongPoll(lp)) = self.slots[slot].as_mut().map(|e| &mut e.conn.lent)
            else {
                continue;
            };
            if lp
                .pending
                .is_some_and(|p| now.duration_since(p.started) > lp.template.answer_wait)
            {
                // The exchange is over: nothing is in flight any more.
                lp.pending = None;
                self.hand_back(slot, Why::Lost("timeout".into()));
            }
        }
    }

    /// Gives the socket in `slot` back to its client (or closes it, if the client is gone).
    fn hand_back(&mut self, slot: usize, why: Why) {
        let Some(e) = self.slots[slot].take() else {
            return;
        };
        self.free.push(slot);
        self.long_polls -= matches!(e.conn.lent, Lent::LongPoll(_)) as usize;
        // Fails only if the socket was never registered.
        let _ = epoll::delete(&self.ep, &e.conn.stream);
        let _ = e.reply.send(Return { conn: e.conn, why });
    }

    fn hand_back_all(&mut self, why: impl Fn() -> Why) {
        for slot in 0..self.slots.len() {
            if self.slots[slot].is_some() {
                self.hand_back(slot, why());
            }
        }
    }
}

/// Keeps `rest` as a connection's unparsed bytes. A buffer that held a large partial frame
/// is let go once it is no longer needed, so a lent socket holds no memory between frames.
fn keep_rest(part: &mut Vec<u8>, rest: &[u8]) {
    if rest.is_empty() && part.capacity() > 1024 {
        *part = Vec::new();
    } else {
        part.clear();
        part.extend_from_slice(rest);
    }
}

/// How parsing a long-poll connection's bytes ended.
enum Step {
    /// Everything whole was taken; what is left (if anything) is a partial answer.
    Done,
    /// An answer for the client's reader.
    Resume,
    /// A body that is no poll answer: the exchange failed with this kind.
    Lost(&'static str),
}

/// What the next frame in a buffer is.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// A whole data frame this loop takes: `header` bytes of header, `total` bytes in all;
    /// `text` for a text frame (its payload must be UTF-8).
    Data {
        header: usize,
        total: usize,
        text: bool,
    },
    /// The frame is not whole yet.
    Partial,
    /// A frame for tungstenite (see the module documentation).
    Foreign,
}

/// Classifies the frame `b` starts with (RFC 6455 §5.2). Only a final, unmasked text (1) or
/// binary (2) frame without reserved bits, whose whole length fits the read buffer, is
/// [`Next::Data`]; a frame's first two bytes are enough to tell the rest apart.
fn next_frame(b: &[u8]) -> Next {
    let (Some(&b0), Some(&b1)) = (b.first(), b.get(1)) else {
        return if b.first().is_some_and(|&b0| !takes_first_byte(b0)) {
            Next::Foreign
        } else {
            Next::Partial
        };
    };
    if !takes_first_byte(b0) || b1 & 0x80 != 0 {
        return Next::Foreign;
    }
    let (header, len) = match b1 & 0x7f {
        126 => match b.get(2..4) {
            Some(l) => (4, u64::from(u16::from_be_bytes([l[0], l[1]]))),
            None => return Next::Partial,
        },
        127 => match b.get(2..10) {
            // `try_into` of an 8-byte slice into `[u8; 8]` cannot fail.
            Some(l) => (10, u64::from_be_bytes(l.try_into().unwrap_or([0xff; 8]))),
            None => return Next::Partial,
        },
        l => (2, u64::from(l)),
    };
    // A hostile length (up to 2^64 - 1) must not overflow: compare before adding.
    if len > (READ_BUF - header) as u64 {
        return Next::Foreign;
    }
    let total = header + len as usize;
    if b.len() < total {
        return Next::Partial;
    }
    Next::Data {
        header,
        total,
        text: b0 & 0x0f == 1,
    }
}

/// Whether a frame's first byte is FIN, no reserved bits, and a text or binary opcode.
fn takes_first_byte(b0: u8) -> bool {
    b0 == 0x81 || b0 == 0x82
}

#[cfg(test)]
mod tests;
