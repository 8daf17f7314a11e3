//! `GET /stats` (JSON) and `GET /metrics` (Prometheus text): the server's own view of the
//! feed, its connections, its socket bytes and its process costs.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};
use serde_json::{json, Value};

use crate::app::App;
use crate::process;
use crate::respond::{self, Body};
use crate::stats::{Class, ConnError, Endpoint, Path};

/// The whole `/stats` document.
pub fn stats_json(app: &App) -> Value {
    let s = &app.stats;
    let feed = app.hub.feed();
    let g = |a: &std::sync::atomic::AtomicI64| a.load(Relaxed).max(0);
    let total = g(&s.open_total);
    let (ws, sse, parked, active) = (
        g(&s.open_ws),
        g(&s.open_sse),
        g(&s.parked),
        g(&s.http_active),
    );
    // Answered long-polls whose next request the publisher reads: its registry's count.
    let answered = i64::try_from(app.hub.fanout().awaiting()).unwrap_or(i64::MAX);
    let idle = (total - ws - sse - parked - answered - active).max(0);
    let mut bytes = serde_json::Map::new();
    for class in Class::ALL {
        let b = &s.bytes[class as usize];
        bytes.insert(
            class.key().into(),
            json!({"in": b.bytes_in.load(Relaxed), "out": b.bytes_out.load(Relaxed)}),
        );
    }
    let (tin, tout) = s.total_bytes();
    bytes.insert("total".into(), json!({"in": tin, "out": tout}));
    let mut requests = serde_json::Map::new();
    for (i, ep) in Endpoint::ALL.iter().enumerate() {
        requests.insert(ep.key().into(), json!(s.requests[i].load(Relaxed)));
    }
    let (ring_events, ring_bytes) = app.hub.ring_usage();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);
    let mut tls_by_class = serde_json::Map::new();
    let (mut handshakes, mut resumed) = (0, 0);
    for class in Class::ALL {
        let t = &s.tls[class as usize];
        handshakes += load(&t.handshakes);
        resumed += load(&t.resumed);
        tls_by_class.insert(
            class.key().into(),
            json!({
                "plain_in": load(&t.plain_in), "plain_out": load(&t.plain_out),
                "handshakes": load(&t.handshakes), "resumed": load(&t.resumed),
                "handshake_in": load(&t.handshake_in), "handshake_out": load(&t.handshake_out),
            }),
        );
    }
    let mut conn_errors = serde_json::Map::new();
    for (i, kind) in ConnError::ALL.iter().enumerate() {
        conn_errors.insert(kind.key().into(), json!(load(&s.conn_errors[i])));
    }
    json!({
        "feed": {"rate_hz": feed.rate_hz, "payload_bytes": feed.payload_bytes, "retain": app.hub.retain(), "ws_queue": app.config.ws_queue,
            "retain_bytes": app.config.retain_bytes, "ring_events": ring_events, "ring_bytes": ring_bytes},
        "head_seq": app.hub.head(),
        "events_published": app.hub.published(),
        "uptime_s": app.started.elapsed().as_secs_f64(),
        "connections": {
            "open": {"ws": ws, "sse": sse, "long_poll_parked": parked, "long_poll_answered": answered, "http_idle": idle, "http_active": active, "total": total},
            "accepted": s.accepted.load(Relaxed),
            "refused": s.refused.load(Relaxed),
            "closed": s.closed.load(Relaxed),
            "accept_errors": s.accept_errors.load(Relaxed),
            "max": app.config.max_connections,
            "slow_consumer_closed": {"ws": s.slow_ws.load(Relaxed), "sse": s.slow_sse.load(Relaxed)},
            "ws_protocol_errors": s.ws_protocol_errors.load(Relaxed),
        },
        "bytes": bytes,
        "requests": requests,
        "requests_by_path": {
            "direct": s.requests_by_path[Path::Direct as usize].load(Relaxed),
            "hyper": s.requests_by_path[Path::Hyper as usize].load(Relaxed),
        },
        "tls": {
            "enabled": app.config.tls.is_some(),
            "handshakes": handshakes,
            "resumed": resumed,
            "by_class": tls_by_class,
        },
        "http2": {
            "connections": load(&s.h2_connections),
            "h2c_connections": load(&s.h2c_connections),
        },
        "connection_errors": conn_errors,
        "socket_calls": {
            "reads": load(&s.socket_reads),
            "writes": load(&s.socket_writes),
            "writes_by_publisher": load(&s.publisher_writes),
            "reads_by_publisher": load(&s.publisher_reads),
        },
        "process": process::sample(),
    })
}

