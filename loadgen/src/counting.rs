//! A byte-counting wrapper around a client socket, and the measure window it counts against.
//!
//! Every client socket is wrapped in [`CountingStream`], so the byte figures are what
//! crossed the socket API, exactly, whatever protocol library sits on top. Bytes are
//! attributed when the read or write completes: to *setup* while the client says it is
//! setting up (connect, WebSocket handshake, SSE response head, first poll), otherwise to
//! the phase of the [`Window`] the completion time falls in. The time of the latest read
//! is kept as the receive timestamp of whatever is parsed out of those bytes.
//!
//! The counts live in a [`ConnCounters`] behind an `Arc`, so they stay readable through
//! [`CountingStream::counters`] after the stream moved into a library that owns it (h2,
//! tokio-tungstenite).
//!
//! Over TLS the socket's stream runs in *record mode* ([`CountingStream::tls_records`]):
//! it reads large chunks from the socket but hands the TLS library one complete record per
//! read, and a [`PlaintextStream`] above TLS counts the plaintext, filling from the TLS
//! stream once per read. One fill reads records until one yields plaintext, so of the
//! records a fill consumed the last is application data and every earlier one is not; records consumed outside a plaintext
//! read (the handshake) are not either. Application-data records cost `wire − plaintext`
//! (the `tls` layer); every other record is the `handshake` layer. On the write side, what
//! TLS writes inside a plaintext write or flush is application data, everything else
//! (handshake flights, close_notify) is handshake. All layers of one plaintext read or write
//! are counted at one instant (the stream's *now*), so they fall in the same phase and
//! `wire = plaintext + tls + handshake` holds phase by phase.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use feedbench_results::{ByteLayers, ByteSplit, TlsLayers, TlsRun};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, ReadBuf};

use crate::clock::unix_nanos;

/// Where an instant falls relative to the measure window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the window: connect and warm-up.
    Before = 0,
    /// Inside `[start, end)`.
    Measure = 1,
    /// After the window: drain and disconnect.
    After = 2,
}

/// The measure window in Unix nanoseconds, shared by every client of a scenario.
///
/// Both bounds are `u64::MAX` until the scenario fixes them after the connect phase, so
/// everything before that counts as [`Phase::Before`].
#[derive(Debug)]
pub struct Window {
    start_ns: AtomicU64,
    end_ns: AtomicU64,
}

impl Default for Window {
    fn default() -> Self {
        Self::new()
    }
}

impl Window {
    /// A window that has not been fixed yet.
    pub fn new() -> Self {
        Self {
            start_ns: AtomicU64::new(u64::MAX),
            end_ns: AtomicU64::new(u64::MAX),
        }
    }

    /// Fixes the window to `[start_ns, end_ns)`.
    pub fn set(&self, start_ns: u64, end_ns: u64) {
        // End first: a reader that sees the new start must not see the old (MAX) end as
        // anything but a still-open window, which it would anyway; the order only keeps
        // `start <= end` for every observer.
        self.end_ns.store(end_ns, Ordering::Release);
        self.start_ns.store(start_ns, Ordering::Release);
    }

    /// Moves the end of the window to `end_ns` (used when a run is cut short).
    pub fn close_at(&self, end_ns: u64) {
        if end_ns < self.end_ns.load(Ordering::Acquire) {
            self.end_ns.store(end_ns, Ordering::Release);
        }
    }

    /// The window start, `u64::MAX` if not fixed.
    pub fn start_ns(&self) -> u64 {
        self.start_ns.load(Ordering::Acquire)
    }

    /// The window end, `u64::MAX` if not fixed.
    pub fn end_ns(&self) -> u64 {
        self.end_ns.load(Ordering::Acquire)
    }

    /// The phase of the instant `t_ns`.
    pub fn phase(&self, t_ns: u64) -> Phase {
        if t_ns < self.start_ns() {
            Phase::Before
        } else if t_ns < self.end_ns() {
            Phase::Measure
        } else {
            Phase::After
        }
    }

    /// Whether `t_ns` is inside the window.
    pub fn contains(&self, t_ns: u64) -> bool {
        self.phase(t_ns) == Phase::Measure
    }
}

