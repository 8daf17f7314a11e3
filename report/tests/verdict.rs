//! The verdict on grids whose winners and crossovers are known: ws wins bytes everywhere,
//! long-poll ties ws on latency up to a 250 ms round trip and loses beyond, a tie within
//! the repeats' spread, and no memory sentence without memory figures.

mod util;

use feedbench_report::verdict::{verdict, Verdict};
use feedbench_report::{summary, Dataset, Results, Transport};
use feedbench_results::model::{predict, ModelInput};
use feedbench_results::{EmulatorFigures, NetClass, NetDirection, NetFigures, ScenarioResult};
use util::fixtures;

/// Deliveries of every run, so CPU ms per 1,000 events is `cpu_s × 100`.
const DELIVERED: u64 = 10_000;

/// One run of the grid: its point and its figures.
#[derive(Clone, Copy)]
struct Run {
    transport: Transport,
    clients: u64,
    rate_hz: f64,
    rtt_ms: Option<f64>,
    p50_us: u64,
    bytes_per_event: f64,
    cpu_ms_per_1k: f64,
    memory_per_connection: Option<f64>,
    /// Requests per delivered event and the share of them that came back empty.
    requests_per_event: f64,
    empty_share: f64,
}

impl Run {
    fn new(transport: Transport, clients: u64, rate_hz: f64) -> Run {
        Run {
            transport,
            clients,
            rate_hz,
            rtt_ms: None,
            p50_us: 1_000,
            bytes_per_event: 100.0,
            cpu_ms_per_1k: 10.0,
            memory_per_connection: None,
            requests_per_event: 0.0,
            empty_share: 0.0,
        }
    }
}

/// A loss-free single-class link of `rtt_ms`, 200 IP bytes down and 52 up per event.
fn link(rtt_ms: f64, events: u64) -> NetFigures {
    let direction = |bytes: u64| NetDirection {
        packets: events,
        bytes: bytes * events,
        delivered_packets: events,
        delivered_bytes: bytes * events,
        tcp_retransmits: 0,
        drops_loss: 0,
        drops_queue: 0,
        drops_overflow: 0,
    };
    NetFigures {
        spec: format!("rtt={rtt_ms}ms"),
        classes: vec![NetClass {
            weight: 1.0,
            clients: 10,
            rtt_ms,
            jitter_ms: 0.0,
            down_bps: None,
            up_bps: None,
            loss: 0.0,
            queue_bytes: None,
        }],
        shared_bps: None,
        rtt_measured_ms: None,
        down: direction(200),
        up: direction(52),
        emulator: EmulatorFigures {
            cpu_s: 0.1,
            wall_s: 3.0,
            late_packets: 0,
            late_max_us: 20,
            saturated: false,
        },
    }
}

/// The scenario of a run, from the baseline fixture's first scenario.
fn scenario(template: &ScenarioResult, run: &Run, repeat: u64) -> ScenarioResult {
    let mut s = template.clone();
    s.transport = run.transport;
    s.repeat = repeat as u32;
    s.params.clients = run.clients;
    s.params.rate_hz = run.rate_hz;
    s.params.keepalive = true;
    s.params.poll_interval_ms = (run.transport == Transport::ShortPoll).then_some(500);
    s.name = format!("{}-c{}-r{}", run.transport, run.clients, run.rate_hz);
    s.events.delivered = DELIVERED;
    s.events.last_seq = Some(999);
    s.bytes.events = DELIVERED;
    s.bytes.per_event = run.bytes_per_event;
    s.latency_us.p50 = run.p50_us;
    s.latency_us.p99 = run.p50_us * 3;
    s.requests.sent = (run.requests_per_event * DELIVERED as f64).round() as u64;
    s.requests.empty = (run.empty_share * s.requests.sent as f64).round() as u64;
    s.requests.per_event = run.requests_per_event;
    let server = s.server.as_mut().expect("the fixture has server figures");
    server.cpu_s = run.cpu_ms_per_1k * DELIVERED as f64 / 1e6;
    server.rss_per_connection_bytes = run.memory_per_connection;
    if let Some(rtt_ms) = run.rtt_ms {
        let net = link(rtt_ms, DELIVERED);
        s.params.net = Some(net.spec.clone());
        s.name.push_str(&format!("-{}", net.spec));
        s.net = Some(net);
    }
    s
}

