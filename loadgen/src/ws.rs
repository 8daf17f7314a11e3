//! The WebSocket client: one connection per client, reading one text message per event.
//!
//! tokio-tungstenite runs over the client's [`ClientIo`] (a counted socket, or TLS over one:
//! `wss`), so frame headers, the handshakes and the close handshake are all counted. Writes
//! are not buffered (`write_buffer_size` 0), so over TLS every message is one `write` and
//! one TLS record. Buffers are small
//! and set explicitly: thousands of clients each reading ~100-byte messages do not need
//! tungstenite's 128 KiB defaults, and writes (close and pong frames only) go out at once.
//! A message's receive time is the time of the read that completed it. A connection that
//! drops is re-opened with `?after=CURSOR`, so the server replays what the client missed.

use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{client_async_with_config, WebSocketStream};

use crate::client::{backoff, unless_stopped, ClientState};
use crate::client_io::ClientIo;
use crate::counting::CountingStream;
use crate::event::parse_event;
use crate::http::io_error_kind;
use crate::receive_loop::{Lent, ReceiveLoops, Why};

/// How long the upgrade may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

type Ws = WebSocketStream<ClientIo>;

/// The client's WebSocket configuration for a feed of `payload_bytes` payloads.
///
/// The read buffer holds one event's message (payload, JSON head and frame header) with
/// room to spare, between 512 B and 64 KiB. tungstenite zero-fills the free part of it
/// (up to this size) before every read attempt, two per event (the second finds nothing),
/// and each client's buffer is its own, so at 10,000 clients these are cache misses: a
/// fixed 4 KiB cost 7.8% of the load generator's samples at 64-byte payloads (`perf
/// record` on `feedbench load --transport ws --clients 10000 --rate 1`). A message larger
/// than the buffer still arrives, in several reads.
pub fn ws_config(payload_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(read_buffer_size(payload_bytes))
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20))
}

/// [`ws_config`]'s read buffer for `payload_bytes` payloads: a power of two at least
/// the payload plus 256 bytes (the event's JSON head and the frame header), 512 B to 64 KiB.
fn read_buffer_size(payload_bytes: usize) -> usize {
    payload_bytes
        .saturating_add(256)
        .min(64 * 1024)
        .next_power_of_two()
        .max(512)
}

/// A short stable name for a WebSocket error.
pub fn ws_error_kind(e: &WsError) -> String {
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => "closed".into(),
        WsError::Io(e) => io_error_kind(e).into(),
        WsError::Http(resp) => format!("http_{}", resp.status().as_u16()),
        WsError::Protocol(_) => "ws_protocol".into(),
        WsError::Capacity(_) => "ws_capacity".into(),
        WsError::Utf8(_) => "ws_utf8".into(),
        _ => "ws_other".into(),
    }
}

/// How a connection's read loop ended (over HTTP/1.1 here and over HTTP/2 in `h2::ws`).
pub(crate) enum End {
    /// The run is over: say goodbye.
    Stopped,
    /// The connection failed; the error kind.
    Lost(String),
}