/// Bytes counted on one or more sockets.
///
/// `up`/`down` and the setup fields are the socket's (wire) bytes; the per-phase layer
/// fields break the steady-state wire bytes down for the split ([`ByteCounts::split`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ByteCounts {
    /// Bytes written while setting up.
    pub setup_up: u64,
    /// Bytes read while setting up.
    pub setup_down: u64,
    /// Plaintext written above TLS while setting up (0 without TLS).
    pub setup_plain_up: u64,
    /// Plaintext read above TLS while setting up (0 without TLS).
    pub setup_plain_down: u64,
    /// Wire bytes of records that are not application data written while setting up.
    pub setup_handshake_up: u64,
    /// The same, read.
    pub setup_handshake_down: u64,
    /// Steady-state bytes written, by [`Phase`].
    pub up: [u64; 3],
    /// Steady-state bytes read, by [`Phase`].
    pub down: [u64; 3],
    /// Steady-state plaintext written above TLS, by [`Phase`] (= `up` without TLS).
    pub plain_up: [u64; 3],
    /// Steady-state plaintext read above TLS, by [`Phase`] (= `down` without TLS).
    pub plain_down: [u64; 3],
    /// Steady-state wire bytes of TLS records that are not application data (handshake,
    /// session tickets, alerts) written, by [`Phase`].
    pub handshake_up: [u64; 3],
    /// The same, read.
    pub handshake_down: [u64; 3],
    /// HTTP/2 DATA payload bytes written, by [`Phase`]; 0 over HTTP/1.1.
    pub data_up: [u64; 3],
    /// HTTP/2 DATA payload bytes read, by [`Phase`]; 0 over HTTP/1.1.
    pub data_down: [u64; 3],
    /// TLS handshakes completed, by [`Phase`] (index 0..3) and during setup (index 3).
    pub handshakes: [u64; 4],
    /// Of those, resumed ones.
    pub resumed: [u64; 4],
}

impl ByteCounts {
    /// All bytes written, setup included.
    pub fn total_up(&self) -> u64 {
        self.setup_up + self.up.iter().sum::<u64>()
    }

    /// All bytes read, setup included.
    pub fn total_down(&self) -> u64 {
        self.setup_down + self.down.iter().sum::<u64>()
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &ByteCounts) {
        self.setup_up += other.setup_up;
        self.setup_down += other.setup_down;
        self.setup_plain_up += other.setup_plain_up;
        self.setup_plain_down += other.setup_plain_down;
        self.setup_handshake_up += other.setup_handshake_up;
        self.setup_handshake_down += other.setup_handshake_down;
        let pairs: [(&mut [u64; 3], &[u64; 3]); 8] = [
            (&mut self.up, &other.up),
            (&mut self.down, &other.down),
            (&mut self.plain_up, &other.plain_up),
            (&mut self.plain_down, &other.plain_down),
            (&mut self.handshake_up, &other.handshake_up),
            (&mut self.handshake_down, &other.handshake_down),
            (&mut self.data_up, &other.data_up),
            (&mut self.data_down, &other.data_down),
        ];
        for (mine, theirs) in pairs {
            for i in 0..3 {
                mine[i] += theirs[i];
            }
        }
        for i in 0..4 {
            self.handshakes[i] += other.handshakes[i];
            self.resumed[i] += other.resumed[i];
        }
    }

    /// TLS handshakes completed in the window.
    pub fn window_handshakes(&self) -> u64 {
        self.handshakes[Phase::Measure as usize]
    }

    /// Resumed TLS handshakes completed in the window.
    pub fn window_resumed(&self) -> u64 {
        self.resumed[Phase::Measure as usize]
    }

    /// TLS handshakes completed over the whole run.
    pub fn handshakes_total(&self) -> u64 {
        self.handshakes.iter().sum()
    }

    /// The whole run's bytes (setup and every phase) by TLS layer; each direction sums
    /// to [`total_up`](Self::total_up) (resp. [`total_down`](Self::total_down)). Over
    /// plaintext the TLS layers are 0.
    pub fn run_tls(&self) -> TlsRun {
        let layers = |wire: u64, plain: u64, handshake: u64| {
            // Clamped like the split, so the three always sum to `wire`.
            let handshake = handshake.min(wire);
            let plaintext = plain.min(wire - handshake);
            TlsLayers {
                plaintext,
                tls: wire - handshake - plaintext,
                handshake,
            }
        };
        let sum = |a: &[u64; 3], setup: u64| setup + a.iter().sum::<u64>();
        TlsRun {
            up: layers(
                self.total_up(),
                sum(&self.plain_up, self.setup_plain_up),
                sum(&self.handshake_up, self.setup_handshake_up),
            ),
            down: layers(
                self.total_down(),
                sum(&self.plain_down, self.setup_plain_down),
                sum(&self.handshake_down, self.setup_handshake_down),
            ),
        }
    }

