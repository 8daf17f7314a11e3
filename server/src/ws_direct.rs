//! `GET /ws` served without hyper, for an upgrade request [`crate::direct`] found plain:
//! the `101` head hyper would write, then the WebSocket on the connection's own task.
//!
//! Why: through hyper a WebSocket costs a second task, hyper's upgrade box, a lock to split
//! the stream into halves and tungstenite's framing of every message for every subscriber.
//! Here an event goes out as the frame it was encoded into once at publish ([`Event::ws`]),
//! written straight to the socket; tungstenite's [`WebSocketContext`] still reads what the
//! client sends (control frames, pings answered, the close handshake, protocol errors,
//! size limits, UTF-8) and writes the control frames. An idle WebSocket then holds one
//! future, the context and a 128-byte read buffer (`scripts/conn-memory.sh`).
//!
//! Invariants:
//! - The bytes on the wire are exactly the hyper path's (`tests/server.rs` compares them):
//!   the same `101` head, the same frames (tungstenite's own header encoder).
//! - Frames never interleave: the context's queued control frames (a pong) go out before a
//!   batch, and the client is read only between batches; a batch half written when the
//!   connection ends is finished (bounded) before the close frame.
//! - Behaviour is the hyper path's (`crate::ws`): a client more than `ws_queue` events
//!   behind is closed with 1013 and counted, protocol errors get 1002, 1007 or 1009,
//!   shutdown 1001, and every goodbye is bounded by a timeout.

use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketContext};
use tokio_tungstenite::tungstenite::Error as WsError;

use futures_util::FutureExt as _;

use crate::app::App;
use crate::direct::{with_date, write_all, write_watching, Io, Watched};
use crate::event::Event;
use crate::fanout::{self, Kind, Registered};
use crate::follow::{Follower, Next};
use crate::stats::{Class, ConnTag, Counted, Endpoint, GaugeGuard, Path};
use crate::ws::{close_frame, on_client_message, End, GOODBYE_TIMEOUT};

/// The context's read buffer. Clients here send only control frames (at most 131 bytes
/// with the header); a larger frame still arrives whole, the buffer growing to hold it.
const READ_BUFFER: usize = 128;

/// Largest write made at once when the stream is behind (a batch of big events).
const WRITE_CHUNK: usize = 64 * 1024;

/// The `101` head, byte for byte what hyper writes for `ws::upgrade`'s response.
fn response_head(accept: &str) -> String {
    with_date(|date| {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\
             sec-websocket-accept: {accept}\r\ndate: {date}\r\n\r\n"
        )
    })
}

/// Serves the WebSocket on a connection whose upgrade request was found plain; returns when
/// it ends. The connection closes on return.
// Not an `async fn`: an async fn keeps its arguments twice in its state.
#[allow(clippy::manual_async_fn)]
pub fn serve<S: Io + 'static>(
    app: Arc<App>,
    stream: Counted<S>,
    tag: Arc<ConnTag>,
    after: Option<u64>,
    accept: String,
) -> impl std::future::Future<Output = ()> + Send {
    // Made here, not in the async block: moving the stream into `Ws` there would keep a
    // second copy of it in the state for the connection's life, which over TLS (rustls'
    // connection inline, about 1.3 KiB) cost 1.7 KiB per WebSocket
    // (`scripts/conn-memory.sh 2000 2 tls`).
    let config = app.ws_config.read_buffer_size(READ_BUFFER);
    let mut ws = Ws {
        reg: None,
        stream,
        ctx: WebSocketContext::new(Role::Server, Some(config)),
        pending: Bytes::new(),
    };
    async move {
        tag.classify(Class::Ws);
        app.stats.count_request(Endpoint::Ws);
        app.stats.count_path(Path::Direct);
        let head = response_head(&accept);
        drop(accept);
        if !matches!(
            write_all(&app, &mut ws.stream, head.as_bytes()).await,
            Ok(true)
        ) {
            return;
        }
        drop(head);
        let _open = GaugeGuard::new(&app.stats.open_ws);
        let end = pump(&app, &mut ws, after).await;
        goodbye(&app, &mut ws, end).await;
    }
}

/// The connection: the socket, tungstenite's context, and what is left of the batch in
/// flight.
struct Ws<S> {
    /// Set while the publisher writes to the socket. First, so that it is dropped (taking
    /// the socket out of the registry) before the socket closes.
    reg: Option<Registered>,
    stream: Counted<S>,
    ctx: WebSocketContext,
    /// Bytes of data frames not yet written (empty between batches).
    pending: Bytes,
}

/// The socket as the blocking `Read + Write` tungstenite wants: `Pending` is `WouldBlock`,
/// with the waker registered.
struct SyncIo<'a, 'b, S> {
    stream: &'a mut Counted<S>,
    cx: &'a mut Context<'b>,
}

