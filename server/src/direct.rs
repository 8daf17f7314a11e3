//! The feed endpoints served without hyper, for requests that need nothing of it.
//!
//! Why: hyper keeps a read buffer and a write buffer of 8 KiB each for the life of every
//! HTTP/1 connection, and a request and a response touch a page of each, so a connection
//! hyper serves costs about 11 KiB of server memory however idle it is. A feed client's
//! requests are all alike (`GET /sse`, `GET /poll?...`, `GET /longpoll?...`), so the
//! connection task reads each request into a per-thread buffer (used within one poll, never
//! held while waiting): a plain request to a feed endpoint is answered here straight to the
//! socket ([`crate::sse_direct`] streams, [`crate::poll_direct`] polls, then the next
//! request is read), and anything else (another path, an unusual header, a bad parameter,
//! a head split over several reads) goes to hyper for the rest of the connection's life,
//! with the bytes already read replayed first ([`Rewind`]). Reading rather than peeking
//! keeps it at hyper's two system calls per request. An idle stream or
//! parked long-poll then holds no buffer at all (`scripts/conn-memory.sh`).
//!
//! Invariants:
//! - The bytes on the wire are exactly hyper's (status line, headers in hyper's order with
//!   its `date`, chunk framing, terminal chunk at shutdown); `tests/server.rs` compares the
//!   two paths byte for byte.
//! - Only the plain, valid case is taken: a complete HTTP/1.1 `GET` head that arrived in
//!   one piece with nothing after it, exactly one `Host`, no body (`content-length: 0` is
//!   fine), no connection-management header other than a single `Connection: keep-alive`
//!   or `Connection: close` (browsers and `--no-keepalive` clients send these; `close` is
//!   honoured as hyper honours it: `connection: close` in the answer, then FIN), and
//!   parameters that validate. So every error answer, and every request hyper would treat
//!   specially, is still hyper's.
//! - An answer whose head is written once shutdown has begun carries `connection: close`
//!   and ends the connection, as hyper's do.
//! - The header timeout holds on both paths: a connection gets `header_timeout` from the
//!   accept (or from the end of its last response) to send each request; a request that
//!   goes to hyper half-read gets what is left of it, and every later request on the
//!   connection gets the whole timeout again (`listener`).
//! - `/stats` counts the requests each path answered (`requests_by_path`).
//! - Stats are kept as on the hyper path: requests by endpoint, bytes by class, the open
//!   SSE, parked and active gauges.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::app::App;
use crate::poll::{self, PollParams};
use crate::sse;
use crate::stats::{ConnTag, Counted};

/// What the direct path serves over: a socket, or the plaintext side of a TLS stream.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The request-line prefixes worth parsing; anything else goes to hyper at once.
const PREFIXES: [&[u8]; 4] = [b"GET /sse ", b"GET /sse?", b"GET /poll", b"GET /long"];

/// Most headers a request served here may have.
const MAX_HEADERS: usize = 32;

/// What to do with a connection's next request, once it has been read.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Stream SSE (the request has been consumed).
    Sse {
        /// The cursor; `None` means from the head.
        after: Option<u64>,
        /// The request said `Connection: close`.
        close: bool,
    },
    /// Answer a poll (the request has been consumed).
    Poll {
        /// Long-poll or short-poll.
        long: bool,
        /// The validated parameters.
        params: PollParams,
        /// The request said `Connection: close`: answer, then end the connection.
        close: bool,
    },
    /// Upgrade to a WebSocket (the request has been consumed).
    Ws {
        /// The cursor; `None` means from the head.
        after: Option<u64>,
        /// The `Sec-WebSocket-Accept` value.
        accept: String,
    },
    /// Hand the connection to hyper, replaying these bytes (already read) first.
    Hyper(Bytes),
    /// Nothing arrived in time, the client left, or the server is shutting down.
    Close,
}

