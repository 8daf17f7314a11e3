//! Runs over protocol stacks (TLS, HTTP/2): scenarios key apart by stack and carry its
//! label, the layer chart draws exactly the split, the "Protocol stacks" table and the
//! stack findings have known values, and files without stacks render exactly as before.
//!
//! The fixture is one load point (10 clients, 10 events/s, 64 B payload: 1,000 events read
//! per window, 108 B of event JSON each) over plaintext HTTP/1.1, TLS HTTP/1.1 and TLS
//! HTTP/2, with byte splits chosen so every per-event figure is a whole number:
//! - short-poll (1 s) over TLS·h1.1: 500 polls; per poll 92 B of head up, 308 B down, one
//!   22 B TLS record each way; per event 108 + 200 framing + 22 TLS = 330 B, 660 B per poll.
//! - short-poll (1 s) over TLS·h2, three repeats: 500 polls; per event 108 + 24 framing
//!   (the poll envelope) + 28/30/35 HTTP/2 + 22 TLS, medians 30 and 184 B, 368 B per poll.
//! - ws over TLS·h1.1: per event 108 + 2 frame header + 22 TLS = 132 B; ws over h1.1: 110 B.
//! - short-poll (1 s, no keep-alive) over TLS·h1.1, a handshake per poll: with resumption
//!   1,000 B of handshake per poll (490 of 500 resumed), without 4,000 B.

mod util;

use feedbench_report::charts::panel::Panel;
use feedbench_report::charts::{self, protocol_layers, ChartKind};
use feedbench_report::findings::findings;
use feedbench_report::group::{HttpVersion, Stack};
use feedbench_report::stack_findings::stack_findings;
use feedbench_report::verdict::{standings, CRITERIA};
use feedbench_report::{stacks, summary, table, Dataset, Results, Transport};
use feedbench_results::{ByteLayers, ByteSplit, ScenarioResult, StackFigures};
use util::{fixtures, out_dir};

/// Events read in every scenario's window.
const EVENTS: u64 = 1_000;
/// Polls in every short-poll scenario's window.
const POLLS: u64 = 500;
/// Event JSON bytes.
const JSON: u64 = 108;

/// What makes one fixture scenario.
struct Spec {
    transport: Transport,
    keepalive: bool,
    tls: bool,
    http2: bool,
    resumption: bool,
    up: ByteLayers,
    down: ByteLayers,
    handshakes: u64,
    resumed: u64,
    server_cpu_s: f64,
    /// Load generator CPU seconds in the window.
    loadgen_cpu_s: f64,
    /// Server memory per connection, when it differs from the template's.
    memory_per_connection: Option<f64>,
    p50_us: u64,
}

fn layers(payload: u64, framing: u64, h2: u64, tls: u64, handshake: u64) -> ByteLayers {
    ByteLayers {
        payload,
        framing,
        h2,
        tls,
        handshake,
    }
}