fn would_block<T>(p: Poll<io::Result<T>>) -> io::Result<T> {
    match p {
        Poll::Ready(r) => r,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

impl<S: Io> Read for SyncIo<'_, '_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut rb = ReadBuf::new(buf);
        would_block(Pin::new(&mut *self.stream).poll_read(self.cx, &mut rb))?;
        Ok(rb.filled().len())
    }
}

impl<S: Io> Write for SyncIo<'_, '_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        would_block(Pin::new(&mut *self.stream).poll_write(self.cx, buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        would_block(Pin::new(&mut *self.stream).poll_flush(self.cx))
    }
}

/// `Ready` unless the error is `WouldBlock`.
fn ready_unless_blocked<T>(r: Result<T, WsError>) -> Poll<Result<T, WsError>> {
    match r {
        Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        other => Poll::Ready(other),
    }
}

impl<S: Io> Ws<S> {
    /// Writes the context's queued control frames, then `pending`, and flushes.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let mut io = SyncIo {
            stream: &mut self.stream,
            cx,
        };
        std::task::ready!(ready_unless_blocked(self.ctx.flush(&mut io)))?;
        std::task::ready!(write_pending(self, cx))?;
        Pin::new(&mut self.stream)
            .poll_flush(cx)
            .map_err(WsError::Io)
    }

    /// Reads what the client sent until it would block (`Pending`) or the connection
    /// should end (`Ready(end)`); pongs and close replies go out as tungstenite queues them.
    fn poll_read_client(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        loop {
            let mut io = SyncIo {
                stream: &mut self.stream,
                cx,
            };
            match ready_unless_blocked(self.ctx.read(&mut io)) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(msg) => {
                    if let Some(end) = on_client_message(Some(msg)) {
                        return Poll::Ready(end);
                    }
                }
            }
        }
    }
}

/// What woke a waiting connection.
enum Woke {
    /// The head moved: look again.
    Head,
    /// The connection ends.
    End(End),
}

/// Sends events until the connection should end, and says why.
async fn pump<S: Io + 'static>(app: &Arc<App>, ws: &mut Ws<S>, after: Option<u64>) -> End {
    let mut follower = Follower::new(&app.hub, after, app.config.ws_queue);
    let mut head_rx = app.hub.subscribe();
    loop {
        head_rx.borrow_and_update();
        match follower.next(&app.hub) {
            Next::TooSlow { behind } => return End::Slow(behind),
            Next::Send(events) => {
                let mut rest = &events[..];
                while !rest.is_empty() {
                    let (batch, taken) = batch(rest);
                    rest = &rest[taken..];
                    ws.pending = batch;
                    if let Some(end) = write_watched(app, ws, &mut head_rx, &follower).await {
                        return end;
                    }
                }
            }
            Next::Wait => {
                // Plain TCP only: over TLS the task writes (rustls holds the stream).
                if app.config.publisher_writes && ws.stream.tcp().is_some() {
                    match hand_over(app, ws, &mut follower).await {
                        Handover::NotNow => {}
                        Handover::Again => {
                            // What the publisher left unwritten goes out first.
                            if !ws.pending.is_empty() {
                                let write = write_watched(app, ws, &mut head_rx, &follower);
                                if let Some(end) = write.await {
                                    return end;
                                }
                            }
                            continue;
                        }
                        Handover::End(end) => return end,
                    }
                }
                let woke = tokio::select! {
                    biased;
                    _ = app.shutdown.cancelled() => Woke::End(End::Shutdown),
                    changed = head_rx.changed() => match changed {
                        Ok(()) => Woke::Head,
                        // The hub outlives every connection.
                        Err(_) => Woke::End(End::Shutdown),
                    },
                    end = poll_fn(|cx| ws.poll_read_client(cx)) => Woke::End(end),
                };
                if let Woke::End(end) = woke {
                    return end;
                }
            }
        }
    }
}

/// How a spell of publisher writes ended.
enum Handover {
    /// The socket cannot be handed over now (a control frame waits to be written): wait
    /// as a task does.
    NotNow,
    /// The socket is the task's again, with what the publisher left unwritten in
    /// `pending`: write it, then look at the feed again.
    Again,
    /// The connection ends.
    End(End),
}

