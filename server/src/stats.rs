//! Server-wide counters: connections, requests, slow consumers and socket bytes by
//! transport, read by `GET /stats` and `GET /metrics`.
//!
//! Byte accounting is at the socket: every accepted stream is wrapped in `Counted`, which
//! adds what `read`/`write` actually moved. A connection's bytes belong to the transport
//! class of the request it is serving ([`ConnTag::classify`]); bytes read before the first
//! request is routed wait in the tag and move to the class when it is known (or to `other`
//! when the connection closes unrouted). So once a transport's connections have closed, its
//! counters equal, byte for byte, what its clients wrote and read.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// Transport classes for byte accounting, in the order of `Stats::bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Class {
    /// `GET /poll`.
    ShortPoll = 0,
    /// `GET /longpoll`.
    LongPoll = 1,
    /// `GET /ws` and the WebSocket that follows.
    Ws = 2,
    /// `GET /sse`.
    Sse = 3,
    /// Everything else (control, stats, metrics, healthz, time, errors, unrouted connections).
    Other = 4,
}

impl Class {
    /// All classes, in index order.
    pub const ALL: [Class; 5] = [
        Class::ShortPoll,
        Class::LongPoll,
        Class::Ws,
        Class::Sse,
        Class::Other,
    ];

    /// The spelling in `/stats` and `/metrics`.
    pub fn key(self) -> &'static str {
        match self {
            Class::ShortPoll => "short_poll",
            Class::LongPoll => "long_poll",
            Class::Ws => "ws",
            Class::Sse => "sse",
            Class::Other => "other",
        }
    }
}

const UNCLASSIFIED: u8 = u8::MAX;

/// `ConnTag::handshake_in` when no handshake waits to be attributed.
const NO_HANDSHAKE: u64 = u64::MAX;

/// Which layer a [`Counted`] stream counts: the socket, or the plaintext above TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The socket: what the wire carries (ciphertext under TLS).
    Wire,
    /// The plaintext above TLS.
    Plain,
}

/// Endpoints counted in `requests`, in the order of `Stats::requests`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/poll`
    Poll,
    /// `/longpoll`
    LongPoll,
    /// `/ws`
    Ws,
    /// `/sse`
    Sse,
    /// `/control/feed`
    Control,
    /// `/stats`
    Stats,
    /// `/metrics`
    Metrics,
    /// `/healthz`
    Healthz,
    /// `/time`
    Time,
    /// Anything else (404s).
    Other,
}

impl Endpoint {
    /// All endpoints, in index order.
    pub const ALL: [Endpoint; 10] = [
        Endpoint::Poll,
        Endpoint::LongPoll,
        Endpoint::Ws,
        Endpoint::Sse,
        Endpoint::Control,
        Endpoint::Stats,
        Endpoint::Metrics,
        Endpoint::Healthz,
        Endpoint::Time,
        Endpoint::Other,
    ];

    /// The spelling in `/stats` and `/metrics`.
    pub fn key(self) -> &'static str {
        match self {
            Endpoint::Poll => "poll",
            Endpoint::LongPoll => "longpoll",
            Endpoint::Ws => "ws",
            Endpoint::Sse => "sse",
            Endpoint::Control => "control",
            Endpoint::Stats => "stats",
            Endpoint::Metrics => "metrics",
            Endpoint::Healthz => "healthz",
            Endpoint::Time => "time",
            Endpoint::Other => "other",
        }
    }
}

/// Which code answered a request: the direct fast path or hyper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// `direct`, `poll_direct`, `sse_direct`.
    Direct = 0,
    /// hyper and `routes`.
    Hyper = 1,
}

/// Bytes in and out for one class.
#[derive(Debug, Default)]
pub struct ByteCounts {
    /// Bytes read from clients.
    pub bytes_in: AtomicU64,
    /// Bytes written to clients.
    pub bytes_out: AtomicU64,
}

