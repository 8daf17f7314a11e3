//! WebSocket over HTTP/2 (RFC 8441): the same client as [`crate::ws`], its frames carried
//! in the DATA of an extended-CONNECT stream on the client's group connection.
//!
//! [`Tunnel`] makes the stream an `AsyncRead + AsyncWrite` for tokio-tungstenite, counting
//! DATA both ways (so the split tells the ws frame headers, `framing`, from HTTP/2's frames,
//! `h2`) and releasing flow-control capacity as it reads. The CONNECT and its `200` are
//! setup, as the HTTP/1.1 upgrade is. A message's receive time is the connection's latest
//! socket read. A tunnel that drops is re-opened with `?after=CURSOR` on the same
//! connection unless the connection itself ended.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use super::{acquire, release, H2Pool, Member};
use crate::client::{backoff, ClientState};
use crate::counting::ConnCounters;
use crate::ws::{read_messages, read_to_end, say_goodbye, ws_config, End};

/// How long the CONNECT may take to be answered.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// An extended-CONNECT stream as a byte stream.
pub struct Tunnel {
    send: ::h2::SendStream<Bytes>,
    recv: ::h2::RecvStream,
    counters: Arc<ConnCounters>,
    /// The unread rest of the latest DATA chunk.
    pending: Bytes,
    /// END_STREAM sent.
    closed: bool,
}

impl Tunnel {
    /// The stream's two halves, counting DATA into `counters` (the connection's).
    pub fn new(
        send: ::h2::SendStream<Bytes>,
        recv: ::h2::RecvStream,
        counters: Arc<ConnCounters>,
    ) -> Self {
        Self {
            send,
            recv,
            counters,
            pending: Bytes::new(),
            closed: false,
        }
    }
}

fn io_error(e: ::h2::Error) -> io::Error {
    match e.into_io() {
        Some(io) => io,
        None => io::Error::new(io::ErrorKind::ConnectionReset, "http/2 stream failed"),
    }
}

impl AsyncRead for Tunnel {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pending.is_empty() {
            match ready!(this.recv.poll_data(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
                Some(Ok(chunk)) => {
                    let _ = this.recv.flow_control().release_capacity(chunk.len());
                    this.counters.count_data_down(chunk.len() as u64);
                    this.pending = chunk;
                }
            }
        }
        let n = this.pending.len().min(buf.remaining());
        buf.put_slice(&this.pending[..n]);
        this.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Tunnel {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Capacity left from an earlier reservation is used first: `poll_capacity` only
        // reports increases.
        let mut cap = this.send.capacity();
        if cap == 0 {
            this.send.reserve_capacity(buf.len());
            cap = match ready!(this.send.poll_capacity(cx)) {
                None => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
                Some(Ok(cap)) => cap,
            };
            if cap == 0 {
                // Woken without capacity: ask to be woken again.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        let n = cap.min(buf.len());
        this.send
            .send_data(Bytes::copy_from_slice(&buf[..n]), false)
            .map_err(io_error)?;
        this.counters.count_data_up(n as u64);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The connection's task writes the frames out.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.closed {
            this.closed = true;
            let _ = this.send.send_data(Bytes::new(), true);
        }
        Poll::Ready(Ok(()))
    }
}

type Ws = WebSocketStream<Tunnel>;

/// Runs one WebSocket client over HTTP/2 until stopped.
pub async fn run(st: &mut ClientState<'_>, pool: &H2Pool) {
    let ctx = st.ctx();
    let mut member: Option<Member> = None;
    let mut failures = 0u32;
    while !ctx.stop.is_cancelled() {
        if failures > 0 && !backoff(ctx, failures).await {
            break;
        }
        if member.is_none() {
            member = acquire(st, pool, true).await;
            if member.is_none() {
                failures += 1;
                continue;
            }
        }
        let Some(m) = member.as_mut() else { continue };
        let mut ws = match open(st, m).await {
            Ok(Some(ws)) => ws,
            Ok(None) => break,
            Err(kind) => {
                st.error(&kind);
                failures += 1;
                leave_if_ended(st, pool, &mut member).await;
                continue;
            }
        };
        failures = 0;
        let goodbye = st.goodbye_timeout();
        match read_events(st, m, &mut ws).await {
            End::Stopped => {
                let _ = tokio::time::timeout(goodbye, say_goodbye(&mut ws)).await;
                break;
            }
            End::Lost(kind) => {
                st.error(&kind);
                let _ = tokio::time::timeout(goodbye, read_to_end(&mut ws)).await;
                failures += 1;
                drop(ws);
                leave_if_ended(st, pool, &mut member).await;
            }
        }
    }
    if let Some(m) = member {
        release(st, pool, m).await;
    }
}

async fn leave_if_ended(st: &ClientState<'_>, pool: &H2Pool, member: &mut Option<Member>) {
    if member.as_ref().is_some_and(|m| m.conn.is_ended()) {
        if let Some(m) = member.take() {
            release(st, pool, m).await;
        }
    }
}

/// Opens the tunnel (`CONNECT /ws` with `:protocol websocket`); `Ok(None)` if stopped.
async fn open(st: &ClientState<'_>, m: &mut Member) -> Result<Option<Ws>, String> {
    let ctx = st.ctx();
    let path = match st.highest() {
        0 => "/ws".to_string(),
        after => format!("/ws?after={after}"),
    };
    let headers = [("sec-websocket-version", "13")];
    let opened = tokio::select! {
        _ = ctx.stop.cancelled() => return Ok(None),
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, m.conn.open_tunnel(&path, "websocket", &headers)) => r,
    };
    let (status, send, recv) = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(e)) => return Err(e.kind().to_string()),
        Err(_) => return Err("handshake_timeout".into()),
    };
    if status != 200 {
        return Err(format!("http_{status}"));
    }
    m.conn.end_setup();
    let tunnel = Tunnel::new(send, recv, m.conn.counters());
    Ok(Some(
        WebSocketStream::from_raw_socket(
            tunnel,
            Role::Client,
            Some(ws_config(ctx.params.payload_bytes)),
        )
        .await,
    ))
}

async fn read_events(st: &mut ClientState<'_>, m: &Member, ws: &mut Ws) -> End {
    read_messages(st, ws, |_| m.conn.last_read_ns(), false).await
}