thread_local! {
    /// Each worker thread's buffer for reading request heads: used only inside one poll,
    /// never held across an await, so a waiting connection holds no buffer of its own.
    static HEAD_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Waits (at most `wait`) for the connection's next request, reads what has arrived (a
/// real client's request head arrives in one piece) and decides how to serve it. Bytes
/// read are counted by `stream` as usual. `ws`: whether a plain WebSocket upgrade is taken
/// here (see [`decide_for`]).
///
/// A plain function returning an `async move` block: an `async fn` would keep its
/// arguments twice in its state, which every idle connection holds.
// Not an `async fn`: see above (the state would hold the arguments twice).
#[allow(clippy::manual_async_fn)]
pub fn next_request<'a, S: Io>(
    app: &'a App,
    stream: &'a mut Counted<S>,
    wait: Duration,
    ws: bool,
) -> impl std::future::Future<Output = Next> + Send + 'a {
    async move {
        let limit = app.config.max_header_bytes;
        let read = poll_fn(|cx| {
            HEAD_BUF.with_borrow_mut(|buf| {
                if buf.len() < limit {
                    buf.resize(limit, 0);
                }
                let mut rb = ReadBuf::new(&mut buf[..limit]);
                match Pin::new(&mut *stream).poll_read(cx, &mut rb) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Err(_)) => Poll::Ready(Next::Close),
                    Poll::Ready(Ok(())) if rb.filled().is_empty() => Poll::Ready(Next::Close),
                    Poll::Ready(Ok(())) => Poll::Ready(decide_for(app, rb.filled(), ws)),
                }
            })
        });
        tokio::select! {
            biased;
            _ = app.shutdown.cancelled() => Next::Close,
            next = tokio::time::timeout(wait, read) => next.unwrap_or(Next::Close),
        }
    }
}

/// Decides from the bytes read how to serve them, WebSocket upgrades included.
#[cfg(test)]
fn decide(app: &App, bytes: &[u8]) -> Next {
    decide_for(app, bytes, true)
}

/// Decides from the bytes read how to serve them; a WebSocket upgrade is taken only with
/// `ws`. Over TLS it is not: there the direct WebSocket's state holds rustls' connection
/// inline and measured 13.1 KiB per idle connection against 12.0 through hyper's upgrade
/// (`scripts/conn-memory.sh 2000 1 tls`), while on plain TCP it is 1.85 against 3.62.
pub fn decide_for(app: &App, bytes: &[u8], ws: bool) -> Next {
    let candidate = (bytes.len() >= 9 && PREFIXES.contains(&&bytes[..9]))
        || (ws && (bytes.starts_with(b"GET /ws ") || bytes.starts_with(b"GET /ws?")));
    candidate
        .then(|| classify_head(app, bytes))
        .flatten()
        .unwrap_or_else(|| Next::Hyper(Bytes::copy_from_slice(bytes)))
}

/// A stream that first yields bytes already read from it: how a connection whose request
/// was read here reaches hyper intact.
///
/// It also lets hyper notice a client that leaves while a long-poll is parked after
/// pipelining another request. hyper stops looking for EOF once it holds unread bytes
/// (it only reads mid-message to detect EOF while its buffer is empty), so while the
/// connection's tag says a long-poll is parked, this stream reads ahead itself, keeps
/// what arrives (at most `limit` bytes) for later, and gives hyper only the EOF.
#[derive(Debug)]
pub struct Rewind<S> {
    prefix: BytesMut,
    inner: S,
    hold: Option<(Arc<ConnTag>, usize)>,
}

impl<S> Rewind<S> {
    /// `inner`, with `prefix` read first.
    pub fn new(prefix: Bytes, inner: S) -> Self {
        Rewind {
            prefix: BytesMut::from(&prefix[..]),
            inner,
            hold: None,
        }
    }