/// TLS figures for one class: the plaintext above TLS and the handshakes.
#[derive(Debug, Default)]
pub struct TlsCounts {
    /// Plaintext bytes rustls handed up (requests, WebSocket frames from clients).
    pub plain_in: AtomicU64,
    /// Plaintext bytes given to rustls to send.
    pub plain_out: AtomicU64,
    /// TLS handshakes completed.
    pub handshakes: AtomicU64,
    /// Of those, resumed ones (a TLS 1.3 ticket or a TLS 1.2 session).
    pub resumed: AtomicU64,
    /// Wire bytes read until the handshake completed.
    pub handshake_in: AtomicU64,
    /// Wire bytes written until the handshake completed (with TLS 1.3 the session tickets,
    /// which rustls sends with its last flight, included).
    pub handshake_out: AtomicU64,
}

/// Why a connection failed before or below HTTP, counted by kind in `/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnError {
    /// A client spoke something other than TLS on the TLS port (answered with a 400).
    NotTls,
    /// The TLS handshake did not finish within the handshake timeout.
    HandshakeTimeout,
    /// The client closed or reset the connection during the handshake.
    HandshakeEof,
    /// The client refused the certificate: alert `unknown_ca`.
    UnknownCa,
    /// The client refused the certificate: alert `bad_certificate` (or another
    /// certificate alert).
    BadCertificate,
    /// The client sent another fatal alert during the handshake.
    Alert,
    /// Any other handshake failure (no common version or cipher suite, a bad record).
    Handshake,
    /// An HTTP/2 connection ended with a protocol error.
    H2Protocol,
}

impl ConnError {
    /// All kinds, in index order.
    pub const ALL: [ConnError; 8] = [
        ConnError::NotTls,
        ConnError::HandshakeTimeout,
        ConnError::HandshakeEof,
        ConnError::UnknownCa,
        ConnError::BadCertificate,
        ConnError::Alert,
        ConnError::Handshake,
        ConnError::H2Protocol,
    ];

    /// The spelling in `/stats`.
    pub fn key(self) -> &'static str {
        match self {
            ConnError::NotTls => "not_tls",
            ConnError::HandshakeTimeout => "handshake_timeout",
            ConnError::HandshakeEof => "handshake_eof",
            ConnError::UnknownCa => "unknown_ca",
            ConnError::BadCertificate => "bad_certificate",
            ConnError::Alert => "alert",
            ConnError::Handshake => "handshake",
            ConnError::H2Protocol => "h2_protocol",
        }
    }
}

/// Gauges and counters shared by every connection.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted and served.
    pub accepted: AtomicU64,
    /// Connections refused because `max_connections` were open.
    pub refused: AtomicU64,
    /// Served connections that have ended.
    pub closed: AtomicU64,
    /// Accept errors (descriptor exhaustion and the like).
    pub accept_errors: AtomicU64,
    /// Connections open now (incremented on accept, decremented when the socket drops).
    pub open_total: AtomicI64,
    /// WebSockets open now.
    pub open_ws: AtomicI64,
    /// SSE streams open now.
    pub open_sse: AtomicI64,
    /// Long-polls parked now.
    pub parked: AtomicI64,
    /// HTTP requests being handled now (not parked, not streaming).
    pub http_active: AtomicI64,
    /// WebSockets closed with 1013 for falling too far behind.
    pub slow_ws: AtomicU64,
    /// SSE streams ended for falling too far behind.
    pub slow_sse: AtomicU64,
    /// WebSockets closed because the client broke the protocol.
    pub ws_protocol_errors: AtomicU64,
    /// Bytes by class, indexed by `Class as usize`.
    pub bytes: [ByteCounts; 5],
    /// Requests by endpoint, indexed like `Endpoint::ALL`.
    pub requests: [AtomicU64; Endpoint::ALL.len()],
    /// Requests by the path that answered them, indexed by `Path as usize`.
    pub requests_by_path: [AtomicU64; 2],
    /// TLS figures by class, indexed by `Class as usize` (all zero without TLS).
    pub tls: [TlsCounts; 5],
    /// Connection errors by kind, indexed like `ConnError::ALL`.
    pub conn_errors: [AtomicU64; ConnError::ALL.len()],
    /// Connections served as HTTP/2 after ALPN `h2` over TLS.
    pub h2_connections: AtomicU64,
    /// Connections served as HTTP/2 with prior knowledge on the plaintext port (h2c).
    pub h2c_connections: AtomicU64,
    /// Reads from client sockets that completed (data or end of stream), every class: one
    /// `recvfrom` system call each. A read that found nothing to read is not counted.
    pub socket_reads: AtomicU64,
    /// Writes to client sockets that completed, every class: one `sendto`/`writev` system
    /// call each. The kernel's `/proc/self/io` `syscw` misses them (std writes a socket
    /// with `send`), so they are counted here.
    pub socket_writes: AtomicU64,
    /// Of `socket_writes`, those the publisher made itself to caught-up push streams
    /// ([`crate::fanout`]).
    pub publisher_writes: AtomicU64,
    /// Of `socket_reads`, those the publisher made itself: answered long-polls' next
    /// requests ([`crate::fanout`]).
    pub publisher_reads: AtomicU64,
}

