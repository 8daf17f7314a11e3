//! What short-poll and long-poll share: a counted keep-alive connection, the subscribe
//! request, and applying a poll answer to the client's accounting.

use tokio::io::AsyncWriteExt;

use crate::client::{ClientState, OpenGuard};
use crate::client_io::ClientIo;
use crate::clock::unix_nanos;
use crate::event::read_answer;
pub use crate::event::Answer;
use crate::http::{HttpConn, Response};

/// An open HTTP connection of a polling client.
#[derive(Debug)]
pub struct PollConn<'g> {
    /// The connection.
    pub http: HttpConn<ClientIo>,
    _open: OpenGuard<'g>,
}

impl<'g> PollConn<'g> {
    /// Wraps an HTTP connection and its open-connection guard.
    pub fn new(http: HttpConn<ClientIo>, open: OpenGuard<'g>) -> Self {
        Self { http, _open: open }
    }

    /// The connection and its open-connection guard, apart.
    pub fn into_parts(self) -> (HttpConn<ClientIo>, OpenGuard<'g>) {
        (self.http, self._open)
    }
}

/// Connects; `None` if it failed (already counted). The connection is in setup mode when
/// `setup` (the client's first connection), else its bytes, a TLS handshake included, are
/// steady state.
pub async fn open<'g>(st: &ClientState<'g>, setup: bool) -> Option<PollConn<'g>> {
    let (stream, guard, started) = st.connect_io(setup).await?;
    st.connected(started);
    Some(PollConn {
        http: HttpConn::new(stream, &st.ctx().target.host),
        _open: guard,
    })
}

/// Ends a connection politely so both sides count the same bytes: half-close, read what
/// the server still sends until it closes (bounded), then account the bytes. Over TLS, when
/// the server said it closes, the client reads its close_notify and end of stream and sends
/// none of its own: the server, gone by then, would never read (nor count) it.
pub async fn close(st: &ClientState<'_>, mut conn: PollConn<'_>) {
    let drain = async {
        if !(conn.http.stream().is_tls() && conn.http.peer_closes()) {
            conn.http.stream_mut().shutdown().await.ok()?;
        }
        while conn.http.read_more().await.ok()? > 0 {
            // A response to a request the server was still holding lands here; it is
            // counted but no longer accounted as events.
            conn.http.buffered().clear();
        }
        Some(())
    };
    let _ = tokio::time::timeout(st.goodbye_timeout(), drain).await;
    st.add_bytes(&conn.http.stream().counts());
}

/// Drops a broken connection, keeping its byte counts.
pub fn discard(st: &ClientState<'_>, conn: PollConn<'_>) {
    st.add_bytes(&conn.http.stream().counts());
}

/// Applies a `200` poll answer: accounts every event at the response's receive time.
/// Returns the error kind if the body is not a poll answer.
pub fn apply_answer(st: &mut ClientState<'_>, resp: &Response) -> Result<Answer, &'static str> {
    let answer = read_answer(&resp.body, |ev, json_len| {
        st.on_event(ev, json_len, resp.recv_ns)
    })?;
    if answer.missed > 0 {
        st.with_stats(|g| g.server_missed += answer.missed);
    }
    Ok(answer)
}

/// Sends `GET /poll` without a cursor to learn the feed head (the setup exchange) and ends
/// setup on success. Returns the head seq.
pub async fn subscribe(
    st: &mut ClientState<'_>,
    conn: &mut PollConn<'_>,
    extra_headers: &str,
) -> Result<u64, String> {
    st.with_stats(|g| g.requests_total += 1);
    let resp = conn
        .http
        .get("/poll", extra_headers)
        .await
        .map_err(|e| e.kind().to_string())?;
    if resp.head.status != 200 {
        return Err(format!("http_{}", resp.head.status));
    }
    let answer = apply_answer(st, &resp).map_err(str::to_string)?;
    conn.http.stream_mut().end_setup();
    Ok(answer.next)
}

/// Whether `unix_nanos()` now is in the window (request accounting).
pub fn now_in_window(st: &ClientState<'_>) -> bool {
    st.ctx().window.contains(unix_nanos())
}
