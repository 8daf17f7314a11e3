//! Publish-time writes: the publisher writes each new event straight to the sockets of
//! plain push streams (direct WebSocket and SSE over TCP) that are caught up with the head,
//! so a delivery costs one `send` and no task wake-up.
//!
//! Why: with a task per stream, every event wakes every subscriber's task, and at 10,000
//! streams each wake-up touches a task, its future, its socket's readiness and the head's
//! waiter list, cold in cache: the server spent 14.5–15.1 µs per delivery against the C
//! floor writer's 10.1 (`scripts/floor-compare.sh`; README, "Which side the distance is
//! on"). A measurement-only prototype of this design took it to 9.96 µs and the latency to
//! the floor's (1.00 p50, 0.99 p99 at 10,000 × 1/s).
//!
//! How: a stream whose cursor equals the head, with nothing of its own left to write,
//! registers its socket ([`Fanout::register`]) and then waits only for its client, for
//! shutdown, or to be handed back. After the hub moves the head, the publisher writes the
//! new events (frames encoded once per pass) to every registered socket with one
//! non-blocking `send` each ([`Fanout::write`]). A socket that does not take the whole
//! write, or fails, is handed back: its entry keeps the unwritten rest and the error, and
//! its task is woken to write the rest itself and go on as before (lag, then 1013 or the
//! end of the stream). A task that needs its socket (its client sent something, shutdown)
//! takes its entry back first ([`Fanout::take`]).
//!
//! A parked long-poll registers the same way ([`Kind::LongPoll`]) and is
//! answered once: the publisher writes its whole answer (head and body, as
//! `crate::poll_direct` writes them, encoded once per pass per number of events) and does
//! not wake its task, which wakes when the client sends its next request. Measured on the
//! task path, a long-poll delivery cost two wake-ups (the publish, then the next request)
//! and a body encoded per client; the server spent 1.9–2.2× the C floor writer's CPU per
//! delivery (`scripts/floor-compare.sh`).
//!
//! Invariants:
//! - While registered, a socket is written only by the publisher, and only under the
//!   registry's lock; its task writes nothing to it until it has taken its entry back
//!   (under the same lock), and what the publisher left unwritten goes out first. So
//!   frames never interleave and the bytes are the task path's, byte for byte.
//! - An entry gets a contiguous run of events: registration happens under the lock and only
//!   while the stream's cursor is the head; the hub moves the head before the pass takes the
//!   lock, so an event published around a registration is either before the cursor or
//!   written by the pass. An entry that would get a gap (two publishers racing) is handed
//!   back with nothing written, and its task catches up from the ring.
//! - A socket leaves the registry before it is closed: the task's [`Registered`] guard
//!   takes the entry back when dropped, so no descriptor the publisher can reach is ever
//!   closed or reused under it.
//! - Bytes and writes are counted as `Counted` counts them: each `send` that takes bytes is
//!   one socket write, its bytes go out under the stream's class.
//! - A long-poll counts as parked (`Stats::parked`) from registration until the publisher
//!   writes its answer or its task takes it back unanswered, exactly once either way; once
//!   its server's shutdown has begun it is handed back unwritten, since an answer must then
//!   say `connection: close`.
//! - Bounded: a pass holds the lock for at most [`CHUNK`] sends at a time, writes each
//!   socket once, and writes at most [`MAX_PASS_BYTES`] (a larger batch is handed back
//!   to the tasks, which write it in their own bounded chunks).

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::event::Event;
use crate::stats::{Class, Stats};

/// Sockets written per hold of the registry's lock: a task taking its entry back waits
/// for at most this many sends (about 0.3 ms at 5 µs each).
pub const CHUNK: usize = 64;

/// Most bytes of frames one pass writes to a socket; a larger batch (events published
/// together while the publisher was behind) is handed back to the tasks. The same bound
/// as the tasks' own largest write (`WRITE_CHUNK` in `ws_direct` and `sse_direct`).
pub const MAX_PASS_BYTES: usize = 64 * 1024;

/// Which framing a registered socket takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// WebSocket text frames ([`Event::ws`]).
    Ws,
    /// SSE events, each one HTTP chunk as hyper frames it.
    Sse,
    /// A parked long-poll: answered once, with at most `limit` events, as
    /// `crate::poll_direct` answers (head with `date` and `content-length`, then the body).
    LongPoll {
        /// The request's `limit`.
        limit: u32,
    },
}