impl Stats {
    /// Counts one request to `endpoint`.
    pub fn count_request(&self, endpoint: Endpoint) {
        // Every endpoint is in `ALL`; the fallback only keeps this total.
        let i = Endpoint::ALL
            .iter()
            .position(|e| *e == endpoint)
            .unwrap_or(Endpoint::ALL.len() - 1);
        self.requests[i].fetch_add(1, Relaxed);
    }

    /// Counts one connection error of `kind`.
    pub fn count_error(&self, kind: ConnError) {
        self.conn_errors[kind as usize].fetch_add(1, Relaxed);
    }

    /// Counts one request answered by `path`.
    pub fn count_path(&self, path: Path) {
        self.requests_by_path[path as usize].fetch_add(1, Relaxed);
    }

    /// Total bytes in and out over all classes.
    pub fn total_bytes(&self) -> (u64, u64) {
        self.bytes.iter().fold((0, 0), |(i, o), b| {
            (i + b.bytes_in.load(Relaxed), o + b.bytes_out.load(Relaxed))
        })
    }
}

/// A gauge increment that is undone when dropped, so every exit path (including a client
/// that disconnects and makes hyper drop the handler) keeps the gauge true.
#[derive(Debug)]
pub struct GaugeGuard<'a>(&'a AtomicI64);

