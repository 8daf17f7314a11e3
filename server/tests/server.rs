//! End-to-end tests of the feed server with real clients over loopback: the same events on
//! every transport, cursor rules, bad input, slow consumers, parked long-polls, exact byte
//! accounting and graceful shutdown.

mod util;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use util::{eventually, get, start, stat, CountingStream, Http, BOUND};

type WsClient = tokio_tungstenite::WebSocketStream<CountingStream>;

async fn ws_connect(addr: std::net::SocketAddr, path: &str) -> WsClient {
    let stream = CountingStream::connect(addr).await;
    let url = format!("ws://{addr}{path}");
    let (ws, resp) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("ws handshake");
    assert_eq!(resp.status(), 101);
    ws
}

async fn next_text(ws: &mut WsClient) -> String {
    loop {
        let msg = tokio::time::timeout(BOUND, ws.next())
            .await
            .expect("ws read timed out");
        match msg.expect("ws ended").expect("ws error") {
            Message::Text(t) => return t.as_str().to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

fn event_jsons(server: &feedbench_server::ServerHandle, after: u64) -> Vec<String> {
    let batch = server.hub().read_after(after, 10_000);
    batch
        .events
        .iter()
        .map(|e| e.json_str().to_string())
        .collect()
}

#[tokio::test]
async fn same_events_byte_for_byte_on_every_transport() {
    let server = start(|_| {}).await;
    let addr = server.local_addr();
    server.hub().publish(&[1_000], 16); // seq 1: before anyone subscribes

    let mut ws = ws_connect(addr, "/ws?after=1").await;
    let mut sse = Http::connect(addr).await;
    sse.send("GET", "/sse?after=1", "", b"").await;
    let (status, headers) = sse.read_head().await;
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "text/event-stream"));
    let mut lp = Http::connect(addr).await;
    lp.send("GET", "/longpoll?after=1", "", b"").await;
    eventually("long-poll parked", || async {
        stat(&server, "/connections/open/long_poll_parked") == 1
    })
    .await;

    server.hub().publish(&[2_000, 3_000, 4_000], 16);
    let want = event_jsons(&server, 1);
    assert_eq!(want.len(), 3);

    let mut got_ws = Vec::new();
    for _ in 0..3 {
        got_ws.push(next_text(&mut ws).await);
    }
    assert_eq!(got_ws, want);

    for (i, json) in want.iter().enumerate() {
        let chunk = sse.read_chunk().await.expect("sse chunk");
        assert_eq!(
            String::from_utf8(chunk).unwrap(),
            format!("id: {}\ndata: {json}\n\n", i + 2)
        );
    }

    // The long-poll woke on the first publish; it may hold 1 or all 3 events. Follow the
    // cursor with short polls until it reaches seq 4.
    let first = lp.read_response().await;
    assert_eq!(first.status, 200);
    let mut got_poll: Vec<serde_json::Value> = Vec::new();
    let mut body = first.json();
    loop {
        for ev in body["events"].as_array().unwrap() {
            got_poll.push(ev.clone());
        }
        let next = body["next"].as_u64().unwrap();
        if next == 4 {
            break;
        }
        body = lp.get(&format!("/poll?after={next}")).await.json();
    }
    let want_values: Vec<serde_json::Value> = want
        .iter()
        .map(|j| serde_json::from_str(j).unwrap())
        .collect();
    assert_eq!(got_poll, want_values);
    // Parsed values hide key order and spacing; the raw poll body shows them byte for byte.
    let raw = get(addr, "/poll?after=1").await;
    let expect = format!(
        "{{\"events\":[{}],\"next\":4,\"missed\":0}}",
        want.join(",")
    );
    assert_eq!(raw.header("content-type"), Some("application/json"));
    assert_eq!(String::from_utf8(raw.body).unwrap(), expect);
}

#[tokio::test]
async fn cursor_rules_with_a_tiny_ring() {
    let server = start(|c| {
        c.retain = 3;
        c.ws_queue = 3;
    })
    .await;
    let addr = server.local_addr();
    let r = get(addr, "/poll").await;
    assert_eq!(
        r.json(),
        serde_json::json!({"events": [], "next": 0, "missed": 0})
    );
    server.hub().publish(&[1, 2, 3, 4, 5], 16); // ring holds 3, 4, 5
    let body = get(addr, "/poll").await.json();
    assert_eq!(
        (
            body["events"].as_array().unwrap().len(),
            body["next"].as_u64()
        ),
        (0, Some(5))
    );
    let body = get(addr, "/poll?after=0").await.json();
    let seqs: Vec<u64> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        (seqs, body["next"].as_u64(), body["missed"].as_u64()),
        (vec![3, 4, 5], Some(5), Some(2))
    );
    let body = get(addr, "/poll?after=3&limit=1").await.json();
    assert_eq!(
        (
            body["events"][0]["seq"].as_u64(),
            body["next"].as_u64(),
            body["missed"].as_u64()
        ),
        (Some(4), Some(4), Some(0))
    );
    let body = get(addr, "/poll?after=5").await.json();
    assert_eq!(
        body,
        serde_json::json!({"events": [], "next": 5, "missed": 0})
    );
    let r = get(addr, "/poll?after=6").await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("ahead of the newest event (5)"));
}

#[tokio::test]
async fn long_poll_wakes_on_publish_and_times_out() {
    let server = start(|_| {}).await;
    let addr = server.local_addr();
    server.hub().publish(&[1], 16);

    // Times out: 200 with no events, after at least timeout_ms.
    let t0 = std::time::Instant::now();
    let body = get(addr, "/longpoll?after=1&timeout_ms=200").await.json();
    let waited = t0.elapsed();
    assert_eq!(
        body,
        serde_json::json!({"events": [], "next": 1, "missed": 0})
    );
    assert!(
        waited >= Duration::from_millis(200),
        "answered after {waited:?}"
    );

    // Wakes on publish, well before its timeout.
    let mut lp = Http::connect(addr).await;
    lp.send("GET", "/longpoll?after=1&timeout_ms=60000", "", b"")
        .await;
    eventually("parked", || async {
        stat(&server, "/connections/open/long_poll_parked") == 1
    })
    .await;
    let t0 = std::time::Instant::now();
    server.hub().publish(&[2], 16);
    let body = lp.read_response().await.json();
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(body["events"][0]["seq"].as_u64(), Some(2));
    assert_eq!(stat(&server, "/connections/open/long_poll_parked"), 0);

    // Without a cursor it waits for the next event from now.
    lp.send("GET", "/longpoll?timeout_ms=60000", "", b"").await;
    eventually("parked again", || async {
        stat(&server, "/connections/open/long_poll_parked") == 1
    })
    .await;
    server.hub().publish(&[3], 16);
    let body = lp.read_response().await.json();
    assert_eq!(
        (body["events"][0]["seq"].as_u64(), body["next"].as_u64()),
        (Some(3), Some(3))
    );
}