    /// Reads ahead while `tag` says a long-poll is parked, keeping at most `limit` bytes.
    pub fn hold_while_parked(mut self, tag: Arc<ConnTag>, limit: usize) -> Self {
        self.hold = Some((tag, limit));
        self
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some((tag, limit)) = &this.hold {
            if tag.long_poll_parked() {
                return read_ahead(&mut this.inner, &mut this.prefix, *limit, cx);
            }
        }
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            let chunk = this.prefix.split_to(n);
            buf.put_slice(&chunk);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

/// Reads what the client sends into `kept` until it would block (`Pending`), leaves
/// (`Ready(Ok)` with nothing read: EOF for hyper) or sends more than `limit` bytes.
fn read_ahead<S: AsyncRead + Unpin>(
    inner: &mut S,
    kept: &mut BytesMut,
    limit: usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    loop {
        let mut chunk = [0u8; 1024];
        let mut rb = ReadBuf::new(&mut chunk);
        std::task::ready!(Pin::new(&mut *inner).poll_read(cx, &mut rb))?;
        if rb.filled().is_empty() {
            return Poll::Ready(Ok(()));
        }
        kept.extend_from_slice(rb.filled());
        if kept.len() > limit {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "client sent too much while a long-poll was parked",
            )));
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
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

/// Decides whether `bytes`, one complete request head and nothing after it, is served
/// directly (`Next::Sse` or `Next::Poll`); `None` means hyper's.
fn classify_head(app: &App, bytes: &[u8]) -> Option<Next> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) if len == bytes.len() => {}
        _ => return None,
    }
    if req.method != Some("GET") || req.version != Some(1) {
        return None;
    }
    let target = req.path?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    if path == "/ws" {
        return classify_ws(app, &req, query);
    }
    let long = match path {
        "/sse" => None,
        "/poll" => Some(false),
        "/longpoll" => Some(true),
        _ => return None,
    };
    let mut last_event_id = None;
    let mut hosts = 0;
    let mut close = None;
    for h in req.headers.iter() {
        let name = h.name;
        // A GET may say it has no body; any other length is hyper's to answer.
        if name.eq_ignore_ascii_case("content-length") && h.value == b"0" {
            continue;
        }
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            continue;
        }
        // One plain `Connection: keep-alive` or `close`; anything else is hyper's.
        if name.eq_ignore_ascii_case("connection") && close.is_none() {
            if h.value.eq_ignore_ascii_case(b"close") {
                close = Some(true);
                continue;
            }
            if h.value.eq_ignore_ascii_case(b"keep-alive") {
                close = Some(false);
                continue;
            }
        }
        let managed = [
            "connection",
            "content-length",
            "transfer-encoding",
            "expect",
            "upgrade",
        ]
        .iter()
        .any(|m| name.eq_ignore_ascii_case(m));
        if managed {
            return None;
        }
        if name.eq_ignore_ascii_case("last-event-id") {
            if last_event_id.is_some() {
                return None;
            }
            last_event_id = Some(h.value);
        }
    }
    // RFC 9112 section 3.2: an HTTP/1.1 request has exactly one Host; hyper's path answers
    // the rest with 400.
    if hosts != 1 {
        return None;
    }
    let close = close.unwrap_or(false);
    if let Some(long) = long {
        // Poll endpoints take no Last-Event-ID; hyper's path ignores it too.
        let Ok(params) = poll::parse_params(query, long) else {
            return None;
        };
        if params
            .after
            .is_some_and(|a| poll::check_cursor(app, a).is_err())
        {
            return None;
        }
        return Some(Next::Poll {
            long,
            params,
            close,
        });
    }
    let Ok(after) = sse::cursor_from(query, last_event_id) else {
        return None;
    };
    if sse::check_after(app, after).is_err() {
        return None;
    }
    Some(Next::Sse { after, close })
}