impl<'a> GaugeGuard<'a> {
    /// Adds one to `gauge` until the guard is dropped.
    pub fn new(gauge: &'a AtomicI64) -> Self {
        gauge.fetch_add(1, Relaxed);
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Per-connection state shared between the socket wrapper and the request handlers.
#[derive(Debug)]
pub struct ConnTag {
    class: AtomicU8,
    pending_in: AtomicU64,
    pending_out: AtomicU64,
    /// Plaintext bytes above TLS not yet attributed to a class.
    pending_plain_in: AtomicU64,
    pending_plain_out: AtomicU64,
    /// A completed handshake not yet attributed to a class: its wire bytes in and out
    /// (`u64::MAX` in `handshake_in` means none is pending) and whether it resumed.
    handshake_in: AtomicU64,
    handshake_out: AtomicU64,
    resumed: AtomicBool,
    stats: Arc<Stats>,
    /// Seq of the last event a push stream (SSE) on this connection handed to hyper.
    push_cursor: AtomicU64,
    /// Woken once when the connection starts a push stream, so that the connection task
    /// starts watching its lag (a stuck socket stops hyper from polling the body).
    pub pushing: Notify,
    /// Set once hyper has received a whole request head on this connection.
    hyper_request: AtomicBool,
    /// Set while a long-poll served by hyper on this connection waits.
    long_poll_parked: AtomicBool,
}

impl ConnTag {
    /// A tag for a new, not yet routed connection.
    pub fn new(stats: Arc<Stats>) -> ConnTag {
        ConnTag {
            class: AtomicU8::new(UNCLASSIFIED),
            pending_in: AtomicU64::new(0),
            pending_out: AtomicU64::new(0),
            pending_plain_in: AtomicU64::new(0),
            pending_plain_out: AtomicU64::new(0),
            handshake_in: AtomicU64::new(NO_HANDSHAKE),
            handshake_out: AtomicU64::new(0),
            resumed: AtomicBool::new(false),
            stats,
            push_cursor: AtomicU64::new(0),
            pushing: Notify::new(),
            hyper_request: AtomicBool::new(false),
            long_poll_parked: AtomicBool::new(false),
        }
    }

    /// Records whether a long-poll served by hyper on this connection is waiting.
    pub fn set_long_poll_parked(&self, parked: bool) {
        self.long_poll_parked.store(parked, Relaxed);
    }

    /// Whether a long-poll served by hyper on this connection is waiting.
    pub fn long_poll_parked(&self) -> bool {
        self.long_poll_parked.load(Relaxed)
    }

    /// Records that hyper received a whole request head on this connection.
    pub fn hyper_request_seen(&self) {
        self.hyper_request.store(true, Relaxed);
    }

    /// Whether hyper has received a whole request head on this connection.
    pub fn has_hyper_request(&self) -> bool {
        self.hyper_request.load(Relaxed)
    }

    /// Marks the connection as serving a push stream starting after `cursor`.
    pub fn start_push(&self, cursor: u64) {
        self.push_cursor.store(cursor, Relaxed);
        self.pushing.notify_one();
    }

    /// Records that the push stream handed event `seq` to hyper.
    pub fn pushed(&self, seq: u64) {
        self.push_cursor.store(seq, Relaxed);
    }

    /// Seq of the last event the push stream handed to hyper.
    pub fn push_cursor(&self) -> u64 {
        self.push_cursor.load(Relaxed)
    }

    /// Attributes this connection's bytes to `class` from now on, including bytes read
    /// while it was not yet routed.
    pub fn classify(&self, class: Class) {
        self.class.store(class as u8, Relaxed);
        self.flush(class);
    }

    fn class(&self) -> Option<Class> {
        Class::ALL
            .get(usize::from(self.class.load(Relaxed)))
            .copied()
    }

    fn flush(&self, class: Class) {
        let b = &self.stats.bytes[class as usize];
        let i = self.pending_in.swap(0, Relaxed);
        let o = self.pending_out.swap(0, Relaxed);
        if i > 0 {
            b.bytes_in.fetch_add(i, Relaxed);
        }
        if o > 0 {
            b.bytes_out.fetch_add(o, Relaxed);
        }
        let t = &self.stats.tls[class as usize];
        let i = self.pending_plain_in.swap(0, Relaxed);
        let o = self.pending_plain_out.swap(0, Relaxed);
        if i > 0 {
            t.plain_in.fetch_add(i, Relaxed);
        }
        if o > 0 {
            t.plain_out.fetch_add(o, Relaxed);
        }
        let hs_in = self.handshake_in.swap(NO_HANDSHAKE, Relaxed);
        if hs_in != NO_HANDSHAKE {
            t.handshakes.fetch_add(1, Relaxed);
            if self.resumed.load(Relaxed) {
                t.resumed.fetch_add(1, Relaxed);
            }
            t.handshake_in.fetch_add(hs_in, Relaxed);
            t.handshake_out
                .fetch_add(self.handshake_out.swap(0, Relaxed), Relaxed);
        }
    }

    /// Records a completed TLS handshake: every wire byte so far (nothing is classified
    /// before it) was the handshake's, except the last `app_in` bytes read (an application
    /// record read in the same go as the client's `Finished`). It is attributed to the
    /// connection's class when the first request is routed (or to `other`).
    pub fn handshake_done(&self, resumed: bool, app_in: u64) {
        self.resumed.store(resumed, Relaxed);
        self.handshake_out
            .store(self.pending_out.load(Relaxed), Relaxed);
        let wire_in = self.pending_in.load(Relaxed);
        self.handshake_in
            .store(wire_in.saturating_sub(app_in), Relaxed);
    }

    fn add(&self, n: usize, inbound: bool, layer: Layer) {
        if n == 0 {
            return;
        }
        let n = n as u64;
        match self.class() {
            Some(class) => {
                let counter = match layer {
                    Layer::Wire => {
                        let b = &self.stats.bytes[class as usize];
                        if inbound {
                            &b.bytes_in
                        } else {
                            &b.bytes_out
                        }
                    }
                    Layer::Plain => {
                        let t = &self.stats.tls[class as usize];
                        if inbound {
                            &t.plain_in
                        } else {
                            &t.plain_out
                        }
                    }
                };
                counter.fetch_add(n, Relaxed);
                // A racing classify may have left a few bytes pending; move them now.
                let pending = self.pending_in.load(Relaxed)
                    | self.pending_out.load(Relaxed)
                    | self.pending_plain_in.load(Relaxed)
                    | self.pending_plain_out.load(Relaxed);
                if pending != 0 {
                    self.flush(class);
                }
            }
            None => {
                let counter = match (layer, inbound) {
                    (Layer::Wire, true) => &self.pending_in,
                    (Layer::Wire, false) => &self.pending_out,
                    (Layer::Plain, true) => &self.pending_plain_in,
                    (Layer::Plain, false) => &self.pending_plain_out,
                };
                counter.fetch_add(n, Relaxed);
            }
        }
    }

    /// Moves anything still pending to the connection's class (or `other`); called once,
    /// when the connection's socket is dropped.
    pub fn finish(&self) {
        self.flush(self.class().unwrap_or(Class::Other));
    }
}

/// A stream that counts the bytes it moves into its connection's tag.
#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    tag: Arc<ConnTag>,
    layer: Layer,
    /// While set (during a TLS handshake), reads stop at TLS record boundaries.
    cut: Option<RecordCut>,
}

/// Where a read stands in the TLS record stream: reading the 5-byte header, or the body.
///
/// During a TLS handshake the socket is read one record at a time, so that rustls never
/// gets (and the handshake's byte count never includes) the client's first application
/// record, which a client sends right behind its `Finished`.
#[derive(Debug, Default, Clone, Copy)]
struct RecordCut {
    header: [u8; 5],
    have: usize,
    body_left: usize,
    /// Wire length of the last record read whole.
    last_record: usize,
}

impl RecordCut {
    /// How many bytes the next read may take without crossing a record boundary.
    fn limit(&self) -> usize {
        if self.have < 5 {
            5 - self.have
        } else {
            self.body_left
        }
    }