    /// The window's bytes split by layer. `payload_down` is the event JSON read in the
    /// window; `http2` says whether the clients spoke HTTP/2 (whose DATA bytes separate
    /// its framing from the transport's). The layers of each direction sum to
    /// `up[Measure]` (resp. `down[Measure]`) exactly; a layer that would come out negative
    /// (a record read just before the window whose plaintext is counted just inside it, a
    /// response whose events are received inside the window but whose first bytes came
    /// before) is 0 and its bytes stay in the layer below.
    pub fn split(&self, payload_down: u64, http2: bool) -> ByteSplit {
        let m = Phase::Measure as usize;
        let layers = |wire: u64, plain: u64, handshake: u64, data: u64, payload: u64| {
            // Clamped from the bottom up, so the five always sum to `wire`.
            let handshake = handshake.min(wire);
            let plain = plain.min(wire - handshake);
            let tls = wire - handshake - plain;
            let (h2, above) = if http2 {
                let data = data.min(plain);
                (plain - data, data)
            } else {
                (0, plain)
            };
            let payload = payload.min(above);
            ByteLayers {
                payload,
                framing: above - payload,
                h2,
                tls,
                handshake,
            }
        };
        ByteSplit {
            up: layers(
                self.up[m],
                self.plain_up[m],
                self.handshake_up[m],
                self.data_up[m],
                0,
            ),
            down: layers(
                self.down[m],
                self.plain_down[m],
                self.handshake_down[m],
                self.data_down[m],
                payload_down,
            ),
        }
    }
}

/// Index of the setup slot after the three phases.
const SETUP: usize = 3;

/// Four counters: one per [`Phase`] and one for setup.
type Slots = [AtomicU64; 4];

fn slots() -> Slots {
    Default::default()
}

fn bump(slots: &Slots, slot: usize, n: u64) {
    slots[slot].fetch_add(n, Ordering::Relaxed);
}

fn phases(slots: &Slots) -> [u64; 3] {
    [0, 1, 2].map(|i| slots[i].load(Ordering::Relaxed))
}

/// One connection's counters, shared by every layer that counts it (the socket's
/// [`CountingStream`], the [`PlaintextStream`] above TLS, an HTTP/2 client counting DATA)
/// and readable by whoever holds the `Arc` after the stream moved elsewhere.
///
/// Only the task that drives the connection writes them; atomics (relaxed) let the handle
/// be shared without a lock.
#[derive(Debug)]
pub struct ConnCounters {
    window: Arc<Window>,
    /// Whether TLS runs above the socket (plaintext and handshake counted apart).
    tls: bool,
    setup: AtomicBool,
    last_read_ns: AtomicU64,
    /// While a plaintext read or write runs: its instant, which every layer counts at; 0
    /// otherwise (each layer reads the clock itself).
    now_ns: AtomicU64,
    /// Whether a plaintext write or flush runs (what TLS writes then is application data).
    app_write: AtomicBool,
    wire_up: Slots,
    wire_down: Slots,
    plain_up: Slots,
    plain_down: Slots,
    handshake_up: Slots,
    handshake_down: Slots,
    data_up: Slots,
    data_down: Slots,
    handshakes: Slots,
    resumed: Slots,
    records: Mutex<RecordLedger>,
}

/// The read side's records not classified yet, by slot.
#[derive(Debug, Default)]
struct RecordLedger {
    /// Bytes of the record being handed out, by the slot each piece was counted in.
    current: [u64; 4],
    /// Bytes of completed records not classified yet.
    done: [u64; 4],
    /// The last completed record's bytes (part of `done`).
    last: [u64; 4],
}

impl ConnCounters {
    /// Counters of a connection starting in setup mode; `tls` when TLS runs above it.
    pub fn new(window: Arc<Window>, tls: bool) -> Self {
        Self {
            window,
            tls,
            setup: AtomicBool::new(true),
            last_read_ns: AtomicU64::new(0),
            now_ns: AtomicU64::new(0),
            app_write: AtomicBool::new(false),
            wire_up: slots(),
            wire_down: slots(),
            plain_up: slots(),
            plain_down: slots(),
            handshake_up: slots(),
            handshake_down: slots(),
            data_up: slots(),
            data_down: slots(),
            handshakes: slots(),
            resumed: slots(),
            records: Mutex::new(RecordLedger::default()),
        }
    }