/// Decides whether a `GET /ws` head is a plain upgrade (`Next::Ws`); `None` means hyper's,
/// which also answers every refusal (400 with a JSON body). The headers are checked by
/// the same `ws::check_upgrade` hyper's path uses; a request with a body, an `Expect`, a
/// `Connection: close` or a cursor that does not validate is left to hyper.
fn classify_ws(app: &App, req: &httparse::Request<'_, '_>, query: Option<&str>) -> Option<Next> {
    let mut b = http::Request::builder()
        .method(http::Method::GET)
        .version(http::Version::HTTP_11)
        .uri(req.path?);
    let mut hosts = 0;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") && h.value == b"0" {
            continue;
        }
        if ["content-length", "transfer-encoding", "expect"]
            .iter()
            .any(|m| name.eq_ignore_ascii_case(m))
        {
            return None;
        }
        if name.eq_ignore_ascii_case("connection")
            && h.value
                .split(|c| *c == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
        {
            return None;
        }
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        }
        b = b.header(name, h.value);
    }
    if hosts != 1 {
        return None;
    }
    let request = b.body(()).ok()?;
    let accept = crate::ws::check_upgrade(&request).ok()?;
    let after = crate::query::Query::parse(query, &["after"])
        .and_then(|q| q.u64_in("after", 0, u64::MAX))
        .ok()?;
    if after.is_some_and(|a| a > app.hub.head()) {
        return None;
    }
    Some(Next::Ws { after, accept })
}

/// The head hyper writes for a `200` JSON answer (`respond::json`) of `len` bytes; with
/// `close`, hyper adds `connection: close` after the response's own headers.
pub fn json_head(len: usize, close: bool) -> String {
    let connection = connection_header(close);
    with_date(|date| {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: no-store\r\n\
             {connection}content-length: {len}\r\ndate: {date}\r\n\r\n"
        )
    })
}

/// The `connection` header line hyper adds to an answer that ends its connection.
pub fn connection_header(close: bool) -> &'static str {
    if close {
        "connection: close\r\n"
    } else {
        ""
    }
}

thread_local! {
    /// The `date` header value and the second it is for, as hyper caches it.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Calls `f` with the current HTTP date (formatted once per second per thread).
pub fn with_date<T>(f: impl FnOnce(&str) -> T) -> T {
    let now = std::time::SystemTime::now();
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs {
            *at = secs;
            *text = httpdate::fmt_http_date(now);
        }
        f(text)
    })
}

/// Writes all of `buf` and flushes it (a TLS stream may keep records back until
/// flushed; a socket's flush does nothing). Once the server is shutting down a stuck write
/// gets `shutdown_grace` more, then is given up (`Ok(false)`).
pub async fn write_all<S: Io>(
    app: &App,
    stream: &mut Counted<S>,
    buf: &[u8],
) -> std::io::Result<bool> {
    let write = async {
        stream.write_all(buf).await?;
        stream.flush().await
    };
    tokio::pin!(write);
    tokio::select! {
        biased;
        res = &mut write => res.map(|()| true),
        _ = app.shutdown.cancelled() => {
            match tokio::time::timeout(app.config.shutdown_grace, write).await {
                Ok(res) => res.map(|()| true),
                Err(_) => Ok(false),
            }
        }
    }
}

/// How a write raced against the head and shutdown by [`write_watching`] ended.
pub enum Watched<T> {
    /// The write finished with this result; `shutdown` says whether shutdown began while
    /// it waited.
    Done {
        /// The write's result.
        result: T,
        /// Shutdown began while the write waited.
        shutdown: bool,
    },
    /// The subscriber fell this many events behind, more than its queue, while the write
    /// waited.
    Slow(u64),
    /// Shutdown began and the write was still stuck `shutdown_grace` later.
    GaveUp,
}

