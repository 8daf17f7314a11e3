//! Runs over an emulated link: a wan-like set (4 transports × RTT 0, 50, 100, 200 ms at
//! 4 events/s) draws the latency-vs-RTT chart with the model, the table gains the link
//! columns with exact values, a lossy run gets its explanation, and a run without links
//! renders as before.

mod util;

use feedbench_report::charts::{self, ChartKind};
use feedbench_report::{summary, table, Dataset, Results, Transport};
use feedbench_results::model::{predict, ModelInput};
use feedbench_results::{EmulatorFigures, NetClass, NetDirection, NetFigures, ScenarioResult};
use util::{fixtures, out_dir};

const RTTS: [f64; 4] = [0.0, 50.0, 100.0, 200.0];

/// A link block of `rtt_ms` and `loss` with fixed counters: over `events` events, 200 IP
/// bytes down and 52 up per event, 3 retransmits, 2 drops by loss, 1 by the queue.
fn link(rtt_ms: f64, loss: f64, events: u64) -> NetFigures {
    let spec = if loss > 0.0 {
        format!("rtt={rtt_ms}ms,loss={}%", loss * 100.0)
    } else {
        format!("rtt={rtt_ms}ms")
    };
    let direction = |bytes: u64, drops: u64| NetDirection {
        packets: events,
        bytes: bytes * events,
        delivered_packets: events - drops,
        delivered_bytes: bytes * (events - drops),
        tcp_retransmits: drops + 1,
        drops_loss: drops,
        drops_queue: 0,
        drops_overflow: 0,
    };
    let mut down = direction(200, 2);
    down.drops_queue = 1;
    NetFigures {
        spec,
        classes: vec![NetClass {
            weight: 1.0,
            clients: 10,
            rtt_ms,
            jitter_ms: 0.0,
            down_bps: None,
            up_bps: None,
            loss,
            queue_bytes: None,
        }],
        shared_bps: None,
        rtt_measured_ms: Some(feedbench_results::RttProbe {
            n: 8,
            min: rtt_ms + 0.1,
            p50: rtt_ms + 0.25,
            max: rtt_ms + 0.5,
        }),
        down,
        up: direction(52, 0),
        emulator: EmulatorFigures {
            cpu_s: 0.1,
            wall_s: 3.0,
            late_packets: 0,
            late_max_us: 20,
            saturated: false,
        },
    }
}

/// One scenario of `transport` over `rtt_ms`, measured 1 ms above the model's p50 (and
/// mean), p99 at `p99_us`.
fn scenario(
    template: &ScenarioResult,
    transport: Transport,
    rtt_ms: f64,
    loss: f64,
    p99_us: u64,
) -> ScenarioResult {
    let mut s = template.clone();
    s.transport = transport;
    s.params.rate_hz = 4.0;
    s.params.keepalive = true;
    s.params.poll_interval_ms = (transport == Transport::ShortPoll).then_some(500);
    s.events.last_seq = Some(999);
    s.bytes.events = 1_000;
    let net = link(rtt_ms, loss, s.bytes.events);
    s.params.net = Some(net.spec.clone());
    s.name = format!("{transport}-c10-r4-s64-{}", net.spec);
    s.net = Some(net);
    let model = predict(&ModelInput::of(&s, 0.0).expect("a model input"));
    s.latency_us.p50 = ((model.p50_ms + 1.0) * 1e3).round() as u64;
    s.latency_us.mean = (model.mean_ms + 1.0) * 1e3;
    s.latency_us.p99 = p99_us;
    s
}

fn wan() -> Results {
    let mut results = util::parse(&fixtures::baseline());
    let template = results.scenarios[0].clone();
    results.scenarios = Transport::ALL
        .iter()
        .flat_map(|t| {
            RTTS.iter()
                .map(|rtt| scenario(&template, *t, *rtt, 0.0, 300_000))
        })
        .collect();
    results
}