    /// Whether TLS runs above the socket.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Ends setup: later bytes count as steady state.
    pub fn end_setup(&self) {
        self.setup.store(false, Ordering::Relaxed);
    }

    /// Whether the connection is still setting up.
    pub fn in_setup(&self) -> bool {
        self.setup.load(Ordering::Relaxed)
    }

    /// Unix ns of the latest read that returned data (0 before any).
    pub fn last_read_ns(&self) -> u64 {
        self.last_read_ns.load(Ordering::Relaxed)
    }

    /// The instant to count at: the running plaintext call's, else the clock's.
    fn now(&self) -> u64 {
        match self.now_ns.load(Ordering::Relaxed) {
            0 => unix_nanos(),
            t => t,
        }
    }

    /// The slot bytes counted at `t_ns` go to.
    fn slot(&self, t_ns: u64) -> usize {
        if self.in_setup() {
            SETUP
        } else {
            self.window.phase(t_ns) as usize
        }
    }

    /// Counts HTTP/2 DATA payload bytes read (`n`), in the phase of the latest read,
    /// which is when the plaintext that carried them was counted.
    pub fn count_data_down(&self, n: u64) {
        bump(&self.data_down, self.slot(self.last_read_ns()), n);
    }

    /// Counts HTTP/2 DATA payload bytes written (`n`), now.
    pub fn count_data_up(&self, n: u64) {
        bump(&self.data_up, self.slot(unix_nanos()), n);
    }

    /// Counts a completed TLS handshake, resumed or full, now.
    pub fn count_handshake(&self, resumed: bool) {
        let slot = self.slot(unix_nanos());
        bump(&self.handshakes, slot, 1);
        bump(&self.resumed, slot, resumed as u64);
    }

    /// Moves `n` bytes already counted as setup reads to the steady state at `t_ns`: the
    /// wire bytes, and over TLS the same number of plaintext bytes (the records' overhead
    /// stays with setup).
    pub fn reattribute_setup_down(&self, n: u64, t_ns: u64) {
        let n = n.min(self.wire_down[SETUP].load(Ordering::Relaxed));
        self.wire_down[SETUP].fetch_sub(n, Ordering::Relaxed);
        let phase = self.window.phase(t_ns) as usize;
        bump(&self.wire_down, phase, n);
        if self.tls {
            // The plaintext moves with them, so the whole run's plaintext stays what was
            // read.
            let plain = n.min(self.plain_down[SETUP].load(Ordering::Relaxed));
            self.plain_down[SETUP].fetch_sub(plain, Ordering::Relaxed);
            bump(&self.plain_down, phase, n);
        }
    }

