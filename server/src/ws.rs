//! `GET /ws`: the WebSocket transport (RFC 6455).
//!
//! One text message per event, the event JSON as it is in the ring (shared bytes). With
//! `?after=SEQ` the retained events after it are replayed first. Pings are answered (by
//! tungstenite, flushed with the next write); client data messages are read and ignored.
//! A connection more than `ws_queue` events behind the head is closed with 1013 "slow
//! consumer" and counted; a client that breaks the protocol gets 1002, 1007 or 1009; at
//! shutdown every socket gets 1001. Every goodbye write is bounded by a timeout, because a
//! slow consumer's socket may never drain.
//!
//! After the upgrade hyper no longer watches the connection, so the task selects on the
//! server's shutdown token itself and runs under the server's `TaskTracker`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use http::header::{
    HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION,
    UPGRADE,
};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::app::App;
use crate::event::Event;
use crate::follow::{Follower, Next};
use crate::query::Query;
use crate::respond::{self, Body};
use crate::stats::GaugeGuard;

type Ws = WebSocketStream<TokioIo<Upgraded>>;
type Sink = SplitSink<Ws, Message>;
type Stream = SplitStream<Ws>;

/// How long a goodbye (close frame, closing handshake) may take.
pub(crate) const GOODBYE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a WebSocket ends.
#[derive(Debug)]
pub(crate) enum End {
    /// The client sent a close frame or went away.
    ClientClosed,
    /// Fell more than the queue behind the head.
    Slow(u64),
    /// The server is shutting down.
    Shutdown,
    /// The client broke the protocol; close with this code.
    Protocol(CloseCode, String),
    /// The socket failed.
    Io(String),
}

/// Checks a WebSocket upgrade request and returns the `Sec-WebSocket-Accept` value.
pub fn check_upgrade<B>(req: &Request<B>) -> Result<String, String> {
    let h = req.headers();
    if req.version() != Version::HTTP_11 {
        return Err("a WebSocket upgrade needs HTTP/1.1".into());
    }
    let has_token = |name, token: &str| {
        h.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(CONNECTION, "upgrade") {
        return Err("not a WebSocket upgrade: Connection header lacks 'upgrade'".into());
    }
    if !has_token(UPGRADE, "websocket") {
        return Err("not a WebSocket upgrade: Upgrade header is not 'websocket'".into());
    }
    if h.get(SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
        return Err("Sec-WebSocket-Version must be 13".into());
    }
    let key = h
        .get(SEC_WEBSOCKET_KEY)
        .ok_or("Sec-WebSocket-Key header missing")?
        .as_bytes();
    // A valid key is 16 random bytes in base64: 22 characters and "==".
    let valid = key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/');
    if !valid {
        return Err("Sec-WebSocket-Key is not 16 bytes of base64".into());
    }
    Ok(derive_accept_key(key))
}

/// Checks an HTTP/2 request for a WebSocket: an extended CONNECT (RFC 8441) with
/// `:protocol = websocket` and version 13.
pub fn check_h2_connect<B>(req: &Request<B>) -> Result<(), String> {
    let protocol = req.extensions().get::<hyper::ext::Protocol>();
    if req.method() != Method::CONNECT || protocol.is_none() {
        return Err(format!(
            "a WebSocket over HTTP/2 needs an extended CONNECT with :protocol websocket \
             (RFC 8441), got {} without it; or use HTTP/1.1",
            req.method()
        ));
    }
    if protocol.is_some_and(|p| !p.as_str().eq_ignore_ascii_case("websocket")) {
        return Err("extended CONNECT to /ws needs :protocol websocket".into());
    }
    if req
        .headers()
        .get(SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err("Sec-WebSocket-Version must be 13".into());
    }
    Ok(())
}

/// Handles `/ws`: a `GET` upgrade over HTTP/1.1 (101) or an extended CONNECT over HTTP/2
/// (200); spawns the connection's task, or answers a 4xx with a JSON body.
pub fn upgrade<B: Send + 'static>(app: &Arc<App>, mut req: Request<B>) -> Response<Body> {
    let after = match Query::parse(req.uri().query(), &["after"])
        .and_then(|q| q.u64_in("after", 0, u64::MAX))
    {
        Ok(a) => a,
        Err(msg) => return respond::error(StatusCode::BAD_REQUEST, msg),
    };
    let h2 = req.version() == Version::HTTP_2;
    if h2 {
        if let Err(msg) = check_h2_connect(&req) {
            let mut resp = respond::error(StatusCode::BAD_REQUEST, msg);
            resp.headers_mut()
                .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            return resp;
        }
    } else if req.method() != Method::GET {
        return respond::method_not_allowed("GET");
    }
    let accept = match if h2 {
        Ok(String::new())
    } else {
        check_upgrade(&req)
    } {
        Ok(a) => a,
        Err(msg) => {
            let mut resp = respond::error(StatusCode::BAD_REQUEST, msg);
            resp.headers_mut()
                .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            return resp;
        }
    };
    if let Some(a) = after.filter(|a| *a > app.hub.head()) {
        return respond::error(
            StatusCode::BAD_REQUEST,
            format!(
                "after ({a}) is ahead of the newest event ({})",
                app.hub.head()
            ),
        );
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let task_app = app.clone();
    app.tracker.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => serve(task_app, upgraded, after).await,
            Err(e) => tracing::debug!("websocket upgrade failed: {e}"),
        }
    });
    let mut resp = Response::new(respond::full(""));
    if h2 {
        // RFC 8441 section 5: a 2xx accepts the tunnel; no accept key, no upgrade headers.
        return resp;
    }
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

