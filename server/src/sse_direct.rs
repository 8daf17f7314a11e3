//! `GET /sse` served without hyper, on a connection whose first request opens the stream.
//!
//! Why: hyper keeps a read buffer and a write buffer of 8 KiB each for the life of every
//! HTTP/1 connection, and an SSE response touches a page of both, so an idle stream served
//! by hyper costs about 11 KiB of server memory. A stream never returns to keep-alive, so
//! the connection needs nothing of hyper after the request head: this module reads that
//! head itself and then writes the chunked body straight to the socket, holding no buffer
//! between events (about 3 KiB per idle stream, `scripts/conn-memory.sh`).
//!
//! Invariants:
//! - The bytes on the wire are exactly hyper's: the same status line and headers in the
//!   same order (`date` included), one chunk per event with an upper-case hex size, and the
//!   terminal `0\r\n\r\n` at shutdown. `tests/server.rs` compares the two byte for byte.
//! - Only the plain, valid case is served here: a complete HTTP/1.1 `GET /sse` head that
//!   arrived in one piece, with nothing after it, no body (`content-length: 0` is fine) or
//!   connection-management headers, and a cursor that validates. Anything else is left unread (the head is only peeked)
//!   and handed to hyper, which answers it as before (400s included).
//! - Stats are kept as for the hyper path: the request is counted, the connection's bytes
//!   count as `sse`, the open-SSE gauge holds while the stream is open, and a stream more
//!   than `ws_queue` events behind is closed by the connection task (`listener::push_lag`).

use std::future::poll_fn;
use std::io::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::app::App;
use crate::follow::{Follower, Next};
use crate::listener;
use crate::sse;
use crate::stats::{Class, ConnTag, Counted, Endpoint, GaugeGuard};

/// What a connection's first bytes say about how to serve it.
#[derive(Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// A plain `GET /sse` whose head is `head_len` bytes, starting after `after`.
    Sse {
        /// Length of the request head, to consume.
        head_len: usize,
        /// The validated cursor.
        after: Option<u64>,
    },
    /// Anything else: serve with hyper (nothing has been consumed).
    Hyper,
    /// Nothing arrived before the header timeout, or the server is shutting down.
    Close,
}

/// The request-line prefixes this path considers; everything else goes to hyper after one
/// small peek.
const PREFIXES: [&[u8]; 2] = [b"GET /sse ", b"GET /sse?"];

/// Most headers a request served here may have.
const MAX_HEADERS: usize = 32;

/// Largest write made at once when the stream is behind (a batch of big events).
const WRITE_CHUNK: usize = 64 * 1024;

/// Most bytes a client may send after its request while the stream is open (it has no
/// reason to send any): they are read, counted and dropped, and past this the connection
/// is closed.
const MAX_TRAILING_INPUT: usize = 16 * 1024;

/// Waits for the connection's first bytes (at most `header_timeout`) and decides.
pub async fn sniff(app: &App, stream: &TcpStream) -> Sniffed {
    let mut first = [0u8; 9];
    let peeked = tokio::select! {
        biased;
        _ = app.shutdown.cancelled() => return Sniffed::Close,
        res = tokio::time::timeout(app.config.header_timeout, stream.peek(&mut first)) => res,
    };
    match peeked {
        Err(_) | Ok(Err(_)) | Ok(Ok(0)) => Sniffed::Close,
        Ok(Ok(n)) if PREFIXES.contains(&&first[..n]) => peek_head(app, stream).await,
        Ok(Ok(_)) => Sniffed::Hyper,
    }
}

/// Peeks at everything that has arrived (the head of a real client arrives in one piece)
/// and decides whether it is a request this module serves.
async fn peek_head(app: &App, stream: &TcpStream) -> Sniffed {
    let mut buf: Vec<u8> = Vec::with_capacity(app.config.max_header_bytes);
    poll_fn(|cx| {
        // Peeked into the spare capacity, so only the bytes that arrived are touched.
        let mut rb = ReadBuf::uninit(buf.spare_capacity_mut());
        match stream.poll_peek(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(_)) => Poll::Ready(Sniffed::Hyper),
            Poll::Ready(Ok(_)) => Poll::Ready(classify_head(app, rb.filled())),
        }
    })
    .await
}