fn scenario(template: &ScenarioResult, spec: &Spec) -> ScenarioResult {
    let mut s = template.clone();
    s.transport = spec.transport;
    s.params.clients = 10;
    s.params.rate_hz = 10.0;
    s.params.payload_bytes = 64;
    s.params.keepalive = spec.keepalive;
    s.params.poll_interval_ms = (spec.transport == Transport::ShortPoll).then_some(1_000);
    s.params.tls = spec.tls;
    s.params.http = if spec.http2 { "2" } else { "1.1" }.to_string();
    s.params.tls_resumption = spec.tls.then_some(spec.resumption);
    s.events.published = 100;
    s.events.expected = EVENTS;
    s.events.delivered = EVENTS;
    s.events.missed = 0;
    let (up, down) = (spec.up.sum(), spec.down.sum());
    s.bytes.up = up;
    s.bytes.down = down;
    s.bytes.events = EVENTS;
    s.bytes.payload = spec.down.payload;
    s.bytes.per_event = (up + down) as f64 / EVENTS as f64;
    s.bytes.per_event_up = up as f64 / EVENTS as f64;
    s.bytes.per_event_down = down as f64 / EVENTS as f64;
    s.bytes.overhead_ratio = (up + down - spec.down.payload) as f64 / spec.down.payload as f64;
    let polls = if spec.transport == Transport::ShortPoll {
        POLLS
    } else {
        0
    };
    s.requests.sent = polls;
    s.requests.empty = 0;
    s.requests.per_event = polls as f64 / EVENTS as f64;
    s.latency_us.p50 = spec.p50_us;
    s.latency_us.p99 = spec.p50_us * 3;
    if let Some(server) = s.server.as_mut() {
        server.cpu_s = spec.server_cpu_s;
        s.loadgen.cpu_s = spec.loadgen_cpu_s;
        if spec.memory_per_connection.is_some() {
            server.rss_per_connection_bytes = spec.memory_per_connection;
        }
    }
    s.stack = Some(StackFigures {
        tls_version: spec.tls.then(|| "TLSv1.3".to_string()),
        cipher_suite: spec.tls.then(|| "TLS13_AES_128_GCM_SHA256".to_string()),
        alpn: spec
            .tls
            .then(|| if spec.http2 { "h2" } else { "http/1.1" }.to_string()),
        http: s.params.http.clone(),
        handshakes: spec.handshakes,
        resumed: spec.resumed,
        handshakes_total: spec.handshakes + 10,
        split: ByteSplit {
            up: spec.up,
            down: spec.down,
        },
        run_tls: None,
    });
    s.name = format!("{}-{}", spec.transport, s.params.http);
    s
}

/// A short-poll over HTTP/1.1 (TLS records on when `tls`), `handshake_up`/`down` bytes of
/// handshake per poll.
fn short_poll_h1(keepalive: bool, resumption: bool, handshake: (u64, u64)) -> Spec {
    Spec {
        transport: Transport::ShortPoll,
        keepalive,
        tls: true,
        http2: false,
        resumption,
        up: layers(0, 92 * POLLS, 0, 22 * POLLS, handshake.0 * POLLS),
        down: layers(
            JSON * EVENTS,
            308 * POLLS,
            0,
            22 * POLLS,
            handshake.1 * POLLS,
        ),
        handshakes: if handshake.0 > 0 { POLLS } else { 0 },
        resumed: 0,
        server_cpu_s: 0.02,
        loadgen_cpu_s: 0.01,
        memory_per_connection: None,
        p50_us: 500_000,
    }
}

/// A short-poll over TLS·h2 with `h2` bytes of HTTP/2 framing per event.
fn short_poll_h2(h2: u64) -> Spec {
    Spec {
        transport: Transport::ShortPoll,
        keepalive: true,
        tls: true,
        http2: true,
        resumption: true,
        // A third of the HTTP/2 bytes go up (HEADERS of the request), the rest down.
        up: layers(0, 0, h2 * EVENTS / 3, 22 * POLLS, 0),
        down: layers(
            JSON * EVENTS,
            24 * EVENTS,
            h2 * EVENTS - h2 * EVENTS / 3,
            22 * POLLS,
            0,
        ),
        handshakes: 0,
        resumed: 0,
        server_cpu_s: 0.015,
        loadgen_cpu_s: 0.01,
        memory_per_connection: None,
        p50_us: 500_000,
    }
}

fn ws(tls: bool) -> Spec {
    Spec {
        transport: Transport::Ws,
        keepalive: true,
        tls,
        http2: false,
        resumption: true,
        up: ByteLayers::default(),
        down: layers(
            JSON * EVENTS,
            2 * EVENTS,
            0,
            if tls { 22 * EVENTS } else { 0 },
            0,
        ),
        handshakes: 0,
        resumed: 0,
        server_cpu_s: if tls { 0.004 } else { 0.003 },
        loadgen_cpu_s: 0.01,
        // rustls keeps its own buffers beside hyper's.
        memory_per_connection: Some(if tls { 45_056.0 } else { 2_867.0 }),
        p50_us: 300,
    }
}