    /// Accounts for `bytes` just read (at most `limit()` of them).
    fn consume(&mut self, bytes: &[u8]) {
        if self.have < 5 {
            self.header[self.have..self.have + bytes.len()].copy_from_slice(bytes);
            self.have += bytes.len();
            if self.have == 5 {
                self.body_left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                if self.body_left == 0 {
                    self.have = 0;
                    self.last_record = 5;
                }
            }
        } else {
            self.body_left -= bytes.len();
            if self.body_left == 0 {
                self.have = 0;
                self.last_record =
                    5 + usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
            }
        }
    }
}

impl<S> Counted<S> {
    /// Wraps a connection's socket, counting into `tag`; dropping it closes the connection
    /// in the server's counts.
    pub fn new(inner: S, tag: Arc<ConnTag>) -> Self {
        Counted {
            inner,
            tag,
            layer: Layer::Wire,
            cut: None,
        }
    }

    /// Reads one TLS record at a time (`true`), as during a handshake, or as the socket
    /// gives (`false`, the default).
    pub fn cut_records(&mut self, on: bool) {
        self.cut = on.then(RecordCut::default);
    }

    /// Counts one completed read or write call on the socket itself (the wire layer: the
    /// plaintext wrapper above rustls makes no system calls).
    fn count_call(&self, read: bool) {
        if self.layer == Layer::Wire {
            let stats = &self.tag.stats;
            let counter = if read {
                &stats.socket_reads
            } else {
                &stats.socket_writes
            };
            counter.fetch_add(1, Relaxed);
        }
    }

    /// The socket, when `S` is a plain `TcpStream` (the publisher writes only to those,
    /// [`crate::fanout`]).
    pub fn tcp(&self) -> Option<&tokio::net::TcpStream>
    where
        S: 'static,
    {
        (&self.inner as &dyn std::any::Any).downcast_ref()
    }

    /// Wire length of the last whole record read while cutting records (0 if none).
    pub fn last_record_len(&self) -> usize {
        self.cut.map_or(0, |c| c.last_record)
    }

    /// Wraps the plaintext side of a TLS stream, counting into `tag`'s plaintext counters.
    pub fn plain(inner: S, tag: Arc<ConnTag>) -> Self {
        Counted {
            inner,
            tag,
            layer: Layer::Plain,
            cut: None,
        }
    }