/// Runs `write` (a push stream's batch) while watching the head: a write still waiting
/// when the subscriber has fallen more than its queue behind ends as [`Watched::Slow`].
/// Once the server is shutting down a stuck write gets `shutdown_grace` more, as in
/// [`write_all`]. Shared by the direct WebSocket and SSE streams.
// Not an `async fn`: an async fn keeps its arguments twice in its state, and this state
// is part of every push connection's (measured with `-Zprint-type-sizes`: as an async fn,
// the direct SSE stream's future grew from 720 to 808 bytes, a larger allocation class).
#[allow(clippy::manual_async_fn)]
pub fn write_watching<'a, F: std::future::Future + 'a>(
    app: &'a App,
    head_rx: &'a mut tokio::sync::watch::Receiver<u64>,
    follower: &'a crate::follow::Follower,
    write: F,
) -> impl std::future::Future<Output = Watched<F::Output>> + 'a {
    async move {
        tokio::pin!(write);
        let shutdown = loop {
            tokio::select! {
                biased;
                result = &mut write => return Watched::Done { result, shutdown: false },
                _ = app.shutdown.cancelled() => break true,
                changed = head_rx.changed() => {
                    if changed.is_err() {
                        // The hub outlives every connection; without a head to watch, just
                        // finish the write.
                        break false;
                    }
                    let behind = follower.behind(&app.hub);
                    if behind > follower.queue {
                        return Watched::Slow(behind);
                    }
                }
            }
        };
        if !shutdown {
            return Watched::Done {
                result: write.await,
                shutdown: false,
            };
        }
        match tokio::time::timeout(app.config.shutdown_grace, write).await {
            Ok(result) => Watched::Done {
                result,
                shutdown: true,
            },
            Err(_) => Watched::GaveUp,
        }
    }
}