async fn serve(app: Arc<App>, upgraded: Upgraded, after: Option<u64>) {
    let ws =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(app.ws_config))
            .await;
    let _open = GaugeGuard::new(&app.stats.open_ws);
    let (mut sink, mut stream) = ws.split();
    let end = pump(&app, &mut sink, &mut stream, after).await;
    goodbye(&app, sink, stream, end).await;
}

/// Sends events until the connection should end, and says why.
async fn pump(app: &App, sink: &mut Sink, stream: &mut Stream, after: Option<u64>) -> End {
    let mut follower = Follower::new(&app.hub, after, app.config.ws_queue);
    let mut head_rx = app.hub.subscribe();
    loop {
        head_rx.borrow_and_update();
        let events = match follower.next(&app.hub) {
            Next::TooSlow { behind } => return End::Slow(behind),
            Next::Send(events) => events,
            Next::Wait => {
                tokio::select! {
                    biased;
                    _ = app.shutdown.cancelled() => return End::Shutdown,
                    _ = head_rx.changed() => continue,
                    msg = stream.next() => {
                        if let Some(end) = on_client_message(msg) {
                            return end;
                        }
                        // A ping's pong is queued inside tungstenite; push it out now.
                        if let Err(e) = sink.flush().await {
                            return End::Io(e.to_string());
                        }
                        continue;
                    }
                }
            }
        };
        let write = send_batch(sink, events);
        tokio::pin!(write);
        loop {
            tokio::select! {
                biased;
                res = &mut write => match res {
                    Ok(()) => break,
                    Err(e) => return End::Io(e.to_string()),
                },
                _ = app.shutdown.cancelled() => return End::Shutdown,
                _ = head_rx.changed() => {
                    // Still writing the last batch while the feed moves on: is the client
                    // keeping up?
                    let behind = follower.behind(&app.hub);
                    if behind > follower.queue {
                        return End::Slow(behind);
                    }
                }
                msg = stream.next() => {
                    // Pongs go out with the batch being written.
                    if let Some(end) = on_client_message(msg) {
                        return end;
                    }
                }
            }
        }
    }
}

