//! Shared helpers for the load generator's integration tests: an in-process server on
//! 127.0.0.1:0 and scenario runs against it.

use std::time::Duration;

use feedbench_loadgen::progress::Progress;
use feedbench_loadgen::{
    run_scenario, RunSignals, ScenarioResult, ScenarioSpec, Target, Transport,
};
use feedbench_server::{ServerConfig, ServerHandle};

/// Starts a server on an ephemeral loopback port with the given ring size.
pub async fn start_server(retain: usize) -> ServerHandle {
    let cfg = ServerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        rate_hz: 10.0,
        payload_bytes: 64,
        retain,
        ws_queue: retain.min(4096),
        ..ServerConfig::default()
    };
    feedbench_server::start(cfg).await.unwrap()
}

/// Stops a server and waits for it.
pub async fn stop_server(server: ServerHandle) {
    server.shutdown();
    tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .unwrap();
}

/// The target of a server.
pub fn target(server: &ServerHandle) -> Target {
    Target::parse(&format!("http://{}", server.local_addr())).unwrap()
}

/// A small scenario: `n_clients` clients, `rate_hz`, 64-byte payloads, 0.5 s warm-up.
pub fn spec(
    transport: Transport,
    n_clients: usize,
    rate_hz: f64,
    duration: Duration,
) -> ScenarioSpec {
    ScenarioSpec {
        transport,
        n_clients,
        rate_hz,
        payload_bytes: 64,
        poll_interval: Duration::from_millis(200),
        duration,
        warmup: Duration::from_millis(500),
        ramp: Duration::ZERO,
        keepalive: true,
        seed: 7,
        control: true,
        shard: None,
        start_at: None,
        net: None,
        stack: feedbench_loadgen::stack::StackSpec::default(),
    }
}

/// Runs `spec` once against `server`.
pub async fn run(server: &ServerHandle, spec: &ScenarioSpec) -> ScenarioResult {
    let signals = RunSignals::new();
    run_scenario(&target(server), spec, 0, &signals, &Progress::hidden())
        .await
        .unwrap()
}

/// Asserts that every expected event arrived exactly once, in order.
pub fn assert_lossless(r: &ScenarioResult) {
    let e = &r.events;
    assert!(e.published > 0, "{e:?}");
    assert_eq!(e.expected, e.published * r.params.clients, "{e:?}");
    assert_eq!(
        (e.delivered, e.missed, e.duplicates, e.out_of_order),
        (e.expected, 0, 0, 0),
        "{e:?}; warnings {:?}; errors {:?}; {:?}",
        r.warnings,
        r.errors,
        r.connections
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(
        (e.window_source.as_str(), e.unreceived),
        ("feed", 0),
        "{e:?}"
    );
}

/// Asserts the server's byte counters equal the clients' and nothing else was flagged.
pub fn assert_bytes_match_server(r: &ScenarioResult) {
    let s = r.server.as_ref().expect("server figures");
    assert_eq!(
        (s.bytes_in, s.bytes_out),
        (r.bytes.total_up, r.bytes.total_down),
        "warnings: {:?}",
        r.warnings
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

/// Asserts that push latency is prompt: p50 within 10 ms plus twenty times the p50
/// connect time of the same run. A connect is a loopback round trip and a task wake-up on
/// each side, so it gauges how busy the machine is during this very run: an idle machine
/// keeps the bound near 10 ms, a loaded one loosens it instead of failing the test.
pub fn assert_prompt(r: &ScenarioResult) {
    let connect = r.connections.connect_us.p50;
    assert!(
        r.latency_us.p50 < 10_000 + 20 * connect,
        "latency {:?}, connect p50 {connect} µs",
        r.latency_us
    );
}

/// Number of decimal digits of `n`.
pub fn digits(n: u64) -> u64 {
    n.to_string().len() as u64
}