/// What a task gets when it takes its entry back.
#[derive(Debug)]
pub struct Handback {
    /// Seq of the last event written to the socket or included in `rest`.
    pub seq: u64,
    /// Frame bytes the socket did not take (the tail of the publisher's last write); the
    /// task writes them before anything else.
    pub rest: Bytes,
    /// Why the socket failed, if a write did.
    pub error: Option<io::Error>,
    /// A long-poll the publisher answered: when (the next request's header timeout counts
    /// from then). What is left of the answer is in `rest`.
    pub answered: Option<Instant>,
}

/// A registered socket.
#[derive(Debug)]
struct Entry {
    fd: RawFd,
    kind: Kind,
    /// Seq of the last event written (or handed back in `left`).
    seq: u64,
    /// Set once the publisher has stopped writing: the unwritten rest and any error.
    left: Option<Box<(Bytes, Option<io::Error>)>>,
    /// The task to wake when the entry is handed back.
    waker: Option<Waker>,
    stats: Arc<Stats>,
    /// A long-poll: when the publisher answered it (it is then written to no more), as a
    /// [`Stamp`]: 4 bytes beside `fd` rather than 16 of an `Instant`, keeping the entry in
    /// 64 bytes.
    answered: Option<Stamp>,
    /// A long-poll: its server's shutdown. Once shutdown has begun an answer must say
    /// `connection: close`, so the publisher hands the entry back for its task to answer.
    shutdown: Option<CancellationToken>,
}

impl Entry {
    /// Whether the publisher still writes to this entry.
    fn is_live(&self) -> bool {
        self.left.is_none() && self.answered.is_none()
    }
}

#[derive(Debug, Default)]
struct Slots {
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    /// Entries being written to (registered, not handed back).
    live: usize,
}

/// The registry of sockets the publisher writes to.
#[derive(Debug)]
pub struct Fanout {
    slots: Mutex<Slots>,
    /// What [`Stamp`]s count from.
    epoch: Instant,
}

impl Default for Fanout {
    fn default() -> Self {
        Fanout {
            slots: Mutex::default(),
            epoch: Instant::now(),
        }
    }
}

/// An instant as 1 + milliseconds since the registry's epoch, modulo 2^32 (never zero). It is
/// read back within a header timeout or so of being taken (a long-poll's task reads it
/// when its client sends the next request, or at the latest a header timeout after the
/// answer, when it closes a silent client), far inside the 49 days it takes to wrap.
#[derive(Debug, Clone, Copy)]
struct Stamp(std::num::NonZeroU32);

/// How many milliseconds before `now_ms` (milliseconds since the epoch, modulo 2^32)
/// `stamp` was taken.
fn ms_ago(now_ms: u32, stamp: Stamp) -> u32 {
    let ago = now_ms.wrapping_add(1).wrapping_sub(stamp.0.get());
    // "Ahead of now" only by the rounding where the count wraps to zero: now.
    if ago > u32::MAX / 2 {
        0
    } else {
        ago
    }
}

impl Fanout {
    fn stamp(&self, at: Instant) -> Stamp {
        let ms = at.saturating_duration_since(self.epoch).as_millis() as u32;
        Stamp(std::num::NonZeroU32::new(ms.wrapping_add(1)).unwrap_or(std::num::NonZeroU32::MIN))
    }

    /// The instant of `stamp`, to the millisecond (taken within the last 49 days).
    fn instant(&self, stamp: Stamp) -> Instant {
        let now = Instant::now();
        let now_ms = now.saturating_duration_since(self.epoch).as_millis() as u32;
        let ago = ms_ago(now_ms, stamp);
        now.checked_sub(std::time::Duration::from_millis(u64::from(ago)))
            .unwrap_or(now)
    }
}

impl Fanout {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many sockets the publisher writes to now.
    pub fn live(&self) -> usize {
        self.lock().live
    }