/// Runs one WebSocket client until stopped.
pub async fn run(st: &mut ClientState<'_>) {
    let ctx = st.ctx();
    if let Some(pool) = &ctx.h2 {
        // RFC 8441: the same client over an extended-CONNECT stream.
        return crate::h2::ws::run(st, pool).await;
    }
    let mut failures = 0u32;
    while !ctx.stop.is_cancelled() {
        if failures > 0 && !backoff(ctx, failures).await {
            break;
        }
        let Some((stream, _open, started)) = st.connect_io(true).await else {
            failures += 1;
            continue;
        };
        let scheme = if stream.is_tls() { "wss" } else { "ws" };
        let url = match st.highest() {
            0 => format!("{scheme}://{}/ws", ctx.target.host),
            after => format!("{scheme}://{}/ws?after={after}", ctx.target.host),
        };
        let handshake = tokio::select! {
            _ = ctx.stop.cancelled() => break,
            r = tokio::time::timeout(HANDSHAKE_TIMEOUT, client_async_with_config(url, SetupTee::new(stream), Some(ws_config(ctx.params.payload_bytes)))) => r,
        };
        let tee = match handshake {
            Ok(Ok((ws, _response))) => ws.into_inner(),
            Ok(Err(e)) => {
                st.error(&ws_error_kind(&e));
                failures += 1;
                continue;
            }
            Err(_) => {
                st.error("handshake_timeout");
                failures += 1;
                continue;
            }
        };
        st.connected(started);
        let counters = tee.inner.counters();
        let Some(part) = past_head(&tee.read) else {
            // tungstenite took this head; its own parser cannot refuse it.
            st.error("ws_upgrade_unparsed");
            st.add_bytes(&counters.counts());
            failures += 1;
            continue;
        };
        tee.inner.end_setup();
        failures = 0;
        let (end, ws) = receive_events(st, tee.inner, part).await;
        match end {
            End::Stopped => {
                if let Some(mut ws) = ws {
                    let _ = tokio::time::timeout(st.goodbye_timeout(), say_goodbye(&mut ws)).await;
                }
                st.add_bytes(&counters.counts());
                break;
            }
            End::Lost(kind) => {
                st.error(&kind);
                // Finish the close handshake the server started so both sides count it.
                if let Some(mut ws) = ws {
                    let _ = tokio::time::timeout(st.goodbye_timeout(), read_to_end(&mut ws)).await;
                }
                st.add_bytes(&counters.counts());
                failures += 1;
            }
        }
    }
}

/// Receives events on an upgraded connection until stopped or lost: lent to the scenario's
/// receive loop when it has one and the socket is plain, else through tungstenite. `part`
/// is what the upgrade read past the response head. Gives the connection back as a
/// tungstenite stream for the goodbye (`None` if the socket could not be given back).
async fn receive_events(
    st: &mut ClientState<'_>,
    io: ClientIo,
    part: Vec<u8>,
) -> (End, Option<Ws>) {
    let ctx = st.ctx();
    let io = match (io, &ctx.receive_loops) {
        (ClientIo::Plain(stream), Some(receivers)) => {
            return receive_lent(st, receivers, stream, part).await
        }
        (io, _) => io,
    };
    let mut ws = resume(io, part, ctx.params.payload_bytes).await;
    (read_events(st, &mut ws, false).await, Some(ws))
}

/// Lends the socket to the receive loop and waits for it to come back; reads on with
/// tungstenite when the loop gives it back at a frame it does not take.
async fn receive_lent(
    st: &mut ClientState<'_>,
    receivers: &ReceiveLoops,
    stream: CountingStream<TcpStream>,
    part: Vec<u8>,
) -> (End, Option<Ws>) {
    let back = match receivers.lend_socket(st, stream, part, Lent::Ws).await {
        Ok(back) => back,
        Err((kind, _)) => return (End::Lost(kind), None),
    };
    let io = ClientIo::Plain(back.stream);
    let mut ws = resume(io, back.part, st.ctx().params.payload_bytes).await;
    let end = match back.why {
        Why::Stopped => End::Stopped,
        Why::Lost(kind) => End::Lost(kind),
        // What tungstenite says of a stream that ends outside the close handshake, with at
        // most part of a frame unread.
        Why::Ended => End::Lost(ws_error_kind(&WsError::Protocol(
            ProtocolError::ResetWithoutClosingHandshake,
        ))),
        // The loop stopped at a frame, or has ended: what a client reading its own socket
        // would have met before any stop that came since.
        Why::Resume => read_events(st, &mut ws, true).await,
    };
    (end, Some(ws))
}

/// tungstenite on an upgraded connection, starting with `part` (bytes read, not parsed).
async fn resume(io: ClientIo, part: Vec<u8>, payload_bytes: usize) -> Ws {
    WebSocketStream::from_partially_read(io, part, Role::Client, Some(ws_config(payload_bytes)))
        .await
}

/// What the upgrade read past the response head: the bytes tungstenite kept for the frames
/// (the first events, when they came in the same read). Parsed as tungstenite parses the
/// head (httparse, up to 124 headers); `None` if the head is not whole.
fn past_head(read: &[u8]) -> Option<Vec<u8>> {
    let mut headers = [httparse::EMPTY_HEADER; 124];
    match httparse::Response::new(&mut headers).parse(read) {
        Ok(httparse::Status::Complete(n)) => Some(read[n..].to_vec()),
        _ => None,
    }
}