/// Decides from a complete request head (and nothing after it) whether this module serves
/// it, and with which cursor.
pub fn classify_head(app: &App, bytes: &[u8]) -> Sniffed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) if len == bytes.len() => len,
        _ => return Sniffed::Hyper,
    };
    if req.method != Some("GET") || req.version != Some(1) {
        return Sniffed::Hyper;
    }
    let Some(target) = req.path else {
        return Sniffed::Hyper;
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    if path != "/sse" {
        return Sniffed::Hyper;
    }
    let mut last_event_id = None;
    for h in req.headers.iter() {
        let name = h.name;
        // A GET may say it has no body; any other length is hyper's to answer.
        if name.eq_ignore_ascii_case("content-length") && h.value == b"0" {
            continue;
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
            return Sniffed::Hyper;
        }
        if name.eq_ignore_ascii_case("last-event-id") {
            if last_event_id.is_some() {
                return Sniffed::Hyper;
            }
            last_event_id = Some(h.value);
        }
    }
    let Ok(after) = sse::cursor_from(query, last_event_id) else {
        return Sniffed::Hyper;
    };
    if sse::check_after(app, after).is_err() {
        return Sniffed::Hyper;
    }
    Sniffed::Sse { head_len, after }
}

/// Serves the stream on a connection [`sniff`] found to be a plain `GET /sse`; returns when
/// the stream ends (client gone, too slow, shutdown). The connection closes on return.
pub async fn serve(
    app: Arc<App>,
    mut stream: Counted<TcpStream>,
    tag: Arc<ConnTag>,
    head_len: usize,
    after: Option<u64>,
) {
    // Consume the head, which was only peeked so far; it is in the socket buffer already.
    let mut head = vec![0u8; head_len];
    if stream.read_exact(&mut head).await.is_err() {
        return;
    }
    drop(head);
    app.stats.count_request(Endpoint::Sse);
    tag.classify(Class::Sse);
    let follower = Follower::new(&app.hub, after, app.config.ws_queue);
    tag.start_push(follower.cursor);
    let _open = GaugeGuard::new(&app.stats.open_sse);
    tokio::select! {
        res = stream_events(&app, &mut stream, &tag, follower) => {
            if let Err(e) = res {
                tracing::debug!("sse stream ended with an error: {e}");
            }
        }
        behind = listener::push_lag(&app, &tag) => {
            app.stats.slow_sse.fetch_add(1, Relaxed);
            tracing::debug!(behind, "closing slow sse consumer");
        }
    }
}

/// The response head, byte for byte what hyper writes for `sse::stream`'s response.
fn response_head() -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-store\r\n\
         x-accel-buffering: no\r\ntransfer-encoding: chunked\r\ndate: {}\r\n\r\n",
        httpdate::fmt_http_date(SystemTime::now())
    )
}

/// Appends one event as one HTTP chunk, framed as hyper frames it (upper-case hex size).
fn push_chunk(out: &mut Vec<u8>, frame: &[u8]) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{:X}\r\n", frame.len());
    out.extend_from_slice(frame);
    out.extend_from_slice(b"\r\n");
}

async fn stream_events(
    app: &App,
    stream: &mut Counted<TcpStream>,
    tag: &ConnTag,
    mut follower: Follower,
) -> std::io::Result<()> {
    let mut head_rx = app.hub.subscribe();
    if !write_all(app, stream, response_head().as_bytes()).await? {
        return Ok(());
    }
    let mut probe = [0u8; 64];
    let mut trailing = 0usize;
    loop {
        if app.shutdown.is_cancelled() {
            return finish(app, stream).await;
        }
        head_rx.borrow_and_update();
        match follower.next(&app.hub) {
            Next::Send(events) => {
                // Built per batch and dropped after it, so an idle stream holds no buffer.
                let mut out = Vec::new();
                for (i, ev) in events.iter().enumerate() {
                    push_chunk(&mut out, &ev.sse);
                    if out.len() >= WRITE_CHUNK || i + 1 == events.len() {
                        tag.pushed(ev.seq);
                        if !write_all(app, stream, &out).await? {
                            return Ok(());
                        }
                        out.clear();
                    }
                }
            }
            // Too far behind: the connection task sees the same lag and closes the
            // connection (and counts it); there is nothing more to send until then.
            Next::TooSlow { .. } => {
                app.shutdown.cancelled().await;
                return Ok(());
            }
            Next::Wait => {
                tokio::select! {
                    biased;
                    _ = app.shutdown.cancelled() => return finish(app, stream).await,
                    changed = head_rx.changed() => {
                        if changed.is_err() {
                            return Ok(());
                        }
                    }
                    read = stream.read(&mut probe) => match read {
                        // The client left.
                        Ok(0) | Err(_) => return Ok(()),
                        Ok(n) => {
                            trailing += n;
                            if trailing > MAX_TRAILING_INPUT {
                                return Ok(());
                            }
                        }
                    },
                }
            }
        }
    }
}

/// Ends the chunked body cleanly at shutdown, as hyper does.
async fn finish(app: &App, stream: &mut Counted<TcpStream>) -> std::io::Result<()> {
    if write_all(app, stream, b"0\r\n\r\n").await? {
        let _ = tokio::time::timeout(app.config.shutdown_grace, stream.shutdown()).await;
    }
    Ok(())
}

