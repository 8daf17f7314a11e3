//! `GET /sse`: the Server-Sent Events transport.
//!
//! The response is `text/event-stream`, chunked, one chunk per event holding exactly
//! `id: SEQ\ndata: JSON\n\n` (the bytes made once at publish time). A cursor comes from
//! `?after=SEQ` or, as browsers send it on reconnect, the `Last-Event-ID` header.
//!
//! This is the hyper path, for an SSE request that is not a connection's first request or
//! is anything but plain; the usual case is served by [`crate::sse_direct`] with the same
//! bytes.
//!
//! The response body reads the ring itself through a [`Follower`]: no task and no channel
//! per stream, so an idle stream costs its body's few words plus hyper's connection. A
//! consumer more than `ws_queue` events behind is ended by closing its connection: the body
//! records in the connection's tag the last event it handed to hyper, and the connection
//! task watches the head against it (`listener::push_lag`), because a stuck socket makes
//! hyper stop polling the body, which then could notice nothing. At shutdown the body ends
//! and hyper finishes the chunked response cleanly (`0\r\n\r\n`).

use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::sync::watch;

use crate::app::App;
use crate::event::Event;
use crate::follow::{Follower, Next};
use crate::query::Query;
use crate::respond::{self, Body};
use crate::stats::ConnTag;

/// The cursor from `?after=` or `Last-Event-ID` (the query wins).
fn cursor<B>(req: &Request<B>) -> Result<Option<u64>, String> {
    cursor_from(
        req.uri().query(),
        req.headers()
            .get("last-event-id")
            .map(HeaderValue::as_bytes),
    )
}

/// The cursor from a query string and a `Last-Event-ID` value (the query wins). Shared
/// with [`crate::sse_direct`], so both ways of serving `/sse` accept exactly the same
/// requests.
pub(crate) fn cursor_from(
    query: Option<&str>,
    last_event_id: Option<&[u8]>,
) -> Result<Option<u64>, String> {
    let q = Query::parse(query, &["after"])?;
    if let Some(after) = q.u64_in("after", 0, u64::MAX)? {
        return Ok(Some(after));
    }
    match last_event_id {
        None => Ok(None),
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| "Last-Event-ID must be an unsigned integer".to_string()),
    }
}

/// Refuses a cursor ahead of the newest event.
pub(crate) fn check_after(app: &App, after: Option<u64>) -> Result<(), String> {
    match after.filter(|a| *a > app.hub.head()) {
        Some(a) => Err(format!(
            "after ({a}) is ahead of the newest event ({})",
            app.hub.head()
        )),
        None => Ok(()),
    }
}

/// Handles `GET /sse`.
pub fn stream<B>(app: &Arc<App>, req: &Request<B>, tag: Arc<ConnTag>) -> Response<Body> {
    let after = match cursor(req) {
        Ok(a) => a,
        Err(msg) => return respond::error(StatusCode::BAD_REQUEST, msg),
    };
    if let Err(msg) = check_after(app, after) {
        return respond::error(StatusCode::BAD_REQUEST, msg);
    }
    let follower = Follower::new(&app.hub, after, app.config.ws_queue);
    tag.start_push(follower.cursor);
    let stream = Stream {
        head_rx: app.hub.subscribe(),
        app: app.clone(),
        tag,
        follower,
        batch: Vec::new().into_iter(),
    };
    app.stats.open_sse.fetch_add(1, Relaxed);
    let chunks = futures_util::stream::unfold(stream, next_chunk);
    let mut resp = Response::new(StreamBody::new(chunks).boxed());
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// One SSE stream's state, owned by its response body. Dropping it (the stream ended, or
/// hyper dropped the body because the client left or the connection was closed) is the
/// one place the open-SSE gauge goes down.
struct Stream {
    app: Arc<App>,
    tag: Arc<ConnTag>,
    follower: Follower,
    head_rx: watch::Receiver<u64>,
    /// Events read from the ring but not yet handed to hyper, oldest first.
    batch: std::vec::IntoIter<Event>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.app.stats.open_sse.fetch_sub(1, Relaxed);
    }
}

/// The next chunk of the body: one event's SSE frame, or the end of the stream at shutdown.
async fn next_chunk(mut s: Stream) -> Option<(Result<Frame<Bytes>, Infallible>, Stream)> {
    loop {
        if s.app.shutdown.is_cancelled() {
            return None;
        }
        if let Some(ev) = s.batch.next() {
            s.tag.pushed(ev.seq);
            return Some((Ok(Frame::data(ev.sse)), s));
        }
        // Let the spent batch's allocation go before waiting, so an idle stream holds none.
        s.batch = Vec::new().into_iter();
        s.head_rx.borrow_and_update();
        match s.follower.next(&s.app.hub) {
            Next::Send(events) => s.batch = events.into_iter(),
            // Too far behind: the connection task sees the same lag and closes the
            // connection (and counts it); there is nothing more to send until then.
            Next::TooSlow { .. } => {
                s.app.shutdown.cancelled().await;
                return None;
            }
            Next::Wait => {
                tokio::select! {
                    biased;
                    _ = s.app.shutdown.cancelled() => return None,
                    changed = s.head_rx.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                    }
                }
            }
        }
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
