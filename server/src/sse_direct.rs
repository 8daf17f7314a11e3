//! `GET /sse` streamed straight to the socket, for a connection whose request
//! [`crate::direct`] found plain: the response head hyper would write, then one chunk per
//! event (upper-case hex size, as hyper frames it), nothing buffered between events, and
//! the terminal `0\r\n\r\n` at shutdown. A stream never returns to keep-alive. A request
//! that said `Connection: close`, or one answered once shutdown has begun, gets
//! `connection: close` in the head, as from hyper.

use std::future::poll_fn;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::Poll;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

use futures_util::FutureExt as _;

use crate::app::App;
use crate::direct::{connection_header, with_date, write_all, write_watching, Io, Watched};
use crate::fanout::{self, Kind, Registered};
use crate::follow::{Follower, Next};
use crate::stats::{Class, ConnTag, Counted, Endpoint, GaugeGuard, Path};

/// Largest write made at once when the stream is behind (a batch of big events).
const WRITE_CHUNK: usize = 64 * 1024;

/// Most bytes a client may send after its request while the stream is open (it has no
/// reason to send any): they are read, counted and dropped, and past this the connection
/// is closed.
const MAX_TRAILING_INPUT: usize = 16 * 1024;

/// Serves the stream on a connection whose request was found to be a plain `GET /sse`; returns when
/// the stream ends (client gone, too slow, shutdown). The connection closes on return.
///
/// The stream watches its own lag: a write the client's socket does not take waits on the
/// head as well, and a stream more than `ws_queue` events behind ends and is counted as
/// slow (on hyper's path the connection task does this, [`crate::listener::push_lag`]). So the
/// whole stream is one future with one wait on the head, which keeps an idle stream small
/// (`scripts/conn-memory.sh`).
///
/// A plain function returning an `async move` block: an `async fn` would keep its
/// arguments twice in its state.
// Not an `async fn`: see above (the state would hold the arguments twice).
#[allow(clippy::manual_async_fn)]
pub fn serve<S: Io + 'static>(
    app: Arc<App>,
    stream: Counted<S>,
    tag: Arc<ConnTag>,
    after: Option<u64>,
    close: bool,
) -> impl std::future::Future<Output = ()> + Send {
    // The registration comes first, so that it is dropped (taking the socket out of the
    // publisher's registry) before the socket closes.
    let mut conn = Conn { reg: None, stream };
    async move {
        app.stats.count_request(Endpoint::Sse);
        app.stats.count_path(Path::Direct);
        tag.classify(Class::Sse);
        let follower = Follower::new(&app.hub, after, app.config.ws_queue);
        let _open = GaugeGuard::new(&app.stats.open_sse);
        match stream_events(&app, &mut conn, follower, close).await {
            Ok(Some(behind)) => {
                app.stats.slow_sse.fetch_add(1, Relaxed);
                tracing::debug!(behind, "closing slow sse consumer");
            }
            Ok(None) => {}
            Err(e) => tracing::debug!("sse stream ended with an error: {e}"),
        }
    }
}

/// The stream's socket, and its registration while the publisher writes to it.
struct Conn<S> {
    reg: Option<Registered>,
    stream: Counted<S>,
}

/// The response head, byte for byte what hyper writes for `sse::stream`'s response.
fn response_head(close: bool) -> String {
    let connection = connection_header(close);
    with_date(|date| {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-store\r\n\
             x-accel-buffering: no\r\n{connection}transfer-encoding: chunked\r\ndate: {date}\r\n\r\n"
        )
    })
}

/// Appends one event as one HTTP chunk, framed as hyper frames it (upper-case hex size).
pub(crate) fn push_chunk(out: &mut Vec<u8>, frame: &[u8]) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{:X}\r\n", frame.len());
    out.extend_from_slice(frame);
    out.extend_from_slice(b"\r\n");
}

