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

use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{client_async_with_config, WebSocketStream};

use crate::client::{backoff, unless_stopped, ClientState};
use crate::client_io::ClientIo;
use crate::event::parse_event;
use crate::http::io_error_kind;

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
            r = tokio::time::timeout(HANDSHAKE_TIMEOUT, client_async_with_config(url, stream, Some(ws_config(ctx.params.payload_bytes)))) => r,
        };
        let mut ws = match handshake {
            Ok(Ok((ws, _response))) => ws,
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
        ws.get_mut().end_setup();
        failures = 0;
        match read_events(st, &mut ws).await {
            End::Stopped => {
                let _ = tokio::time::timeout(st.goodbye_timeout(), say_goodbye(&mut ws)).await;
                st.add_bytes(&ws.get_ref().counts());
                break;
            }
            End::Lost(kind) => {
                st.error(&kind);
                // Finish the close handshake the server started so both sides count it.
                let _ = tokio::time::timeout(st.goodbye_timeout(), read_to_end(&mut ws)).await;
                st.add_bytes(&ws.get_ref().counts());
                failures += 1;
            }
        }
    }
}

async fn read_events(st: &mut ClientState<'_>, ws: &mut Ws) -> End {
    read_messages(st, ws, |ws| ws.get_ref().last_read_ns()).await
}

/// Reads events from `ws` until stopped or lost; `recv_ns` gives the receive time of the
/// message just read (the latest socket read of the connection that carried it).
pub(crate) async fn read_messages<S>(
    st: &mut ClientState<'_>,
    ws: &mut WebSocketStream<S>,
    recv_ns: impl Fn(&WebSocketStream<S>) -> u64,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ctx = st.ctx();
    let stop = ctx.stop.cancelled();
    tokio::pin!(stop);
    loop {
        let Some(msg) = unless_stopped(ctx, stop.as_mut(), ws.next()).await else {
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