    /// Bytes counted so far.
    pub fn counts(&self) -> ByteCounts {
        let load = |s: &Slots| s[SETUP].load(Ordering::Relaxed);
        let (up, down) = (phases(&self.wire_up), phases(&self.wire_down));
        let (plain_up, plain_down) = if self.tls {
            (phases(&self.plain_up), phases(&self.plain_down))
        } else {
            (up, down)
        };
        let (setup_plain_up, setup_plain_down) = if self.tls {
            (load(&self.plain_up), load(&self.plain_down))
        } else {
            (load(&self.wire_up), load(&self.wire_down))
        };
        ByteCounts {
            setup_up: load(&self.wire_up),
            setup_down: load(&self.wire_down),
            setup_plain_up,
            setup_plain_down,
            setup_handshake_up: load(&self.handshake_up),
            setup_handshake_down: load(&self.handshake_down),
            up,
            down,
            plain_up,
            plain_down,
            handshake_up: phases(&self.handshake_up),
            handshake_down: phases(&self.handshake_down),
            data_up: phases(&self.data_up),
            data_down: phases(&self.data_down),
            handshakes: [0, 1, 2, 3].map(|i| self.handshakes[i].load(Ordering::Relaxed)),
            resumed: [0, 1, 2, 3].map(|i| self.resumed[i].load(Ordering::Relaxed)),
        }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, RecordLedger> {
        // Only the connection's task touches the ledger; a poisoned lock means a panic
        // there, after which the numbers are kept as they are.
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wire bytes read at `now`, `n` of them, all of one record; `complete` when they end it.
    fn count_record_piece(&self, slot: usize, n: u64, complete: bool) {
        let mut l = self.ledger();
        l.current[slot] += n;
        if complete {
            let record = std::mem::take(&mut l.current);
            for (i, bytes) in record.iter().enumerate() {
                l.done[i] += bytes;
            }
            l.last = record;
        }
    }

    /// Classifies the completed records not classified yet: the last one is application
    /// data when `yielded_plaintext`, every other one is handshake.
    fn classify_records(&self, yielded_plaintext: bool) {
        let mut l = self.ledger();
        let done = std::mem::take(&mut l.done);
        let last = std::mem::take(&mut l.last);
        for slot in 0..4 {
            let app = if yielded_plaintext { last[slot] } else { 0 };
            bump(&self.handshake_down, slot, done[slot] - app);
        }
    }

    /// Starts a plaintext call at `now`: records left over from outside such a call (the
    /// handshake's) are handshake.
    fn begin_plaintext_call(&self, now: u64, app_write: bool) {
        self.classify_records(false);
        self.now_ns.store(now, Ordering::Relaxed);
        self.app_write.store(app_write, Ordering::Relaxed);
    }

    fn end_plaintext_call(&self) {
        self.now_ns.store(0, Ordering::Relaxed);
        self.app_write.store(false, Ordering::Relaxed);
    }

    /// Ends a TLS handshake: every record read so far was part of it.
    pub fn end_handshake(&self) {
        self.classify_records(false);
    }
}

/// The TLS records of the socket not yet handed to the TLS library (record mode).
#[derive(Debug)]
struct RecordReader {
    buf: BytesMut,
    /// Bytes of the current record still to hand out; 0 at a record boundary.
    left: usize,
}

/// The largest TLS record: a 5-byte header and up to 2^14 + 2048 bytes of ciphertext.
const MAX_RECORD: usize = 5 + 16_384 + 2_048;

impl RecordReader {
    fn new() -> Self {
        Self {
            buf: BytesMut::new(),
            left: 0,
        }
    }

    /// At a record boundary, the length of the next record if the buffer holds all of it,
    /// or of what is buffered if those bytes cannot be TLS (the library then fails on
    /// them at once rather than waiting for a record that never comes).
    fn next_record(&self) -> Option<usize> {
        let b = &self.buf;
        if b.is_empty() {
            return None;
        }
        // Content types 20..=24 (change_cipher_spec, alert, handshake, application_data,
        // heartbeat) and major version 3 are all TLS records may start with.
        if !(20..=24).contains(&b[0]) || (b.len() >= 2 && b[1] != 3) {
            return Some(b.len());
        }
        if b.len() < 5 {
            return None;
        }
        let total = 5 + usize::from(u16::from_be_bytes([b[3], b[4]]));
        if total > MAX_RECORD {
            return Some(b.len());
        }
        (b.len() >= total).then_some(total)
    }
}

/// An `AsyncRead + AsyncWrite` that counts every byte through it.
#[derive(Debug)]
pub struct CountingStream<S> {
    inner: S,
    counters: Arc<ConnCounters>,
    /// Record mode (TLS above): the socket's bytes not yet handed out.
    records: Option<RecordReader>,
}

impl<S> CountingStream<S> {
    /// Wraps `inner`, starting in setup mode.
    pub fn new(inner: S, window: Arc<Window>) -> Self {
        Self {
            inner,
            counters: Arc::new(ConnCounters::new(window, false)),
            records: None,
        }
    }

    /// Wraps the socket `inner` under TLS, starting in setup mode: hands out one TLS record
    /// per read and classifies records for the split (see the module documentation).
    pub fn tls_records(inner: S, window: Arc<Window>) -> Self {
        Self {
            inner,
            counters: Arc::new(ConnCounters::new(window, true)),
            records: Some(RecordReader::new()),
        }
    }

    /// Ends setup: later bytes count as steady state.
    pub fn end_setup(&self) {
        self.counters.end_setup();
    }

    /// Moves `n` bytes already counted as setup reads to the steady state at `t_ns`.
    ///
    /// A read that completes a response head often carries the first body bytes too; the
    /// HTTP client calls this for the part past the head.
    pub fn reattribute_setup_down(&self, n: u64, t_ns: u64) {
        self.counters.reattribute_setup_down(n, t_ns);
    }

    /// Bytes counted so far.
    pub fn counts(&self) -> ByteCounts {
        self.counters.counts()
    }

    /// Unix ns of the latest read that returned data (0 before any).
    pub fn last_read_ns(&self) -> u64 {
        self.counters.last_read_ns()
    }

    /// The counters, readable after this stream moved into another owner.
    pub fn counters(&self) -> Arc<ConnCounters> {
        self.counters.clone()
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped stream, for a stream that counted nothing yet (a TCP connect) to be
    /// counted afresh in another mode.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The wrapped stream and its counters, for a plain (not record-mode) stream whose
    /// reads someone else counts for a while ([`ConnCounters::count_read`]);
    /// [`CountingStream::from_parts`] puts them together again.
    pub fn into_parts(self) -> (S, Arc<ConnCounters>) {
        debug_assert!(
            self.records.is_none(),
            "a record-mode stream cannot be split"
        );
        (self.inner, self.counters)
    }

    /// A plain stream counting on `counters` (from [`CountingStream::into_parts`]).
    pub fn from_parts(inner: S, counters: Arc<ConnCounters>) -> Self {
        Self {
            inner,
            counters,
            records: None,
        }
    }

    fn count_up(&self, n: u64) {
        if n == 0 {
            return;
        }
        let c = &self.counters;
        let slot = c.slot(c.now());
        bump(&c.wire_up, slot, n);
        if c.tls && !c.app_write.load(Ordering::Relaxed) {
            bump(&c.handshake_up, slot, n);
        }
    }
}

impl ConnCounters {
    /// Counts `n` bytes read from a plain socket outside a [`CountingStream`], now; returns
    /// the instant (Unix ns), which is also the connection's receive timestamp from then on.
    pub fn count_read(&self, n: u64) -> u64 {
        debug_assert!(
            !self.tls,
            "TLS reads are counted by their record-mode stream"
        );
        let now = unix_nanos();
        self.last_read_ns.store(now, Ordering::Relaxed);
        bump(&self.wire_down, self.slot(now), n);
        now
    }

    /// Counts `n` bytes written to a plain socket outside a [`CountingStream`], now.
    pub fn count_write(&self, n: u64) {
        debug_assert!(
            !self.tls,
            "TLS writes are counted by their record-mode stream"
        );
        bump(&self.wire_up, self.slot(unix_nanos()), n);
    }

    /// Counts `n` wire bytes read now (the receive timestamp is taken here, before anything
    /// parses them); returns the slot.
    fn count_down(&self, n: u64) -> usize {
        let now = self.now();
        self.last_read_ns.store(now, Ordering::Relaxed);
        let slot = self.slot(now);
        bump(&self.wire_down, slot, n);
        slot
    }
}

impl<S: AsyncRead + Unpin> CountingStream<S> {
    /// Record mode: one record (or the part of one that fits `out`) per read.
    fn poll_read_record(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let Self {
            inner,
            counters,
            records,
        } = self;
        let Some(r) = records.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        loop {
            if r.left == 0 {
                r.left = r.next_record().unwrap_or(0);
            }
            if r.left > 0 {
                let n = r.left.min(out.remaining());
                if n == 0 {
                    return Poll::Ready(Ok(()));
                }
                out.put_slice(&r.buf[..n]);
                r.buf.advance(n);
                r.left -= n;
                let slot = counters.count_down(n as u64);
                counters.count_record_piece(slot, n as u64, r.left == 0);
                return Poll::Ready(Ok(()));
            }
            if r.buf.capacity() - r.buf.len() < 4096 {
                r.buf.reserve(MAX_RECORD);
            }
            let mut rb = ReadBuf::uninit(r.buf.spare_capacity_mut());
            match Pin::new(&mut *inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
            let got = rb.filled().len();
            if got == 0 {
                // End of stream: hand out a partial record, if any (the library fails on
                // it), else report the end.
                if r.buf.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                r.left = r.buf.len();
                continue;
            }
            // SAFETY: the read initialised the first `got` bytes of the spare capacity.
            unsafe { r.buf.set_len(r.buf.len() + got) };
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CountingStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.records.is_some() {
            return this.poll_read_record(cx, buf);
        }
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        if n > 0 {
            this.counters.count_down(n);
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountingStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &res {
            this.count_up(*n as u64);
        }
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &res {
            this.count_up(*n as u64);
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A stream whose bytes are counted: what the HTTP/1.1 client needs of its stream.
pub trait Counted {
    /// The connection's counters.
    fn counters(&self) -> Arc<ConnCounters>;

    /// Unix ns of the latest read from the socket that returned data (0 before any).
    fn last_read_ns(&self) -> u64 {
        self.counters().last_read_ns()
    }
}

impl<S> Counted for CountingStream<S> {
    fn counters(&self) -> Arc<ConnCounters> {
        self.counters.clone()
    }

    fn last_read_ns(&self) -> u64 {
        self.counters.last_read_ns()
    }
}

/// The plaintext side of a TLS stream: counts the plaintext and, on every read, classifies
/// the records the TLS library consumed (see the module documentation). `S` is the TLS
/// stream over a [`CountingStream`] in record mode sharing `counters`.
#[derive(Debug)]
pub struct PlaintextStream<S> {
    inner: S,
    counters: Arc<ConnCounters>,
}

impl<S> PlaintextStream<S> {
    /// Counts the plaintext of `inner` into `counters` (the socket stream's).
    pub fn new(inner: S, counters: Arc<ConnCounters>) -> Self {
        Self { inner, counters }
    }

    /// The TLS stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The counters.
    pub fn counters(&self) -> &Arc<ConnCounters> {
        &self.counters
    }
}

impl<S: AsyncBufRead + Unpin> AsyncRead for PlaintextStream<S> {
    /// One fill of the TLS stream per read: the records it consumed until one yielded
    /// plaintext are classified before anything else is read (the TLS stream's own
    /// `poll_read` may fill several times into one buffer, which would hide the boundary).
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let c = this.counters.clone();
        let now = unix_nanos();
        c.begin_plaintext_call(now, false);
        let mut inner = Pin::new(&mut this.inner);
        let res = match inner.as_mut().poll_fill_buf(cx) {
            Poll::Ready(Ok(data)) => {
                let n = data.len().min(buf.remaining());
                c.classify_records(!data.is_empty());
                buf.put_slice(&data[..n]);
                inner.consume(n);
                bump(&c.plain_down, c.slot(now), n as u64);
                Poll::Ready(Ok(()))
            }
            other => {
                c.classify_records(false);
                other.map_ok(|_| ())
            }
        };
        c.end_plaintext_call();
        res
    }
}

impl<S: AsyncWrite + Unpin> PlaintextStream<S> {
    /// Runs `f` on the TLS stream as one plaintext call at one instant; `app` when what it
    /// writes is application data.
    fn call<R>(&mut self, app: bool, f: impl FnOnce(Pin<&mut S>, u64) -> R) -> R {
        let now = unix_nanos();
        self.counters.begin_plaintext_call(now, app);
        let r = f(Pin::new(&mut self.inner), now);
        self.counters.end_plaintext_call();
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PlaintextStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let counters = this.counters.clone();
        this.call(true, |inner, now| {
            let res = inner.poll_write(cx, buf);
            if let Poll::Ready(Ok(n)) = &res {
                bump(&counters.plain_up, counters.slot(now), *n as u64);
            }
            res
        })
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().call(true, |inner, _| inner.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // close_notify is not application data: it counts as handshake.
        self.get_mut()
            .call(false, |inner, _| inner.poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn counts_setup_and_phases() {
        let window = Arc::new(Window::new());
        let (a, mut b) = tokio::io::duplex(1024);
        let mut s = CountingStream::new(a, window.clone());
        s.write_all(b"hello").await.unwrap();
        b.write_all(b"abc").await.unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(s.read(&mut buf).await.unwrap(), 3);
        s.end_setup();
        // Window not fixed: steady bytes are "before".
        s.write_all(b"xy").await.unwrap();
        let now = unix_nanos();
        window.set(now - 1_000_000_000, now + 60_000_000_000);
        s.write_all(b"1234").await.unwrap();
        b.write_all(b"zzzzzz").await.unwrap();
        assert_eq!(s.read(&mut buf).await.unwrap(), 6);
        assert!(s.last_read_ns() >= now);
        window.close_at(now);
        s.write_all(b"q").await.unwrap();
        let c = s.counts();
        assert_eq!((c.setup_up, c.setup_down), (5, 3));
        assert_eq!(c.up, [2, 4, 1]);
        assert_eq!(c.down, [0, 6, 0]);
        assert_eq!((c.total_up(), c.total_down()), (12, 9));
        let mut r = [0u8; 12];
        b.read_exact(&mut r).await.unwrap();
        assert_eq!(&r, b"helloxy1234q");
    }
}