fn stacked() -> Results {
    let mut results = util::parse(&fixtures::baseline());
    let template = results.scenarios[0].clone();
    let mut resumed = short_poll_h1(false, true, (300, 700));
    resumed.resumed = 490;
    // A handshake per poll: 500 handshakes cost the server 12 ms and the load generator
    // 10 ms more than the keep-alive run with resumption, 30 ms each without.
    resumed.server_cpu_s = 0.032;
    resumed.loadgen_cpu_s = 0.02;
    resumed.p50_us = 2_000;
    let mut full = short_poll_h1(false, false, (1_000, 3_000));
    full.server_cpu_s = 0.05;
    full.loadgen_cpu_s = 0.04;
    full.p50_us = 3_100;
    let specs = [
        short_poll_h1(true, true, (0, 0)),
        short_poll_h2(28),
        short_poll_h2(30),
        short_poll_h2(35),
        ws(true),
        ws(false),
        resumed,
        full,
    ];
    results.scenarios = specs.iter().map(|s| scenario(&template, s)).collect();
    for (i, s) in results.scenarios.iter_mut().enumerate() {
        s.repeat = i as u32;
    }
    results
}

fn dataset() -> Dataset {
    Dataset::new("stacks", stacked())
}

fn tls(http: HttpVersion, resumption: bool) -> Stack {
    Stack {
        tls: true,
        http,
        streams_per_connection: 1,
        tls_resumption: Some(resumption),
    }
}

#[test]
fn scenarios_key_apart_by_stack_and_carry_its_label() {
    let d = dataset();
    let labels: Vec<String> = d.groups.iter().map(|g| g.key.label()).collect();
    assert_eq!(
        labels,
        [
            "short-poll (1 s, no keep-alive) over TLS·h1.1",
            "short-poll (1 s, no keep-alive) over TLS·h1.1·no resumption",
            "short-poll (1 s) over TLS·h1.1",
            "short-poll (1 s) over TLS·h2",
            "ws",
            "ws over TLS·h1.1",
        ]
    );
    let h2 = d
        .groups
        .iter()
        .find(|g| g.key.load.stack == tls(HttpVersion::Http2, true))
        .unwrap();
    assert_eq!(h2.repeats.len(), 3);
    assert_eq!(
        h2.key.load.describe(),
        "10 clients, 10 events/s, 64 B payload, TLS·h2"
    );
    assert_eq!(h2.key.slug(), "short-poll-c10-r10-s64-tls-h2-i1000");
    let h2c = Stack {
        tls: false,
        http: HttpVersion::Http2,
        streams_per_connection: 8,
        tls_resumption: None,
    };
    assert_eq!(h2c.label(), "h2c·8 streams/conn");
    assert_eq!(h2c.slug(), "h2c-m8");
    assert_eq!(Stack::default().label(), "h1.1");

    // The scenario table names each row's stack, right after the transport.
    let t = table::table(&d);
    assert_eq!(t.headings[..2], ["transport", table::STACK_HEADING]);
    let stacks: Vec<(&str, &str)> = t
        .rows
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    assert_eq!(stacks[3], ("short-poll (1 s)", "TLS·h2"));
    assert_eq!(stacks[4], ("ws", "h1.1"));
    assert!(!t.is_numeric(1) && t.is_numeric(2));

    // Findings per load point and the verdict's points never mix stacks: only TLS·h1.1 has
    // two transports at one point (the others have one each, nothing to compare).
    let f = findings(&d);
    let headings: Vec<&str> = f.per_load.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(
        headings,
        ["10 clients, 10 events/s, 64 B payload, TLS·h1.1"]
    );
    assert_eq!(
        f.per_load[0].1[0],
        "At 10 clients and 10 events/s over TLS·h1.1, ws used 6.3× fewer bytes per event \
         than short-poll (1 s, no keep-alive) (132 B vs 830 B)."
    );
    for criterion in &CRITERIA {
        for standing in standings(&d, criterion) {
            assert!(standing
                .ranked
                .iter()
                .all(|e| e.group.key.load.stack == standing.load.stack));
        }
    }
}

