//! The feed endpoints served without hyper, for requests that need nothing of it.
//!
//! Why: hyper keeps a read buffer and a write buffer of 8 KiB each for the life of every
//! HTTP/1 connection, and a request and a response touch a page of each, so a connection
//! hyper serves costs about 11 KiB of server memory however idle it is. A feed client's
//! requests are all alike (`GET /sse`, `GET /poll?...`, `GET /longpoll?...`), so the
//! connection task peeks at each request head before anyone reads it: a plain request to a
//! feed endpoint is answered here straight to the socket ([`crate::sse_direct`] streams,
//! [`crate::poll_direct`] polls, then the next request is peeked at), and anything else
//! (another path, an unusual header, a bad parameter, a head split over several reads) is
//! left unread and the connection goes to hyper for the rest of its life. An idle stream or
//! parked long-poll then holds no buffer at all (`scripts/conn-memory.sh`).
//!
//! Invariants:
//! - The bytes on the wire are exactly hyper's (status line, headers in hyper's order with
//!   its `date`, chunk framing, terminal chunk at shutdown); `tests/server.rs` compares the
//!   two paths byte for byte.
//! - Only the plain, valid case is taken: a complete HTTP/1.1 `GET` head that arrived in
//!   one piece with nothing after it, no body (`content-length: 0` is fine), no
//!   connection-management header, and parameters that validate. So every error answer,
//!   and every request hyper would treat specially, is still hyper's.
//! - The header timeout holds on both paths: a connection gets `header_timeout` from the
//!   accept (or from the end of its last response) to send a request, and hyper gets what
//!   is left of it.
//! - Stats are kept as on the hyper path: requests by endpoint, bytes by class, the open
//!   SSE, parked and active gauges.

use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::app::App;
use crate::poll::{self, PollParams};
use crate::sse;
use crate::stats::Counted;

/// What a request head, peeked at, says about how to serve it.
#[derive(Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// A plain `GET /sse` whose head is `head_len` bytes, starting after `after`.
    Sse {
        /// Length of the request head, to consume.
        head_len: usize,
        /// The validated cursor.
        after: Option<u64>,
    },
    /// A plain `GET /poll` (`long == false`) or `GET /longpoll`.
    Poll {
        /// Length of the request head, to consume.
        head_len: usize,
        /// Long-poll or short-poll.
        long: bool,
        /// The validated parameters (the cursor is not ahead of the feed).
        params: PollParams,
    },
    /// Anything else: serve with hyper (nothing has been consumed).
    Hyper,
    /// Nothing arrived in time, the client left, or the server is shutting down.
    Close,
}

/// The request-line prefixes worth a full look; anything else goes to hyper after one
/// 9-byte peek.
const PREFIXES: [&[u8]; 4] = [b"GET /sse ", b"GET /sse?", b"GET /poll", b"GET /long"];

/// Most headers a request served here may have.
const MAX_HEADERS: usize = 32;

/// Waits (at most `wait`) for a request's first bytes and decides how to serve it.
pub async fn sniff(app: &App, stream: &TcpStream, wait: Duration) -> Sniffed {
    let mut first = [0u8; 9];
    let peeked = tokio::select! {
        biased;
        _ = app.shutdown.cancelled() => return Sniffed::Close,
        res = tokio::time::timeout(wait, stream.peek(&mut first)) => res,
    };
    match peeked {
        Err(_) | Ok(Err(_)) | Ok(Ok(0)) => Sniffed::Close,
        Ok(Ok(n)) if PREFIXES.contains(&&first[..n]) => peek_head(app, stream).await,
        Ok(Ok(_)) => Sniffed::Hyper,
    }
}

/// Peeks at everything that has arrived (the head of a real client arrives in one piece)
/// and decides whether it is a request served here.
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