/// Writes all of `buf`. Once the server is shutting down a stuck write gets
/// `shutdown_grace` more, then is given up (`Ok(false)`).
async fn write_all(
    app: &App,
    stream: &mut Counted<TcpStream>,
    buf: &[u8],
) -> std::io::Result<bool> {
    let write = stream.write_all(buf);
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
            Arc::new(crate::Hub::new(feed, 100)),
        )
    }

    #[test]
    fn serves_only_the_plain_valid_request() {
        let app = app();
        let ok = |raw: &str| classify_head(&app, raw.as_bytes());
        for (raw, after) in [
            ("GET /sse HTTP/1.1\r\nhost: t\r\n\r\n", None),
            (
                "GET /sse?after=0 HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n",
                Some(0),
            ),
            ("GET /sse HTTP/1.1\r\nLast-Event-ID: 0\r\n\r\n", Some(0)),
            (
                "GET /sse?after=0 HTTP/1.1\r\nLast-Event-ID: 7\r\n\r\n",
                Some(0),
            ),
            (
                "GET /sse HTTP/1.1\r\nhost: t\r\ncontent-length: 0\r\n\r\n",
                None,
            ),
        ] {
            let head_len = raw.len();
            assert_eq!(ok(raw), Sniffed::Sse { head_len, after }, "{raw:?}");
        }
        for raw in [
            // Incomplete, pipelined, or not HTTP/1.1.
            "GET /sse HTTP/1.1\r\nhost: t\r\n",
            "GET /sse HTTP/1.1\r\n\r\nGET /poll HTTP/1.1\r\n\r\n",
            "GET /sse HTTP/1.0\r\n\r\n",
            // Another path, a bad or future cursor, an unknown parameter.
            "GET /sse/x HTTP/1.1\r\n\r\n",
            "GET /sse?after=x HTTP/1.1\r\n\r\n",
            "GET /sse?after=5 HTTP/1.1\r\n\r\n",
            "GET /sse?limit=5 HTTP/1.1\r\n\r\n",
            "GET /sse HTTP/1.1\r\nlast-event-id: x\r\n\r\n",
            "GET /sse HTTP/1.1\r\nlast-event-id: 0\r\nlast-event-id: 0\r\n\r\n",
            // Headers hyper acts on.
            "GET /sse HTTP/1.1\r\nConnection: close\r\n\r\n",
            "GET /sse HTTP/1.1\r\ncontent-length: 3\r\n\r\n",
            "GET /sse HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n",
            "GET /sse HTTP/1.1\r\nexpect: 100-continue\r\n\r\n",
            "GET /sse HTTP/1.1\r\nupgrade: websocket\r\n\r\n",
            "GET /sse HTTP/1.1\r\nbad header\r\n\r\n",
        ] {
            assert_eq!(ok(raw), Sniffed::Hyper, "{raw:?}");
        }
        let many = format!(
            "GET /sse HTTP/1.1\r\n{}\r\n",
            "a: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(ok(&many), Sniffed::Hyper);
    }

    /// Request heads aimed at the sniffer: the plain case, its near misses, and junk.
    fn head_strategy() -> impl Strategy<Value = Vec<u8>> {
        let target = prop_oneof![
            Just("/sse".to_string()),
            "/sse\\?[a-z_=&%0-9]{0,20}",
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
        /// single HTTP/1.1 GET of exactly /sse with a cursor the feed has reached.
        #[test]
        fn sniffer_takes_only_plain_sse_requests(raw in head_strategy()) {
            static APP: std::sync::LazyLock<App> = std::sync::LazyLock::new(app);
            let app = &*APP;
            if let Sniffed::Sse { head_len, after } = classify_head(app, &raw) {
                prop_assert_eq!(head_len, raw.len());
                prop_assert!(raw.starts_with(b"GET /sse"));
                prop_assert!(matches!(raw[8], b' ' | b'?'));
                // httparse, like hyper (which uses it), also takes bare LF line ends.
                prop_assert!(raw.ends_with(b"\n\n") || raw.ends_with(b"\n\r\n"));
                prop_assert!(raw.windows(9).any(|w| w == b" HTTP/1.1"));
                prop_assert!(after.unwrap_or(0) <= app.hub.head());
            }
        }
    }

    #[test]
    fn chunks_are_framed_like_hyper() {
        let mut out = Vec::new();
        push_chunk(&mut out, &[b'x'; 66]);
        assert_eq!(&out[..4], b"42\r\n");
        assert_eq!(out.len(), 4 + 66 + 2);
        out.clear();
        push_chunk(&mut out, &[b'x'; 250]);
        assert_eq!(&out[..4], b"FA\r\n");
        assert!(out.ends_with(b"x\r\n"));
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