/// How long hyper may still wait for the first request head on a connection `sniff`
/// spent `waited` on, so the header timeout counts from the accept either way.
pub fn remaining_header_time(header_timeout: Duration, waited: Duration) -> Duration {
    header_timeout
        .saturating_sub(waited)
        .max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;
    use proptest::prelude::*;

    fn app() -> App {
        let feed = crate::FeedConfig {
            rate_hz: 0.0,
            payload_bytes: 8,
        };
        App::new(
            ServerConfig::default(),
            std::sync::Arc::new(crate::Hub::new(feed, 100)),
        )
    }

    #[test]
    fn serves_only_the_plain_valid_request() {
        let app = app();
        let ok = |raw: &str| decide(&app, raw.as_bytes());
        let sse = |after, close| Next::Sse { after, close };
        for (raw, want) in [
            ("GET /sse HTTP/1.1\r\nhost: t\r\n\r\n", sse(None, false)),
            (
                "GET /sse?after=0 HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n",
                sse(Some(0), false),
            ),
            (
                "GET /sse HTTP/1.1\r\nHOST: t\r\nLast-Event-ID: 0\r\n\r\n",
                sse(Some(0), false),
            ),
            (
                "GET /sse?after=0 HTTP/1.1\r\nhost: t\r\nLast-Event-ID: 7\r\n\r\n",
                sse(Some(0), false),
            ),
            (
                "GET /sse HTTP/1.1\r\nhost: t\r\ncontent-length: 0\r\n\r\n",
                sse(None, false),
            ),
            // What browsers and `--no-keepalive` clients send.
            (
                "GET /sse HTTP/1.1\r\nhost: t\r\nConnection: keep-alive\r\n\r\n",
                sse(None, false),
            ),
            (
                "GET /sse HTTP/1.1\r\nhost: t\r\nConnection: Close\r\n\r\n",
                sse(None, true),
            ),
        ] {
            assert_eq!(ok(raw), want, "{raw:?}");
        }
        for raw in [
            // Incomplete, pipelined, or not HTTP/1.1.
            "GET /sse HTTP/1.1\r\nhost: t\r\n",
            "GET /sse HTTP/1.1\r\nhost: t\r\n\r\nGET /poll HTTP/1.1\r\n\r\n",
            "GET /sse HTTP/1.0\r\nhost: t\r\n\r\n",
            // No Host, or two (RFC 9112 wants a 400, which hyper's path answers).
            "GET /sse HTTP/1.1\r\n\r\n",
            "GET /sse HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n",
            // Another path, a bad or future cursor, an unknown parameter.
            "GET /sse/x HTTP/1.1\r\nhost: t\r\n\r\n",
            "GET /sse?after=x HTTP/1.1\r\nhost: t\r\n\r\n",
            "GET /sse?after=5 HTTP/1.1\r\nhost: t\r\n\r\n",
            "GET /sse?limit=5 HTTP/1.1\r\nhost: t\r\n\r\n",
            "GET /sse HTTP/1.1\r\nhost: t\r\nlast-event-id: x\r\n\r\n",
            "GET /sse HTTP/1.1\r\nhost: t\r\nlast-event-id: 0\r\nlast-event-id: 0\r\n\r\n",
            // Headers hyper acts on, and connection options other than one plain token.
            "GET /sse HTTP/1.1\r\nhost: t\r\nConnection: close, upgrade\r\n\r\n",
            "GET /sse HTTP/1.1\r\nhost: t\r\nConnection: close\r\nConnection: close\r\n\r\n",
            "GET /sse HTTP/1.1\r\nhost: t\r\nConnection: upgrade\r\n\r\n",
            "GET /sse HTTP/1.1\r\nhost: t\r\ncontent-length: 3\r\n\r\n",
            "GET /sse HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n",
            "GET /sse HTTP/1.1\r\nhost: t\r\nexpect: 100-continue\r\n\r\n",
            "GET /sse HTTP/1.1\r\nhost: t\r\nupgrade: websocket\r\n\r\n",
            "GET /sse HTTP/1.1\r\nhost: t\r\nbad header\r\n\r\n",
        ] {
            assert!(matches!(ok(raw), Next::Hyper(_)), "{raw:?}");
        }
        let poll = |raw: &str| match ok(raw) {
            Next::Poll {
                long,
                params,
                close,
            } => Some((
                long,
                params.after,
                params.limit,
                params.timeout.as_millis(),
                close,
            )),
            _ => None,
        };
        assert_eq!(
            poll("GET /poll?after=0&limit=5 HTTP/1.1\r\nhost: t\r\n\r\n"),
            Some((false, Some(0), 5, 30_000, false))
        );
        assert_eq!(
            poll("GET /longpoll?timeout_ms=250 HTTP/1.1\r\nhost: t\r\ncontent-length: 0\r\n\r\n"),
            Some((true, None, 1_000, 250, false))
        );
        assert_eq!(
            poll("GET /poll HTTP/1.1\r\nhost: t\r\nlast-event-id: x\r\n\r\n"),
            Some((false, None, 1_000, 30_000, false))
        );
        assert_eq!(
            poll("GET /longpoll HTTP/1.1\r\nhost: t\r\nconnection: keep-alive\r\n\r\n"),
            Some((true, None, 1_000, 30_000, false))
        );
        assert_eq!(
            poll("GET /poll HTTP/1.1\r\nconnection: close\r\nhost: t\r\n\r\n"),
            Some((false, None, 1_000, 30_000, true))
        );
        for raw in [
            // A cursor ahead of the feed, a parameter the endpoint does not take, a bad
            // value: hyper answers these (400).
            "GET /poll?after=1 HTTP/1.1\r\n\r\n",
            "GET /poll?timeout_ms=5 HTTP/1.1\r\n\r\n",
            "GET /longpoll?limit=0 HTTP/1.1\r\n\r\n",
            "GET /pollx HTTP/1.1\r\n\r\n",
            "GET /poll HTTP/1.1\r\n\r\n",
            "HEAD /poll HTTP/1.1\r\n\r\n",
        ] {
            assert!(matches!(ok(raw), Next::Hyper(_)), "{raw:?}");
        }
        let many = format!(
            "GET /sse HTTP/1.1\r\nhost: t\r\n{}\r\n",
            "a: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert!(matches!(ok(&many), Next::Hyper(_)));
    }

    /// Request heads aimed at the sniffer: the plain case, its near misses, and junk.
    fn head_strategy() -> impl Strategy<Value = Vec<u8>> {
        let target = prop_oneof![
            Just("/sse".to_string()),
            "/sse\\?[a-z_=&%0-9]{0,20}",
            "/(poll|longpoll)(\\?(after|limit|timeout_ms|x)=[0-9a-z]{0,6}(&(after|limit|timeout_ms)=[0-9]{0,7})?)?",
            "/ss[a-z]?",
            "[ -~]{0,12}",
        ];
        let header = prop_oneof![
            Just("host: t".to_string()),
            "last-event-id: [0-9a-z ]{0,6}",
            "(content-length|Content-Length): [0-9]{0,3}",
            "(connection|upgrade|expect|transfer-encoding): [a-z-]{0,10}",
            "[ -~]{0,20}",
        ];
        let version = prop_oneof![Just("HTTP/1.1"), Just("HTTP/1.0"), Just("HTTP/2"), Just("")];
        (
            prop_oneof![
                Just("GET".to_string()),
                Just("HEAD".to_string()),
                Just("get".to_string()),
                "[A-Z]{0,7}",
            ],
            target,
            version,
            prop::collection::vec(header, 0..12),
            prop_oneof![
                Just("\r\n"),
                Just(""),
                Just("\n"),
                Just("\r\nGET / HTTP/1.1\r\n\r\n")
            ],
            any::<Option<(usize, u8)>>(),
        )
            .prop_map(|(method, target, version, headers, end, flip)| {
                let mut raw = format!("{method} {target} {version}\r\n");
                for h in headers {
                    raw.push_str(&h);
                    raw.push_str("\r\n");
                }
                raw.push_str(end);
                let mut raw = raw.into_bytes();
                if let Some((at, byte)) = flip {
                    let n = raw.len();
                    raw[at % n] = byte;
                }
                raw
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 100_000, failure_persistence: None, ..ProptestConfig::default() })]

        /// 100,000 cases: the sniffer never panics, and everything it takes is a complete,
        /// single HTTP/1.1 GET of exactly /sse, /poll or /longpoll with valid parameters.
        #[test]
        fn sniffer_takes_only_plain_feed_requests(raw in head_strategy()) {
            static APP: std::sync::LazyLock<App> = std::sync::LazyLock::new(app);
            let app = &*APP;
            let plain = |path: &[u8]| {
                // httparse, like hyper (which uses it), also takes bare LF line ends.
                raw.starts_with(b"GET ")
                    && raw[4..].starts_with(path)
                    && matches!(raw[4 + path.len()], b' ' | b'?')
                    && (raw.ends_with(b"\n\n") || raw.ends_with(b"\n\r\n"))
                    && raw.windows(9).any(|w| w == b" HTTP/1.1")
            };
            match decide(app, &raw) {
                Next::Sse { after, .. } => {
                    prop_assert!(plain(b"/sse"));
                    prop_assert!(after.unwrap_or(0) <= app.hub.head());
                }
                Next::Poll { long, params, .. } => {
                    let path: &[u8] = if long { b"/longpoll" } else { b"/poll" };
                    prop_assert!(plain(path));
                    prop_assert!(params.after.unwrap_or(0) <= app.hub.head());
                    prop_assert!((1..=10_000).contains(&params.limit));
                    prop_assert!(long || params.timeout == Duration::from_millis(30_000));
                }
                // Everything not taken reaches hyper whole.
                Next::Hyper(prefix) => prop_assert_eq!(&prefix[..], &raw[..]),
                Next::Ws { after, .. } => {
                    prop_assert!(plain(b"/ws"));
                    prop_assert!(after.unwrap_or(0) <= app.hub.head());
                }
                Next::Close => prop_assert!(false, "a read with bytes never closes"),
            }
        }
    }

    #[test]
    fn takes_only_the_plain_valid_websocket_upgrade() {
        let app = app();
        let up = "connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n\
                  sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        // RFC 6455 section 1.3's key and accept value.
        let ws = |after| Next::Ws {
            after,
            accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into(),
        };
        for (raw, want) in [
            (format!("GET /ws HTTP/1.1\r\nhost: t\r\n{up}\r\n"), ws(None)),
            (
                format!("GET /ws?after=0 HTTP/1.1\r\nHost: t\r\n{up}\r\n"),
                ws(Some(0)),
            ),
            // What a browser sends.
            (
                "GET /ws HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, Upgrade\r\n\
                     Upgrade: websocket\r\nOrigin: http://t\r\nSec-WebSocket-Version: 13\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                     Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
                    .to_string(),
                ws(None),
            ),
        ] {
            assert_eq!(decide(&app, raw.as_bytes()), want, "{raw:?}");
        }
        // Over TLS the upgrade is hyper's.
        let plain = format!("GET /ws HTTP/1.1\r\nhost: t\r\n{up}\r\n");
        assert!(matches!(
            decide_for(&app, plain.as_bytes(), false),
            Next::Hyper(_)
        ));
        for raw in [
            format!("GET /ws HTTP/1.1\r\n{up}\r\n"),
            format!("GET /ws HTTP/1.1\r\nhost: a\r\nhost: b\r\n{up}\r\n"),
            format!("GET /ws HTTP/1.0\r\nhost: t\r\n{up}\r\n"),
            format!("POST /ws HTTP/1.1\r\nhost: t\r\n{up}\r\n"),
            format!("GET /ws/x HTTP/1.1\r\nhost: t\r\n{up}\r\n"),
            format!("GET /ws?after=5 HTTP/1.1\r\nhost: t\r\n{up}\r\n"),
            format!("GET /ws?x=1 HTTP/1.1\r\nhost: t\r\n{up}\r\n"),
            format!("GET /ws HTTP/1.1\r\nhost: t\r\ncontent-length: 3\r\n{up}\r\n"),
            format!("GET /ws HTTP/1.1\r\nhost: t\r\nconnection: close\r\n{up}\r\n"),
            format!(
                "GET /ws HTTP/1.1\r\nhost: t\r\n{}\r\n",
                up.replace("13", "8")
            ),
            format!(
                "GET /ws HTTP/1.1\r\nhost: t\r\n{}\r\n",
                up.replace("Upgrade", "keep-alive")
            ),
            format!(
                "GET /ws HTTP/1.1\r\nhost: t\r\n{}\r\n",
                up.replace("dGhl", "x")
            ),
            format!("GET /ws HTTP/1.1\r\nhost: t\r\n{up}"),
        ] {
            assert!(
                matches!(decide(&app, raw.as_bytes()), Next::Hyper(_)),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn anything_not_taken_goes_to_hyper_with_every_byte_read() {
        let app = app();
        for raw in [
            &b"G"[..],
            b"GET /sse HTTP/1.1\r\nhost:",
            b"GET /healthz HTTP/1.1\r\n\r\n",
            b"GET /poll HTTP/1.1\r\n\r\nGET /poll HTTP/1.1\r\n\r\n",
        ] {
            match decide(&app, raw) {
                Next::Hyper(prefix) => assert_eq!(&prefix[..], raw),
                other => panic!("{raw:?} -> {other:?}"),
            }
        }
        assert!(matches!(
            decide(&app, b"GET /poll HTTP/1.1\r\nhost: t\r\n\r\n"),
            Next::Poll { long: false, .. }
        ));
        assert!(matches!(
            decide(&app, b"GET /sse HTTP/1.1\r\nhost: t\r\n\r\n"),
            Next::Sse {
                after: None,
                close: false
            }
        ));
    }

    #[tokio::test]
    async fn rewind_replays_the_prefix_then_reads_on() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (a, mut b) = tokio::io::duplex(64);
        let mut r = Rewind::new(Bytes::from_static(b"GET /x"), a);
        b.write_all(b" HTTP/1.1\r\n\r\n").await.unwrap();
        drop(b);
        let mut small = [0u8; 4];
        assert_eq!(r.read(&mut small).await.unwrap(), 4);
        assert_eq!(&small, b"GET ");
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).await.unwrap();
        assert_eq!(&rest[..], b"/x HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn header_time_counts_from_accept() {
        let t = Duration::from_secs(10);
        assert_eq!(
            remaining_header_time(t, Duration::from_secs(3)),
            Duration::from_secs(7)
        );
        assert_eq!(
            remaining_header_time(t, Duration::from_secs(11)),
            Duration::from_millis(1)
        );
    }
}