/// The baseline fixture's first scenario, which every run starts from.
fn template() -> ScenarioResult {
    util::parse(&fixtures::baseline()).scenarios[0].clone()
}

/// A dataset of these scenarios.
fn dataset_of(scenarios: Vec<ScenarioResult>) -> Dataset {
    let mut results: Results = util::parse(&fixtures::baseline());
    results.scenarios = scenarios;
    Dataset::new("grid", results)
}

/// A dataset of runs with their repeat indices.
fn dataset(runs: &[(Run, u64)]) -> Dataset {
    let template = template();
    dataset_of(
        runs.iter()
            .map(|(run, repeat)| scenario(&template, run, *repeat))
            .collect(),
    )
}

fn verdict_of(d: &Dataset) -> Verdict {
    verdict(std::slice::from_ref(d))
}

/// ws 111 B per event everywhere; sse, the runner-up, 128 to 140 B; long-poll 352 B.
fn bytes_grid() -> Vec<(Run, u64)> {
    let mut runs = Vec::new();
    for (clients, rate_hz, sse_bytes) in [
        (100, 1.0, 128.0),
        (100, 4.0, 130.0),
        (1_000, 1.0, 135.0),
        (1_000, 4.0, 140.0),
    ] {
        for (transport, bytes, p50_us, cpu) in [
            (Transport::Ws, 111.0, 1_000, 10.0),
            (Transport::Sse, sse_bytes, 1_020, 20.0),
            (Transport::LongPoll, 352.0, 2_000, 30.0),
        ] {
            let run = Run {
                bytes_per_event: bytes,
                p50_us,
                cpu_ms_per_1k: cpu,
                requests_per_event: if transport == Transport::LongPoll {
                    1.0
                } else {
                    0.0
                },
                ..Run::new(transport, clients, rate_hz)
            };
            runs.push((run, 0));
        }
    }
    runs
}

#[test]
fn ws_wins_bytes_at_every_point_and_the_sentence_names_its_bytes() {
    let v = verdict_of(&dataset(&bytes_grid()));
    assert_eq!(
        v.sentences,
        [
            "ws ties with sse on p50 delivery latency at all 4 measured points, within 5% or \
             the repeats' spread: p50 1 ms and 1.02 ms at 100 clients, 4 events/s, 64 B \
             payload (1.02× apart; the same ratio at every point).",
            "ws has the fewest bytes per event on the socket at all 4 measured points: 111 B \
             against 130 B for sse, the runner-up, at 100 clients, 4 events/s, 64 B payload \
             (1.17×, the median ratio; 1.15× to 1.26× over the grid).",
            "ws costs the server the least CPU per 1,000 events at all 4 measured points: \
             10 ms against 20 ms for sse, the runner-up, at 100 clients, 4 events/s, 64 B \
             payload (2×; the same ratio at every point).",
            "long-poll sent one request per delivered event at all 4 measured points (up to \
             4 events/s): every event found a request parked at the server.",
        ]
    );
}

#[test]
fn the_verdict_comes_first_in_summary_and_page() {
    let d = dataset(&bytes_grid());
    let md = summary::render("grid", std::slice::from_ref(&d), &[], None);
    let verdict_at = md
        .find("## Verdict\n\n- ws ties with sse")
        .expect("a verdict");
    assert!(
        verdict_at < md.find("## Findings").expect("findings"),
        "{md}"
    );
    let page = feedbench_report::html::render("grid", std::slice::from_ref(&d), &[], None);
    let verdict_at = page
        .find("<h2 id=\"verdict\">Verdict</h2>")
        .expect("a verdict");
    assert!(verdict_at < page.find("<h2 id=\"findings\">").expect("findings"));
    assert!(page.contains("<nav><a href=\"#verdict\">Verdict</a><a href=\"#findings\">"));
    assert!(page.contains("<li>ws has the fewest bytes per event on the socket at all 4"));
}