async fn send_batch(sink: &mut Sink, events: Vec<Event>) -> Result<(), WsError> {
    for ev in events {
        sink.feed(Message::Text(ev.json_text())).await?;
    }
    sink.flush().await
}

/// Decides what a message (or error) from the client means for the connection.
pub(crate) fn on_client_message(msg: Option<Result<Message, WsError>>) -> Option<End> {
    match msg {
        None | Some(Ok(Message::Close(_))) => Some(End::ClientClosed),
        Some(Ok(_)) => None,
        Some(Err(e)) => Some(match e {
            WsError::ConnectionClosed | WsError::AlreadyClosed => End::ClientClosed,
            WsError::Capacity(c) => End::Protocol(CloseCode::Size, c.to_string()),
            WsError::Utf8(_) => {
                End::Protocol(CloseCode::Invalid, "invalid UTF-8 in a text message".into())
            }
            WsError::Protocol(p) => End::Protocol(CloseCode::Protocol, p.to_string()),
            other => End::Io(other.to_string()),
        }),
    }
}

/// The close message that `end` calls for, counting slow consumers and protocol errors:
/// `None` for no goodbye at all (the socket failed), `Some(None)` when the client closed
/// (tungstenite has queued the reply), else the close frame to send.
pub(crate) fn close_frame(app: &App, end: &End) -> Option<Option<Message>> {
    use std::sync::atomic::Ordering::Relaxed;
    let frame = match end {
        End::Slow(behind) => {
            app.stats.slow_ws.fetch_add(1, Relaxed);
            tracing::debug!(behind, "closing slow websocket consumer");
            Some((CloseCode::Again, "slow consumer".to_string()))
        }
        End::Shutdown => Some((CloseCode::Away, "server shutting down".to_string())),
        End::Protocol(code, why) => {
            app.stats.ws_protocol_errors.fetch_add(1, Relaxed);
            tracing::debug!("websocket protocol error: {why}");
            let mut reason = why.clone();
            reason.truncate(120);
            Some((*code, reason))
        }
        End::ClientClosed => None,
        End::Io(e) => {
            tracing::debug!("websocket i/o error: {e}");
            return None;
        }
    };
    Some(frame.map(|(code, reason)| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    }))
}

/// Sends the close frame that `end` calls for and waits (bounded) for the client's reply.
async fn goodbye(app: &App, mut sink: Sink, mut stream: Stream, end: End) {
    let Some(frame) = close_frame(app, &end) else {
        return;
    };
    let _ = tokio::time::timeout(GOODBYE_TIMEOUT, async {
        match frame {
            Some(close) => {
                if sink.send(close).await.is_err() {
                    return;
                }
                // Wait for the client's close (or EOF) so the client sees a clean end.
                while let Some(Ok(msg)) = stream.next().await {
                    if matches!(msg, Message::Close(_)) {
                        break;
                    }
                }
            }
            // The client closed: tungstenite has queued the reply close frame.
            None => {
                let _ = sink.flush().await;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::get("/ws");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    const GOOD: [(&str, &str); 4] = [
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn accepts_rfc_example_key() {
        // RFC 6455 section 1.3.
        assert_eq!(
            check_upgrade(&req(&GOOD)).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn refuses_each_missing_piece() {
        for missing in GOOD {
            let headers: Vec<_> = GOOD.into_iter().filter(|h| *h != missing).collect();
            assert!(
                check_upgrade(&req(&headers)).is_err(),
                "accepted without {missing:?}"
            );
        }
        let mut bad_key = GOOD;
        bad_key[3] = ("sec-websocket-key", "short");
        assert!(check_upgrade(&req(&bad_key))
            .unwrap_err()
            .contains("Sec-WebSocket-Key"));
        let mut bad_version = GOOD;
        bad_version[2] = ("sec-websocket-version", "8");
        assert!(check_upgrade(&req(&bad_version))
            .unwrap_err()
            .contains("13"));
    }
}
