//! The accept loop and the per-connection task.
//!
//! Invariants:
//! - At most `max_connections` connections are served at once; one more is answered with a
//!   503 (best effort, never blocking) and closed at once, and counted as refused.
//! - Accept errors never spin: descriptor exhaustion backs off and is logged once per burst.
//! - Every connection runs under the server's `TaskTracker` and shuts down gracefully when
//!   the token is cancelled: hyper finishes the response in flight (parked long-polls and
//!   SSE streams end themselves on the same token), bounded by `shutdown_grace`.
//! - A connection serving an SSE stream is closed at once, and counted, when the stream
//!   falls more than `ws_queue` events behind: the connection task itself watches the lag,
//!   because hyper stops polling the body while the client's socket is stuck.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use crate::app::App;
use crate::direct::{self, Io, Next, Rewind};
use crate::hyper_errors::JsonErrors;
use crate::poll_direct::After;
use crate::stats::{ConnTag, Counted};
use crate::tls::TlsSettings;
use crate::{http2, routes, tls};
use crate::{poll_direct, sse_direct, ws_direct};

/// What a refused connection is told.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 38\r\nconnection: close\r\n\r\n{\"error\":\"too many open connections\"}";

/// Back-off after an accept error that more attempts cannot fix at once (no descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts until shutdown begins; then closes the listener and starts the connections'
/// drain (see [`App::shutdown`]).
pub async fn accept_loop(app: Arc<App>, listener: TcpListener) {
    let mut last_error_log: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = app.stop_accepting.cancelled() => break,
            _ = app.shutdown.cancelled() => break,
            res = listener.accept() => res,
        };
        match accepted {
            Ok((stream, peer)) => admit(&app, stream, peer),
            Err(e) => on_accept_error(&app, &e, &mut last_error_log).await,
        }
    }
    drop(listener);
    app.shutdown.cancel();
    tracing::debug!("accept loop stopped");
}

fn admit(app: &Arc<App>, stream: TcpStream, peer: SocketAddr) {
    let open = app.stats.open_total.load(Relaxed);
    if open >= app.config.max_connections as i64 {
        app.stats.refused.fetch_add(1, Relaxed);
        // Best effort: a fresh socket's send buffer takes this at once; if not, just close.
        let _ = stream.try_write(REFUSED);
        return;
    }
    app.stats.accepted.fetch_add(1, Relaxed);
    // Undone by `ConnTag::finish` when the socket is dropped, which for a WebSocket is when
    // the upgraded connection ends, not when hyper hands it over.
    app.stats.open_total.fetch_add(1, Relaxed);
    let _ = stream.set_nodelay(true);
    app.tracker
        .spawn(serve_connection(app.clone(), stream, peer));
}

async fn on_accept_error(app: &App, e: &io::Error, last_log: &mut Option<Instant>) {
    app.stats.accept_errors.fetch_add(1, Relaxed);
    let out_of_fds = matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    );
    let quiet = last_log.is_some_and(|t| t.elapsed() < Duration::from_secs(10));
    if !quiet {
        tracing::warn!(
            "accept failed: {e}{}",
            if out_of_fds { " (backing off)" } else { "" }
        );
        *last_log = Some(Instant::now());
    }
    if out_of_fds {
        tokio::select! {
            _ = app.stop_accepting.cancelled() => {}
            _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
        }
    }
}

async fn serve_connection(app: Arc<App>, stream: TcpStream, peer: SocketAddr) {
    let tag = Arc::new(ConnTag::new(app.stats.clone()));
    let stream = Counted::new(stream, tag.clone());
    // Every phase is boxed and the task holds only the box: a task keeps its future's
    // whole size for its life, so an SSE stream would otherwise carry the request
    // reader's state (about 700 bytes) and a plaintext connection the TLS path's.
    let first: Pin<Box<dyn Future<Output = Option<Phase>> + Send>> = match app.config.tls.clone() {
        None => Box::pin(serve_http(app, stream, tag, peer, false)),
        Some(settings) => Box::pin(async move {
            serve_tls(app, stream, tag, peer, settings).await;
            None
        }),
    };
    if let Some(next) = first.await {
        next.await;
    }
}

/// A connection's next phase (an SSE stream, hyper, HTTP/2), boxed.
type Phase = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A connection's next phase as a boxed future. Made by a plain function, so that the
/// caller's future holds only the box: a local moved into an awaited future still takes
/// room in the caller's state for as long as its scope lasts.
fn boxed(fut: impl Future<Output = ()> + Send + 'static) -> Phase {
    Box::pin(fut)
}