#[tokio::test]
async fn bad_inputs_get_4xx_with_a_json_error() {
    let server = start(|c| c.control_token = Some("s3cret".into())).await;
    let addr = server.local_addr();
    // (method, path, extra headers, body, status, substring of the error)
    let cases: &[(&str, &str, &str, &str, u16, &str)] = &[
        ("GET", "/poll?after=abc", "", "", 400, "after must be an unsigned integer"),
        ("GET", "/poll?after=-1", "", "", 400, "after must be an unsigned integer"),
        ("GET", "/poll?limit=0", "", "", 400, "limit must be in 1..=10000"),
        ("GET", "/poll?limit=10001", "", "", 400, "limit must be in 1..=10000"),
        ("GET", "/poll?afterr=1", "", "", 400, "unknown query parameter 'afterr'"),
        ("GET", "/poll?after=1&after=2", "", "", 400, "more than once"),
        ("GET", "/poll?timeout_ms=5", "", "", 400, "unknown query parameter 'timeout_ms'"),
        ("GET", "/longpoll?timeout_ms=999999", "", "", 400, "timeout_ms must be in 0..=120000"),
        ("GET", "/longpoll?after=99", "", "", 400, "ahead of the newest event"),
        ("GET", "/nope", "", "", 404, "no such path: /nope"),
        ("POST", "/poll", "", "", 405, "method not allowed"),
        ("DELETE", "/control/feed", "", "", 405, "GET, PUT"),
        ("GET", "/ws", "", "", 400, "not a WebSocket upgrade"),
        ("GET", "/ws", "connection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n", "", 400, "Sec-WebSocket-Key header missing"),
        ("GET", "/ws", "connection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 8\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", 400, "Sec-WebSocket-Version must be 13"),
        ("POST", "/ws", "", "", 405, "method not allowed"),
        ("GET", "/sse?after=x", "", "", 400, "after must be an unsigned integer"),
        ("GET", "/sse", "last-event-id: nope\r\n", "", 400, "Last-Event-ID"),
        ("GET", "/stats?x=1", "", "", 400, "this endpoint takes none"),
        ("PUT", "/control/feed", "", "{\"rate_hz\":1}", 401, "Bearer"),
        ("PUT", "/control/feed", "authorization: Bearer wrong\r\n", "{\"rate_hz\":1}", 401, "Bearer"),
        ("PUT", "/control/feed", "authorization: Bearer s3cret\r\n", "{\"rate_hz\":", 400, "bad control JSON"),
        ("PUT", "/control/feed", "authorization: Bearer s3cret\r\n", "{\"rate\":1}", 400, "unknown field `rate`"),
        ("PUT", "/control/feed", "authorization: Bearer s3cret\r\n", "{}", 400, "give rate_hz, payload_bytes or both"),
        ("PUT", "/control/feed", "authorization: Bearer s3cret\r\n", "{\"rate_hz\":-1}", 400, "rate_hz must be"),
        ("PUT", "/control/feed", "authorization: Bearer s3cret\r\n", "{\"payload_bytes\":99999999}", 400, "payload_bytes must be"),
        ("PUT", "/control/feed", "authorization: Bearer s3cret\r\n", "{\"rate_hz\":\"fast\"}", 400, "bad control JSON"),
    ];
    for (method, path, extra, body, status, needle) in cases {
        let mut c = Http::connect(addr).await;
        c.send(method, path, extra, body.as_bytes()).await;
        let r = c.read_response().await;
        assert_eq!(
            r.status,
            *status,
            "{method} {path} {body}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(
            r.header("content-type"),
            Some("application/json"),
            "{method} {path}"
        );
        let err = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(
            err.contains(needle),
            "{method} {path} {body}: error {err:?} lacks {needle:?}"
        );
    }
    // The control endpoint still works with the token, and the feed did not change before.
    assert_eq!(
        get(addr, "/control/feed").await.json(),
        serde_json::json!({"rate_hz": 0.0, "payload_bytes": 16})
    );
    let mut c = Http::connect(addr).await;
    c.send(
        "PUT",
        "/control/feed",
        "authorization: Bearer s3cret\r\n",
        br#"{"payload_bytes":32}"#,
    )
    .await;
    let r = c.read_response().await;
    assert_eq!(
        (r.status, r.json()),
        (
            200,
            serde_json::json!({"rate_hz": 0.0, "payload_bytes": 32})
        )
    );
    // A body over the limit is refused with 413.
    let mut c = Http::connect(addr).await;
    let big = vec![b' '; 70 * 1024];
    c.send(
        "PUT",
        "/control/feed",
        "authorization: Bearer s3cret\r\n",
        &big,
    )
    .await;
    assert_eq!(c.read_response().await.status, 413);
    // Healthz, metrics.
    assert_eq!(get(addr, "/healthz").await.status, 200);
    let m = get(addr, "/metrics").await;
    assert!(String::from_utf8(m.body)
        .unwrap()
        .contains("feedbench_requests_total{endpoint=\"control\"}"));
}

#[tokio::test]
async fn control_changes_the_feed_without_resetting_seq() {
    let server = start(|c| c.rate_hz = 0.0).await;
    let addr = server.local_addr();
    server.hub().publish(&[1, 2], 16);
    let mut c = Http::connect(addr).await;
    c.send(
        "PUT",
        "/control/feed",
        "",
        br#"{"rate_hz":200,"payload_bytes":5}"#,
    )
    .await;
    assert_eq!(c.read_response().await.status, 200);
    eventually("events at the new rate", || async {
        server.hub().head() >= 5
    })
    .await;
    let body = get(addr, "/poll?after=2&limit=1").await.json();
    assert_eq!(body["events"][0]["seq"].as_u64(), Some(3));
    assert_eq!(body["events"][0]["data"].as_str().unwrap().len(), 5);
}

#[tokio::test]
async fn slow_ws_consumer_is_closed_while_a_healthy_one_keeps_up() {
    let server = start(|c| {
        c.ws_queue = 64;
        c.retain = 10_000;
    })
    .await;
    let addr = server.local_addr();
    let mut slow = ws_connect(addr, "/ws").await;
    let mut healthy = ws_connect(addr, "/ws").await;
    eventually("both sockets open", || async {
        stat(&server, "/connections/open/ws") == 2
    })
    .await;

    // 16 KiB events fill the slow client's socket buffers quickly.
    let payload = 16 * 1024;
    let mut received = 0u64;
    let mut published = 0u64;
    for _round in 0..200 {
        server.hub().publish(&[1; 20], payload);
        published += 20;
        for _ in 0..20 {
            let text = next_text(&mut healthy).await;
            received += 1;
            assert!(
                text.starts_with(&format!("{{\"seq\":{received},")),
                "healthy got {}",
                &text[..20]
            );
        }
        if stat(&server, "/connections/slow_consumer_closed/ws") == 1 {
            break;
        }
    }
    assert_eq!(
        stat(&server, "/connections/slow_consumer_closed/ws"),
        1,
        "slow consumer never closed after {published} events"
    );
    // The slow client now reads: it finds events in order and then a 1013 close.
    let mut last_seq = 0;
    let close = loop {
        match tokio::time::timeout(BOUND, slow.next())
            .await
            .expect("slow read timed out")
        {
            Some(Ok(Message::Text(t))) => {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                let seq = v["seq"].as_u64().unwrap();
                assert_eq!(seq, last_seq + 1);
                last_seq = seq;
            }
            Some(Ok(Message::Close(frame))) => break frame,
            other => panic!("slow client got {other:?} after seq {last_seq}"),
        }
    };
    let frame = close.expect("close frame with a code");
    assert_eq!(frame.code, CloseCode::Again);
    assert_eq!(frame.reason.as_str(), "slow consumer");
    assert!(last_seq < published);
    // The healthy one still receives.
    server.hub().publish(&[1], 16);
    let text = next_text(&mut healthy).await;
    assert!(text.starts_with(&format!("{{\"seq\":{},", published + 1)));
    eventually("slow socket gone", || async {
        stat(&server, "/connections/open/ws") == 1
    })
    .await;
}