    /// Registers `fd` as caught up at `seq`, if `head()` (read under the registry's lock)
    /// is still `seq`; returns the entry's index, or `None` when the head has moved (the
    /// task catches up itself and tries again).
    ///
    /// A long-poll ([`Kind::LongPoll`]) counts as parked (`Stats::parked`) from here until
    /// the publisher answers it or it is taken back unanswered; `shutdown` is its server's
    /// (for the other kinds, `None`).
    pub fn register(
        &self,
        fd: RawFd,
        kind: Kind,
        seq: u64,
        head: impl FnOnce() -> u64,
        stats: &Arc<Stats>,
        shutdown: Option<&CancellationToken>,
    ) -> Option<u32> {
        let mut slots = self.lock();
        if head() != seq {
            return None;
        }
        if let Kind::LongPoll { .. } = kind {
            stats.parked.fetch_add(1, Relaxed);
        }
        let entry = Entry {
            fd,
            kind,
            seq,
            left: None,
            waker: None,
            stats: Arc::clone(stats),
            answered: None,
            shutdown: shutdown.cloned(),
        };
        let idx = match slots.free.pop() {
            Some(i) => {
                slots.entries[i as usize] = Some(entry);
                i
            }
            None => {
                slots.entries.push(Some(entry));
                u32::try_from(slots.entries.len() - 1).ok()?
            }
        };
        slots.live += 1;
        Some(idx)
    }

    /// `Ready` once the publisher has handed entry `idx` back (the socket did not take a
    /// write, or failed); otherwise remembers the task to wake.
    pub fn poll_handed_back(&self, idx: u32, cx: &mut Context<'_>) -> Poll<()> {
        let mut slots = self.lock();
        let Some(entry) = slots.entries.get_mut(idx as usize).and_then(Option::as_mut) else {
            return Poll::Ready(());
        };
        if !entry.is_live() {
            return Poll::Ready(());
        }
        match &mut entry.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Takes entry `idx` out of the registry: from now on only the task writes to the
    /// socket. Idempotent per registration (a second take finds nothing).
    pub fn take(&self, idx: u32) -> Option<Handback> {
        let mut slots = self.lock();
        let entry = slots.entries.get_mut(idx as usize)?.take()?;
        slots.free.push(idx);
        if entry.is_live() {
            slots.live -= 1;
        }
        drop(slots);
        if matches!(entry.kind, Kind::LongPoll { .. }) && entry.answered.is_none() {
            // Parked until now; its task answers it.
            entry.stats.parked.fetch_sub(1, Relaxed);
        }
        let (rest, error) = entry.left.map_or((Bytes::new(), None), |left| *left);
        Some(Handback {
            seq: entry.seq,
            rest,
            error,
            answered: entry.answered.map(|at| self.instant(at)),
        })
    }

    /// When the publisher answered long-poll `idx`, if it has.
    pub fn answered(&self, idx: u32) -> Option<Instant> {
        let stamp = self.lock().entries.get(idx as usize)?.as_ref()?.answered?;
        Some(self.instant(stamp))
    }

    /// After the head has moved: if any socket is registered, writes the events `events()`
    /// returns (the ones just published, read back from the ring) with [`Fanout::write`].
    ///
    /// The check is made under the lock: a registration whose lock came first is seen
    /// here; one whose lock comes after this read the moved head and needs nothing.
    pub fn write_with(&self, events: impl FnOnce() -> Vec<Event>) {
        if self.lock().live == 0 {
            return;
        }
        self.write(&events());
    }

    /// Writes `events` (oldest first, seq contiguous) to every registered socket: one
    /// `send` per socket. Sockets that do not take it all are handed back. A long-poll is
    /// answered with the first `limit` of them and then written to no more; its task is
    /// not woken (it wakes for its client's next request).
    pub fn write(&self, events: &[Event]) {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return;
        };
        let (first, last) = (first.seq, last.seq);
        let mut frames = Frames::new(events);
        let now = self.stamp(Instant::now());
        let mut at = 0;
        loop {
            let mut slots = self.lock();
            let end = (at + CHUNK).min(slots.entries.len());
            if at >= end {
                break;
            }
            let mut handed_back = 0;
            // Long-polls answered whole: no longer written to, and their tasks not woken.
            let mut answered_whole = 0;
            for entry in slots.entries[at..end].iter_mut().flatten() {
                if !entry.is_live() || entry.seq >= last {
                    continue;
                }
                let closing = entry.shutdown.as_ref().is_some_and(|s| s.is_cancelled());
                let buf = if entry.seq + 1 != first {
                    // A gap: this pass cannot write what the socket needs first.
                    None
                } else if closing {
                    // Its answer must now say `connection: close`: the task's to write.
                    None
                } else {
                    frames.get(entry.kind)
                };
                let outcome = match buf {
                    Some(buf) => send_counted(entry, buf),
                    None => Outcome::HandBack(Bytes::new(), None),
                };
                // The seq of the last event written (or left in the rest).
                let upto = match entry.kind {
                    Kind::LongPoll { limit } => last.min(entry.seq + u64::from(limit)),
                    Kind::Ws | Kind::Sse => last,
                };
                let poll = matches!(entry.kind, Kind::LongPoll { .. });
                let wrote = match &outcome {
                    Outcome::All => true,
                    Outcome::HandBack(rest, error) => error.is_none() && !rest.is_empty(),
                };
                if wrote {
                    entry.seq = upto;
                    if poll {
                        entry.answered = Some(now);
                        entry.stats.parked.fetch_sub(1, Relaxed);
                    }
                }
                match outcome {
                    Outcome::All if poll => answered_whole += 1,
                    Outcome::All => {}
                    Outcome::HandBack(rest, error) => {
                        entry.left = Some(Box::new((rest, error)));
                        handed_back += 1;
                        if let Some(w) = entry.waker.take() {
                            w.wake();
                        }
                    }
                }
            }
            slots.live -= handed_back + answered_whole;
            at = end;
        }
    }
}