/// A bar as drawn: its label and its segments' heights.
type Drawn = (String, Vec<f64>);

#[test]
fn the_layer_chart_draws_exactly_the_split() {
    let d = dataset();
    let planned = charts::plan(std::slice::from_ref(&d)).unwrap();
    let layered: Vec<_> = planned
        .iter()
        .filter(|c| c.kind == ChartKind::ProtocolLayers)
        .collect();
    assert_eq!(layered.len(), 1, "one load point apart from the stack");
    let figure = &layered[0].figure;
    assert_eq!(layered[0].stem, "protocol-layers-c10-r10-s64");
    assert_eq!(
        figure.title,
        "Bytes per delivered event by protocol layer at 10 clients, 10 events/s, 64 B payload"
    );
    let legend: Vec<&str> = figure.legend.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(
        legend,
        [
            "payload",
            "framing",
            "HTTP/2 frames",
            "TLS records",
            "TLS handshakes"
        ]
    );
    // One row (one dataset), a panel per variant, a bar per stack: [payload, framing,
    // HTTP/2, TLS, handshakes] per delivered event.
    let panels: Vec<(String, Vec<Drawn>)> = figure.rows[0]
        .iter()
        .map(|(_, p)| match p {
            Panel::Bars(b) => (
                b.caption.clone(),
                b.bars
                    .iter()
                    .map(|bar| (bar.label.clone(), bar.stack.clone()))
                    .collect(),
            ),
            Panel::Lines(_) => panic!("a bar panel"),
        })
        .collect();
    let bar = |label: &str, stack: [f64; 5]| (label.to_string(), stack.to_vec());
    assert_eq!(
        panels,
        [
            (
                "short-poll (1 s, no keep-alive)".to_string(),
                vec![
                    bar("TLS·h1.1", [108.0, 200.0, 0.0, 22.0, 500.0]),
                    bar("TLS·h1.1·no resumption", [108.0, 200.0, 0.0, 22.0, 2_000.0]),
                ]
            ),
            (
                "short-poll (1 s)".to_string(),
                vec![
                    bar("TLS·h1.1", [108.0, 200.0, 0.0, 22.0, 0.0]),
                    bar("TLS·h2", [108.0, 24.0, 30.0, 22.0, 0.0]),
                ]
            ),
            (
                "ws".to_string(),
                vec![
                    bar("h1.1", [108.0, 2.0, 0.0, 0.0, 0.0]),
                    bar("TLS·h1.1", [108.0, 2.0, 0.0, 22.0, 0.0]),
                ]
            ),
        ]
    );
    // The whisker spans the repeats' totals: 182, 184 and 189 B over TLS·h2.
    let h2 = &protocol_layers::bars(
        &d,
        &d.groups[3].key.variant,
        &d.groups[3].key.load.without_stack(),
    )[1];
    assert_eq!(
        (h2.total.min, h2.total.median, h2.total.max, h2.total.n),
        (182.0, 184.0, 189.0, 3)
    );

    let dir = out_dir("stacks-chart");
    let c = charts::render(layered[0], &dir).unwrap();
    util::assert_well_formed_svg(&c.svg, &c.stem);
    for label in ["TLS·h2", "TLS·h1.1·no resumption", "HTTP/2 frames", "ws"] {
        assert!(c.svg.contains(label), "{label} is drawn");
    }
    let png = util::Png::read(&c.png_path);
    // The handshake segments are the only red.
    assert!(png.count_near([202, 0, 32], 8) > 1_000);
}