/// Takes a connection through the TLS handshake, then serves HTTP/2 (ALPN `h2`) or
/// HTTP/1.1 over the plaintext side, counted by a second `Counted`.
async fn serve_tls(
    app: Arc<App>,
    stream: Counted<TcpStream>,
    tag: Arc<ConnTag>,
    peer: SocketAddr,
    settings: TlsSettings,
) {
    let next = {
        let timeout = app.config.tls_handshake_timeout;
        let accept = boxed_accept(&settings, &app, stream, &tag, timeout);
        let tls = tokio::select! {
            _ = app.shutdown.cancelled() => return,
            tls = accept => match tls {
                Some(tls) => tls,
                None => return,
            },
        };
        after_handshake(app, tls, tag, peer)
    };
    next.await
}

/// The handshake as a boxed future (its state, with rustls' handshake, is freed after).
fn boxed_accept<'a>(
    settings: &'a TlsSettings,
    app: &'a App,
    stream: Counted<TcpStream>,
    tag: &'a ConnTag,
    timeout: std::time::Duration,
) -> Pin<Box<dyn Future<Output = Option<tls::Tls>> + Send + 'a>> {
    Box::pin(tls::accept(settings, &app.stats, stream, tag, timeout))
}

/// What serves a connection once its handshake is done.
fn after_handshake(app: Arc<App>, tls: tls::Tls, tag: Arc<ConnTag>, peer: SocketAddr) -> Phase {
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let stream = Counted::plain(tls, tag.clone());
    if h2 {
        app.stats.h2_connections.fetch_add(1, Relaxed);
        let due = tokio::time::Instant::now() + app.config.header_timeout;
        return boxed(http2::serve(app, TokioIo::new(stream), tag, peer, due));
    }
    boxed(async move {
        // The direct path's state is dropped (at the end of this statement) before the
        // phase it hands over to runs.
        let next = Box::pin(serve_http(app, stream, tag, peer, true)).await;
        if let Some(next) = next {
            next.await;
        }
    })
}

/// Serves a connection that speaks HTTP/1.1 (or, on the plaintext port, HTTP/2 with prior
/// knowledge): feed requests are answered directly while they come plain; the first other
/// request hands the connection to hyper for good, with the bytes already read (see
/// `direct`). Returns the phase the connection goes on with (an SSE stream, hyper,
/// HTTP/2), for the caller to run once this function's state is gone.
///
/// A plain function returning an `async move` block rather than an `async fn`: an async
/// fn keeps its arguments twice in its state (as passed and as moved into the body),
/// which here cost about 130 bytes of every idle connection.
// Not an `async fn`: see above (the state would hold the arguments twice).
#[allow(clippy::manual_async_fn)]
fn serve_http<S: Io + 'static>(
    app: Arc<App>,
    mut stream: Counted<S>,
    tag: Arc<ConnTag>,
    peer: SocketAddr,
    tls: bool,
) -> impl Future<Output = Option<Phase>> + Send {
    async move {
        let mut waiting_since = Instant::now();
        let mut pipelined: Option<bytes::Bytes> = None;
        let prefix = loop {
            let wait =
                direct::remaining_header_time(app.config.header_timeout, waiting_since.elapsed());
            // The answer is made (and boxed) in a block of its own before it is awaited,
            // so that neither the request nor its bytes stay in this state while a
            // long-poll is parked.
            let answer = {
                // Bytes of the next request already read (while a long-poll was parked)
                // are decided on without waiting.
                let next = if pipelined.is_some() {
                    direct::decide_for(&app, &pipelined.take().unwrap_or_default(), !tls)
                } else {
                    direct::next_request(&app, &mut stream, wait, !tls).await
                };
                match next {
                    Next::Close => return None,
                    Next::Sse { after, close } => {
                        return Some(boxed(sse_direct::serve(app, stream, tag, after, close)));
                    }
                    Next::Poll {
                        long,
                        params,
                        close,
                    } => Box::pin(poll_direct::answer(
                        &app,
                        &mut stream,
                        &tag,
                        long,
                        params,
                        close,
                    )),
                    Next::Ws { after, accept } => {
                        return Some(boxed(ws_direct::serve(app, stream, tag, after, accept)));
                    }
                    Next::Hyper(prefix) => break prefix,
                }
            };
            match answer.await {
                After::Close => return None,
                After::Next(bytes, answered) => {
                    pipelined = bytes;
                    waiting_since = answered;
                }
            }
        };
        // hyper restarts its header timer for every request head, so it gets the whole timeout;
        // the head it takes over half-read must still be complete within what is left of it.
        let first_head_due =
            tokio::time::Instant::from_std(waiting_since) + app.config.header_timeout;
        if http2::is_preface(&prefix) {
            let counter = if tls {
                &app.stats.h2_connections
            } else {
                &app.stats.h2c_connections
            };
            counter.fetch_add(1, Relaxed);
            return Some(h2_after_preface(
                app,
                prefix,
                stream,
                tag,
                peer,
                first_head_due,
            ));
        }
        Some(hyper_after_direct(
            app,
            prefix,
            stream,
            tag,
            peer,
            first_head_due,
        ))
    }
}