/// `GET /stats`.
pub fn stats(app: &App) -> Response<Body> {
    respond::json(StatusCode::OK, stats_json(app).to_string())
}

/// `GET /metrics`.
pub fn metrics(app: &App) -> Response<Body> {
    let mut resp = Response::new(respond::full(metrics_text(&stats_json(app))));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}

fn one(v: &Value) -> Vec<(String, &Value)> {
    vec![(String::new(), v)]
}

/// Renders the `/stats` document as Prometheus text exposition.
pub fn metrics_text(st: &Value) -> String {
    let mut out = String::with_capacity(4096);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, &Value)]| {
        let _ = writeln!(
            out,
            "# HELP feedbench_{name} {help}\n# TYPE feedbench_{name} {kind}"
        );
        for (labels, v) in samples {
            let _ = writeln!(
                out,
                "feedbench_{name}{labels} {}",
                v.as_f64().unwrap_or(0.0)
            );
        }
    };
    metric(
        "feed_rate_hz",
        "gauge",
        "Configured feed rate in events per second.",
        &one(&st["feed"]["rate_hz"]),
    );
    metric(
        "feed_payload_bytes",
        "gauge",
        "Configured event payload length in bytes.",
        &one(&st["feed"]["payload_bytes"]),
    );
    metric(
        "head_seq",
        "gauge",
        "Sequence number of the newest event.",
        &one(&st["head_seq"]),
    );
    metric(
        "events_published_total",
        "counter",
        "Events published.",
        &one(&st["events_published"]),
    );
    let c = &st["connections"];
    let open: Vec<_> = [
        "ws",
        "sse",
        "long_poll_parked",
        "long_poll_answered",
        "http_idle",
        "http_active",
    ]
    .iter()
    .map(|k| (format!("{{state=\"{k}\"}}"), &c["open"][*k]))
    .collect();
    metric(
        "connections_open",
        "gauge",
        "Open connections by state.",
        &open,
    );
    metric(
        "connections_accepted_total",
        "counter",
        "Connections accepted.",
        &one(&c["accepted"]),
    );
    metric(
        "connections_refused_total",
        "counter",
        "Connections refused over max-connections.",
        &one(&c["refused"]),
    );
    metric(
        "connections_closed_total",
        "counter",
        "Connections that ended.",
        &one(&c["closed"]),
    );
    metric(
        "accept_errors_total",
        "counter",
        "Errors from accept().",
        &one(&c["accept_errors"]),
    );
    let slow: Vec<_> = ["ws", "sse"]
        .iter()
        .map(|k| {
            (
                format!("{{transport=\"{k}\"}}"),
                &c["slow_consumer_closed"][*k],
            )
        })
        .collect();
    metric(
        "slow_consumers_closed_total",
        "counter",
        "Push consumers closed for falling behind.",
        &slow,
    );
    let mut bytes = Vec::new();
    for class in Class::ALL {
        for dir in ["in", "out"] {
            bytes.push((
                format!("{{transport=\"{}\",direction=\"{dir}\"}}", class.key()),
                &st["bytes"][class.key()][dir],
            ));
        }
    }
    metric(
        "socket_bytes_total",
        "counter",
        "Bytes moved on client sockets, by transport and direction.",
        &bytes,
    );
    let tls = &st["tls"]["by_class"];
    let mut plain = Vec::new();
    let mut handshakes = Vec::new();
    for class in Class::ALL {
        let k = class.key();
        for dir in ["in", "out"] {
            plain.push((
                format!("{{transport=\"{k}\",direction=\"{dir}\"}}"),
                &tls[k][format!("plain_{dir}")],
            ));
        }
        for kind in ["handshakes", "resumed"] {
            handshakes.push((
                format!("{{transport=\"{k}\",kind=\"{kind}\"}}"),
                &tls[k][kind],
            ));
        }
    }
    metric(
        "tls_plaintext_bytes_total",
        "counter",
        "Plaintext bytes above TLS, by transport and direction.",
        &plain,
    );
    metric(
        "tls_handshakes_total",
        "counter",
        "TLS handshakes completed (all, and resumed), by transport.",
        &handshakes,
    );
    let errors: Vec<_> = ConnError::ALL
        .iter()
        .map(|e| {
            (
                format!("{{kind=\"{}\"}}", e.key()),
                &st["connection_errors"][e.key()],
            )
        })
        .collect();
    metric(
        "connection_errors_total",
        "counter",
        "Connections that failed below HTTP (TLS, HTTP/2), by kind.",
        &errors,
    );
    let reqs: Vec<_> = Endpoint::ALL
        .iter()
        .map(|e| {
            (
                format!("{{endpoint=\"{}\"}}", e.key()),
                &st["requests"][e.key()],
            )
        })
        .collect();
    metric(
        "requests_total",
        "counter",
        "HTTP requests by endpoint.",
        &reqs,
    );
    let p = &st["process"];
    metric(
        "process_cpu_seconds_total",
        "counter",
        "CPU seconds (user + system).",
        &one(&json!(
            p["cpu_user_s"].as_f64().unwrap_or(0.0) + p["cpu_sys_s"].as_f64().unwrap_or(0.0)
        )),
    );
    metric(
        "process_resident_memory_bytes",
        "gauge",
        "Resident set size.",
        &one(&p["rss_bytes"]),
    );
    metric(
        "process_resident_memory_peak_bytes",
        "gauge",
        "Peak resident set size.",
        &one(&p["rss_peak_bytes"]),
    );
    metric(
        "process_open_fds",
        "gauge",
        "Open file descriptors.",
        &one(&p["open_fds"]),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_text_has_help_type_and_samples() {
        let st = json!({
            "feed": {"rate_hz": 10.0, "payload_bytes": 64}, "head_seq": 5, "events_published": 5,
            "connections": {"open": {"ws": 2, "sse": 0, "long_poll_parked": 0, "long_poll_answered": 3, "http_idle": 1, "http_active": 0},
                "accepted": 3, "refused": 0, "closed": 0, "accept_errors": 0, "slow_consumer_closed": {"ws": 1, "sse": 0}},
            "bytes": {"ws": {"in": 7, "out": 9}}, "requests": {"ws": 2},
            "process": {"cpu_user_s": 1.5, "cpu_sys_s": 0.5, "rss_bytes": 100, "rss_peak_bytes": 200, "open_fds": 9}
        });
        let text = metrics_text(&st);
        assert!(
            text.contains("# TYPE feedbench_head_seq gauge\nfeedbench_head_seq 5\n"),
            "{text}"
        );
        assert!(text.contains("feedbench_connections_open{state=\"ws\"} 2\n"));
        assert!(text.contains("feedbench_connections_open{state=\"long_poll_answered\"} 3\n"));
        assert!(
            text.contains("feedbench_socket_bytes_total{transport=\"ws\",direction=\"out\"} 9\n")
        );
        assert!(text.contains("feedbench_slow_consumers_closed_total{transport=\"ws\"} 1\n"));
        assert!(text.contains("feedbench_process_cpu_seconds_total 2\n"));
    }
}