#[tokio::test]
async fn slow_sse_consumer_is_ended() {
    let server = start(|c| {
        c.ws_queue = 64;
        c.retain = 10_000;
    })
    .await;
    let addr = server.local_addr();
    let mut slow = Http::connect(addr).await;
    slow.send("GET", "/sse", "", b"").await;
    assert_eq!(slow.read_head().await.0, 200);
    eventually("sse open", || async {
        stat(&server, "/connections/open/sse") == 1
    })
    .await;
    for _ in 0..400 {
        server.hub().publish(&[1; 10], 16 * 1024);
        if stat(&server, "/connections/slow_consumer_closed/sse") == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(stat(&server, "/connections/slow_consumer_closed/sse"), 1);
    assert!(slow.closed_by_server().await);
    eventually("sse gauge back to 0", || async {
        stat(&server, "/connections/open/sse") == 0
    })
    .await;
}

#[tokio::test]
async fn parked_long_poll_of_a_vanished_client_leaves_no_waiter() {
    let server = start(|_| {}).await;
    let addr = server.local_addr();
    let mut clients = Vec::new();
    for _ in 0..20 {
        let mut c = Http::connect(addr).await;
        c.send("GET", "/longpoll?timeout_ms=120000", "", b"").await;
        clients.push(c);
    }
    eventually("20 parked", || async {
        stat(&server, "/connections/open/long_poll_parked") == 20
    })
    .await;
    drop(clients);
    eventually("no parked waiters", || async {
        stat(&server, "/connections/open/long_poll_parked") == 0
    })
    .await;
    eventually("connections closed", || async {
        stat(&server, "/connections/open/total") == 0
    })
    .await;
}

/// Waits until the server has finished `n` connections, then compares one class's counters
/// with the client's own counts.
async fn assert_bytes_match(
    server: &feedbench_server::ServerHandle,
    class: &str,
    closed: u64,
    written: u64,
    read: u64,
) {
    eventually("connections finished", || async {
        stat(server, "/connections/closed") >= closed
    })
    .await;
    let st = server.stats();
    assert_eq!(
        st["bytes"][class]["in"].as_u64(),
        Some(written),
        "{class} in: {st}"
    );
    assert_eq!(
        st["bytes"][class]["out"].as_u64(),
        Some(read),
        "{class} out: {st}"
    );
}

#[tokio::test]
async fn stats_byte_counters_equal_the_clients_counts() {
    let server = start(|_| {}).await;
    let addr = server.local_addr();
    server.hub().publish(&[1, 2, 3], 100);

    // short-poll: keep-alive, three requests.
    let mut c = Http::connect(addr).await;
    for path in ["/poll?after=0", "/poll?after=2", "/poll"] {
        assert_eq!(c.get(path).await.status, 200);
    }
    let counts = c.stream.counts.clone();
    drop(c);
    assert_bytes_match(
        &server,
        "short_poll",
        1,
        counts.written.load(Relaxed),
        counts.read.load(Relaxed),
    )
    .await;

    // long-poll: one parked then woken.
    let mut c = Http::connect(addr).await;
    c.send("GET", "/longpoll?after=3", "", b"").await;
    eventually("parked", || async {
        stat(&server, "/connections/open/long_poll_parked") == 1
    })
    .await;
    server.hub().publish(&[4], 100);
    assert_eq!(c.read_response().await.status, 200);
    let counts = c.stream.counts.clone();
    drop(c);
    assert_bytes_match(
        &server,
        "long_poll",
        2,
        counts.written.load(Relaxed),
        counts.read.load(Relaxed),
    )
    .await;

    // ws: replay, live events, a ping, a client text message, and a clean close.
    let mut ws = ws_connect(addr, "/ws?after=2").await;
    let counts = ws.get_ref().counts.clone();
    next_text(&mut ws).await;
    next_text(&mut ws).await;
    ws.send(Message::Ping(vec![1, 2, 3].into())).await.unwrap();
    ws.send(Message::Text("ignored".into())).await.unwrap();
    server.hub().publish(&[5], 100);
    let mut got_pong = false;
    loop {
        match tokio::time::timeout(BOUND, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Pong(p) => got_pong = p.as_ref() == [1, 2, 3],
            Message::Text(t) if t.as_str().starts_with("{\"seq\":5,") => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    if !got_pong {
        match tokio::time::timeout(BOUND, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Pong(p) => assert_eq!(p.as_ref(), [1, 2, 3]),
            other => panic!("expected the pong, got {other:?}"),
        }
    }
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = tokio::time::timeout(BOUND, ws.next()).await.unwrap() {}
    drop(ws);
    assert_bytes_match(
        &server,
        "ws",
        3,
        counts.written.load(Relaxed),
        counts.read.load(Relaxed),
    )
    .await;

    // sse: two events then the client leaves.
    let mut c = Http::connect(addr).await;
    c.send("GET", "/sse?after=3", "", b"").await;
    c.read_head().await;
    c.read_chunk().await.unwrap();
    c.read_chunk().await.unwrap();
    let counts = c.stream.counts.clone();
    drop(c);
    assert_bytes_match(
        &server,
        "sse",
        4,
        counts.written.load(Relaxed),
        counts.read.load(Relaxed),
    )
    .await;
}

#[tokio::test]
async fn ws_steady_state_bytes_per_event_are_exact() {
    let server = start(|_| {}).await;
    let addr = server.local_addr();
    let mut ws = ws_connect(addr, "/ws").await;
    eventually("ws open", || async {
        stat(&server, "/connections/open/ws") == 1
    })
    .await;
    let counts = ws.get_ref().counts.clone();
    for (payload, header) in [(16usize, 2u64), (200, 4), (70_000, 10)] {
        let before = counts.read.load(Relaxed);
        server.hub().publish(&[1_700_000_000_000_000_000], payload);
        let text = next_text(&mut ws).await;
        let after = counts.read.load(Relaxed);
        assert_eq!(
            after - before,
            text.len() as u64 + header,
            "payload {payload}"
        );
    }
}

#[tokio::test]
async fn graceful_shutdown_answers_closes_and_ends_everything() {
    let server = start(|_| {}).await;
    let addr = server.local_addr();
    server.hub().publish(&[1], 16);
    let mut ws = ws_connect(addr, "/ws").await;
    let mut sse = Http::connect(addr).await;
    sse.send("GET", "/sse", "", b"").await;
    sse.read_head().await;
    let mut lp = Http::connect(addr).await;
    lp.send("GET", "/longpoll?after=1&timeout_ms=120000", "", b"")
        .await;
    let mut idle = Http::connect(addr).await;
    assert_eq!(idle.get("/healthz").await.status, 200);
    eventually("all open", || async {
        stat(&server, "/connections/open/long_poll_parked") == 1
            && stat(&server, "/connections/open/ws") == 1
            && stat(&server, "/connections/open/sse") == 1
    })
    .await;

    let t0 = std::time::Instant::now();
    server.shutdown();
    // Parked long-poll: answered at once with no events.
    let r = lp.read_response().await;
    assert_eq!(
        (r.status, r.json()),
        (
            200,
            serde_json::json!({"events": [], "next": 1, "missed": 0})
        )
    );
    // The listener closed before any connection was told to drain: a client that
    // reconnects on that answer finds nothing to connect to.
    assert_eq!(
        tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.kind())
            .err(),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
    // WebSocket: 1001.
    match tokio::time::timeout(BOUND, ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected a 1001 close, got {other:?}"),
    }
    // SSE: the chunked body ends cleanly.
    assert_eq!(sse.read_chunk().await, None);
    assert!(idle.closed_by_server().await);
    tokio::time::timeout(Duration::from_secs(2), server.wait())
        .await
        .expect("server stops within 2 s");
    assert!(t0.elapsed() < Duration::from_secs(2));
    // Nothing listens any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn connections_over_the_limit_are_refused_and_counted() {
    let server = start(|c| c.max_connections = 3).await;
    let addr = server.local_addr();
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = Http::connect(addr).await;
        assert_eq!(c.get("/healthz").await.status, 200);
        held.push(c);
    }
    let mut extra = Http::connect(addr).await;
    let (status, _) = extra.read_head().await;
    assert_eq!(status, 503);
    assert!(extra.closed_by_server().await);
    assert_eq!(stat(&server, "/connections/refused"), 1);
    // Existing clients are unaffected; after one leaves, a new one gets in.
    assert_eq!(held[0].get("/healthz").await.status, 200);
    drop(held.pop());
    eventually("a slot frees", || async {
        stat(&server, "/connections/open/total") == 2
    })
    .await;
    assert_eq!(get(addr, "/healthz").await.status, 200);
}

#[tokio::test]
async fn slowloris_header_is_cut_off_by_the_header_timeout() {
    let server = start(|c| c.header_timeout = Duration::from_millis(300)).await;
    let addr = server.local_addr();
    let mut c = Http::connect(addr).await;
    c.send_raw(b"GET /poll HTTP/1.1\r\nhost: t\r\nx-slow: ")
        .await;
    let t0 = std::time::Instant::now();
    assert!(c.closed_by_server().await);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
}

/// Reads until the server closes the connection (bounded), returning everything read.
async fn read_to_close(s: &mut CountingStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut all = Vec::new();
    tokio::time::timeout(BOUND, s.read_to_end(&mut all))
        .await
        .expect("server closes within the bound")
        .expect("read");
    all
}

/// The same request with more headers than the fast path parses (padding hyper ignores),
/// so hyper serves it: how tests force the hyper path by the request's content.
fn via_hyper(request: &str) -> String {
    let (head, rest) = request.split_once("\r\n").unwrap();
    format!("{head}\r\n{}{rest}", "x-pad: 1\r\n".repeat(33))
}

/// `/sse` is served two ways: straight to the socket when the connection's first request
/// is a plain `GET /sse` that arrived in one piece, and by hyper otherwise (here: a head
/// with more headers than the fast path takes). Both must put
/// the same bytes on the wire, count the same and end the same way at shutdown.
#[tokio::test]
async fn sse_served_directly_and_by_hyper_is_byte_identical() {
    use tokio::io::AsyncWriteExt;
    let server = start(|_| {}).await;
    let addr = server.local_addr();
    server.hub().publish(&[1], 16);

    let mut direct = CountingStream::connect(addr).await;
    direct
        .write_all(b"GET /sse?after=0 HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let mut by_hyper = CountingStream::connect(addr).await;
    by_hyper
        .write_all(via_hyper("GET /sse?after=0 HTTP/1.1\r\nhost: t\r\n\r\n").as_bytes())
        .await
        .unwrap();
    eventually("both streams open", || async {
        stat(&server, "/connections/open/sse") == 2
    })
    .await;
    // 16 B and 387 B payloads: chunk sizes 0x38 and 0x1AB (upper-case hex with letters).
    server.hub().publish(&[2], 16);
    server.hub().publish(&[3], 387);
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-store\r\n\
                x-accel-buffering: no\r\ntransfer-encoding: chunked\r\ndate: <date>\r\n\r\n";
    let events = event_jsons(&server, 0);
    assert_eq!(events.len(), 3);
    let mut body = String::new();
    for (seq, json) in (1..).zip(&events) {
        let frame = format!("id: {seq}\ndata: {json}\n\n");
        body.push_str(&format!("{:X}\r\n{frame}\r\n", frame.len()));
    }
    // A date is 29 characters where the template has 6.
    let per_stream = (head.len() + 29 - 6 + body.len()) as u64;
    eventually("both sent everything", || async {
        stat(&server, "/bytes/sse/out") == 2 * per_stream
    })
    .await;
    body.push_str("0\r\n\r\n");
    server.shutdown();
    let raw_direct = read_to_close(&mut direct).await;
    let raw_hyper = read_to_close(&mut by_hyper).await;

    // The date may tick between the two heads; everything else must be identical.
    let undated = |raw: &[u8]| {
        let text = String::from_utf8(raw.to_vec()).unwrap();
        let start = text.find("\r\ndate: ").expect("a date header") + 8;
        format!("{}<date>{}", &text[..start], &text[start + 29..])
    };
    assert_eq!(undated(&raw_direct), undated(&raw_hyper));
    let text = undated(&raw_direct);
    assert!(text.starts_with(head), "{text:?}");
    assert_eq!(&text[head.len()..], body);
    assert!(body.contains("\r\n1AB\r\n"), "{body:?}");

    // Accounting: both requests counted, the class's bytes equal the two clients' bytes.
    assert_eq!(stat(&server, "/requests/sse"), 2);
    let written = direct.counts.written.load(Relaxed) + by_hyper.counts.written.load(Relaxed);
    let read = direct.counts.read.load(Relaxed) + by_hyper.counts.read.load(Relaxed);
    assert_eq!(
        (
            stat(&server, "/bytes/sse/in"),
            stat(&server, "/bytes/sse/out")
        ),
        (written, read)
    );
    assert_eq!(stat(&server, "/connections/open/sse"), 0);
}

/// `/ws` is upgraded two ways: on the connection's own task with events written as frames
/// encoded once at publish, when the upgrade request is plain and whole; and by hyper with
/// tungstenite framing each message otherwise. Both must put the same bytes on the wire
/// (the 101 head, text frames of each length form, a pong, the 1001 close at shutdown) and
/// count the same.
#[tokio::test]
async fn ws_served_directly_and_by_hyper_is_byte_identical() {
    use tokio::io::AsyncWriteExt;
    let server = start(|_| {}).await;
    let addr = server.local_addr();
    server.hub().publish(&[1], 16);
    let upgrade = "GET /ws?after=0 HTTP/1.1\r\nhost: t\r\nconnection: Upgrade\r\n\
                   upgrade: websocket\r\nsec-websocket-version: 13\r\n\
                   sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let mut direct = CountingStream::connect(addr).await;
    direct.write_all(upgrade.as_bytes()).await.unwrap();
    let mut by_hyper = CountingStream::connect(addr).await;
    by_hyper
        .write_all(via_hyper(upgrade).as_bytes())
        .await
        .unwrap();
    eventually("both open", || async {
        stat(&server, "/connections/open/ws") == 2
    })
    .await;
    assert_eq!(stat(&server, "/requests_by_path/direct"), 1);
    assert_eq!(stat(&server, "/requests_by_path/hyper"), 1);
    // 16 B, 387 B and 70,000 B payloads: 7-bit, 16-bit and 64-bit frame lengths.
    server.hub().publish(&[2], 387);
    server.hub().publish(&[3], 70_000);
    let head = "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\
                sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\ndate: <date>\r\n\r\n";
    let mut frames = Vec::new();
    for json in event_jsons(&server, 0) {
        frames.extend(text_frame(&json));
    }
    let per_stream = (head.len() + 29 - 6 + frames.len()) as u64;
    eventually("both sent every event", || async {
        stat(&server, "/bytes/ws/out") == 2 * per_stream
    })
    .await;
    // A masked ping "hi" from each client is answered with a pong "hi".
    let mask = [1u8, 2, 3, 4];
    let ping = [0x89, 0x82, 1, 2, 3, 4, b'h' ^ mask[0], b'i' ^ mask[1]];
    direct.write_all(&ping).await.unwrap();
    by_hyper.write_all(&ping).await.unwrap();
    frames.extend_from_slice(&[0x8A, 2, b'h', b'i']);
    eventually("both answered the ping", || async {
        stat(&server, "/bytes/ws/out") == 2 * (per_stream + 4)
    })
    .await;
    let reason = b"server shutting down";
    frames.extend_from_slice(&[0x88, 2 + reason.len() as u8, 0x03, 0xE9]);
    frames.extend_from_slice(reason);
    server.shutdown();
    let raw_direct = read_to_close(&mut direct).await;
    let raw_hyper = read_to_close(&mut by_hyper).await;
    // The head is text (its date replaced), the frames after it bytes.
    let undated_ws = |raw: &[u8]| {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a head")
            + 4;
        let mut out = undated(&raw[..end]).into_bytes();
        out.extend_from_slice(&raw[end..]);
        out
    };
    let (got, got_hyper) = (undated_ws(&raw_direct), undated_ws(&raw_hyper));
    let mut want = head.as_bytes().to_vec();
    want.extend_from_slice(&frames);
    assert_eq!((got.len(), got_hyper.len()), (want.len(), want.len()));
    assert!(
        got == want,
        "the direct path's bytes differ from the expected frames"
    );
    assert!(
        got_hyper == want,
        "hyper's bytes differ from the expected frames"
    );
    assert_eq!(stat(&server, "/requests/ws"), 2);
    let written = direct.counts.written.load(Relaxed) + by_hyper.counts.written.load(Relaxed);
    let read = direct.counts.read.load(Relaxed) + by_hyper.counts.read.load(Relaxed);
    assert_eq!(
        (
            stat(&server, "/bytes/ws/in"),
            stat(&server, "/bytes/ws/out")
        ),
        (written, read)
    );
    assert_eq!(stat(&server, "/connections/open/ws"), 0);
}

/// Splits `raw` at the date header's value (29 characters) so two answers made a second
/// apart compare equal.
fn undated(raw: &[u8]) -> String {
    let text = String::from_utf8(raw.to_vec()).unwrap();
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("\r\ndate: ") {
        out.push_str(&rest[..at + 8]);
        out.push_str("<date>");
        rest = &rest[at + 8 + 29..];
    }
    out.push_str(rest);
    out
}

/// `/poll` and `/longpoll` are answered straight to the socket while a connection's
/// requests come plain and whole, and by hyper otherwise; both ways must write the same
/// bytes, and a connection can go on to hyper after direct answers.
#[tokio::test]
async fn polls_served_directly_and_by_hyper_are_byte_identical() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start(|_| {}).await;
    let addr = server.local_addr();
    server.hub().publish(&[1, 2, 3], 16);
    let requests = [
        "GET /poll?after=0&limit=2 HTTP/1.1\r\nhost: t\r\n\r\n",
        "GET /poll HTTP/1.1\r\nhost: t\r\n\r\n",
        "GET /longpoll?after=1 HTTP/1.1\r\nhost: t\r\n\r\n",
        "GET /longpoll?after=3&timeout_ms=50 HTTP/1.1\r\nhost: t\r\n\r\n",
    ];
    // Reads one complete content-length response.
    async fn response(s: &mut CountingStream) -> Vec<u8> {
        let mut buf = Vec::new();
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let len: usize = head
                    .split("\r\n")
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .unwrap()
                    .parse()
                    .unwrap();
                if buf.len() >= end + 4 + len {
                    assert_eq!(buf.len(), end + 4 + len, "nothing more was sent");
                    return buf;
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(BOUND, s.read(&mut chunk))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "closed mid-response");
            buf.extend_from_slice(&chunk[..n]);
        }
    }
    // Direct: all four requests on one keep-alive connection, each sent whole.
    let mut direct = CountingStream::connect(addr).await;
    let mut direct_answers = Vec::new();
    for r in requests {
        direct.write_all(r.as_bytes()).await.unwrap();
        direct_answers.push(response(&mut direct).await);
    }
    // Then a request for hyper on the same connection, and a poll after it (hyper's now).
    direct
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    assert!(undated(&response(&mut direct).await).ends_with("{\"status\":\"ok\"}"));
    direct.write_all(requests[0].as_bytes()).await.unwrap();
    let after_handoff = response(&mut direct).await;
    // By hyper: each request with more headers than the fast path takes.
    let mut by_hyper = CountingStream::connect(addr).await;
    let mut hyper_answers = Vec::new();
    for r in requests {
        by_hyper.write_all(via_hyper(r).as_bytes()).await.unwrap();
        hyper_answers.push(response(&mut by_hyper).await);
    }
    for (i, (d, h)) in direct_answers.iter().zip(&hyper_answers).enumerate() {
        assert_eq!(undated(d), undated(h), "request {i}");
    }
    assert_eq!(undated(&after_handoff), undated(&hyper_answers[0]));
    let events = event_jsons(&server, 0);
    let body = format!(
        "{{\"events\":[{},{}],\"next\":2,\"missed\":0}}",
        events[0], events[1]
    );
    assert_eq!(
        undated(&direct_answers[0]),
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: no-store\r\n\
             content-length: {}\r\ndate: <date>\r\n\r\n{body}",
            body.len()
        )
    );
    assert!(
        undated(&direct_answers[3]).ends_with("\r\n\r\n{\"events\":[],\"next\":3,\"missed\":0}")
    );
    // Accounting: requests by endpoint and by path, and bytes by class match the two
    // clients exactly.
    assert_eq!(stat(&server, "/requests/poll"), 5);
    assert_eq!(stat(&server, "/requests/longpoll"), 4);
    assert_eq!(stat(&server, "/requests_by_path/direct"), 4);
    assert_eq!(stat(&server, "/requests_by_path/hyper"), 6);
    drop(direct);
    drop(by_hyper);
    eventually("both connections closed", || async {
        stat(&server, "/connections/open/total") == 0
    })
    .await;
    let total_in = stat(&server, "/bytes/short_poll/in")
        + stat(&server, "/bytes/long_poll/in")
        + stat(&server, "/bytes/other/in");
    let written: usize = requests
        .iter()
        .map(|r| r.len() + via_hyper(r).len())
        .sum::<usize>()
        + requests[0].len()
        + "GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n".len();
    assert_eq!(total_in, written as u64);
}