/// A stream that keeps a copy of everything read through it. It wraps the socket for the
/// upgrade only, so the bytes tungstenite read past the response head can go with the socket
/// wherever it goes next (tungstenite keeps them to itself). tungstenite reads the head in
/// chunks and stops at its end, so the copy is the head and at most one chunk more.
struct SetupTee<S> {
    inner: S,
    read: Vec<u8>,
}

impl<S> SetupTee<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            read: Vec::new(),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SetupTee<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        this.read.extend_from_slice(&buf.filled()[before..]);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SetupTee<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn read_events(st: &mut ClientState<'_>, ws: &mut Ws, due: bool) -> End {
    read_messages(st, ws, |ws| ws.get_ref().last_read_ns(), due).await
}

/// Reads events from `ws` until stopped or lost; `recv_ns` gives the receive time of the
/// message just read (the latest socket read of the connection that carried it). With
/// `due`, the first message (or the end of the stream) is already read and waiting: it is
/// taken even if the run has stopped since, so a connection the server dropped counts as
/// lost, not stopped.
pub(crate) async fn read_messages<S>(
    st: &mut ClientState<'_>,
    ws: &mut WebSocketStream<S>,
    recv_ns: impl Fn(&WebSocketStream<S>) -> u64,
    mut due: bool,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ctx = st.ctx();
    let stop = ctx.stop.cancelled();
    tokio::pin!(stop);
    loop {
        let next = match std::mem::take(&mut due) {
            // Polled before the stop, which it does not wait for when the message is there.
            true => tokio::select! {
                biased;
                msg = ws.next() => Some(msg),
                _ = stop.as_mut() => None,
            },
            false => unless_stopped(ctx, stop.as_mut(), ws.next()).await,
        };
        let Some(msg) = next else {
            return End::Stopped;
        };
        let json: &[u8] = match &msg {
            Some(Ok(Message::Text(t))) => t.as_bytes(),
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(Message::Close(frame))) => {
                let code = frame.as_ref().map_or(1005, |f| u16::from(f.code));
                return End::Lost(format!("ws_close_{code}"));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return End::Lost(ws_error_kind(e)),
            None => return End::Lost("closed".into()),
        };
        let recv_ns = recv_ns(ws);
        match parse_event(json) {
            Ok(ev) => st.on_event(ev, json.len(), recv_ns),
            Err(_) => st.error("bad_event"),
        }
    }
}

/// Sends a close frame and reads until the server's close and end of stream.
pub(crate) async fn say_goodbye<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) {
    if ws.close(None).await.is_ok() {
        read_to_end(ws).await;
    }
}

/// Reads (and drops) messages until the stream ends or fails.
pub(crate) async fn read_to_end<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) {
    while let Some(Ok(_)) = ws.next().await {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`Why::Ended`] stands for: tungstenite, given the start of a frame and then the
    /// end of the stream (and given nothing and then the end), reports a reset without
    /// closing handshake.
    #[tokio::test]
    async fn a_stream_that_ends_part_way_is_a_reset_for_tungstenite() {
        for part in [&[0x81u8, 0x05, b'h'][..], &[]] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let client = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (server, _) = listener.accept().await.unwrap();
            drop(server);
            let window = std::sync::Arc::new(crate::counting::Window::new());
            let io = ClientIo::Plain(CountingStream::new(client, window));
            let mut ws = resume(io, part.to_vec(), 64).await;
            let e = ws.next().await.unwrap().unwrap_err();
            assert!(
                matches!(
                    e,
                    WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)
                ),
                "{e:?}"
            );
            assert_eq!(ws_error_kind(&e), "ws_protocol");
        }
    }

    #[test]
    fn the_read_buffer_holds_one_event_message() {
        // 64-byte payloads: a ~112-byte message, the 512-byte floor.
        assert_eq!(read_buffer_size(64), 512);
        assert_eq!(read_buffer_size(256), 512);
        assert_eq!(read_buffer_size(257), 1024);
        // 1 KiB payloads: 1,024 + head + header fits 2 KiB.
        assert_eq!(read_buffer_size(1024), 2048);
        assert_eq!(ws_config(1024).read_buffer_size, 2048);
        // Capped, and no overflow.
        assert_eq!(read_buffer_size(1 << 20), 64 * 1024);
        assert_eq!(read_buffer_size(usize::MAX), 64 * 1024);
    }
}