    /// The wrapped stream (for peeking, which moves no bytes).
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S> Drop for Counted<S> {
    fn drop(&mut self) {
        if self.layer == Layer::Plain {
            // The socket below is counted (and closed) by its own wrapper.
            return;
        }
        self.tag.finish();
        // The socket is closed now: this is the one place a connection stops being open,
        // whether hyper served it to the end or handed it to a WebSocket task.
        let stats = &self.tag.stats;
        stats.open_total.fetch_sub(1, Relaxed);
        stats.closed.fetch_add(1, Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(mut cut) = self.cut {
            // Through a small buffer, so that no read crosses a record boundary; only
            // the few records of a handshake take this path.
            let mut chunk = [0u8; 2048];
            let n = cut.limit().min(chunk.len()).min(buf.remaining());
            let mut small = ReadBuf::new(&mut chunk[..n]);
            let res = Pin::new(&mut self.inner).poll_read(cx, &mut small);
            if let Poll::Ready(Ok(())) = res {
                self.count_call(true);
                let got = small.filled();
                cut.consume(got);
                self.cut = Some(cut);
                buf.put_slice(got);
                self.tag.add(got.len(), true, self.layer);
            }
            return res;
        }
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res {
            self.count_call(true);
            self.tag.add(buf.filled().len() - before, true, self.layer);
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            self.count_call(false);
            self.tag.add(n, false, self.layer);
        }
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = res {
            self.count_call(false);
            self.tag.add(n, false, self.layer);
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(stats: &Stats, class: Class) -> (u64, u64) {
        let b = &stats.bytes[class as usize];
        (b.bytes_in.load(Relaxed), b.bytes_out.load(Relaxed))
    }

    #[test]
    fn unrouted_bytes_move_to_the_class_when_known() {
        let stats = Arc::new(Stats::default());
        let tag = ConnTag::new(stats.clone());
        tag.add(100, true, Layer::Wire);
        assert_eq!(bytes(&stats, Class::Ws), (0, 0));
        tag.classify(Class::Ws);
        tag.add(7, false, Layer::Wire);
        tag.add(3, true, Layer::Wire);
        assert_eq!(bytes(&stats, Class::Ws), (103, 7));
        tag.finish();
        assert_eq!(stats.total_bytes(), (103, 7));
    }

    #[test]
    fn record_cut_stops_at_each_record_boundary() {
        let mut cut = RecordCut::default();
        assert_eq!(cut.limit(), 5);
        cut.consume(&[0x16, 3, 1]);
        assert_eq!(cut.limit(), 2);
        cut.consume(&[0, 7]);
        assert_eq!(cut.limit(), 7);
        cut.consume(&[0; 4]);
        assert_eq!(cut.limit(), 3);
        cut.consume(&[0; 3]);
        assert_eq!(cut.limit(), 5);
        assert_eq!(cut.last_record, 12);
        // An empty record goes straight back to the next header.
        cut.consume(&[0x17, 3, 3, 0, 0]);
        assert_eq!(cut.limit(), 5);
    }

    #[test]
    fn never_routed_connection_counts_as_other() {
        let stats = Arc::new(Stats::default());
        let tag = ConnTag::new(stats.clone());
        tag.add(5, true, Layer::Wire);
        tag.finish();
        assert_eq!(bytes(&stats, Class::Other), (5, 0));
    }

    #[tokio::test]
    async fn counted_stream_counts_exactly() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let stats = Arc::new(Stats::default());
        let tag = Arc::new(ConnTag::new(stats.clone()));
        tag.classify(Class::ShortPoll);
        let (a, mut b) = tokio::io::duplex(64);
        let mut counted = Counted::new(a, tag);
        counted.write_all(b"hello").await.unwrap();
        b.write_all(b"worlds!").await.unwrap();
        let mut buf = [0u8; 7];
        counted.read_exact(&mut buf).await.unwrap();
        stats.open_total.fetch_add(1, Relaxed);
        drop(counted);
        assert_eq!(bytes(&stats, Class::ShortPoll), (7, 5));
        assert_eq!(
            (stats.open_total.load(Relaxed), stats.closed.load(Relaxed)),
            (0, 1)
        );
    }
}
