//! `GET /sse` streamed straight to the socket, for a connection whose request
//! [`crate::direct`] found plain: the response head hyper would write, then one chunk per
//! event (upper-case hex size, as hyper frames it), nothing buffered between events, and
//! the terminal `0\r\n\r\n` at shutdown. A stream never returns to keep-alive. A request
//! that said `Connection: close`, or one answered once shutdown has begun, gets
//! `connection: close` in the head, as from hyper.

use std::io::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::app::App;
use crate::direct::{connection_header, with_date, write_all, Io};
use crate::follow::{Follower, Next};
use crate::listener;
use crate::stats::{Class, ConnTag, Counted, Endpoint, GaugeGuard, Path};

/// Largest write made at once when the stream is behind (a batch of big events).
const WRITE_CHUNK: usize = 64 * 1024;

/// Most bytes a client may send after its request while the stream is open (it has no
/// reason to send any): they are read, counted and dropped, and past this the connection
/// is closed.
const MAX_TRAILING_INPUT: usize = 16 * 1024;

/// Serves the stream on a connection whose request was found to be a plain `GET /sse`; returns when
/// the stream ends (client gone, too slow, shutdown). The connection closes on return.
pub async fn serve<S: Io>(
    app: Arc<App>,
    mut stream: Counted<S>,
    tag: Arc<ConnTag>,
    after: Option<u64>,
    close: bool,
) {
    app.stats.count_request(Endpoint::Sse);
    app.stats.count_path(Path::Direct);
    tag.classify(Class::Sse);
    let follower = Follower::new(&app.hub, after, app.config.ws_queue);
    tag.start_push(follower.cursor);
    let _open = GaugeGuard::new(&app.stats.open_sse);
    tokio::select! {
        res = stream_events(&app, &mut stream, &tag, follower, close) => {
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
fn push_chunk(out: &mut Vec<u8>, frame: &[u8]) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{:X}\r\n", frame.len());
    out.extend_from_slice(frame);
    out.extend_from_slice(b"\r\n");
}

async fn stream_events<S: Io>(
    app: &App,
    stream: &mut Counted<S>,
    tag: &ConnTag,
    mut follower: Follower,
    close: bool,
) -> std::io::Result<()> {
    let mut head_rx = app.hub.subscribe();
    let head = response_head(close || app.shutdown.is_cancelled());
    if !write_all(app, stream, head.as_bytes()).await? {
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
                        tag.pushed(ev.seq);
                        if split {
                            let first = [out.remove(0)];
                            if !write_all(app, stream, &first).await? {
                                return Ok(());
                            }
                        }
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
