//! HTTP/2 connections: after ALPN `h2` over TLS, or with prior knowledge (h2c) on the
//! plaintext port, where `direct` sees the connection preface and hands the connection
//! over with the bytes it read replayed first.
//!
//! Every endpoint is served as over HTTP/1.1, through the same `routes::handle`; `/ws`
//! takes an extended CONNECT (RFC 8441, `:protocol = websocket`), which hyper supports
//! once `enable_connect_protocol` is set. hyper runs each stream's response on a task of
//! the server's `TaskTracker`, so shutdown waits for them like for everything else.
//!
//! Invariants:
//! - A connection that has not sent a whole request within the header timeout of its
//!   start is closed (hyper's HTTP/2 server has no header timeout of its own).
//! - An SSE stream on the connection is watched for lag as on HTTP/1.1 (`push_lag`).
//! - A connection that ends with an HTTP/2 protocol error is counted as `h2_protocol`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::rt::{Read, Write};
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::TokioTimer;
use tokio_util::task::TaskTracker;

use crate::app::App;
use crate::listener::drive_hyper;
use crate::routes;
use crate::stats::{ConnError, ConnTag};

/// The HTTP/2 connection preface a client with prior knowledge starts with.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Most streams a client may have open on one connection.
const MAX_STREAMS: u32 = 256;

/// Whether `bytes` (the first read of a connection) start the HTTP/2 preface: all of it,
/// or as much of it as arrived.
pub fn is_preface(bytes: &[u8]) -> bool {
    let n = bytes.len().min(PREFACE.len());
    n > 0 && bytes[..n] == PREFACE[..n]
}

/// Runs hyper's stream tasks on the server's tracker.
#[derive(Clone)]
struct Tracked(TaskTracker);

impl<F> hyper::rt::Executor<F> for Tracked
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        self.0.spawn(fut);
    }
}

/// Serves one HTTP/2 connection until it ends, the server shuts down (GOAWAY, then
/// `shutdown_grace`), or no request arrived by `first_head_due`.
pub async fn serve<I>(
    app: Arc<App>,
    io: I,
    tag: Arc<ConnTag>,
    peer: SocketAddr,
    first_head_due: tokio::time::Instant,
) where
    I: Read + Write + Unpin + Send + 'static,
{
    let svc_app = app.clone();
    let svc_tag = tag.clone();
    let service = service_fn(move |req| {
        svc_tag.hyper_request_seen();
        routes::handle(svc_app.clone(), svc_tag.clone(), req)
    });
    let max_header = u32::try_from(app.config.max_header_bytes).unwrap_or(u32::MAX);
    let conn = http2::Builder::new(Tracked(app.tracker.clone()))
        .timer(TokioTimer::new())
        .enable_connect_protocol()
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(max_header)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let result = drive_hyper(
        &app,
        &tag,
        peer,
        first_head_due,
        conn,
        |c| c.graceful_shutdown(),
        "http/2",
    )
    .await;
    if let Err(e) = result {
        if !is_io(&e) {
            app.stats.count_error(ConnError::H2Protocol);
        }
        tracing::debug!(%peer, "http/2 connection ended with an error: {e}");
    }
}

/// Whether hyper's error came from the socket (the client left) rather than the protocol.
fn is_io(e: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if err.is::<std::io::Error>() {
            return true;
        }
        source = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preface_is_recognised_whole_or_in_part() {
        assert!(is_preface(PREFACE));
        assert!(is_preface(
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04"
        ));
        assert!(is_preface(b"PRI * HT"));
        assert!(!is_preface(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(!is_preface(b""));
    }
}