/// ws and long-poll at 10 clients, 4 events/s over 0 to 400 ms round trips, each 1 ms
/// above the model's p50 and with the model's IP bytes: long-poll waits for its next
/// request beyond T = 250 ms.
fn rtt_grid() -> Dataset {
    let template = template();
    let mut scenarios = Vec::new();
    for rtt_ms in [0.0, 50.0, 100.0, 200.0, 300.0, 400.0] {
        for transport in [Transport::Ws, Transport::LongPoll] {
            let run = Run {
                rtt_ms: Some(rtt_ms),
                ..Run::new(transport, 10, 4.0)
            };
            let mut s = scenario(&template, &run, 0);
            let model = predict(&ModelInput::of(&s, 0.0).expect("a model input"));
            s.latency_us.p50 = ((model.p50_ms + 1.0) * 1e3).round() as u64;
            s.latency_us.p99 = s.latency_us.p50 * 3;
            let net = s.net.as_mut().expect("a link block");
            net.down.bytes = (model.ip_bytes_down * DELIVERED as f64).round() as u64;
            net.up.bytes = (model.ip_bytes_up * DELIVERED as f64).round() as u64;
            scenarios.push(s);
        }
    }
    dataset_of(scenarios)
}

#[test]
fn a_latency_crossover_along_the_round_trip_names_the_two_round_trips() {
    let v = verdict_of(&rtt_grid());
    let latency: Vec<&String> = v
        .sentences
        .iter()
        .filter(|s| s.contains("latency"))
        .collect();
    assert_eq!(
        latency,
        [
            "On p50 delivery latency along the link's round trip (10 clients, 4 events/s, 64 B \
             payload), the leader changes between 200 ms and 300 ms: long-poll ties with ws \
             (p50 101 ms and 101 ms) up to 200 ms; ws is fastest (p50 151 ms against 301 ms \
             for long-poll; p99 453 ms against 903 ms) from 300 ms.",
            "All 12 runs over an emulated link lie within the model's tolerance (latency and \
             IP bytes per event, MODEL.md); the largest deviation is long-poll's p50 \
             latency at 10 clients over rtt=50ms, +4.0%.",
        ]
    );
}

#[test]
fn overlapping_repeats_tie_even_when_medians_differ_by_more_than_five_percent() {
    // ws 100–120 µs (median 110), sse 118–140 µs (median 126, 15% more): ranges overlap.
    let mut runs = Vec::new();
    for (repeat, (ws, sse)) in [(100, 118), (110, 126), (120, 140)].into_iter().enumerate() {
        for (transport, p50_us) in [(Transport::Ws, ws), (Transport::Sse, sse)] {
            let run = Run {
                p50_us,
                ..Run::new(transport, 100, 4.0)
            };
            runs.push((run, repeat as u64));
        }
    }
    let v = verdict_of(&dataset(&runs));
    assert_eq!(
        v.sentences[0],
        "ws ties with sse on p50 delivery latency at the one measured point (100 clients, \
         4 events/s, 64 B payload), within 5% or the repeats' spread: p50 110 µs and 126 µs \
         (1.15× apart)."
    );
}

#[test]
fn no_memory_sentence_without_memory_per_connection() {
    let mut runs = bytes_grid();
    assert!(!verdict_of(&dataset(&runs))
        .sentences
        .iter()
        .any(|s| s.contains("memory")));
    // Measured for one transport only: nothing to compare it with either.
    for (run, _) in runs
        .iter_mut()
        .filter(|(r, _)| r.transport == Transport::Ws)
    {
        run.memory_per_connection = Some(2_900.0);
    }
    assert!(!verdict_of(&dataset(&runs))
        .sentences
        .iter()
        .any(|s| s.contains("memory")));
    // Measured for two: a sentence.
    for (run, _) in runs
        .iter_mut()
        .filter(|(r, _)| r.transport == Transport::Sse)
    {
        run.memory_per_connection = Some(11_469.0);
    }
    let v = verdict_of(&dataset(&runs));
    assert_eq!(
        v.sentences
            .iter()
            .find(|s| s.contains("memory"))
            .map(String::as_str),
        Some(
            "ws costs the server the least memory per connection at all 4 measured points: \
             2.83 KiB against 11.2 KiB for sse, the runner-up, at 100 clients, 4 events/s, \
             64 B payload (3.95×; the same ratio at every point)."
        )
    );
}

