//! Scenarios over HTTP/2 with prior knowledge (h2c) against the in-process server: the
//! scenario builds the shared connections, and every figure stays exact.

// Not every helper of the shared module is used here.
#[allow(dead_code)]
mod util;

use std::time::Duration;

use feedbench_loadgen::stack::{HttpVersion, StackSpec};
use feedbench_loadgen::{ScenarioResult, ScenarioSpec, Transport};
use util::{assert_lossless, run, spec, start_server, stop_server};

fn h2_spec(transport: Transport, n_clients: usize, per_conn: u32) -> ScenarioSpec {
    let mut s = spec(transport, n_clients, 50.0, Duration::from_millis(1500));
    s.stack = StackSpec {
        http: HttpVersion::Http2,
        streams_per_connection: per_conn,
        ..StackSpec::default()
    };
    s
}

/// The window's split: both directions' layers sum to the window's bytes exactly, the
/// payload is the events' JSON, and HTTP/2's own bytes are there.
fn assert_split(r: &ScenarioResult) {
    let stack = r.stack.as_ref().expect("stack figures");
    assert_eq!(stack.http, "2");
    let (up, down) = (&stack.split.up, &stack.split.down);
    let sum =
        |l: &feedbench_results::ByteLayers| l.payload + l.framing + l.h2 + l.tls + l.handshake;
    assert_eq!(sum(up), r.bytes.up, "{stack:?}");
    assert_eq!(sum(down), r.bytes.down, "{stack:?}");
    assert_eq!(down.payload, r.bytes.payload, "{stack:?}");
    assert!(down.h2 > 0, "{stack:?}");
    // Polls send a HEADERS frame each; an SSE stream or a ws tunnel sends nothing once
    // open (beyond WINDOW_UPDATE, rare with the client's windows).
    if matches!(r.transport, Transport::ShortPoll | Transport::LongPoll) {
        assert!(up.h2 > 0, "{stack:?}");
    }
    assert_eq!(up.payload + up.framing, 0, "{stack:?}");
}

/// The clients' bytes equal the server's: each shared connection counted once. (Unlike
/// `util::assert_bytes_match_server` this ignores the schedule-lateness warning a busy
/// 2-core test machine raises.)
fn assert_bytes_match(r: &ScenarioResult) {
    let s = r.server.as_ref().expect("server figures");
    assert_eq!(
        (s.bytes_in, s.bytes_out),
        (r.bytes.total_up, r.bytes.total_down)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_short_polls_four_per_connection_open_two_connections() {
    let server = start_server(4096).await;
    let r = run(&server, &h2_spec(Transport::ShortPoll, 8, 4)).await;
    stop_server(server).await;
    assert_lossless(&r);
    assert_bytes_match(&r);
    assert_eq!((r.connections.opened, r.connections.failed), (2, 0));
    assert_eq!(
        r.connections.connect_us.count, 2,
        "one connect time per connection"
    );
    assert_split(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_sse_and_ws_over_h2_are_lossless_and_exact() {
    let cases = [
        (Transport::LongPoll, 3),
        (Transport::Sse, 1),
        (Transport::Ws, 2),
    ];
    for (transport, per_conn) in cases {
        let server = start_server(4096).await;
        let r = run(&server, &h2_spec(transport, 6, per_conn)).await;
        stop_server(server).await;
        assert_lossless(&r);
        assert_bytes_match(&r);
        assert_eq!(r.connections.opened, 6u64.div_ceil(per_conn as u64));
        assert_split(&r);
    }
}