/// Sends `request` on a fresh connection and reads until the server closes it.
async fn exchange_to_close(addr: std::net::SocketAddr, request: &str) -> Vec<u8> {
    use tokio::io::AsyncWriteExt;
    let mut s = CountingStream::connect(addr).await;
    s.write_all(request.as_bytes()).await.unwrap();
    read_to_close(&mut s).await
}

/// `Connection: close` and `Connection: keep-alive` (browsers and `--no-keepalive`
/// clients send them) stay on the fast path, and `close` is honoured exactly as hyper
/// honours it: the same bytes, `connection: close` included, then the connection ends.
#[tokio::test]
async fn connection_headers_stay_on_the_fast_path_with_hyper_s_bytes() {
    use tokio::io::AsyncWriteExt;
    let server = start(|_| {}).await;
    let addr = server.local_addr();
    server.hub().publish(&[1, 2], 16);
    let polls = [
        "GET /poll?after=0 HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
        "GET /longpoll?after=1 HTTP/1.1\r\nhost: t\r\nConnection: Close\r\n\r\n",
    ];
    for r in polls {
        let direct = exchange_to_close(addr, r).await;
        let by_hyper = exchange_to_close(addr, &via_hyper(r)).await;
        assert_eq!(undated(&direct), undated(&by_hyper), "{r:?}");
        assert!(
            undated(&direct).starts_with(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: no-store\r\n\
                 connection: close\r\ncontent-length: "
            ),
            "{:?}",
            undated(&direct)
        );
    }
    assert_eq!(stat(&server, "/requests_by_path/direct"), 2);
    assert_eq!(stat(&server, "/requests_by_path/hyper"), 2);

    // Keep-alive: answered directly, the connection stays open for the next request.
    let mut c = Http::connect(addr).await;
    for _ in 0..2 {
        c.send("GET", "/poll?after=1", "connection: keep-alive\r\n", b"")
            .await;
        let r = c.read_response().await;
        assert_eq!((r.status, r.header("connection")), (200, None));
    }
    assert_eq!(stat(&server, "/requests_by_path/direct"), 4);

    // SSE with close: the same head (with `connection: close`) and stream either way.
    let sse = "GET /sse?after=0 HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n";
    let mut direct = CountingStream::connect(addr).await;
    direct.write_all(sse.as_bytes()).await.unwrap();
    let mut by_hyper = CountingStream::connect(addr).await;
    by_hyper.write_all(via_hyper(sse).as_bytes()).await.unwrap();
    eventually("both streams open", || async {
        stat(&server, "/connections/open/sse") == 2
    })
    .await;
    assert_eq!(stat(&server, "/requests_by_path/direct"), 5);
    server.shutdown();
    let (direct, by_hyper) = (
        read_to_close(&mut direct).await,
        read_to_close(&mut by_hyper).await,
    );
    assert_eq!(undated(&direct), undated(&by_hyper));
    assert!(undated(&direct).starts_with(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-store\r\n\
         x-accel-buffering: no\r\nconnection: close\r\ntransfer-encoding: chunked\r\n"
    ));
}

