//! `GET /sse`: the Server-Sent Events transport.
//!
//! The response is `text/event-stream`, chunked, one chunk per event holding exactly
//! `id: SEQ\ndata: JSON\n\n` (the bytes made once at publish time). A cursor comes from
//! `?after=SEQ` or, as browsers send it on reconnect, the `Last-Event-ID` header.
//!
//! A feeder task moves events from the ring into a small channel that the response body
//! drains. A consumer more than `ws_queue` events behind is ended: the feeder counts it and
//! wakes the connection's kill switch, because a stuck socket would never let hyper reach
//! the end of the body. At shutdown the feeder drops its sender and the stream ends cleanly.

use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Frame;
use tokio::sync::mpsc;

use crate::app::App;
use crate::follow::{Follower, Next};
use crate::query::Query;
use crate::respond::{self, Body};
use crate::stats::{ConnTag, GaugeGuard};

/// Events buffered between the feeder and the body, on top of the ring-based queue.
const CHANNEL_EVENTS: usize = 16;

/// The cursor from `?after=` or `Last-Event-ID` (the query wins).
fn cursor<B>(req: &Request<B>) -> Result<Option<u64>, String> {
    let q = Query::parse(req.uri().query(), &["after"])?;
    if let Some(after) = q.u64_in("after", 0, u64::MAX)? {
        return Ok(Some(after));
    }
    match req.headers().get("last-event-id") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| "Last-Event-ID must be an unsigned integer".to_string()),
    }
}

/// Handles `GET /sse`.
pub fn stream<B>(app: &Arc<App>, req: &Request<B>, tag: Arc<ConnTag>) -> Response<Body> {
    let after = match cursor(req) {
        Ok(a) => a,
        Err(msg) => return respond::error(StatusCode::BAD_REQUEST, msg),
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
    let (tx, rx) = mpsc::channel(CHANNEL_EVENTS);
    let follower = Follower::new(&app.hub, after, app.config.ws_queue);
    app.tracker.spawn(feed(app.clone(), tx, follower, tag));
    let mut resp = Response::new(SseBody { rx }.boxed());
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// Moves events into the body's channel until the client leaves, falls too far behind, or
/// the server shuts down.
async fn feed(app: Arc<App>, tx: mpsc::Sender<Bytes>, mut follower: Follower, tag: Arc<ConnTag>) {
    let _open = GaugeGuard::new(&app.stats.open_sse);
    let mut head_rx = app.hub.subscribe();
    loop {
        head_rx.borrow_and_update();
        let events = match follower.next(&app.hub) {
            Next::TooSlow { behind } => return too_slow(&app, &tag, behind),
            Next::Send(events) => events,
            Next::Wait => {
                tokio::select! {
                    biased;
                    _ = app.shutdown.cancelled() => return,
                    _ = tx.closed() => return,
                    _ = head_rx.changed() => continue,
                }
            }
        };
        for ev in events {
            let send = tx.send(ev.sse);
            tokio::pin!(send);
            loop {
                tokio::select! {
                    biased;
                    res = &mut send => match res {
                        Ok(()) => break,
                        Err(_) => return,
                    },
                    _ = app.shutdown.cancelled() => return,
                    _ = head_rx.changed() => {
                        let behind = follower.behind(&app.hub);
                        if behind > follower.queue {
                            return too_slow(&app, &tag, behind);
                        }
                    }
                }
            }
        }
    }
}

fn too_slow(app: &App, tag: &ConnTag, behind: u64) {
    app.stats.slow_sse.fetch_add(1, Relaxed);
    tracing::debug!(behind, "ending slow sse consumer");
    tag.kill.notify_one();
}

/// The response body: whatever the feeder sends, one chunk per event.
struct SseBody {
    rx: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for SseBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_from_query_or_header() {
        let r = Request::get("/sse?after=5")
            .header("last-event-id", "9")
            .body(())
            .unwrap();
        assert_eq!(cursor(&r).unwrap(), Some(5));
        let r = Request::get("/sse")
            .header("last-event-id", " 9 ")
            .body(())
            .unwrap();
        assert_eq!(cursor(&r).unwrap(), Some(9));
        let r = Request::get("/sse").body(()).unwrap();
        assert_eq!(cursor(&r).unwrap(), None);
        let r = Request::get("/sse")
            .header("last-event-id", "x")
            .body(())
            .unwrap();
        assert!(cursor(&r).unwrap_err().contains("Last-Event-ID"));
        let r = Request::get("/sse?after=x").body(()).unwrap();
        assert!(cursor(&r).is_err());
    }
}