#[test]
fn the_protocol_stacks_table_has_the_medians_of_the_split() {
    let d = dataset();
    let t = stacks::table(&d).expect("a table for TLS runs");
    assert_eq!(t.headings, stacks::HEADINGS);
    assert_eq!(t.rows.len(), 6);
    let row = |transport: &str, stack: &str| {
        t.rows
            .iter()
            .find(|r| r[0] == transport && r[1] == stack)
            .unwrap_or_else(|| panic!("no row {transport} {stack}"))
            .clone()
    };
    assert_eq!(
        row("short-poll (1 s)", "TLS·h2"),
        [
            "short-poll (1 s)",
            "TLS·h2",
            "10 clients, 10 events/s, 64 B payload",
            "TLSv1.3",
            "TLS13_AES_128_GCM_SHA256",
            "h2",
            "184 B",
            "108 B",
            "24 B",
            "30 B",
            "22 B",
            "0 B",
            "0",
            "–",
            "15 ms",
            "500 ms",
            "1.5 s",
        ]
    );
    assert_eq!(
        row("short-poll (1 s, no keep-alive)", "TLS·h1.1")[6..],
        [
            "830 B", "108 B", "200 B", "0 B", "22 B", "500 B", "500", "98%", "32 ms", "2 ms",
            "6 ms"
        ]
    );
    assert_eq!(
        row("ws", "h1.1")[3..14],
        ["–", "–", "–", "110 B", "108 B", "2 B", "0 B", "0 B", "0 B", "–", "–"]
    );
    assert!(!t.is_numeric(2) && !t.is_numeric(5) && t.is_numeric(6));

    let md = summary::render("stacks", std::slice::from_ref(&d), &[], None);
    assert!(md.contains("## Protocol stacks\n\n"), "{md}");
    assert!(md.contains(
        "| short-poll (1 s) | TLS·h2 | 10 clients, 10 events/s, 64 B payload | TLSv1.3 | \
         TLS13_AES_128_GCM_SHA256 | h2 | 184 B | 108 B | 24 B | 30 B | 22 B | 0 B | 0 | – | \
         15 ms | 500 ms | 1.5 s |"
    ));
    let page = feedbench_report::html::render("stacks", std::slice::from_ref(&d), &[], None);
    assert!(page.contains("<h2 id=\"protocol-stacks\">Protocol stacks</h2>"));
    assert!(page.contains("<a href=\"#protocol-stacks\">Protocol stacks</a>"));
    assert!(page.contains("<td>TLS·h2</td><td>10 clients, 10 events/s, 64 B payload</td>"));
}

#[test]
fn stack_findings_are_computed_from_the_split() {
    let d = dataset();
    let overall = findings(&d).overall;
    let expected = [
        "At 10 clients and 10 events/s, short-poll (1 s) over TLS·h2 sent and received 368 B \
         per poll against 660 B over TLS·h1.1: HTTP/2 saved 292 B per poll (44.2%). Per \
         delivered event: 184 B against 330 B, of which framing and HTTP/2 frames 54 B against \
         200 B.",
        "At 10 clients and 10 events/s, ws over TLS·h1.1 used 132 B per delivered event \
         against 110 B over h1.1 (+20%); server CPU 4 ms against 3 ms per 1,000 events; \
         server memory 44 KiB against 2.8 KiB per connection.",
        "Over TLS·h1.1 at 10 clients and 10 events/s, TLS record headers and tags cost per \
         delivered event: short-poll (1 s, no keep-alive) 22 B (2.65% of its 830 B), \
         short-poll (1 s) 22 B (6.67% of its 330 B) and ws 22 B (16.7% of its 132 B).",
        "Over TLS·h1.1·no resumption at 10 clients and 10 events/s, TLS record headers and \
         tags cost per delivered event: short-poll (1 s, no keep-alive) 22 B (0.944% of its \
         2.28 KiB).",
        "Over TLS·h2 at 10 clients and 10 events/s, TLS record headers and tags cost per \
         delivered event: short-poll (1 s) 22 B (12% of its 184 B).",
        "At 10 clients and 10 events/s over TLS·h1.1, short-poll (1 s, no keep-alive) made 1 \
         TLS handshake per poll with session resumption and 1 without: 1,000 B of handshake \
         per poll with it (98% resumed) against 3.91 KiB without (75% less with it); server \
         CPU 32 ms against 50 ms per 1,000 events, p50 2 ms against 3.1 ms.",
        "At 10 clients and 10 events/s over TLS·h1.1, one TLS handshake of short-poll (1 s, \
         no keep-alive) cost 24 µs on the server and 20 µs on the load generator with \
         session resumption and 60 µs on the server and 60 µs on the load generator without \
         (the run's CPU minus that of its keep-alive twin, over its handshakes).",
    ];
    assert_eq!(stack_findings(&d), expected);
    // They are findings about the whole run, after the request paths' and before the
    // accounting's.
    let at = overall.iter().position(|s| *s == expected[0]).unwrap();
    assert_eq!(overall[at..at + expected.len()], expected);
    assert!(overall[at + expected.len()].starts_with("All 8,000 deliveries"));
}