/// An answer written once shutdown has begun says `connection: close` on both paths,
/// byte for byte alike: here, parked long-polls answered by the shutdown.
#[tokio::test]
async fn answers_during_shutdown_carry_connection_close_on_both_paths() {
    use tokio::io::AsyncWriteExt;
    let server = start(|_| {}).await;
    let addr = server.local_addr();
    server.hub().publish(&[1], 16);
    let lp = "GET /longpoll?after=1&timeout_ms=120000 HTTP/1.1\r\nhost: t\r\n\r\n";
    let mut direct = CountingStream::connect(addr).await;
    direct.write_all(lp.as_bytes()).await.unwrap();
    let mut by_hyper = CountingStream::connect(addr).await;
    by_hyper.write_all(via_hyper(lp).as_bytes()).await.unwrap();
    eventually("both parked", || async {
        stat(&server, "/connections/open/long_poll_parked") == 2
    })
    .await;
    server.shutdown();
    let (direct, by_hyper) = (
        read_to_close(&mut direct).await,
        read_to_close(&mut by_hyper).await,
    );
    assert_eq!(undated(&direct), undated(&by_hyper));
    assert_eq!(
        undated(&direct),
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: no-store\r\n\
         connection: close\r\ncontent-length: 33\r\ndate: <date>\r\n\r\n\
         {\"events\":[],\"next\":1,\"missed\":0}"
    );
}

/// Every request on a keep-alive connection gets the whole header timeout: a first
/// request that took most of it no longer shortens the ones after it on the hyper path.
/// The margins are whole seconds against a two-second timeout.
#[tokio::test]
async fn every_request_on_a_connection_gets_the_whole_header_timeout() {
    let timeout = Duration::from_secs(2);
    let server = start(|c| c.header_timeout = timeout).await;
    let mut c = Http::connect(server.local_addr()).await;
    // 1.5 s of the first request's 2 s pass before it is sent; it goes to hyper.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(c.get("/healthz").await.status, 200);
    // The second request's head takes 1 s, more than the 0.5 s the first left over.
    c.send_raw(b"GET /healthz HTTP/1.1\r\nhost: t\r\n").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.send_raw(b"\r\n").await;
    assert_eq!(c.read_response().await.status, 200);
    // The first head handed to hyper half-read is still cut at the timeout from the accept.
    let mut slow = Http::connect(server.local_addr()).await;
    let t0 = std::time::Instant::now();
    slow.send_raw(b"GET /healthz HTTP/1.1\r\nhost: t\r\n").await;
    assert!(slow.closed_by_server().await);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1_900) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
}