/// Streams until the client leaves or the server shuts down (`Ok(None)`), or the client
/// falls more than the queue behind (`Ok(Some(behind))`).
// Not an `async fn`: an async fn keeps its arguments twice in its state, which every
// stream holds for its life.
#[allow(clippy::manual_async_fn)]
fn stream_events<'a, S: Io + 'static>(
    app: &'a Arc<App>,
    conn: &'a mut Conn<S>,
    mut follower: Follower,
    close: bool,
) -> impl std::future::Future<Output = std::io::Result<Option<u64>>> + Send + 'a {
    async move {
        let mut head_rx = app.hub.subscribe();
        {
            let head = response_head(close || app.shutdown.is_cancelled());
            if !write_all(app, &mut conn.stream, head.as_bytes()).await? {
                return Ok(None);
            }
        }
        // A reading client has nothing to send; what it sends anyway is read in small pieces.
        let mut probe = [0u8; 16];
        let mut trailing = 0usize;
        loop {
            if app.shutdown.is_cancelled() {
                return finish(app, &mut conn.stream).await.map(|()| None);
            }
            head_rx.borrow_and_update();
            match follower.next(&app.hub) {
                Next::Send(events) => {
                    // Built per batch and dropped after it, so an idle stream holds no buffer.
                    let mut out = Vec::new();
                    for (i, ev) in events.iter().enumerate() {
                        #[cfg(not(feature = "inject"))]
                        let split = {
                            push_chunk(&mut out, &ev.sse);
                            false
                        };
                        // The `inject` feature's regressions (inject.rs); with `write=1` every
                        // event is written at once, its first byte in a write of its own.
                        #[cfg(feature = "inject")]
                        let split = inject_event(&mut out, ev);
                        if out.len() >= WRITE_CHUNK || i + 1 == events.len() || split {
                            if split {
                                let first = [out.remove(0)];
                                match write_watched(
                                    app,
                                    &mut conn.stream,
                                    &mut head_rx,
                                    &follower,
                                    &first,
                                )
                                .await?
                                {
                                    Written::All => {}
                                    Written::Slow(behind) => return Ok(Some(behind)),
                                    Written::GaveUp => return Ok(None),
                                }
                            }
                            match write_watched(
                                app,
                                &mut conn.stream,
                                &mut head_rx,
                                &follower,
                                &out,
                            )
                            .await?
                            {
                                Written::All => {}
                                Written::Slow(behind) => return Ok(Some(behind)),
                                Written::GaveUp => return Ok(None),
                            }
                            out.clear();
                        }
                    }
                }
                Next::TooSlow { behind } => return Ok(Some(behind)),
                Next::Wait => {
                    // Plain TCP only: over TLS the task writes (rustls holds the stream).
                    if publisher_writes(app) && conn.stream.tcp().is_some() {
                        let over = hand_over(app, conn, &mut follower, &mut trailing);
                        let handover = over.await?;
                        let back = match handover {
                            Handover::Gone => return Ok(None),
                            Handover::Again(rest) if rest.is_empty() => continue,
                            back => back,
                        };
                        // What the publisher left unwritten goes out first. This is rare (a
                        // socket that filled up, shutdown), so the write's future is boxed:
                        // in place it would make every stream's state larger (from the
                        // 768-byte allocation class to the 1024-byte one).
                        let written = Box::pin(write_handed_back(
                            app,
                            &mut conn.stream,
                            &mut head_rx,
                            &follower,
                            back,
                        ));
                        match written.await? {
                            Some(end) => return Ok(end),
                            None => continue,
                        }
                    }
                    // The select only decides; what follows runs after its futures are gone,
                    // so the stream's state holds the waits or the goodbye, not both.
                    let woke = tokio::select! {
                        biased;
                        _ = app.shutdown.cancelled() => Woke::Shutdown,
                        changed = head_rx.changed() => match changed {
                            Ok(()) => Woke::Head,
                            Err(_) => Woke::Gone,
                        },
                        read = conn.stream.read(&mut probe) => match read {
                            // The client left.
                            Ok(0) | Err(_) => Woke::Gone,
                            Ok(n) => {
                                trailing += n;
                                if trailing > MAX_TRAILING_INPUT {
                                    Woke::Gone
                                } else {
                                    Woke::Head
                                }
                            }
                        },
                    };
                    match woke {
                        Woke::Head => {}
                        Woke::Gone => return Ok(None),
                        Woke::Shutdown => {
                            return finish(app, &mut conn.stream).await.map(|()| None)
                        }
                    }
                }
            }
        }
    }
}

/// Whether the publisher writes to caught-up streams ([`crate::fanout`]).
fn publisher_writes(app: &App) -> bool {
    // With the `inject` feature and `FEEDBENCH_INJECT` set, every event goes through the
    // task, where the injected regressions act (`inject::in_use`).
    #[cfg(feature = "inject")]
    if crate::inject::in_use() {
        return false;
    }
    app.config.publisher_writes
}

/// How a spell of publisher writes ended.
enum Handover {
    /// The socket is the task's again, with the publisher's unwritten rest: write it, then
    /// look at the feed again.
    Again(bytes::Bytes),
    /// The client left or sent too much.
    Gone,
    /// The server is shutting down: write the rest, then end the body.
    Shutdown(bytes::Bytes),
}