#[test]
fn a_lone_tls_group_gets_its_handshakes_on_their_own() {
    let mut results = stacked();
    // Drop the run without resumption: the one with it is described alone.
    results
        .scenarios
        .retain(|s| s.params.tls_resumption != Some(false));
    let overall = findings(&Dataset::new("stacks", results)).overall;
    assert!(
        overall.contains(
            &"At 10 clients and 10 events/s over TLS·h1.1, short-poll (1 s, no keep-alive) \
              made 1 TLS handshake per poll, 1,000 B of handshake per poll (98% of them \
              resumed)."
                .to_string()
        ),
        "{overall:#?}"
    );
}

#[test]
fn cpu_per_handshake_needs_the_keep_alive_twin() {
    let cpu = |keep: fn(&ScenarioResult) -> bool| {
        let mut results = stacked();
        results.scenarios.retain(keep);
        stack_findings(&Dataset::new("stacks", results))
            .into_iter()
            .filter(|f| f.contains("one TLS handshake"))
            .collect::<Vec<_>>()
    };
    // Resumption off alone: its keep-alive twin (resumption on) still counts, since a kept
    // alive connection makes no handshake in the window.
    assert_eq!(
        cpu(|s| s.params.keepalive || s.params.tls_resumption == Some(false)),
        [
            "At 10 clients and 10 events/s over TLS·h1.1·no resumption, one TLS handshake of \
          short-poll (1 s, no keep-alive) cost 60 µs on the server and 60 µs on the load \
          generator without session resumption (the run's CPU minus that of its keep-alive \
          twin, over its handshakes)."
        ]
    );
    // Without a keep-alive short-poll over TLS·h1.1 there is nothing to subtract.
    assert!(cpu(|s| !(s.params.keepalive
        && s.transport == Transport::ShortPoll
        && s.params.http == "1.1"))
    .is_empty());
}

#[test]
fn files_without_stacks_render_as_before() {
    // Old fixtures, no stack block: no layer chart, no stacks table, no stack column.
    let base = Dataset::new("baseline", util::parse(&fixtures::baseline()));
    let planned = charts::plan(std::slice::from_ref(&base)).unwrap();
    assert!(planned.iter().all(|c| c.kind != ChartKind::ProtocolLayers));
    assert!(stacks::table(&base).is_none());
    assert!(!table::table(&base).headings.contains(&table::STACK_HEADING));
    assert!(base.groups.iter().all(|g| g.key.load.stack.is_plain()));

    // A plaintext HTTP/1.1 run with a split: the split is there, but nothing to compare.
    let mut plain = stacked();
    plain.scenarios.retain(|s| !s.params.tls);
    let plain = Dataset::new("plain", plain);
    assert!(plain.groups.iter().all(stacks::has_split));
    assert!(!stacks::shown(std::slice::from_ref(&plain)));
    assert!(stacks::table(&plain).is_none());
}