/// How one socket's write went.
enum Outcome {
    /// The socket took every byte.
    All,
    /// Hand the socket back with this unwritten rest (empty: nothing of the pass was
    /// written) and error.
    HandBack(Bytes, Option<io::Error>),
}

/// One non-blocking `send` of `buf` to the entry's socket, counted as `Counted` counts a
/// socket write.
fn send_counted(entry: &Entry, buf: &Bytes) -> Outcome {
    let n = loop {
        // SAFETY: `fd` is a connected socket its task keeps open while the entry is in the
        // registry (the entry is taken out, under the lock this pass holds, before the
        // socket can close); `buf` is valid for `buf.len()` bytes.
        let rc = unsafe {
            libc::send(
                entry.fd,
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if rc >= 0 {
            break rc as usize;
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Outcome::HandBack(buf.clone(), None),
            _ => return Outcome::HandBack(Bytes::new(), Some(err)),
        }
    };
    if n > 0 {
        let stats = &entry.stats;
        let class = match entry.kind {
            Kind::Ws => Class::Ws,
            Kind::Sse => Class::Sse,
            Kind::LongPoll { .. } => Class::LongPoll,
        };
        stats.socket_writes.fetch_add(1, Relaxed);
        stats.bytes[class as usize]
            .bytes_out
            .fetch_add(n as u64, Relaxed);
        stats.publisher_writes.fetch_add(1, Relaxed);
    }
    if n == buf.len() {
        Outcome::All
    } else {
        Outcome::HandBack(buf.slice(n..), None)
    }
}

/// A pass's frames, encoded once per kind (and per number of events a long-poll takes)
/// when first needed.
struct Frames<'a> {
    events: &'a [Event],
    ws: Option<Option<Bytes>>,
    sse: Option<Option<Bytes>>,
    /// Long-poll answers by how many events they carry (a `limit` below the pass's size
    /// takes fewer; clients of one benchmark all ask for the same).
    polls: Vec<(usize, Option<Bytes>)>,
}

impl<'a> Frames<'a> {
    fn new(events: &'a [Event]) -> Self {
        Frames {
            events,
            ws: None,
            sse: None,
            polls: Vec::new(),
        }
    }

    /// The pass's bytes for `kind`; `None` if they exceed [`MAX_PASS_BYTES`] (more than
    /// one event).
    fn get(&mut self, kind: Kind) -> Option<&Bytes> {
        let events = self.events;
        match kind {
            Kind::Ws => self.ws.get_or_insert_with(|| ws_frames(events)).as_ref(),
            Kind::Sse => self.sse.get_or_insert_with(|| sse_chunks(events)).as_ref(),
            Kind::LongPoll { limit } => {
                let n = events.len().min(limit as usize);
                let i = match self.polls.iter().position(|(m, _)| *m == n) {
                    Some(i) => i,
                    None => {
                        self.polls.push((n, poll_answer(&events[..n])));
                        self.polls.len() - 1
                    }
                };
                self.polls[i].1.as_ref()
            }
        }
    }
}

/// The events' WebSocket frames back to back (one event: its shared frame, no copy), made
/// as the tasks make their batches ([`crate::ws_direct::batch`], at most 64 KiB); `None`
/// when they do not fit in one.
fn ws_frames(events: &[Event]) -> Option<Bytes> {
    let (frames, taken) = crate::ws_direct::batch(events);
    (taken == events.len()).then_some(frames)
}

/// The events as HTTP chunks, framed as hyper frames them (upper-case hex size).
fn sse_chunks(events: &[Event]) -> Option<Bytes> {
    let len: usize = events.iter().map(|e| e.sse.len() + 12).sum();
    if events.len() > 1 && len > MAX_PASS_BYTES {
        return None;
    }
    let mut out = Vec::with_capacity(len);
    for e in events {
        crate::sse_direct::push_chunk(&mut out, &e.sse);
    }
    Some(Bytes::from(out))
}

/// A caught-up long-poll's answer carrying `events` (the first of them is the one after
/// its cursor): head and body as `crate::poll_direct` writes them for a keep-alive
/// connection; `None` if it exceeds [`MAX_PASS_BYTES`] (more than one event).
fn poll_answer(events: &[Event]) -> Option<Bytes> {
    let after = events.first()?.seq - 1;
    let body = crate::poll::encode_events(events, 0, after);
    let head = crate::direct::json_head(body.len(), false);
    if events.len() > 1 && head.len() + body.len() > MAX_PASS_BYTES {
        return None;
    }
    let mut out = Vec::with_capacity(head.len() + body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(&body);
    Some(Bytes::from(out))
}

/// Hands the socket `tcp` to the publisher as caught up at `seq`, and waits for shutdown,
/// for the client (the socket turns readable) or for the publisher to hand it back; then
/// takes it back. Returns what the publisher handed back and whether shutdown began, or
/// `None` when the head had moved (nothing was handed over: catch up first). `slot` holds
/// the registration meanwhile; it must be dropped before the socket (see [`Registered`]).
pub async fn lend(
    app: &crate::app::App,
    slot: &mut Option<Registered>,
    tcp: &tokio::net::TcpStream,
    kind: Kind,
    seq: u64,
) -> Option<(Handback, bool)> {
    use std::os::fd::AsRawFd;
    let fd = tcp.as_raw_fd();
    let reg = &*slot.insert(Registered::new(app, fd, kind, seq)?);
    let shutdown = tokio::select! {
        biased;
        _ = app.shutdown.cancelled() => true,
        _ = std::future::poll_fn(|cx| tcp.poll_read_ready(cx)) => false,
        () = std::future::poll_fn(|cx| reg.poll_handed_back(cx)) => false,
    };
    Some((slot.take()?.take(), shutdown))
}

/// A task's registration: takes the entry back when dropped, so the socket (dropped after
/// it) is out of the registry before it closes.
#[derive(Debug)]
pub struct Registered {
    hub: Arc<crate::Hub>,
    idx: u32,
}

impl Registered {
    /// Registers `fd` in `app`'s fan-out as caught up at `seq` (see [`Fanout::register`]);
    /// a long-poll's entry carries the server's shutdown.
    pub fn new(app: &crate::app::App, fd: RawFd, kind: Kind, seq: u64) -> Option<Registered> {
        let hub = &app.hub;
        let shutdown = matches!(kind, Kind::LongPoll { .. }).then_some(&app.shutdown);
        let idx = hub
            .fanout()
            .register(fd, kind, seq, || hub.head(), &app.stats, shutdown)?;
        Some(Registered {
            hub: Arc::clone(hub),
            idx,
        })
    }

    /// When the publisher answered this long-poll, if it has.
    pub fn answered(&self) -> Option<Instant> {
        self.hub.fanout().answered(self.idx)
    }

    /// `Ready` once the publisher has handed the socket back.
    pub fn poll_handed_back(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.hub.fanout().poll_handed_back(self.idx, cx)
    }

    /// Takes the entry back: the socket is the task's again.
    pub fn take(mut self) -> Handback {
        let idx = std::mem::replace(&mut self.idx, TAKEN);
        // Only `take` and `drop` remove the entry, and `drop` skips a taken one (its index
        // may already be another registration's).
        let back = self.hub.fanout().take(idx);
        // `_else`: the error is made (two allocations) only when it is one.
        back.unwrap_or_else(|| Handback {
            seq: 0,
            rest: Bytes::new(),
            error: Some(io::Error::other("fan-out entry missing")),
            answered: None,
        })
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if self.idx != TAKEN {
            let _ = self.hub.fanout().take(self.idx);
        }
    }
}

/// A [`Registered`] whose entry has been taken back.
const TAKEN: u32 = u32::MAX;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    fn events(first: u64, n: usize, payload: usize) -> Vec<Event> {
        (0..n as u64)
            .map(|i| Event::new(first + i, 1, payload))
            .collect()
    }

    fn ws_bytes(events: &[Event]) -> Vec<u8> {
        events.iter().flat_map(|e| e.ws.iter().copied()).collect()
    }

    fn drain(s: &mut UnixStream) -> Vec<u8> {
        s.set_nonblocking(true).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return out,
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn noop_cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    /// A waker that records whether it was woken.
    struct Flag(std::sync::atomic::AtomicBool);

    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    impl Flag {
        fn new() -> Arc<Flag> {
            Arc::new(Flag(std::sync::atomic::AtomicBool::new(false)))
        }

        fn woken(&self) -> bool {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    #[test]
    fn caught_up_sockets_get_each_pass_whole_and_counted() {
        let fanout = Fanout::default();
        let stats = Arc::new(Stats::default());
        let (ws_srv, mut ws_cli) = UnixStream::pair().unwrap();
        let (sse_srv, mut sse_cli) = UnixStream::pair().unwrap();
        let a = fanout
            .register(ws_srv.as_raw_fd(), Kind::Ws, 0, || 0, &stats, None)
            .unwrap();
        let b = fanout
            .register(sse_srv.as_raw_fd(), Kind::Sse, 0, || 0, &stats, None)
            .unwrap();
        assert_eq!(fanout.live(), 2);
        // One event, then two published together: two passes, one send per socket each.
        let one = events(1, 1, 16);
        let two = events(2, 2, 300);
        fanout.write(&one);
        fanout.write(&two);
        let all: Vec<Event> = one.iter().chain(&two).cloned().collect();
        assert_eq!(drain(&mut ws_cli), ws_bytes(&all));
        let mut sse_want = Vec::new();
        for e in &all {
            crate::sse_direct::push_chunk(&mut sse_want, &e.sse);
        }
        assert_eq!(drain(&mut sse_cli), sse_want);
        assert_eq!(stats.publisher_writes.load(Relaxed), 4);
        assert_eq!(stats.socket_writes.load(Relaxed), 4);
        let out = |c: Class| stats.bytes[c as usize].bytes_out.load(Relaxed);
        assert_eq!(out(Class::Ws), ws_bytes(&all).len() as u64);
        assert_eq!(out(Class::Sse), sse_want.len() as u64);
        // Nothing was handed back; taking the entries says how far each got.
        assert_eq!(fanout.poll_handed_back(a, &mut noop_cx()), Poll::Pending);
        let back = fanout.take(a).unwrap();
        assert_eq!(
            (back.seq, back.rest.len(), back.error.is_none()),
            (3, 0, true)
        );
        assert_eq!(fanout.take(b).unwrap().seq, 3);
        assert!(fanout.take(a).is_none(), "a second take finds nothing");
        assert_eq!(fanout.live(), 0);
        // With nobody registered, a pass writes nothing.
        fanout.write(&events(4, 1, 16));
        assert_eq!(stats.publisher_writes.load(Relaxed), 4);
    }

    #[test]
    fn a_registration_after_the_head_moved_is_refused() {
        let fanout = Fanout::default();
        let stats = Arc::new(Stats::default());
        let (srv, _cli) = UnixStream::pair().unwrap();
        assert!(fanout
            .register(srv.as_raw_fd(), Kind::Ws, 4, || 5, &stats, None)
            .is_none());
        assert_eq!(fanout.live(), 0);
    }

    #[test]
    fn a_full_socket_is_handed_back_with_the_rest_of_the_write() {
        let fanout = Fanout::default();
        let stats = Arc::new(Stats::default());
        let (srv, mut cli) = UnixStream::pair().unwrap();
        let idx = fanout
            .register(srv.as_raw_fd(), Kind::Ws, 0, || 0, &stats, None)
            .unwrap();
        // Events until the socket stops taking them whole; each pass writes one.
        let mut sent = Vec::new();
        let mut seq = 1;
        while fanout.poll_handed_back(idx, &mut noop_cx()).is_pending() {
            assert!(seq < 10_000, "the socket never filled");
            let ev = events(seq, 1, 4_000);
            fanout.write(&ev);
            sent.extend(ev);
            seq += 1;
        }
        assert_eq!(fanout.live(), 0, "a handed-back entry is not written to");
        let last = seq - 1;
        fanout.write(&events(seq, 1, 4_000));
        let back = fanout.take(idx).unwrap();
        // The rest is the tail of the last event's frame (or all of it), and the seq says
        // that event is the task's to finish.
        assert_eq!(back.seq, last);
        assert!(back.error.is_none());
        let want = ws_bytes(&sent);
        let got = drain(&mut cli);
        assert!(!back.rest.is_empty());
        assert_eq!(got.len() + back.rest.len(), want.len());
        let mut joined = got;
        joined.extend_from_slice(&back.rest);
        assert_eq!(joined, want);
        let out = stats.bytes[Class::Ws as usize].bytes_out.load(Relaxed);
        assert_eq!(out as usize, want.len() - back.rest.len());
    }

    #[test]
    fn a_failed_socket_is_handed_back_with_its_error_and_a_gap_with_nothing() {
        let fanout = Fanout::default();
        let stats = Arc::new(Stats::default());
        let (srv, cli) = UnixStream::pair().unwrap();
        drop(cli);
        let (srv2, mut cli2) = UnixStream::pair().unwrap();
        let failed = fanout
            .register(srv.as_raw_fd(), Kind::Ws, 2, || 2, &stats, None)
            .unwrap();
        // Registered at 0, but the pass starts at 3: it cannot write 1 and 2.
        let gap = fanout
            .register(srv2.as_raw_fd(), Kind::Sse, 0, || 0, &stats, None)
            .unwrap();
        fanout.write(&events(3, 1, 8));
        let waker_cx = &mut noop_cx();
        assert!(fanout.poll_handed_back(failed, waker_cx).is_ready());
        assert!(fanout.poll_handed_back(gap, waker_cx).is_ready());
        let back = fanout.take(failed).unwrap();
        assert!(back.error.is_some(), "EPIPE from a closed peer");
        assert_eq!((back.seq, back.rest.len()), (2, 0));
        let back = fanout.take(gap).unwrap();
        assert!(back.error.is_none());
        assert_eq!((back.seq, back.rest.len()), (0, 0));
        assert!(drain(&mut cli2).is_empty());
        assert_eq!(stats.socket_writes.load(Relaxed), 0);
    }

    #[test]
    fn a_handed_back_entry_wakes_its_task() {
        let fanout = Fanout::default();
        let stats = Arc::new(Stats::default());
        let (srv, cli) = UnixStream::pair().unwrap();
        let idx = fanout
            .register(srv.as_raw_fd(), Kind::Ws, 0, || 0, &stats, None)
            .unwrap();
        let flag = Flag::new();
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(fanout.poll_handed_back(idx, &mut cx).is_pending());
        fanout.write(&events(1, 1, 8));
        assert!(!flag.woken(), "a whole write wakes nobody");
        drop(cli);
        fanout.write(&events(2, 1, 8));
        assert!(flag.woken(), "a hand-back wakes the task");
    }

    /// Splits an answer at its `date` value, which changes by the second.
    fn undated(raw: &[u8]) -> String {
        let text = String::from_utf8(raw.to_vec()).unwrap();
        let at = text.find("\r\ndate: ").unwrap() + 8;
        format!("{}<date>{}", &text[..at], &text[at + 29..])
    }

    /// What `poll_direct` writes for a keep-alive long-poll answered with `events`.
    fn task_answer(events: &[Event], after: u64) -> String {
        let body = crate::poll::encode_events(events, 0, after);
        let head = crate::direct::json_head(body.len(), false);
        undated(&[head.as_bytes(), &body[..]].concat())
    }

    fn poll(limit: u32) -> Kind {
        Kind::LongPoll { limit }
    }

    #[test]
    fn a_parked_long_poll_is_answered_once_without_a_wake() {
        let fanout = Fanout::default();
        let stats = Arc::new(Stats::default());
        let shutdown = CancellationToken::new();
        let (all_srv, mut all_cli) = UnixStream::pair().unwrap();
        let (one_srv, mut one_cli) = UnixStream::pair().unwrap();
        let (late_srv, mut late_cli) = UnixStream::pair().unwrap();
        let all = fanout
            .register(
                all_srv.as_raw_fd(),
                poll(100),
                4,
                || 4,
                &stats,
                Some(&shutdown),
            )
            .unwrap();
        let one = fanout
            .register(
                one_srv.as_raw_fd(),
                poll(1),
                4,
                || 4,
                &stats,
                Some(&shutdown),
            )
            .unwrap();
        assert_eq!(stats.parked.load(Relaxed), 2);
        let flag = Flag::new();
        let waker = Waker::from(flag.clone());
        assert!(fanout
            .poll_handed_back(all, &mut Context::from_waker(&waker))
            .is_pending());
        let before = Instant::now();
        let evs = events(5, 3, 40);
        fanout.write(&evs);
        // Each gets the answer its limit asks for, whole, in one counted write; the task is
        // not woken, the gauge is down, and the entry is written to no more.
        let (got_all, got_one) = (drain(&mut all_cli), drain(&mut one_cli));
        assert_eq!(undated(&got_all), task_answer(&evs, 4));
        assert_eq!(undated(&got_one), task_answer(&evs[..1], 4));
        assert!(!flag.woken(), "an answer wakes nobody");
        assert_eq!(stats.parked.load(Relaxed), 0);
        assert_eq!(stats.publisher_writes.load(Relaxed), 2);
        assert_eq!(fanout.live(), 0);
        fanout.write(&events(8, 1, 40));
        assert!(drain(&mut all_cli).is_empty());
        // To the millisecond.
        let at = fanout.answered(all).unwrap();
        assert!(at + std::time::Duration::from_millis(2) >= before && at <= Instant::now());
        let back = fanout.take(all).unwrap();
        assert_eq!((back.seq, back.rest.len()), (7, 0));
        assert!(back.error.is_none() && back.answered.is_some());
        assert_eq!(fanout.take(one).unwrap().seq, 5, "limit 1: event 5 only");
        assert_eq!(
            stats.parked.load(Relaxed),
            0,
            "an answered take moves nothing"
        );
        let out = stats.bytes[Class::LongPoll as usize]
            .bytes_out
            .load(Relaxed);
        assert_eq!(out as usize, got_all.len() + got_one.len());
        // Once shutdown has begun the answer must say `connection: close`: handed back
        // unwritten, and the task (woken) answers.
        let late = fanout
            .register(
                late_srv.as_raw_fd(),
                poll(100),
                8,
                || 8,
                &stats,
                Some(&shutdown),
            )
            .unwrap();
        assert!(fanout
            .poll_handed_back(late, &mut Context::from_waker(&waker))
            .is_pending());
        shutdown.cancel();
        fanout.write(&events(9, 1, 40));
        assert!(flag.woken(), "the hand-back wakes the task");
        assert!(drain(&mut late_cli).is_empty());
        assert_eq!(
            stats.parked.load(Relaxed),
            1,
            "parked until its task takes it"
        );
        let back = fanout.take(late).unwrap();
        assert!(back.answered.is_none() && back.rest.is_empty() && back.error.is_none());
        assert_eq!(stats.parked.load(Relaxed), 0);
    }

    #[test]
    fn stamps_read_back_to_the_millisecond_across_the_wrap() {
        let stamp = |ms: u32| Stamp(std::num::NonZeroU32::new(ms.wrapping_add(1)).unwrap());
        assert_eq!(ms_ago(1_000, stamp(400)), 600);
        assert_eq!(
            ms_ago(5, stamp(u32::MAX - 2)),
            8,
            "taken before the count wrapped"
        );
        assert_eq!(ms_ago(7, stamp(7)), 0);
        // Where ms + 1 wraps to zero the stamp says 1: read back as now, not 49 days ago.
        let wrapped = Stamp(std::num::NonZeroU32::MIN);
        assert_eq!(ms_ago(u32::MAX, wrapped), 0);
        // Through the registry's clock.
        let mut fanout = Fanout::default();
        let now = Instant::now();
        fanout.epoch = now - std::time::Duration::from_secs(10);
        let at = now - std::time::Duration::from_secs(3);
        let back = fanout.instant(fanout.stamp(at));
        let err = back.max(at) - back.min(at);
        assert!(err <= std::time::Duration::from_millis(2), "{err:?}");
    }

    #[test]
    fn large_batches_are_left_to_the_tasks() {
        let big = events(1, 3, MAX_PASS_BYTES / 2);
        assert!(ws_frames(&big).is_none());
        assert!(sse_chunks(&big).is_none());
        // One event is written whatever its size.
        let one = events(1, 1, MAX_PASS_BYTES * 2);
        assert_eq!(ws_frames(&one).unwrap(), one[0].ws);
        assert!(sse_chunks(&one).is_some());
        assert!(poll_answer(&big).is_none());
        assert!(poll_answer(&one).is_some());
    }
}