/// The realtime clock in Unix nanoseconds, as a client on this host reads it.
fn client_unix_ns() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    u64::try_from(since.unwrap().as_nanos()).unwrap()
}

/// `GET /time` answers exactly `{"unix_ns":N}` (JSON, not cached) with N the server's
/// realtime clock, which on one host lies between the client's reads just before sending
/// and just after the answer; on a kept-alive connection every answer does. Other methods
/// and a query get the usual 405 and 400, and every request counts under `time`.
#[tokio::test]
async fn time_answers_the_realtime_clock_within_the_exchange() {
    let server = start(|_| {}).await;
    let addr = server.local_addr();
    let mut c = Http::connect(addr).await;
    for _ in 0..3 {
        let before = client_unix_ns();
        let r = c.get("/time").await;
        let after = client_unix_ns();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let n = r.json()["unix_ns"].as_u64().expect("unix_ns is a u64");
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            format!(r#"{{"unix_ns":{n}}}"#)
        );
        assert!(
            before <= n && n <= after,
            "server clock {n} outside the exchange [{before}, {after}]"
        );
    }
    c.send("POST", "/time", "", b"").await;
    let r = c.read_response().await;
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")));
    let r = c.get("/time?x=1").await;
    assert_eq!(r.status, 400);
    assert_eq!(stat(&server, "/requests/time"), 5);
    assert_eq!(stat(&server, "/requests/other"), 0);
    server.shutdown();
}

/// A WebSocket upgrade the direct path takes.
const PLAIN_UPGRADE: &str = "GET /ws HTTP/1.1\r\nhost: t\r\nconnection: Upgrade\r\n\
                             upgrade: websocket\r\nsec-websocket-version: 13\r\n\
                             sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// An unmasked server text frame holding `json`, framed independently of the server.
fn text_frame(json: &str) -> Vec<u8> {
    let mut f = vec![0x81u8];
    match json.len() {
        n @ 0..=125 => f.push(n as u8),
        n @ 126..=65_535 => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(json.as_bytes());
    f
}

/// Reads exactly `n` bytes, within the bound.
async fn read_n(s: &mut CountingStream, n: usize) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; n];
    tokio::time::timeout(BOUND, s.read_exact(&mut buf))
        .await
        .expect("bytes within the bound")
        .expect("read");
    buf
}

/// Reads a response head (up to its blank line) one byte at a time, so nothing after it
/// is consumed.
async fn read_head_only(s: &mut CountingStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.extend(read_n(s, 1).await);
        assert!(head.len() < 4096, "no end of head");
    }
    String::from_utf8(head).unwrap()
}

