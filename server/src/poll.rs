//! `GET /poll` (short-poll) and `GET /longpoll`: cursor reads of the ring.
//!
//! Both answer `{"events":[...],"next":SEQ,"missed":N}`. The body is assembled from the
//! events' shared JSON bytes; nothing is re-encoded. A long-poll with nothing newer than its
//! cursor parks on the hub's head `watch` (no CPU while it waits) until an event, its
//! timeout, or shutdown. If the client disconnects meanwhile, hyper drops the handler
//! future and the parked gauge's guard with it, so no waiter is left behind.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::StatusCode;

use crate::app::App;
use crate::event::Event;
use crate::hub::Batch;
use crate::query::Query;
use crate::respond::{self, Body};
use crate::stats::GaugeGuard;

/// Default and largest `limit`.
pub const DEFAULT_LIMIT: u64 = 1_000;
/// Largest `limit`.
pub const MAX_LIMIT: u64 = 10_000;
/// Default long-poll `timeout_ms`.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// Largest long-poll `timeout_ms`.
pub const MAX_TIMEOUT_MS: u64 = 120_000;

/// A validated poll request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollParams {
    /// The cursor; `None` means "from now".
    pub after: Option<u64>,
    /// Most events to return.
    pub limit: usize,
    /// How long a long-poll may park.
    pub timeout: Duration,
}

/// Parses `/poll` (`long == false`) or `/longpoll` parameters.
pub fn parse_params(raw_query: Option<&str>, long: bool) -> Result<PollParams, String> {
    let allowed: &[&str] = if long {
        &["after", "limit", "timeout_ms"]
    } else {
        &["after", "limit"]
    };
    let q = Query::parse(raw_query, allowed)?;
    let after = q.u64_in("after", 0, u64::MAX)?;
    let limit = q.u64_in("limit", 1, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT) as usize;
    let timeout_ms = q
        .u64_in("timeout_ms", 0, MAX_TIMEOUT_MS)?
        .unwrap_or(DEFAULT_TIMEOUT_MS);
    Ok(PollParams {
        after,
        limit,
        timeout: Duration::from_millis(timeout_ms),
    })
}

/// Encodes a poll body from a batch read after `after`.
pub fn encode_body(batch: &Batch, after: u64) -> Bytes {
    encode_events(&batch.events, batch.missed, after)
}

/// Encodes a poll body of `events` (oldest first) read after `after`, `missed` of the
/// events after it having left the ring.
pub fn encode_events(events: &[Event], missed: u64, after: u64) -> Bytes {
    let events_len: usize = events.iter().map(|e| e.json().len() + 1).sum();
    let mut out = BytesMut::with_capacity(events_len + 64);
    out.put_slice(b"{\"events\":[");
    for (i, ev) in events.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(ev.json());
    }
    let next = events.last().map_or(after, |e| e.seq);
    out.put_slice(format!("],\"next\":{next},\"missed\":{missed}}}").as_bytes());
    out.freeze()
}

/// Refuses a cursor ahead of the newest event.
pub(crate) fn check_cursor(app: &App, after: u64) -> Result<(), String> {
    let head = app.hub.head();
    if after > head {
        return Err(format!(
            "after ({after}) is ahead of the newest event ({head})"
        ));
    }
    Ok(())
}

/// `GET /poll`.
pub fn short_poll(app: &App, raw_query: Option<&str>) -> http::Response<Body> {
    let p = match parse_params(raw_query, false) {
        Ok(p) => p,
        Err(msg) => return respond::error(StatusCode::BAD_REQUEST, msg),
    };
    if let Some(Err(msg)) = p.after.map(|after| check_cursor(app, after)) {
        return respond::error(StatusCode::BAD_REQUEST, msg);
    }
    respond::json(StatusCode::OK, short_poll_body(app, &p))
}

/// The body of a short-poll whose cursor has been checked.
pub(crate) fn short_poll_body(app: &App, p: &PollParams) -> Bytes {
    let Some(after) = p.after else {
        // No cursor: subscribe from now.
        let head = app.hub.head();
        return encode_body(
            &Batch {
                head,
                ..Batch::default()
            },
            head,
        );
    };
    encode_body(&app.hub.read_after(after, p.limit), after)
}

/// `GET /longpoll`.
pub async fn long_poll(app: &App, raw_query: Option<&str>) -> http::Response<Body> {
    let p = match parse_params(raw_query, true) {
        Ok(p) => p,
        Err(msg) => return respond::error(StatusCode::BAD_REQUEST, msg),
    };
    let mut head_rx = app.hub.subscribe();
    let after = p.after.unwrap_or_else(|| *head_rx.borrow_and_update());
    if let Err(msg) = check_cursor(app, after) {
        return respond::error(StatusCode::BAD_REQUEST, msg);
    }
    if app.hub.head() <= after && !p.timeout.is_zero() {
        park(app, &mut head_rx, after, p.timeout).await;
    }
    respond::json(
        StatusCode::OK,
        encode_body(&app.hub.read_after(after, p.limit), after),
    )
}

/// Waits until the head passes `after`, the timeout passes, or the server shuts down.
async fn park(
    app: &App,
    head_rx: &mut tokio::sync::watch::Receiver<u64>,
    after: u64,
    timeout: Duration,
) {
    let _parked = GaugeGuard::new(&app.stats.parked);
    // The request is no longer "active" while parked; the guard in routes counts it again
    // when we return.
    app.stats.http_active.fetch_sub(1, Relaxed);
    tokio::select! {
        _ = head_rx.wait_for(|head| *head > after) => {}
        _ = tokio::time::sleep(timeout) => {}
        _ = app.shutdown.cancelled() => {}
    }
    app.stats.http_active.fetch_add(1, Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{FeedConfig, Hub};

    #[test]
    fn body_is_byte_exact() {
        let hub = Hub::new(
            FeedConfig {
                rate_hz: 0.0,
                payload_bytes: 2,
            },
            2,
        );
        hub.publish(&[100, 200, 300], 2);
        let body = encode_body(&hub.read_after(0, 10), 0);
        assert_eq!(
            &body[..],
            br#"{"events":[{"seq":2,"ts":200,"data":"CD"},{"seq":3,"ts":300,"data":"DE"}],"next":3,"missed":1}"#
        );
        let body = encode_body(&hub.read_after(3, 10), 3);
        assert_eq!(&body[..], br#"{"events":[],"next":3,"missed":0}"#);
    }

    #[test]
    fn params_defaults_and_limits() {
        let p = parse_params(None, true).unwrap();
        assert_eq!(
            p,
            PollParams {
                after: None,
                limit: 1000,
                timeout: Duration::from_secs(30)
            }
        );
        assert!(parse_params(Some("timeout_ms=1"), false).is_err());
        assert!(parse_params(Some("limit=10001"), false).is_err());
        assert!(parse_params(Some("timeout_ms=120001"), true).is_err());
        assert_eq!(
            parse_params(Some("after=5&limit=10000"), false)
                .unwrap()
                .limit,
            10_000
        );
    }
}
