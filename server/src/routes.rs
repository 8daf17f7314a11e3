//! Routing: one place that maps method and path to a handler, classifies the connection
//! for byte accounting and counts the request.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::app::App;
use crate::respond::{self, Body};
use crate::stats::{Class, ConnTag, Endpoint, GaugeGuard};
use crate::{control, observe, poll, sse, ws};

/// Which endpoint a path is, and the transport class its bytes count under.
pub fn classify(path: &str) -> (Endpoint, Class) {
    match path {
        "/poll" => (Endpoint::Poll, Class::ShortPoll),
        "/longpoll" => (Endpoint::LongPoll, Class::LongPoll),
        "/ws" => (Endpoint::Ws, Class::Ws),
        "/sse" => (Endpoint::Sse, Class::Sse),
        "/control/feed" => (Endpoint::Control, Class::Other),
        "/stats" => (Endpoint::Stats, Class::Other),
        "/metrics" => (Endpoint::Metrics, Class::Other),
        "/healthz" => (Endpoint::Healthz, Class::Other),
        _ => (Endpoint::Other, Class::Other),
    }
}

/// Serves one request.
pub async fn handle(
    app: Arc<App>,
    tag: Arc<ConnTag>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (endpoint, class) = classify(req.uri().path());
    tag.classify(class);
    app.stats.count_request(endpoint);
    let _active = GaugeGuard::new(&app.stats.http_active);
    let get_only = |_allow: &str| !matches!(*req.method(), Method::GET | Method::HEAD);
    let resp = match endpoint {
        Endpoint::Poll if get_only("GET") => respond::method_not_allowed("GET"),
        Endpoint::Poll => poll::short_poll(&app, req.uri().query()),
        Endpoint::LongPoll if get_only("GET") => respond::method_not_allowed("GET"),
        Endpoint::LongPoll => poll::long_poll(&app, req.uri().query()).await,
        Endpoint::Ws if req.method() != Method::GET => respond::method_not_allowed("GET"),
        Endpoint::Ws => ws::upgrade(&app, req),
        Endpoint::Sse if req.method() != Method::GET => respond::method_not_allowed("GET"),
        Endpoint::Sse => sse::stream(&app, &req, tag.clone()),
        Endpoint::Control => match *req.method() {
            Method::GET => no_query(&req).unwrap_or_else(|| control::get(&app)),
            Method::PUT => control::put(&app, req).await,
            _ => respond::method_not_allowed("GET, PUT"),
        },
        Endpoint::Stats if get_only("GET") => respond::method_not_allowed("GET"),
        Endpoint::Stats => no_query(&req).unwrap_or_else(|| observe::stats(&app)),
        Endpoint::Metrics if get_only("GET") => respond::method_not_allowed("GET"),
        Endpoint::Metrics => observe::metrics(&app),
        Endpoint::Healthz if get_only("GET") => respond::method_not_allowed("GET"),
        Endpoint::Healthz => respond::json(StatusCode::OK, r#"{"status":"ok"}"#),
        Endpoint::Other => respond::error(
            StatusCode::NOT_FOUND,
            format!("no such path: {}", shorten(req.uri().path())),
        ),
    };
    Ok(resp)
}

fn no_query<B>(req: &Request<B>) -> Option<Response<Body>> {
    crate::query::Query::parse(req.uri().query(), &[])
        .err()
        .map(|msg| respond::error(StatusCode::BAD_REQUEST, msg))
}

fn shorten(path: &str) -> String {
    path.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_paths() {
        assert_eq!(classify("/poll"), (Endpoint::Poll, Class::ShortPoll));
        assert_eq!(classify("/ws"), (Endpoint::Ws, Class::Ws));
        assert_eq!(classify("/poll/"), (Endpoint::Other, Class::Other));
        assert_eq!(classify("/stats"), (Endpoint::Stats, Class::Other));
    }
}