/// Decides from a complete request head (and nothing after it) whether it is served
/// directly, and with which parameters.
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
    let long = match path {
        "/sse" => None,
        "/poll" => Some(false),
        "/longpoll" => Some(true),
        _ => return Sniffed::Hyper,
    };
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
    if let Some(long) = long {
        // Poll endpoints take no Last-Event-ID; hyper's path ignores it too.
        let Ok(params) = poll::parse_params(query, long) else {
            return Sniffed::Hyper;
        };
        if params
            .after
            .is_some_and(|a| poll::check_cursor(app, a).is_err())
        {
            return Sniffed::Hyper;
        }
        return Sniffed::Poll {
            head_len,
            long,
            params,
        };
    }
    let Ok(after) = sse::cursor_from(query, last_event_id) else {
        return Sniffed::Hyper;
    };
    if sse::check_after(app, after).is_err() {
        return Sniffed::Hyper;
    }
    Sniffed::Sse { head_len, after }
}

/// The head hyper writes for a `200` JSON answer (`respond::json`) of `len` bytes.
pub fn json_head(len: usize) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: no-store\r\n\
         content-length: {len}\r\ndate: {}\r\n\r\n",
        httpdate::fmt_http_date(std::time::SystemTime::now())
    )
}

/// Writes all of `buf`. Once the server is shutting down a stuck write gets
/// `shutdown_grace` more, then is given up (`Ok(false)`).
pub async fn write_all(
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
            std::sync::Arc::new(crate::Hub::new(feed, 100)),
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
        let poll = |raw: &str| match ok(raw) {
            Sniffed::Poll {
                head_len,
                long,
                params,
            } => {
                assert_eq!(head_len, raw.len(), "{raw:?}");
                Some((long, params.after, params.limit, params.timeout.as_millis()))
            }
            _ => None,
        };
        assert_eq!(
            poll("GET /poll?after=0&limit=5 HTTP/1.1\r\nhost: t\r\n\r\n"),
            Some((false, Some(0), 5, 30_000))
        );
        assert_eq!(
            poll("GET /longpoll?timeout_ms=250 HTTP/1.1\r\ncontent-length: 0\r\n\r\n"),
            Some((true, None, 1_000, 250))
        );
        assert_eq!(
            poll("GET /poll HTTP/1.1\r\nlast-event-id: x\r\n\r\n"),
            Some((false, None, 1_000, 30_000))
        );
        for raw in [
            // A cursor ahead of the feed, a parameter the endpoint does not take, a bad
            // value: hyper answers these (400).
            "GET /poll?after=1 HTTP/1.1\r\n\r\n",
            "GET /poll?timeout_ms=5 HTTP/1.1\r\n\r\n",
            "GET /longpoll?limit=0 HTTP/1.1\r\n\r\n",
            "GET /pollx HTTP/1.1\r\n\r\n",
            "GET /longpoll HTTP/1.1\r\nconnection: keep-alive\r\n\r\n",
            "HEAD /poll HTTP/1.1\r\n\r\n",
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
            let plain = |head_len: usize, path: &[u8]| {
                // httparse, like hyper (which uses it), also takes bare LF line ends.
                head_len == raw.len()
                    && raw.starts_with(b"GET ")
                    && raw[4..].starts_with(path)
                    && matches!(raw[4 + path.len()], b' ' | b'?')
                    && (raw.ends_with(b"\n\n") || raw.ends_with(b"\n\r\n"))
                    && raw.windows(9).any(|w| w == b" HTTP/1.1")
            };
            match classify_head(app, &raw) {
                Sniffed::Sse { head_len, after } => {
                    prop_assert!(plain(head_len, b"/sse"));
                    prop_assert!(after.unwrap_or(0) <= app.hub.head());
                }
                Sniffed::Poll { head_len, long, params } => {
                    let path: &[u8] = if long { b"/longpoll" } else { b"/poll" };
                    prop_assert!(plain(head_len, path));
                    prop_assert!(params.after.unwrap_or(0) <= app.hub.head());
                    prop_assert!((1..=10_000).contains(&params.limit));
                    prop_assert!(long || params.timeout == Duration::from_millis(30_000));
                }
                Sniffed::Hyper | Sniffed::Close => {}
            }
        }
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