#[test]
fn the_latency_vs_rtt_chart_marks_where_the_winner_changes() {
    use feedbench_report::charts::{self, panel::Panel, ChartKind};
    let d = rtt_grid();
    let planned = charts::plan(std::slice::from_ref(&d)).expect("charts planned");
    let rtt = planned
        .iter()
        .find(|c| c.kind == ChartKind::LatencyVsRtt)
        .expect("a latency-vs-rtt chart");
    let Panel::Lines(panel) = &rtt.figure.rows[0][0].1 else {
        panic!("a line panel");
    };
    // Midway between 200 ms and 300 ms, the two round trips that bracket the change.
    // Labelled with the leader from there on.
    assert_eq!(panel.marks, [(250.0, "→ ws".to_string())]);
    let c = charts::render(rtt, &util::out_dir("verdict-chart")).expect("chart drawn");
    assert_eq!(c.svg.matches("→ ws").count(), 1);
    // The other charts have no crossover to mark.
    for other in planned.iter().filter(|c| c.kind != ChartKind::LatencyVsRtt) {
        for (_, p) in other.figure.rows.iter().flatten() {
            if let Panel::Lines(l) = p {
                assert!(l.marks.is_empty(), "{}", other.stem);
            }
        }
    }
}

/// 50 clients at 1, 20 and 100 events/s, as the quick suite's rate axis. Short-poll (500 ms)
/// finds half its polls empty at 1 event/s and none from 20 on; long-poll sends one request
/// per event up to 20 events/s and batches at 100 (0.6 requests per event); ws costs the
/// server 10 ms of CPU per 1,000 events everywhere, short-poll 60, 12 and 2, so the CPU
/// leader changes from ws to short-poll between 20 and 100 events/s; short-poll's 2, 0.1
/// and 0.02 requests per event fall to long-poll's between 1 and 20 events/s.
fn rate_grid() -> Dataset {
    let mut runs = Vec::new();
    for (i, rate_hz) in [1.0, 20.0, 100.0].into_iter().enumerate() {
        for (transport, p50_us, bytes, cpu, requests, empty) in [
            (
                Transport::ShortPoll,
                250_000,
                [600.0, 150.0, 120.0][i],
                [60.0, 12.0, 2.0][i],
                [2.0, 0.1, 0.02][i],
                [0.5, 0.0, 0.0][i],
            ),
            (
                Transport::LongPoll,
                1_500,
                352.0,
                30.0,
                [1.0, 1.0, 0.6][i],
                0.0,
            ),
            (Transport::Ws, 1_000, 111.0, 10.0, 0.0, 0.0),
            (Transport::Sse, 1_020, 130.0, 20.0, 0.0, 0.0),
        ] {
            let run = Run {
                p50_us,
                bytes_per_event: bytes,
                cpu_ms_per_1k: cpu,
                requests_per_event: requests,
                empty_share: empty,
                ..Run::new(transport, 50, rate_hz)
            };
            runs.push((run, 0));
        }
    }
    dataset(&runs)
}

#[test]
fn along_the_rate_the_verdict_names_where_empty_polls_end_batching_starts_and_cpu_changes() {
    let v = verdict_of(&rate_grid());
    assert_eq!(
        v.sentences,
        [
            "ws ties with sse on p50 delivery latency at all 3 measured points, within 5% or \
             the repeats' spread: p50 1 ms and 1.02 ms at 50 clients, 20 events/s, 64 B \
             payload (1.02× apart; the same ratio at every point).",
            "ws has the fewest bytes per event on the socket at all 3 measured points: 111 B \
             against 130 B for sse, the runner-up, at 50 clients, 1 event/s, 64 B payload \
             (1.17×, the median ratio; 1.08× to 1.17× over the grid).",
            "On server CPU per 1,000 events along event rate (50 clients, 64 B payload, \
             loopback), the leader changes between 20 events/s and 100 events/s: ws costs the \
             server the least CPU per 1,000 events (10 ms against 12 ms for short-poll \
             (500 ms)) up to 20 events/s; short-poll (500 ms) costs the server the least CPU \
             per 1,000 events (2 ms against 10 ms for ws) at 100 events/s.",
            "short-poll (500 ms) stops coming back empty between 1 event/s and 20 events/s \
             (50 clients, 64 B payload, loopback): 50% of its polls were empty at 1 event/s \
             and 0% at 20 events/s; one event per 500 ms poll interval is 2 events/s.",
            "short-poll (500 ms)'s requests per event fall to long-poll's between 1 event/s \
             and 20 events/s (50 clients, 64 B payload, loopback): 2 requests per event \
             against long-poll's 1 at 1 event/s, 0.1 against 1 at 20 events/s; at one event \
             per poll interval (2 events/s) each sends about one.",
            "long-poll starts batching events between 20 events/s and 100 events/s (50 \
             clients, 64 B payload, loopback): 1 request per event at 20 events/s, 0.6 \
             requests at 100 events/s, as events come faster than its request cycle (an \
             answer, then a new request).",
        ]
    );
}

