//! Loss accounting against a server that is not feedbench's own: a sluggish one (late
//! publisher, lagging `/stats`, slow poll answers, no byte counters) must cost no false
//! misses, and an event it loses on purpose must be counted exactly.

#[path = "util/sluggish.rs"]
mod sluggish;

use std::time::Duration;

use feedbench_loadgen::progress::Progress;
use feedbench_loadgen::{
    run_scenario, RunSignals, ScenarioResult, ScenarioSpec, Target, Transport,
};
use sluggish::{Fault, Sluggish, SluggishConfig};

const CLIENTS: usize = 4;
const RATE_HZ: f64 = 50.0;
const WINDOW: Duration = Duration::from_millis(2500);

fn spec(transport: Transport) -> ScenarioSpec {
    ScenarioSpec {
        transport,
        n_clients: CLIENTS,
        rate_hz: RATE_HZ,
        payload_bytes: 64,
        poll_interval: Duration::from_millis(100),
        duration: WINDOW,
        warmup: Duration::from_millis(500),
        ramp: Duration::ZERO,
        keepalive: true,
        seed: 3,
        // The sluggish server has its own fixed feed.
        control: false,
        shard: None,
        start_at: None,
        net: None,
        stack: feedbench_loadgen::stack::StackSpec::default(),
    }
}

async fn run(server: &Sluggish, transport: Transport) -> ScenarioResult {
    let target = Target::parse(&format!("http://{}", server.addr)).unwrap();
    run_scenario(
        &target,
        &spec(transport),
        0,
        &RunSignals::new(),
        &Progress::hidden(),
    )
    .await
    .unwrap()
}

/// The window's events are read from the feed, and their number is the window's length at
/// the feed's rate: the stamps are scheduled times 20 ms apart, so a window holds its
/// length × rate events, give or take the one at each edge.
fn assert_window_from_feed(r: &ScenarioResult) {
    let e = &r.events;
    assert_eq!(e.window_source, "feed", "{e:?} {:?}", r.warnings);
    let exact = r.measured_s * RATE_HZ;
    assert!(
        (e.published as f64 - exact).abs() <= 1.0,
        "published {} for a {:.3} s window at {RATE_HZ}/s",
        e.published,
        r.measured_s
    );
    assert_eq!(e.expected, e.published * CLIENTS as u64);
    assert_eq!(
        e.last_seq.unwrap() - e.first_seq.unwrap() + 1,
        e.published,
        "{e:?}"
    );
}

/// The sluggish server reports no byte counters: a note says so, and no warning claims the
/// counters disagree.
fn assert_no_byte_warning(r: &ScenarioResult) {
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("reports no byte counters")),
        "{:?}",
        r.notes
    );
    assert!(
        !r.warnings.iter().any(|w| w.contains("disagree")),
        "{:?}",
        r.warnings
    );
}

/// Runs `windows` scenarios of `transport` one after another on one sluggish server.
async fn windows(transport: Transport, cfg: SluggishConfig, n: usize) -> Vec<ScenarioResult> {
    let server = sluggish::start(cfg).await;
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(run(&server, transport).await);
    }
    server.stop();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sluggish_server_costs_no_false_misses() {
    let runs = Transport::ALL.map(|t| tokio::spawn(windows(t, SluggishConfig::default(), 3)));
    for (t, handle) in Transport::ALL.into_iter().zip(runs) {
        for r in handle.await.unwrap() {
            let e = &r.events;
            assert_window_from_feed(&r);
            assert_eq!(
                (e.delivered, e.missed, e.unreceived, e.duplicates),
                (e.expected, 0, 0, 0),
                "{t}: {e:?} warnings {:?}",
                r.warnings
            );
            assert!(r.errors.is_empty(), "{t}: {:?}", r.errors);
            // A debug build running four scenarios on two cores may fall behind its poll
            // schedule; that warning is about load, not accounting, and is allowed here.
            let accounting: Vec<_> = r
                .warnings
                .iter()
                .filter(|w| !w.contains("load-generator bound"))
                .collect();
            assert!(accounting.is_empty(), "{t}: {accounting:?}");
            assert_no_byte_warning(&r);
        }
    }
}

/// Runs one scenario of each transport against its own server with `fault`; returns each
/// result with the seq that was lost.
async fn faulty(fault: Fault) -> Vec<(Transport, ScenarioResult, u64)> {
    let one = |t: Transport| async move {
        let cfg = SluggishConfig {
            fault,
            // Armed once every client is connected; the event falls a second later, in the
            // middle of the 2.5 s window that opens 0.5 s after they are.
            fault_after_conns: CLIENTS,
            fault_delay: Duration::from_millis(1500),
            ..SluggishConfig::default()
        };
        let server = sluggish::start(cfg).await;
        let r = run(&server, t).await;
        server.stop();
        let seq = server.fault_seq().expect("the fault was armed");
        (t, r, seq)
    };
    let handles = Transport::ALL.map(|t| tokio::spawn(one(t)));
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Runs every transport against a server with `fault` and checks that the lost event lies
/// in the window and is counted exactly: `missed` in all, `unreceived` by no client.
async fn assert_counted_exactly(fault: Fault, missed: u64, unreceived: u64) {
    for (t, r, seq) in faulty(fault).await {
        let e = &r.events;
        assert_window_from_feed(&r);
        assert!(
            (e.first_seq.unwrap()..=e.last_seq.unwrap()).contains(&seq),
            "{t}: dropped seq {seq} outside the window {e:?}"
        );
        assert_eq!(
            (e.missed, e.delivered, e.unreceived),
            (missed, e.expected - missed, unreceived),
            "{t}: {e:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_dropped_for_one_client_is_one_missed() {
    assert_counted_exactly(Fault::DropForOne, 1, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_sent_to_nobody_is_missed_by_every_client() {
    assert_counted_exactly(Fault::DropForAll, CLIENTS as u64, 1).await;
}