/// Caught-up plain WebSocket and SSE streams are written by the publisher itself
/// (`fanout`): the bytes are the frames and chunks the task path writes, counted the
/// same, and a client's ping, the pong and shutdown's goodbyes still go through the task.
#[tokio::test]
async fn the_publisher_writes_caught_up_streams_byte_for_byte() {
    use tokio::io::AsyncWriteExt;
    let server = start(|_| {}).await;
    let addr = server.local_addr();
    let mut ws = CountingStream::connect(addr).await;
    ws.write_all(PLAIN_UPGRADE.as_bytes()).await.unwrap();
    let mut sse = CountingStream::connect(addr).await;
    sse.write_all(b"GET /sse HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    assert!(read_head_only(&mut ws).await.starts_with("HTTP/1.1 101 "));
    assert!(read_head_only(&mut sse).await.starts_with("HTTP/1.1 200 "));
    eventually("both sockets handed to the publisher", || async {
        server.hub().fanout().live() == 2
    })
    .await;
    // One event, then two published together: one write per socket per publish.
    server.hub().publish(&[1], 16);
    server.hub().publish(&[2, 3], 387);
    let events = server.hub().read_after(0, 10).events;
    assert_eq!(events.len(), 3);
    let ws_want: Vec<u8> = events
        .iter()
        .flat_map(|e| text_frame(e.json_str()))
        .collect();
    let mut sse_want = Vec::new();
    for e in &events {
        sse_want.extend_from_slice(format!("{:X}\r\n", e.sse.len()).as_bytes());
        sse_want.extend_from_slice(&e.sse);
        sse_want.extend_from_slice(b"\r\n");
    }
    assert_eq!(read_n(&mut ws, ws_want.len()).await, ws_want);
    assert_eq!(read_n(&mut sse, sse_want.len()).await, sse_want);
    assert_eq!(stat(&server, "/socket_calls/writes_by_publisher"), 4);
    assert_eq!(stat(&server, "/bytes/ws/out"), ws.counts.read.load(Relaxed));
    assert_eq!(
        stat(&server, "/bytes/sse/out"),
        sse.counts.read.load(Relaxed)
    );
    // A masked ping: the task takes the socket back, answers, and hands it over again.
    ws.write_all(&[0x89, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2])
        .await
        .unwrap();
    assert_eq!(read_n(&mut ws, 4).await, [0x8A, 2, b'h', b'i']);
    eventually("the WebSocket handed over again", || async {
        server.hub().fanout().live() == 2
    })
    .await;
    server.hub().publish(&[4], 16);
    let ev = server.hub().read_after(3, 1).events;
    let frame = text_frame(ev[0].json_str());
    assert_eq!(read_n(&mut ws, frame.len()).await, frame);
    let chunk = format!("{:X}\r\n", ev[0].sse.len());
    assert_eq!(
        read_n(&mut sse, chunk.len() + ev[0].sse.len() + 2).await,
        [chunk.as_bytes(), &ev[0].sse[..], b"\r\n"].concat()
    );
    assert_eq!(stat(&server, "/socket_calls/writes_by_publisher"), 6);
    // Shutdown: the tasks take their sockets back for the close frame and the last chunk.
    server.shutdown();
    let reason = b"server shutting down";
    let mut close = vec![0x88, 2 + reason.len() as u8, 0x03, 0xE9];
    close.extend_from_slice(reason);
    assert_eq!(read_to_close(&mut ws).await, close);
    assert_eq!(read_to_close(&mut sse).await, b"0\r\n\r\n");
    assert_eq!(server.hub().fanout().live(), 0);
    assert_eq!(
        (
            stat(&server, "/bytes/ws/out"),
            stat(&server, "/bytes/ws/in")
        ),
        (
            ws.counts.read.load(Relaxed),
            ws.counts.written.load(Relaxed)
        )
    );
    assert_eq!(
        stat(&server, "/bytes/sse/out"),
        sse.counts.read.load(Relaxed)
    );
}

/// A socket that stops taking the publisher's writes is handed back to its task with the
/// unwritten rest, which the task writes once the client reads: the client gets every
/// event, whole and in order, and the stream goes back to the publisher once caught up.
#[tokio::test]
async fn a_stalled_socket_is_handed_back_and_loses_nothing() {
    use tokio::io::AsyncWriteExt;
    let server = start(|c| {
        c.ws_queue = 100_000;
        c.retain = 100_000;
    })
    .await;
    let addr = server.local_addr();
    let mut c = Http::connect_small_window(addr, 4096).await;
    c.stream.write_all(PLAIN_UPGRADE.as_bytes()).await.unwrap();
    assert!(read_head_only(&mut c.stream)
        .await
        .starts_with("HTTP/1.1 101 "));
    eventually("handed to the publisher", || async {
        server.hub().fanout().live() == 1
    })
    .await;
    // 16 KiB events, one per publish, until the socket stops taking them whole.
    let mut published = 0u64;
    while server.hub().fanout().live() == 1 {
        published += 1;
        assert!(published < 5_000, "the socket never filled");
        server.hub().publish(&[1], 16 * 1024);
    }
    let by_publisher = stat(&server, "/socket_calls/writes_by_publisher");
    assert!(
        by_publisher >= published - 1,
        "{by_publisher} of {published}"
    );
    // More events while the task holds the socket.
    server.hub().publish(&[1; 5], 16 * 1024);
    published += 5;
    let want: Vec<u8> = server
        .hub()
        .read_after(0, 100_000)
        .events
        .iter()
        .flat_map(|e| text_frame(e.json_str()))
        .collect();
    assert_eq!(server.hub().head(), published);
    assert_eq!(read_n(&mut c.stream, want.len()).await, want);
    eventually("handed to the publisher again", || async {
        server.hub().fanout().live() == 1
    })
    .await;
    assert_eq!(
        stat(&server, "/bytes/ws/out"),
        c.stream.counts.read.load(Relaxed)
    );
    // The task wrote the head, the rest and the events published while it held the socket.
    let writes = stat(&server, "/socket_calls/writes");
    assert!(
        writes >= by_publisher + 3,
        "{writes} writes, {by_publisher} by the publisher"
    );
}

/// Reads one whole `content-length` answer (head and body), nothing after it.
async fn read_answer(s: &mut CountingStream) -> Vec<u8> {
    let head = read_head_only(s).await;
    let len: usize = head
        .split("\r\n")
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("a content-length")
        .parse()
        .unwrap();
    let mut out = head.into_bytes();
    out.extend(read_n(s, len).await);
    out
}

/// A parked long-poll on a plain socket is answered by the publisher (`fanout`): the same
/// bytes as hyper's answer, `limit` honoured, one publisher write per answer, the parked
/// gauge down at once; the connection then serves its next request, and a client silent
/// after the answer is cut off a header timeout after it, not at the long-poll's timeout.
#[tokio::test]
async fn the_publisher_answers_parked_long_polls_byte_for_byte() {
    use tokio::io::AsyncWriteExt;
    let header_timeout = Duration::from_secs(2);
    let server = start(|c| c.header_timeout = header_timeout).await;
    let addr = server.local_addr();
    let lp = "GET /longpoll?after=0&timeout_ms=60000 HTTP/1.1\r\nhost: t\r\n\r\n";
    let lp1 = "GET /longpoll?after=0&limit=1&timeout_ms=60000 HTTP/1.1\r\nhost: t\r\n\r\n";
    let mut direct = CountingStream::connect(addr).await;
    direct.write_all(lp.as_bytes()).await.unwrap();
    let mut limited = CountingStream::connect(addr).await;
    limited.write_all(lp1.as_bytes()).await.unwrap();
    let mut by_hyper = CountingStream::connect(addr).await;
    by_hyper.write_all(via_hyper(lp).as_bytes()).await.unwrap();
    eventually("two parked with the publisher, one with hyper", || async {
        server.hub().fanout().live() == 2
            && stat(&server, "/connections/open/long_poll_parked") == 3
    })
    .await;
    // Two events in one publish: the limited client gets the first only.
    server.hub().publish(&[1, 2], 16);
    let answered = std::time::Instant::now();
    let (a, b, h) = (
        read_answer(&mut direct).await,
        read_answer(&mut limited).await,
        read_answer(&mut by_hyper).await,
    );
    assert_eq!(undated(&a), undated(&h));
    let events = event_jsons(&server, 0);
    let body = format!(
        "{{\"events\":[{},{}],\"next\":2,\"missed\":0}}",
        events[0], events[1]
    );
    let head = |len: usize| {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: no-store\r\n\
             content-length: {len}\r\ndate: <date>\r\n\r\n"
        )
    };
    assert_eq!(undated(&a), format!("{}{body}", head(body.len())));
    let body1 = format!("{{\"events\":[{}],\"next\":1,\"missed\":0}}", events[0]);
    assert_eq!(undated(&b), format!("{}{body1}", head(body1.len())));
    assert_eq!(stat(&server, "/socket_calls/writes_by_publisher"), 2);
    // The publisher's answers left the parked gauge at once (the tasks are still asleep).
    eventually("nothing parked", || async {
        stat(&server, "/connections/open/long_poll_parked") == 0
    })
    .await;
    assert_eq!(server.hub().fanout().live(), 0);
    // The next request on the connection parks with the publisher again.
    direct
        .write_all(b"GET /longpoll?after=2&timeout_ms=60000 HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    eventually("parked again", || async {
        server.hub().fanout().live() == 1
    })
    .await;
    server.hub().publish(&[3], 16);
    let c = read_answer(&mut direct).await;
    let body3 = format!(
        "{{\"events\":[{}],\"next\":3,\"missed\":0}}",
        event_jsons(&server, 2)[0]
    );
    assert_eq!(undated(&c), format!("{}{body3}", head(body3.len())));
    assert_eq!(stat(&server, "/socket_calls/writes_by_publisher"), 3);
    // Requests and bytes count as on the task path.
    assert_eq!(stat(&server, "/requests/longpoll"), 4);
    assert_eq!(stat(&server, "/requests_by_path/direct"), 3);
    // The limited client says nothing more: it is cut off a header timeout (2 s) after
    // its answer, long before the long-poll's 60 s, and not a header timeout after its
    // task first woke (that would be 4 s).
    assert!(read_to_close(&mut limited).await.is_empty());
    let took = answered.elapsed();
    assert!(
        took >= header_timeout - Duration::from_millis(50) && took < Duration::from_millis(3_500),
        "closed {took:?} after the answer"
    );
    drop((direct, by_hyper));
    eventually("all closed", || async {
        stat(&server, "/connections/open/total") == 0
    })
    .await;
    let written = (lp.len() + lp1.len() + via_hyper(lp).len()) as u64
        + "GET /longpoll?after=2&timeout_ms=60000 HTTP/1.1\r\nhost: t\r\n\r\n".len() as u64;
    assert_eq!(stat(&server, "/bytes/long_poll/in"), written);
    assert_eq!(
        stat(&server, "/bytes/long_poll/out"),
        (a.len() + b.len() + h.len() + c.len()) as u64
    );
}

