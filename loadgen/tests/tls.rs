//! Every transport over TLS 1.3 with HTTP/1.1 against the in-process server started with
//! a self-signed certificate: the byte split per layer is exact (the layers sum to the
//! socket bytes, which equal the server's), a ws event costs JSON + frame header + 22 B of
//! TLS, a short-poll without keep-alive pays one handshake per poll and resumption makes
//! that handshake smaller.

// The helpers other test files use are unused here.
#[allow(dead_code)]
mod util;

use std::path::PathBuf;
use std::time::Duration;

use feedbench_loadgen::progress::Progress;
use feedbench_loadgen::stack::StackSpec;
use feedbench_loadgen::tls::Trust;
use feedbench_loadgen::{
    run_scenario, RunSignals, ScenarioResult, ScenarioSpec, Target, Transport,
};
use feedbench_server::tls::TlsSettings;
use feedbench_server::ServerHandle;

/// A TLS server on 127.0.0.1:0 and a file with the certificate its clients trust.
async fn start_tls(name: &str) -> (ServerHandle, PathBuf) {
    let settings = TlsSettings::self_signed("127.0.0.1:0".parse().unwrap()).unwrap();
    let dir = std::env::temp_dir().join(format!("fb-lg-tls-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("cert.pem");
    std::fs::write(&ca, &settings.cert_pem).unwrap();
    let cfg = feedbench_server::ServerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        rate_hz: 10.0,
        payload_bytes: 64,
        retain: 4096,
        ws_queue: 4096,
        tls: Some(settings),
        ..feedbench_server::ServerConfig::default()
    };
    (feedbench_server::start(cfg).await.unwrap(), ca)
}

fn https_target(server: &ServerHandle, trust: Trust) -> Target {
    let mut t = Target::parse(&format!("https://{}", server.local_addr())).unwrap();
    t.tls_trust = Some(trust);
    t
}

fn tls_spec(transport: Transport, n_clients: usize) -> ScenarioSpec {
    let mut spec = util::spec(transport, n_clients, 20.0, Duration::from_millis(1500));
    spec.stack = StackSpec {
        tls: true,
        ..StackSpec::default()
    };
    spec
}

async fn run(target: &Target, spec: &ScenarioSpec) -> ScenarioResult {
    run_scenario(target, spec, 0, &RunSignals::new(), &Progress::hidden())
        .await
        .unwrap()
}

/// The stack block's promises: TLS 1.3 with AES-GCM, HTTP/1.1, and layers that sum to the
/// socket bytes exactly, which are the server's.
fn assert_stack(r: &ScenarioResult) {
    let stack = r.stack.as_ref().expect("a stack block");
    assert_eq!(stack.tls_version.as_deref(), Some("TLSv1.3"));
    let suite = stack.cipher_suite.as_deref().unwrap();
    assert!(
        suite.starts_with("TLS13_AES_") && suite.ends_with("GCM_SHA384")
            || suite.ends_with("GCM_SHA256"),
        "{suite}"
    );
    assert_eq!(stack.alpn.as_deref(), Some("http/1.1"));
    assert_eq!(stack.http, "1.1");
    assert_eq!(stack.split.up.sum(), r.bytes.up, "{:?}", stack.split);
    assert_eq!(stack.split.down.sum(), r.bytes.down, "{:?}", stack.split);
    assert_eq!(stack.split.down.payload, r.bytes.payload);
    assert_eq!((stack.split.up.h2, stack.split.down.h2), (0, 0));
    // The whole run's TLS layers sum to the whole run's socket bytes, and hold the window's.
    let run = stack.run_tls.expect("a TLS run has run_tls");
    assert_eq!(run.up.sum(), r.bytes.total_up, "{run:?}");
    assert_eq!(run.down.sum(), r.bytes.total_down, "{run:?}");
    assert!(
        run.down.tls >= stack.split.down.tls && run.down.tls % 22 == 0,
        "{run:?}"
    );
    // Every connection's handshake: a ClientHello up, a flight down, both whole records.
    assert!(
        run.up.handshake > 0 && run.down.handshake > run.up.handshake,
        "{run:?}"
    );
    assert!(r.params.tls);
    assert_eq!(r.params.tls_resumption, Some(true));
    util::assert_bytes_match_server(r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ws_event_over_tls_costs_json_frame_header_and_22_bytes() {
    let (server, ca) = start_tls("ws").await;
    let target = https_target(&server, Trust::Ca(ca));
    let r = run(&target, &tls_spec(Transport::Ws, 3)).await;
    util::assert_lossless(&r);
    assert_stack(&r);
    let split = r.stack.as_ref().unwrap().split;
    let events = r.bytes.events;
    assert!(events > 0);
    // One message, one frame (2-byte header below 126 bytes), one record.
    assert_eq!(split.down.framing, 2 * events, "{split:?}");
    assert_eq!(split.down.tls, 22 * events, "{split:?}");
    assert_eq!(split.down.handshake, 0, "{split:?}");
    assert_eq!(r.bytes.down, r.bytes.payload + 24 * events);
    assert_eq!(
        split.up,
        Default::default(),
        "a ws client sends nothing in the window"
    );
    // Connect, warm-up and window: the handshakes were all before the window.
    let stack = r.stack.as_ref().unwrap();
    assert_eq!((stack.handshakes, stack.handshakes_total), (0, 3));
    util::stop_server(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_long_poll_and_short_poll_split_exactly_over_tls() {
    let (server, ca) = start_tls("http").await;
    let target = https_target(&server, Trust::Ca(ca));
    for transport in [Transport::Sse, Transport::LongPoll, Transport::ShortPoll] {
        let r = run(&target, &tls_spec(transport, 2)).await;
        util::assert_lossless(&r);
        assert_stack(&r);
        let split = r.stack.as_ref().unwrap().split;
        // Keep-alive: no handshake in the window, every record application data.
        assert_eq!(
            split.down.handshake + split.up.handshake,
            0,
            "{transport}: {split:?}"
        );
        assert!(
            split.down.tls > 0 && split.down.tls % 22 == 0,
            "{transport}: {split:?}"
        );
        if transport != Transport::Sse {
            assert!(
                split.up.tls > 0 && split.up.tls % 22 == 0,
                "{transport}: {split:?}"
            );
            assert_eq!(
                split.up.tls,
                22 * r.requests.sent,
                "{transport}: one record a request"
            );
        }
    }
    util::stop_server(server).await;
}

/// A no-keep-alive short-poll over TLS: one handshake per poll (within one poll per client
/// at the window's edges); with resumption the handshakes resume and cost fewer bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_keepalive_short_poll_pays_a_handshake_per_poll_and_resumption_lowers_it() {
    let mut per_poll = Vec::new();
    for resumption in [true, false] {
        // A fresh server each: its byte counters and memory figures are this run's alone.
        let (server, ca) = start_tls(&format!("noka-{resumption}")).await;
        let target = https_target(&server, Trust::Ca(ca));
        let mut spec = tls_spec(Transport::ShortPoll, 2);
        spec.keepalive = false;
        spec.stack.tls_resumption = resumption;
        let r = run(&target, &spec).await;
        util::assert_lossless(&r);
        let stack = r.stack.as_ref().unwrap();
        assert_eq!(stack.split.up.sum(), r.bytes.up);
        assert_eq!(stack.split.down.sum(), r.bytes.down);
        util::assert_bytes_match_server(&r);
        let sent = r.requests.sent;
        assert!(sent >= 10, "{sent}");
        assert!(
            stack.handshakes.abs_diff(sent) <= 2,
            "handshakes {} vs polls {sent}",
            stack.handshakes
        );
        if resumption {
            assert_eq!(
                stack.resumed, stack.handshakes,
                "every poll after the first resumes"
            );
        } else {
            assert_eq!(stack.resumed, 0);
        }
        assert_eq!(r.params.tls_resumption, Some(resumption));
        per_poll.push(r.handshake_bytes_per_handshake().unwrap());
        util::stop_server(server).await;
    }
    let (on, off) = (per_poll[0], per_poll[1]);
    eprintln!("handshake bytes per poll: resumption on {on:.1}, off {off:.1}");
    assert!(on < off, "resumed {on} vs full {off}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_or_a_plaintext_server_is_a_counted_error_not_a_hang() {
    let (server, _) = start_tls("wrong-ca").await;
    // Another server's certificate: not the one this server presents.
    let (other, other_ca) = start_tls("other").await;
    util::stop_server(other).await;
    let mut target = https_target(&server, Trust::Ca(other_ca.clone()));
    // The harness itself cannot reach the server: set no feed, read no stats.
    let mut spec = tls_spec(Transport::Ws, 2);
    spec.control = false;
    spec.duration = Duration::from_millis(300);
    spec.warmup = Duration::from_millis(100);
    let r = tokio::time::timeout(Duration::from_secs(30), run(&target, &spec))
        .await
        .expect("no hang");
    assert!(
        r.errors.get("tls_unknown_ca").copied().unwrap_or(0) >= 2,
        "{:?}",
        r.errors
    );
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert_eq!(r.connections.failed, r.errors["tls_unknown_ca"]);
    util::stop_server(server).await;

    // An https client against the plaintext server.
    let plain = util::start_server(4096).await;
    target = https_target(&plain, Trust::Ca(other_ca));
    let r = tokio::time::timeout(Duration::from_secs(30), run(&target, &spec))
        .await
        .expect("no hang");
    assert!(
        r.errors.get("tls_not_tls").copied().unwrap_or(0) >= 2,
        "{:?}",
        r.errors
    );
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    util::stop_server(plain).await;
}