/// Every line panel of the planned charts of `kind`, by chart stem and panel index.
fn line_panels_of(
    planned: &[feedbench_report::charts::ChartFigure],
    kind: feedbench_report::charts::ChartKind,
) -> Vec<feedbench_report::charts::panel::LinePanel> {
    use feedbench_report::charts::panel::Panel;
    planned
        .iter()
        .filter(|c| c.kind == kind)
        .flat_map(|c| c.figure.rows.iter().flatten())
        .filter_map(|(_, p)| match p {
            Panel::Lines(l) => Some(l.clone()),
            Panel::Bars(_) => None,
        })
        .collect()
}

#[test]
fn each_crossover_along_the_rate_is_marked_on_its_chart() {
    use feedbench_report::charts::{self, ChartKind};
    let d = rate_grid();
    let planned = charts::plan(std::slice::from_ref(&d)).expect("charts planned");
    let between_20_and_100 = (20.0f64 * 100.0).sqrt();
    // Latency, bytes and CPU vs rate: only the CPU leader changes, between 20 and 100.
    let marks: Vec<Vec<(f64, String)>> = line_panels_of(&planned, ChartKind::VsRate)
        .into_iter()
        .map(|p| p.marks)
        .collect();
    assert_eq!(
        marks,
        [
            vec![],
            vec![],
            vec![(between_20_and_100, "→ short-poll (500 ms)".to_string())]
        ]
    );
    // Polling: short-poll's requests per event fall to long-poll's by 20 and long-poll
    // batches from 100 (left); short-poll's empty polls end by 20 (right).
    let mut marks: Vec<Vec<(f64, String)>> = line_panels_of(&planned, ChartKind::Polling)
        .into_iter()
        .map(|p| p.marks)
        .collect();
    // Short-poll's 2 → 0.1 requests per event against long-poll's 1, straight on log-log
    // axes between 1 and 20 events/s, cross at 2 events/s: one event per 500 ms interval.
    let crossing = marks[0][0].0;
    assert!((crossing - 2.0).abs() < 1e-9, "{crossing}");
    marks[0][0].0 = 2.0;
    assert_eq!(
        marks,
        [
            vec![
                (
                    2.0,
                    "short-poll (500 ms): fewer requests than long-poll".to_string()
                ),
                (between_20_and_100, "long-poll: batching starts".to_string())
            ],
            vec![(
                20f64.sqrt(),
                "short-poll (500 ms): empty polls end".to_string()
            )],
        ]
    );
    let polling = planned
        .iter()
        .find(|c| c.kind == ChartKind::Polling)
        .expect("a polling chart");
    let drawn = charts::render(polling, &util::out_dir("verdict-polling-marks")).expect("drawn");
    assert!(drawn.svg.contains("short-poll (500 ms): empty polls end"));
    assert!(drawn.svg.contains("long-poll: batching starts"));
    // One client count: no chart over clients is drawn (each line would be one dot).
    for kind in [
        ChartKind::LatencyVsClients,
        ChartKind::Bandwidth,
        ChartKind::ServerCost,
    ] {
        assert!(!planned.iter().any(|c| c.kind == kind), "{kind:?}");
    }
}