/// After the publisher answers a long-poll, it reads the client's next request itself
/// (`fanout::SWEEP_DELAYS`: a sweep some time after the pass, or the next pass) and parks
/// it without waking the connection's task. The request's timeout counts from its
/// arrival, not from that read: an empty answer comes at the timeout after the client
/// sent it, not a sweep's delay later. A client leaving meanwhile is still noticed at once.
#[tokio::test]
async fn the_publisher_reads_the_next_long_poll_and_keeps_its_timeout() {
    use feedbench_server::fanout::SWEEP_DELAYS;
    use tokio::io::AsyncWriteExt;
    let server = start(|_| {}).await;
    let addr = server.local_addr();
    let mut client = CountingStream::connect(addr).await;
    let lp = "GET /longpoll?after=0&timeout_ms=60000 HTTP/1.1\r\nhost: t\r\n\r\n";
    client.write_all(lp.as_bytes()).await.unwrap();
    eventually("parked with the publisher", || async {
        server.hub().fanout().live() == 1
    })
    .await;
    server.hub().publish(&[1], 16);
    let first = read_answer(&mut client).await;
    // The next request, with a short timeout, sent at once: the publisher reads it in its
    // first sweep, a while later.
    let next = "GET /longpoll?after=1&timeout_ms=400 HTTP/1.1\r\nhost: t\r\n\r\n";
    let sent = std::time::Instant::now();
    client.write_all(next.as_bytes()).await.unwrap();
    let empty = read_answer(&mut client).await;
    let took = sent.elapsed();
    assert!(
        undated(&empty).ends_with("{\"events\":[],\"next\":1,\"missed\":0}"),
        "{}",
        undated(&empty)
    );
    assert!(took >= Duration::from_millis(400), "never early: {took:?}");
    assert!(
        took < Duration::from_millis(400) + SWEEP_DELAYS[0] - Duration::from_millis(5),
        "counted from its arrival, not from the sweep's read: {took:?}"
    );
    assert_eq!(stat(&server, "/socket_calls/reads_by_publisher"), 1);
    assert_eq!(stat(&server, "/requests/longpoll"), 2);
    assert_eq!(stat(&server, "/requests_by_path/direct"), 2);
    // Parked again by the task (the timeout went back to it); answered again by the
    // publisher, whose sweep then parks the third request.
    let third = "GET /longpoll?after=1&timeout_ms=60000 HTTP/1.1\r\nhost: t\r\n\r\n";
    client.write_all(third.as_bytes()).await.unwrap();
    eventually("parked with the publisher again", || async {
        server.hub().fanout().live() == 1
    })
    .await;
    server.hub().publish(&[2], 16);
    let second = read_answer(&mut client).await;
    // Answered, with no next request yet: the publisher holds it (for 600 ms after the
    // answer), so it counts as answered, not idle.
    let open = ["long_poll_answered", "long_poll_parked", "http_idle"]
        .map(|state| stat(&server, &format!("/connections/open/{state}")));
    assert_eq!(open, [1, 0, 0], "answered, parked, idle");
    let fourth = "GET /longpoll?after=2&timeout_ms=60000 HTTP/1.1\r\nhost: t\r\n\r\n";
    client.write_all(fourth.as_bytes()).await.unwrap();
    eventually("the fourth request read by the publisher", || async {
        stat(&server, "/socket_calls/reads_by_publisher") == 2
            && stat(&server, "/connections/open/long_poll_parked") == 1
    })
    .await;
    assert_eq!(stat(&server, "/connections/open/long_poll_answered"), 0);
    // The client leaves while its request is parked by the publisher: noticed at once.
    let (read, written) = (
        client.counts.read.load(Relaxed),
        client.counts.written.load(Relaxed),
    );
    drop(client);
    eventually("closed and unparked", || async {
        stat(&server, "/connections/open/total") == 0
            && stat(&server, "/connections/open/long_poll_parked") == 0
    })
    .await;
    assert_eq!(server.hub().fanout().live(), 0);
    let sent_bytes = [lp, next, third, fourth]
        .iter()
        .map(|r| r.len())
        .sum::<usize>();
    assert_eq!(written, sent_bytes as u64);
    assert_eq!(read, (first.len() + empty.len() + second.len()) as u64);
    assert_eq!(stat(&server, "/bytes/long_poll/in"), written);
    assert_eq!(stat(&server, "/bytes/long_poll/out"), read);
}