/// Hands the socket to the publisher while the stream is caught up ([`crate::fanout`]) and
/// waits for the client, shutdown, or the publisher handing it back; then takes it back,
/// with what the publisher left unwritten in `ws.pending`. (The caller writes that: a write
/// here would make this future, and so every WebSocket's, larger.)
async fn hand_over<S: Io + 'static>(
    app: &Arc<App>,
    ws: &mut Ws<S>,
    follower: &mut Follower,
) -> Handover {
    // What the client has sent is read first (pings answered): the wait below only sees
    // new input.
    let read = poll_fn(|cx| Poll::Ready(ws.poll_read_client(cx))).await;
    if let Poll::Ready(end) = read {
        return Handover::End(end);
    }
    // A control frame still queued goes out before the publisher's frames.
    match poll_fn(|cx| Poll::Ready(ws.poll_write_out(cx))).await {
        Poll::Pending => return Handover::NotNow,
        Poll::Ready(Err(e)) => return Handover::End(End::Io(e.to_string())),
        Poll::Ready(Ok(())) => {}
    }
    let Some(tcp) = ws.stream.tcp() else {
        return Handover::NotNow;
    };
    let Some((back, shutdown)) =
        fanout::lend(app, &mut ws.reg, tcp, Kind::Ws, follower.cursor).await
    else {
        // The head moved: catch up first.
        return Handover::Again;
    };
    follower.cursor = back.seq;
    if let Some(e) = back.error {
        return Handover::End(End::Io(e.to_string()));
    }
    ws.pending = back.rest;
    if shutdown {
        // `goodbye` writes the rest before the close frame.
        return Handover::End(End::Shutdown);
    }
    Handover::Again
}

/// The first events of `events` as one buffer of at most about [`WRITE_CHUNK`] bytes (one
/// event is its shared frame, not a copy), and how many it holds.
pub(crate) fn batch(events: &[Event]) -> (Bytes, usize) {
    if events.len() == 1 || events[0].ws.len() >= WRITE_CHUNK {
        return (events[0].ws.clone(), 1);
    }
    let mut out = BytesMut::new();
    let mut taken = 0;
    for ev in events {
        if taken > 0 && out.len() + ev.ws.len() > WRITE_CHUNK {
            break;
        }
        out.extend_from_slice(&ev.ws);
        taken += 1;
    }
    (out.freeze(), taken)
}

/// Writes `ws.pending` while watching the head ([`write_watching`]): `Some(end)` when the
/// connection ends first (too far behind, shutdown, the write stuck past the grace, a
/// socket error).
// Not an `async fn` (its state would hold the arguments besides `write_watching`'s).
fn write_watched<'a, S: Io>(
    app: &'a App,
    ws: &'a mut Ws<S>,
    head_rx: &'a mut watch::Receiver<u64>,
    follower: &'a Follower,
) -> impl std::future::Future<Output = Option<End>> + 'a {
    let write = poll_fn(move |cx| ws.poll_write_out(cx));
    write_watching(app, head_rx, follower, write).map(|watched| match watched {
        Watched::Done { result: Err(e), .. } => Some(End::Io(e.to_string())),
        Watched::Done { shutdown, .. } => shutdown.then_some(End::Shutdown),
        Watched::Slow(behind) => Some(End::Slow(behind)),
        Watched::GaveUp => Some(End::Io("write stuck at shutdown".into())),
    })
}

/// Sends the close frame that `end` calls for (after what is left of the batch in flight)
/// and waits, bounded, for the client's reply.
async fn goodbye<S: Io>(app: &App, ws: &mut Ws<S>, end: End) {
    let Some(frame) = close_frame(app, &end) else {
        return;
    };
    let _ = tokio::time::timeout(GOODBYE_TIMEOUT, async {
        match frame {
            Some(close) => {
                // The rest of the batch goes first, so the close frame follows whole
                // frames; the context writes as it queues.
                if poll_fn(|cx| write_pending(ws, cx)).await.is_err() {
                    return;
                }
                let queued = poll_fn(|cx| {
                    let mut io = SyncIo {
                        stream: &mut ws.stream,
                        cx,
                    };
                    // Queued in the context even when the socket would block.
                    Poll::Ready(match ws.ctx.write(&mut io, close.clone()) {
                        Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
                        other => other,
                    })
                })
                .await;
                if queued.is_err() || poll_fn(|cx| ws.poll_write_out(cx)).await.is_err() {
                    return;
                }
                // Wait for the client's close (or EOF) so the client sees a clean end.
                let _ = poll_fn(|cx| ws.poll_read_client(cx)).await;
            }
            // The client closed: tungstenite has queued the reply close frame.
            None => {
                let _ = poll_fn(|cx| ws.poll_write_out(cx)).await;
            }
        }
    })
    .await;
}

/// Writes what is left of the batch in flight, without the context's frames.
fn write_pending<S: Io>(ws: &mut Ws<S>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    while !ws.pending.is_empty() {
        let n = std::task::ready!(Pin::new(&mut ws.stream).poll_write(cx, &ws.pending))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        bytes::Buf::advance(&mut ws.pending, n);
    }
    Poll::Ready(Ok(()))
}