/// Hands the socket to the publisher while the stream is caught up ([`crate::fanout`]) and
/// waits for the client, shutdown, or the publisher handing it back; then takes it back,
/// with what the publisher left unwritten. (The caller writes that: a write here would
/// make this future, and so every stream's, larger.)
async fn hand_over<S: Io + 'static>(
    app: &Arc<App>,
    conn: &mut Conn<S>,
    follower: &mut Follower,
    trailing: &mut usize,
) -> std::io::Result<Handover> {
    let Conn { reg, stream } = conn;
    // What the client has sent is read first: the wait below only sees new input.
    let gone = poll_fn(|cx| {
        let mut probe = [0u8; 16];
        loop {
            let mut rb = ReadBuf::new(&mut probe);
            match Pin::new(&mut *stream).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Ready(false),
                Poll::Ready(Err(_)) => return Poll::Ready(true),
                Poll::Ready(Ok(())) if rb.filled().is_empty() => return Poll::Ready(true),
                Poll::Ready(Ok(())) => {
                    *trailing += rb.filled().len();
                    if *trailing > MAX_TRAILING_INPUT {
                        return Poll::Ready(true);
                    }
                }
            }
        }
    })
    .await;
    if gone {
        return Ok(Handover::Gone);
    }
    let Some(tcp) = stream.tcp() else {
        return Ok(Handover::Again(bytes::Bytes::new()));
    };
    let Some((back, shutdown)) = fanout::lend(app, reg, tcp, Kind::Sse, follower.cursor).await
    else {
        // The head moved: catch up first.
        return Ok(Handover::Again(bytes::Bytes::new()));
    };
    follower.cursor = back.seq;
    if let Some(e) = back.error {
        return Err(e);
    }
    Ok(if shutdown {
        Handover::Shutdown(back.rest)
    } else {
        Handover::Again(back.rest)
    })
}

/// Writes what the publisher left unwritten, then at shutdown the terminal chunk:
/// `Some(result)` when the stream ends (`Some(behind)` for a slow client), `None` to go on.
async fn write_handed_back<S: Io>(
    app: &App,
    stream: &mut Counted<S>,
    head_rx: &mut tokio::sync::watch::Receiver<u64>,
    follower: &Follower,
    back: Handover,
) -> std::io::Result<Option<Option<u64>>> {
    match back {
        Handover::Gone => Ok(Some(None)),
        Handover::Shutdown(rest) => {
            if rest.is_empty() || write_all(app, stream, &rest).await? {
                finish(app, stream).await?;
            }
            Ok(Some(None))
        }
        Handover::Again(rest) => {
            match write_watched(app, stream, head_rx, follower, &rest).await? {
                Written::All => Ok(None),
                Written::Slow(behind) => Ok(Some(Some(behind))),
                Written::GaveUp => Ok(Some(None)),
            }
        }
    }
}

/// What woke a waiting stream.
enum Woke {
    /// The head moved (or the client sent a few bytes): look again.
    Head,
    /// The client left, or sent too much.
    Gone,
    /// The server is shutting down.
    Shutdown,
}

/// How a watched write ended.
enum Written {
    /// Every byte was taken.
    All,
    /// The client fell this many events behind while the write waited.
    Slow(u64),
    /// The server shut down and the write did not finish within the grace.
    GaveUp,
}

/// Writes all of `buf` (and flushes it) while watching the head ([`write_watching`]).
// Not an `async fn` (its state would hold the arguments besides `write_watching`'s).
fn write_watched<'a, S: Io>(
    app: &'a App,
    stream: &'a mut Counted<S>,
    head_rx: &'a mut tokio::sync::watch::Receiver<u64>,
    follower: &'a Follower,
    buf: &'a [u8],
) -> impl std::future::Future<Output = std::io::Result<Written>> + 'a {
    let write = async move {
        stream.write_all(buf).await?;
        stream.flush().await
    };
    write_watching(app, head_rx, follower, write).map(|watched| match watched {
        Watched::Done { result, .. } => result.map(|()| Written::All),
        Watched::Slow(behind) => Ok(Written::Slow(behind)),
        Watched::GaveUp => Ok(Written::GaveUp),
    })
}

/// Appends `ev` with the `inject` feature's padding and does its per-event work; returns
/// whether the event's write is to be split.
#[cfg(feature = "inject")]
fn inject_event(out: &mut Vec<u8>, ev: &crate::event::Event) -> bool {
    let inject = crate::inject::get();
    crate::inject::per_event(inject);
    if inject.pad == 0 {
        push_chunk(out, &ev.sse);
    } else {
        let mut frame = crate::inject::pad_line(inject.pad);
        frame.extend_from_slice(&ev.sse);
        push_chunk(out, &frame);
    }
    inject.split_write
}

/// Ends the chunked body cleanly at shutdown, as hyper does.
async fn finish<S: Io>(app: &App, stream: &mut Counted<S>) -> std::io::Result<()> {
    if write_all(app, stream, b"0\r\n\r\n").await? {
        let _ = tokio::time::timeout(app.config.shutdown_grace, stream.shutdown()).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