#[test]
fn a_cpu_crossover_along_clients_is_marked_on_the_server_cost_chart() {
    use feedbench_report::charts::{self, ChartKind};
    // ws 10 ms per 1,000 events at every client count; sse 20, 20 and 5: sse leads at 1,000.
    let mut runs = Vec::new();
    for (clients, sse_cpu) in [(10, 20.0), (100, 20.0), (1_000, 5.0)] {
        for (transport, cpu) in [(Transport::Ws, 10.0), (Transport::Sse, sse_cpu)] {
            let run = Run {
                cpu_ms_per_1k: cpu,
                ..Run::new(transport, clients, 4.0)
            };
            runs.push((run, 0));
        }
    }
    let d = dataset(&runs);
    assert!(verdict_of(&d).sentences.contains(
        &"On server CPU per 1,000 events along clients (4 events/s, 64 B payload, loopback), \
          the leader changes between 100 clients and 1,000 clients: ws costs the server the \
          least CPU per 1,000 events (10 ms against 20 ms for sse) up to 100 clients; sse \
          costs the server the least CPU per 1,000 events (5 ms against 10 ms for ws) at \
          1,000 clients."
            .to_string()
    ));
    let planned = charts::plan(std::slice::from_ref(&d)).expect("charts planned");
    let marks: Vec<Vec<(f64, String)>> = line_panels_of(&planned, ChartKind::ServerCost)
        .into_iter()
        .map(|p| p.marks)
        .collect();
    // The CPU panel marks it midway (log) between 100 and 1,000; the RSS panel has none.
    assert_eq!(
        marks,
        [
            vec![((100.0f64 * 1_000.0).sqrt(), "→ sse".to_string())],
            vec![]
        ]
    );
    // One rate: no chart over the rate.
    assert!(!planned.iter().any(|c| c.kind == ChartKind::VsRate));
}

#[test]
fn where_the_p99_limit_breaks_is_said_and_marked_on_the_latency_chart() {
    use feedbench_report::charts::{self, ChartKind};
    use feedbench_results::p99_limit::{Series, Step};
    use feedbench_results::P99Limit;
    // p99 is 3 × p50: ws 3, 6 and 120 ms at 1,000, 5,000 and 10,000 clients; sse 6, 120, 150.
    let grid = [
        (Transport::Ws, [1_000, 2_000, 40_000]),
        (Transport::Sse, [2_000, 40_000, 50_000]),
    ];
    let clients = [1_000, 5_000, 10_000];
    let mut runs = Vec::new();
    for (transport, p50s) in grid {
        for (n, p50_us) in clients.into_iter().zip(p50s) {
            let run = Run {
                p50_us,
                ..Run::new(transport, n, 1.0)
            };
            runs.push((run, 0));
        }
    }
    let mut d = dataset(&runs);
    // What the load generator writes for a suite with `p99_limit = "100ms"`.
    let series = |transport: Transport, p50s: [u64; 3], within: u64, over: u64| Series {
        group: format!("{transport}-r1"),
        transport,
        limit_us: 100_000,
        steps: clients
            .into_iter()
            .zip(p50s)
            .map(|(clients, p50)| Step {
                clients,
                repeats: 1,
                p99_us: 3 * p50,
                server_cpu_s: None,
                server_rss_peak_bytes: None,
            })
            .collect(),
        crossed_at_clients: Some(over),
        highest_within_clients: Some(within),
    };
    d.results.p99_limit = Some(P99Limit {
        limit_us: 100_000,
        series: vec![
            series(Transport::Ws, grid[0].1, 5_000, 10_000),
            series(Transport::Sse, grid[1].1, 1_000, 5_000),
        ],
    });
    assert!(verdict_of(&d).sentences.contains(
        &"The suite's p99 limit of 100 ms breaks for ws between 5,000 and 10,000 clients and \
          for sse between 1,000 and 5,000 clients."
            .to_string()
    ));
    let planned = charts::plan(std::slice::from_ref(&d)).expect("charts planned");
    let marks: Vec<Vec<(f64, String)>> = line_panels_of(&planned, ChartKind::LatencyVsClients)
        .into_iter()
        .map(|p| p.marks)
        .collect();
    // ws leads p50 everywhere (no crossover); each break midway (log) between its counts.
    assert_eq!(
        marks,
        [vec![
            (
                (5_000.0f64 * 10_000.0).sqrt(),
                "ws: p99 > 100 ms".to_string()
            ),
            (
                (1_000.0f64 * 5_000.0).sqrt(),
                "sse: p99 > 100 ms".to_string()
            ),
        ]]
    );
}