#[test]
fn the_committed_baseline_report_is_unchanged() {
    // The committed quick baseline (written before stacks existed) renders byte for byte
    // as committed: the same pages and the same chart files.
    let committed = util::crate_dir().join("../bench-results/baseline-quick");
    let dir = out_dir("stacks-baseline-quick");
    let out = feedbench_report::write_report(
        &[feedbench_report::ReportInput {
            path: committed.join("results.json"),
            label: None,
        }],
        &dir,
    )
    .expect("report");
    for name in ["summary.md", "index.html"] {
        let want = std::fs::read_to_string(committed.join(name)).unwrap();
        let got = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(want == got, "{name} changed");
    }
    for c in &out.charts {
        let want = std::fs::read(committed.join(format!("{}.svg", c.stem))).unwrap();
        assert_eq!(want, c.svg.as_bytes(), "{}.svg changed", c.stem);
    }
}

#[test]
fn two_files_put_their_layer_bars_in_a_row_each_on_one_scale() {
    let base = Dataset::new("baseline", util::parse(&fixtures::baseline()));
    let cand = Dataset::new("candidate", stacked());
    let planned = charts::plan(&[base, cand]).unwrap();
    let layered: Vec<_> = planned
        .iter()
        .filter(|c| c.kind == ChartKind::ProtocolLayers)
        .collect();
    assert_eq!(layered.len(), 1);
    let rows = &layered[0].figure.rows;
    assert_eq!(rows.len(), 2, "a row per file");
    let caption = |p: &Panel| match p {
        Panel::Bars(b) => (b.caption.clone(), b.bars.len(), b.y_max),
        Panel::Lines(_) => panic!("a bar panel"),
    };
    let (base_caption, base_bars, base_top) = caption(&rows[0][1].1);
    let (cand_caption, cand_bars, cand_top) = caption(&rows[1][1].1);
    assert_eq!(base_caption, "baseline: short-poll (1 s)");
    assert_eq!(cand_caption, "candidate: short-poll (1 s)");
    // The baseline has no split: its panels are empty, on the candidate's scale.
    assert_eq!((base_bars, cand_bars), (0, 2));
    assert_eq!(base_top, cand_top);
    assert_eq!(cand_top, 2_330.0 * 1.15);
}

#[test]
fn a_report_over_stacks_has_the_layer_chart_and_the_stacks_table() {
    let dir = out_dir("stacks-report");
    let out = feedbench_report::report::write_report_for(&[dataset()], &dir).expect("report");
    let layered: Vec<_> = out
        .charts
        .iter()
        .filter(|c| c.kind == ChartKind::ProtocolLayers)
        .collect();
    assert_eq!(layered.len(), 1);
    assert!(layered[0].png_path.is_file());
    let md = std::fs::read_to_string(&out.summary_md).unwrap();
    let page = std::fs::read_to_string(&out.index_html).unwrap();
    assert!(md.contains("- [Bytes per delivered event by protocol layer at 10 clients, 10 events/s, 64 B payload](protocol-layers-c10-r10-s64.svg)"));
    assert!(page.contains("<h2 id=\"protocol-layers\">Bytes per event by protocol layer</h2>"));
    assert!(page.contains("<a href=\"#protocol-layers\">Bytes per event by protocol layer</a>"));
    // Charts that slice by load keep stacks apart: a spectrum per stack, none mixed.
    let spectra: Vec<&str> = out
        .charts
        .iter()
        .filter(|c| c.kind == ChartKind::LatencySpectrum)
        .map(|c| c.stem.as_str())
        .collect();
    assert_eq!(
        spectra,
        [
            "latency-spectrum-c10-r10-s64",
            "latency-spectrum-c10-r10-s64-tls-h1.1",
            "latency-spectrum-c10-r10-s64-tls-h1.1-noresume",
            "latency-spectrum-c10-r10-s64-tls-h2",
        ]
    );
}