/// hyper's HTTP/1.1 for the rest of a connection, with `prefix` (already read) replayed;
/// boxed, so that the direct path's future does not carry hyper's connection state.
fn hyper_after_direct<S: Io + 'static>(
    app: Arc<App>,
    prefix: bytes::Bytes,
    stream: Counted<S>,
    tag: Arc<ConnTag>,
    peer: SocketAddr,
    first_head_due: tokio::time::Instant,
) -> Phase {
    boxed(serve_hyper(app, prefix, stream, tag, peer, first_head_due))
}

/// Serves a connection with hyper's HTTP/1.1 until it ends.
async fn serve_hyper<S: Io + 'static>(
    app: Arc<App>,
    prefix: bytes::Bytes,
    stream: Counted<S>,
    tag: Arc<ConnTag>,
    peer: SocketAddr,
    first_head_due: tokio::time::Instant,
) {
    let limit = app.config.max_header_bytes;
    let stream = JsonErrors::new(Rewind::new(prefix, stream).hold_while_parked(tag.clone(), limit));
    let io = TokioIo::new(stream);
    let svc_app = app.clone();
    let svc_tag = tag.clone();
    let service = service_fn(move |req| {
        svc_tag.hyper_request_seen();
        routes::handle(svc_app.clone(), svc_tag.clone(), req)
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(app.config.header_timeout)
        .max_buf_size(app.config.max_header_bytes.max(8192))
        .keep_alive(true)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = drive_hyper(
        &app,
        &tag,
        peer,
        first_head_due,
        conn,
        |c| c.graceful_shutdown(),
        "http/1.1",
    )
    .await;
    if let Err(e) = result {
        tracing::debug!(%peer, "connection ended with an error: {e}");
    }
}

/// Drives a hyper connection (`proto` names it in log lines) until it ends, the server
/// shuts down, its push stream lags, or it has sent no whole request by `first_head_due`.
/// Shutdown tells hyper (`graceful`: `connection: close` on HTTP/1.1, GOAWAY on HTTP/2)
/// and waits `shutdown_grace` for it; a lag or a late first request closes at once.
pub(crate) async fn drive_hyper<C, E>(
    app: &App,
    tag: &ConnTag,
    peer: SocketAddr,
    first_head_due: tokio::time::Instant,
    mut conn: Pin<&mut C>,
    graceful: impl FnOnce(Pin<&mut C>),
    proto: &str,
) -> Result<(), E>
where
    C: Future<Output = Result<(), E>>,
{
    // Biased, shutdown first: once shutdown has begun, hyper is told before it writes
    // another answer, so that answer carries `connection: close` (or comes after GOAWAY).
    tokio::select! {
        biased;
        _ = app.shutdown.cancelled() => {
            graceful(conn.as_mut());
            match tokio::time::timeout(app.config.shutdown_grace, conn.as_mut()).await {
                Ok(res) => res,
                Err(_) => Ok(()),
            }
        }
        res = conn.as_mut() => res,
        behind = push_lag(app, tag) => {
            app.stats.slow_sse.fetch_add(1, Relaxed);
            tracing::debug!(%peer, behind, proto, "closing slow sse consumer");
            Ok(())
        }
        () = first_head_late(first_head_due, tag) => {
            tracing::debug!(%peer, proto, "no whole request within the header timeout");
            Ok(())
        }
    }
}

/// HTTP/2 on a connection whose first bytes (`prefix`, replayed) are the preface.
fn h2_after_preface<S: Io + 'static>(
    app: Arc<App>,
    prefix: bytes::Bytes,
    stream: Counted<S>,
    tag: Arc<ConnTag>,
    peer: SocketAddr,
    due: tokio::time::Instant,
) -> Phase {
    let io = TokioIo::new(Rewind::new(prefix, stream));
    boxed(http2::serve(app, io, tag, peer, due))
}

/// Resolves at `due` if hyper has not yet received a whole request head on this
/// connection; pends forever otherwise.
pub(crate) async fn first_head_late(due: tokio::time::Instant, tag: &ConnTag) {
    tokio::time::sleep_until(due).await;
    if tag.has_hyper_request() {
        std::future::pending::<()>().await;
    }
}

/// Resolves, with how far behind it is, when this connection's push stream falls more than
/// `ws_queue` events behind the head; pends forever on a connection that never streams.
/// It runs in the connection's own task, so a publish wakes that task once for both this
/// check and the body.
pub(crate) async fn push_lag(app: &App, tag: &ConnTag) -> u64 {
    tag.pushing.notified().await;
    let queue = app.config.ws_queue as u64;
    let mut head_rx = app.hub.subscribe();
    loop {
        let behind = head_rx
            .borrow_and_update()
            .saturating_sub(tag.push_cursor());
        if behind > queue {
            return behind;
        }
        if head_rx.changed().await.is_err() {
            // The hub outlives every connection, so this is unreachable; never resolve.
            std::future::pending::<()>().await;
        }
    }
}
