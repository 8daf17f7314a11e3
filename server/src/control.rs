//! `GET /control/feed` and `PUT /control/feed`: read and change the feed live, so one
//! running server serves a whole suite.

use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Deserialize;

use crate::app::App;
use crate::config::validate_feed;
use crate::hub::FeedConfig;
use crate::respond::{self, Body};

/// The body of `PUT /control/feed`: either field or both.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedUpdate {
    rate_hz: Option<f64>,
    payload_bytes: Option<usize>,
}

fn feed_json(feed: FeedConfig) -> String {
    serde_json::json!({ "rate_hz": feed.rate_hz, "payload_bytes": feed.payload_bytes }).to_string()
}

/// `GET /control/feed`.
pub fn get(app: &App) -> Response<Body> {
    respond::json(StatusCode::OK, feed_json(app.hub.feed()))
}

/// `PUT /control/feed`.
pub async fn put(app: &App, req: Request<Incoming>) -> Response<Body> {
    if let Some(why) = app.hub.publisher_failure() {
        return respond::error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the feed cannot change: {why}"),
        );
    }
    if let Some(token) = &app.config.control_token {
        let given = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let ok = given
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()));
        if !ok {
            let mut resp = respond::error(
                StatusCode::UNAUTHORIZED,
                "PUT /control/feed needs Authorization: Bearer TOKEN",
            );
            resp.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
            return resp;
        }
    }
    let limit = app.config.max_body_bytes;
    // The body gets as long as a request head does; a client that stops sending half way
    // is answered 408 and its connection closed, rather than held forever.
    let wait = app.config.header_timeout;
    let read = tokio::time::timeout(wait, Limited::new(req.into_body(), limit).collect());
    let body = match read.await {
        Err(_) => {
            let mut resp = respond::error(
                StatusCode::REQUEST_TIMEOUT,
                format!("request body not received within {}", humanize(wait)),
            );
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
            return resp;
        }
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) => {
            let msg = e.to_string();
            let status = if msg.contains("length limit") {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            return respond::error(
                status,
                format!("cannot read request body: {msg} (limit {limit} bytes)"),
            );
        }
    };
    let update: FeedUpdate = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => return respond::error(StatusCode::BAD_REQUEST, format!("bad control JSON: {e}")),
    };
    if update.rate_hz.is_none() && update.payload_bytes.is_none() {
        return respond::error(
            StatusCode::BAD_REQUEST,
            "bad control JSON: give rate_hz, payload_bytes or both",
        );
    }
    let old = app.hub.feed();
    let new = FeedConfig {
        rate_hz: update.rate_hz.unwrap_or(old.rate_hz),
        payload_bytes: update.payload_bytes.unwrap_or(old.payload_bytes),
    };
    if let Err(msg) = validate_feed(new.rate_hz, new.payload_bytes, app.config.retain_bytes) {
        return respond::error(StatusCode::BAD_REQUEST, msg);
    }
    app.hub.set_feed(new);
    tracing::info!(
        rate_hz = new.rate_hz,
        payload_bytes = new.payload_bytes,
        "feed changed"
    );
    respond::json(StatusCode::OK, feed_json(new))
}

/// A duration as people write it: `10s`, `300ms`.
fn humanize(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Compares without an early exit, so response timing says nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