#[test]
fn the_latency_vs_rtt_chart_draws_measured_points_and_the_model() {
    let dataset = Dataset::new("wan", wan());
    let planned = charts::plan(std::slice::from_ref(&dataset)).unwrap();
    let rtt: Vec<_> = planned
        .iter()
        .filter(|c| c.kind == ChartKind::LatencyVsRtt)
        .collect();
    assert_eq!(rtt.len(), 1, "one slice: 10 clients, 4 events/s, 64 B");
    let dir = out_dir("net-chart");
    let c = charts::render(rtt[0], &dir).unwrap();
    assert_eq!(c.stem, "latency-vs-rtt-c10-r4-s64");
    util::assert_well_formed_svg(&c.svg, &c.stem);
    // One round marker per measured point (4 transports × 4 RTTs), plus the legend's
    // round marker for each transport and for "measured p50".
    assert_eq!(c.svg.matches("<circle").count(), 16 + 4 + 1);
    // The model: a dashed line per transport, drawn as many short segments of its colour.
    let figure = &rtt[0].figure;
    let panel = match &figure.rows[0][0].1 {
        charts::panel::Panel::Lines(l) => l,
        charts::panel::Panel::Bars(_) => panic!("a line panel"),
    };
    let dashed: Vec<_> = panel
        .series
        .iter()
        .filter(|s| s.dash == charts::panel::Dash::Dashed)
        .collect();
    assert_eq!(dashed.len(), 4);
    let long_poll = dashed.iter().find(|s| s.label == "long-poll").unwrap();
    // 4 Hz: half the RTT up to the knee at 250 ms (beyond the chart), so 100 ms at 200 ms.
    let last = long_poll.points.last().unwrap();
    assert_eq!((last.0, last.1.median), (200.0, 100_000.0));
    let short = dashed
        .iter()
        .find(|s| s.label == "short-poll (500 ms)")
        .unwrap();
    assert_eq!(short.points[0].1.median, 250_000.0);
    assert_eq!(short.points.last().unwrap().1.median, 350_000.0);
    for series in &dashed {
        // A solid line is one polyline; a dashed one is a polyline per dash.
        let c_ = series.color;
        let stroke = format!("stroke=\"#{:02X}{:02X}{:02X}\"", c_.0, c_.1, c_.2);
        let polylines = c
            .svg
            .lines()
            .filter(|l| l.starts_with("<polyline") && l.contains(&stroke))
            .count();
        assert!(polylines > 30, "{}: {polylines} polylines", series.label);
    }
}

#[test]
fn the_table_gains_the_link_columns() {
    let mut results = wan();
    let template = results.scenarios[0].clone();
    results
        .scenarios
        .push(scenario(&template, Transport::Ws, 100.0, 0.01, 600_000));
    let dataset = Dataset::new("wan", results);
    let t = table::table(&dataset);
    assert_eq!(
        &t.headings[t.headings.len() - 7..],
        table::NET_HEADINGS.as_slice()
    );
    let ws100 = t
        .rows
        .iter()
        .find(|r| r[0] == "ws" && r[14] == "rtt=100ms")
        .unwrap();
    assert_eq!(
        &ws100[14..],
        [
            "rtt=100ms",
            "100 ms",
            "252 B",
            "4",
            "2/1",
            "50 ms p50",
            "+2%"
        ]
    );
    let sp = t
        .rows
        .iter()
        .find(|r| r[0] == "short-poll (500 ms)" && r[14] == "rtt=200ms")
        .unwrap();
    assert_eq!(&sp[19..], ["350 ms mean", "+0.286%"]);

    let md = summary::render("wan", std::slice::from_ref(&dataset), &[], None);
    assert!(
        md.contains("| link | RTT measured | IP bytes/event | TCP retransmits | drops loss/queue | model latency | vs model |"),
        "{md}"
    );
    assert!(
        md.contains("| rtt=100ms | 100 ms | 252 B | 4 | 2/1 | 50 ms p50 | +2% |"),
        "{md}"
    );
    assert!(
        md.contains("With loss=1% (rtt=100ms,loss=1%), ws p99 rose by 300 ms over the loss-free run of the same link (rtt=100ms: 300 ms → 600 ms): a lost segment stalls the stream until TCP retransmits it (at least one RTT, 100 ms, usually a 200 ms timeout)."),
        "{md}"
    );
}

#[test]
fn a_run_without_links_has_neither_chart_nor_columns() {
    let dataset = Dataset::new("baseline", util::parse(&fixtures::baseline()));
    let planned = charts::plan(std::slice::from_ref(&dataset)).unwrap();
    assert!(planned.iter().all(|c| c.kind != ChartKind::LatencyVsRtt));
    let t = table::table(&dataset);
    assert!(!t.headings.contains(&"link"));
    assert!(planned.iter().all(|c| !c.stem.contains("-net-")));
}
