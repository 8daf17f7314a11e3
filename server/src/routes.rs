//! Routing: one place that maps method and path to a handler, classifies the connection
//! for byte accounting and counts the request.

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::sync::Arc;

use futures_util::future::Either;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::app::App;
use crate::publisher::unix_now_ns;
use crate::respond::{self, Body};
use crate::stats::{Class, ConnTag, Endpoint, GaugeGuard, Path};
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
        "/time" => (Endpoint::Time, Class::Other),
        _ => (Endpoint::Other, Class::Other),
    }
}

/// A boxed handler future, for the two endpoints that wait.
type Waiting = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// What [`handle`] gives hyper. Almost every answer is ready at once; only a long-poll
/// (which may park) and a control `PUT` (which reads a body) wait, in a boxed future of
/// their own. Hyper keeps one allocation the size of this type for every connection for
/// its whole life, so keeping it small (rather than an `async fn` holding every handler's
/// state) saves about 1 KiB per open connection.
pub type Reply = Either<Ready<Result<Response<Body>, Infallible>>, Waiting>;

/// Serves one request.
pub fn handle(app: Arc<App>, tag: Arc<ConnTag>, req: Request<Incoming>) -> Reply {
    let (endpoint, class) = classify(req.uri().path());
    tag.classify(class);
    app.stats.count_request(endpoint);
    app.stats.count_path(Path::Hyper);
    if let Some(resp) = bad_host(&req) {
        let _active = GaugeGuard::new(&app.stats.http_active);
        return Either::Left(ready(Ok(resp)));
    }
    let waits = match endpoint {
        Endpoint::LongPoll => matches!(*req.method(), Method::GET | Method::HEAD),
        Endpoint::Control => req.method() == Method::PUT,
        _ => false,
    };
    if !waits {
        let _active = GaugeGuard::new(&app.stats.http_active);
        return Either::Left(ready(Ok(answer_now(&app, endpoint, tag, req))));
    }
    Either::Right(Box::pin(async move {
        let _active = GaugeGuard::new(&app.stats.http_active);
        let resp = match endpoint {
            Endpoint::LongPoll => {
                // Only the query is needed while parked; the request (its headers share
                // hyper's read buffer) is dropped now.
                let query = req.uri().query().map(str::to_owned);
                drop(req);
                // While it waits, the connection's reader looks for the client leaving
                // (`direct::Rewind`); the guard clears the mark however this ends.
                let _parked = ParkedMark::new(&tag);
                poll::long_poll(&app, query.as_deref()).await
            }
            _ => control::put(&app, req).await,
        };
        Ok(resp)
    }))
}

/// Marks the connection's long-poll as waiting until dropped.
struct ParkedMark<'a>(&'a ConnTag);

impl<'a> ParkedMark<'a> {
    fn new(tag: &'a ConnTag) -> Self {
        tag.set_long_poll_parked(true);
        ParkedMark(tag)
    }
}

impl Drop for ParkedMark<'_> {
    fn drop(&mut self) {
        self.0.set_long_poll_parked(false);
    }
}

/// RFC 9112 section 3.2: a server answers 400 to an HTTP/1.1 request without a `Host`
/// header or with more than one.
fn bad_host<B>(req: &Request<B>) -> Option<Response<Body>> {
    let hosts = req.headers().get_all(http::header::HOST).iter().count();
    (req.version() == http::Version::HTTP_11 && hosts != 1).then(|| {
        respond::error(
            StatusCode::BAD_REQUEST,
            format!("an HTTP/1.1 request needs exactly one Host header, got {hosts}"),
        )
    })
}

/// Answers every request that does not wait.
fn answer_now(
    app: &Arc<App>,
    endpoint: Endpoint,
    tag: Arc<ConnTag>,
    req: Request<Incoming>,
) -> Response<Body> {
    let get_only = |_allow: &str| !matches!(*req.method(), Method::GET | Method::HEAD);
    match endpoint {
        Endpoint::Poll if get_only("GET") => respond::method_not_allowed("GET"),
        Endpoint::Poll => poll::short_poll(app, req.uri().query()),
        Endpoint::LongPoll => respond::method_not_allowed("GET"),
        // The method is checked by `ws::upgrade`: GET over HTTP/1.1, CONNECT over HTTP/2.
        Endpoint::Ws => ws::upgrade(app, req),
        Endpoint::Sse if req.method() != Method::GET => respond::method_not_allowed("GET"),
        Endpoint::Sse => sse::stream(app, &req, tag),
        Endpoint::Control => match *req.method() {
            Method::GET => no_query(&req).unwrap_or_else(|| control::get(app)),
            _ => respond::method_not_allowed("GET, PUT"),
        },
        Endpoint::Stats if get_only("GET") => respond::method_not_allowed("GET"),
        Endpoint::Stats => no_query(&req).unwrap_or_else(|| observe::stats(app)),
        Endpoint::Metrics if get_only("GET") => respond::method_not_allowed("GET"),
        Endpoint::Metrics => observe::metrics(app),
        Endpoint::Healthz if get_only("GET") => respond::method_not_allowed("GET"),
        Endpoint::Healthz => healthz(app),
        Endpoint::Time if get_only("GET") => respond::method_not_allowed("GET"),
        Endpoint::Time => no_query(&req).unwrap_or_else(time),
        Endpoint::Other => respond::error(
            StatusCode::NOT_FOUND,
            format!("no such path: {}", shorten(req.uri().path())),
        ),
    }
}

/// `GET /healthz`: 200 while the feed is being published, 503 once the publisher died.
fn healthz(app: &App) -> Response<Body> {
    match app.hub.publisher_failure() {
        None => respond::json(StatusCode::OK, r#"{"status":"ok"}"#),
        Some(why) => respond::json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "failed", "error": why}).to_string(),
        ),
    }
}

/// `GET /time`: `{"unix_ns":N}`, the server's realtime clock in Unix nanoseconds, the
/// clock every event's `ts` is stamped from (load generators on other hosts estimate their
/// offset to it). The clock is read last, once the request has been routed and checked,
/// so that only building the response and hyper's write separate the reading from the
/// bytes leaving.
fn time() -> Response<Body> {
    let unix_ns = unix_now_ns();
    respond::json(StatusCode::OK, format!(r#"{{"unix_ns":{unix_ns}}}"#))
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
        assert_eq!(classify("/time"), (Endpoint::Time, Class::Other));
    }
}
