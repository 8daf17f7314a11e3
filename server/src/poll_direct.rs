//! `GET /poll` and `GET /longpoll` answered straight to the socket, for requests
//! [`crate::direct`] found plain; the connection then goes back to waiting for its next
//! request, holding no buffer in between.
//!
//! The answer is the one `poll::short_poll` / `poll::long_poll` give through hyper, byte for
//! byte. A parked long-poll watches its own socket: a client that closes (or resets) while
//! parked ends it at once, so a vanished client leaves no waiter, as on the hyper path. At
//! shutdown a parked long-poll is answered (no events) and the connection closed.

use std::sync::Arc;

use bytes::Bytes;
use tokio::net::TcpStream;

use crate::app::App;
use crate::direct::{json_head, write_all};
use crate::poll::{self, PollParams};
use crate::stats::{Class, ConnTag, Counted, Endpoint, GaugeGuard};

/// Bodies up to this size are sent with their head in one write.
const ONE_WRITE: usize = 64 * 1024;

/// Answers one request (already read). Returns whether the connection may carry another.
pub async fn answer(
    app: &Arc<App>,
    stream: &mut Counted<TcpStream>,
    tag: &ConnTag,
    long: bool,
    params: PollParams,
) -> bool {
    let (endpoint, class) = if long {
        (Endpoint::LongPoll, Class::LongPoll)
    } else {
        (Endpoint::Poll, Class::ShortPoll)
    };
    tag.classify(class);
    app.stats.count_request(endpoint);
    let body = if long {
        match long_poll(app, stream.get_ref(), params).await {
            Some(body) => body,
            // The client left while parked.
            None => return false,
        }
    } else {
        poll::short_poll_body(app, &params)
    };
    // Active (not parked) while the answer is written.
    let _active = GaugeGuard::new(&app.stats.http_active);
    let head = json_head(body.len());
    let written = if body.len() <= ONE_WRITE {
        let mut out = Vec::with_capacity(head.len() + body.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&body);
        write_all(app, stream, &out).await
    } else {
        match write_all(app, stream, head.as_bytes()).await {
            Ok(true) => write_all(app, stream, &body).await,
            other => other,
        }
    };
    // At shutdown the connection closes after its answer, as hyper's graceful shutdown does.
    matches!(written, Ok(true)) && !app.shutdown.is_cancelled()
}

/// Waits as `poll::long_poll` does, and also for the client to leave (`None`).
async fn long_poll(app: &App, socket: &TcpStream, p: PollParams) -> Option<Bytes> {
    let mut head_rx = app.hub.subscribe();
    let after = p.after.unwrap_or_else(|| *head_rx.borrow_and_update());
    if app.hub.head() <= after && !p.timeout.is_zero() {
        let _parked = GaugeGuard::new(&app.stats.parked);
        tokio::select! {
            _ = head_rx.wait_for(|head| *head > after) => {}
            _ = tokio::time::sleep(p.timeout) => {}
            _ = app.shutdown.cancelled() => {}
            () = client_gone(socket) => return None,
        }
    }
    Some(poll::encode_body(
        &app.hub.read_after(after, p.limit),
        after,
    ))
}

/// Resolves when the peer closes or resets the connection. Bytes it sends meanwhile (a
/// pipelined request) stay in the socket for later, and the watch stops: only EOF or an
/// error means gone.
async fn client_gone(socket: &TcpStream) {
    let mut probe = [0u8; 1];
    match socket.peek(&mut probe).await {
        Ok(0) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}
