//! The capacity chart and table: a `feedbench find` answer draws a bar per transport at
//! its last pass with a whisker to its first fail, and a table with the bracket and why
//! the first fail failed; a suite's p99-limit steps read as the same capacity; a file with
//! neither has no capacity section.

mod util;

use feedbench_report::charts::panel::Panel;
use feedbench_report::charts::{self, capacity as capacity_chart, ChartKind};
use feedbench_report::{capacity, summary, write_report, Dataset, ReportInput};
use serde_json::{json, Value};
use util::{fixtures, out_dir};

/// A find answer: ws bracketed by p99, sse by missed events, short-poll (1 s) never failed
/// up to its max, long-poll failed at the start.
fn find_capacity() -> Value {
    json!({
        "vary": "clients",
        "method": "search",
        "slo": [{"percentile": "p99", "limit_us": 100000}],
        "no_missed": true,
        "repeats": 2,
        "resolution": 0.1,
        "budget": {"max_runs": 16, "max_time_s": 600.0, "runs_used": 21, "time_used_s": 250.4},
        "transports": [
            {
                "transport": "ws", "label": "ws", "poll_interval_ms": null, "clients": null,
                "rate_hz": 1.0, "payload_bytes": 64, "slack_us": 0,
                "last_pass": 4000, "first_fail": 5657,
                "first_fail_reasons": [{"kind": "latency", "percentile": "p99", "measured_us": 142000, "limit_us": 100000}],
                "stop": "run_budget", "runs": 8,
                "probes": [
                    {"value": 4000, "pass": true, "scenarios": [0, 1], "p99_us": 80000, "missed": 0, "reasons": []},
                    {"value": 5657, "pass": false, "scenarios": [2], "p99_us": 142000, "missed": 0,
                     "reasons": [{"kind": "latency", "percentile": "p99", "measured_us": 142000, "limit_us": 100000}]}
                ]
            },
            {
                "transport": "sse", "label": "sse", "poll_interval_ms": null, "clients": null,
                "rate_hz": 1.0, "payload_bytes": 64, "slack_us": 0,
                "last_pass": 8000, "first_fail": 8800,
                "first_fail_reasons": [{"kind": "missed", "events": 12}],
                "stop": "converged", "runs": 7, "probes": []
            },
            {
                "transport": "short-poll", "label": "short-poll", "poll_interval_ms": 1000,
                "clients": null, "rate_hz": 1.0, "payload_bytes": 64, "slack_us": 1000000,
                "last_pass": 16000, "first_fail": null, "first_fail_reasons": [],
                "stop": "client_limit", "client_limit": "19937 clients need about 20001 file descriptors",
                "runs": 6, "probes": []
            },
            {
                "transport": "long-poll", "label": "long-poll", "poll_interval_ms": null,
                "clients": null, "rate_hz": 1.0, "payload_bytes": 64, "slack_us": 0,
                "last_pass": null, "first_fail": 1,
                "first_fail_reasons": [{"kind": "incomplete", "message": "no event was delivered in the measure window"}],
                "stop": "fails_at_minimum", "runs": 2, "probes": []
            }
        ]
    })
}

fn with_capacity() -> Value {
    let mut v = fixtures::baseline();
    v["capacity"] = find_capacity();
    v
}

fn dataset(label: &str, v: &Value) -> Dataset {
    Dataset::new(label, util::parse(v))
}

#[test]
fn a_find_answer_validates_and_round_trips() {
    let v = with_capacity();
    let violations = feedbench_results::validate(&v);
    assert!(violations.is_empty(), "{violations:?}");
    let results = util::parse(&v);
    let back = serde_json::to_value(results.capacity.as_ref().unwrap()).unwrap();
    assert_eq!(back, find_capacity(), "every field round-trips");
    // A reason of an unknown kind, or a stop outside the list, is refused.
    let mut bad = with_capacity();
    bad["capacity"]["transports"][0]["first_fail_reasons"][0]["kind"] = json!("slow");
    assert!(!feedbench_results::validate(&bad).is_empty());
    let mut bad = with_capacity();
    bad["capacity"]["transports"][1]["stop"] = json!("tired");
    let v = feedbench_results::validate(&bad);
    assert!(
        v.iter().any(|x| x.pointer == "/capacity/transports/1/stop"),
        "{v:?}"
    );
}

#[test]
fn the_chart_draws_last_pass_with_a_whisker_to_first_fail() {
    let d = dataset("find", &with_capacity());
    let figures = capacity_chart::figures(std::slice::from_ref(&d));
    assert_eq!(figures.len(), 1);
    let f = &figures[0];
    assert_eq!(
        (f.kind, f.stem.as_str()),
        (ChartKind::Capacity, "capacity-clients")
    );
    assert_eq!(
        f.figure.title,
        "Capacity per transport: most clients within p99=100 ms, no event missed"
    );
    let Panel::Bars(p) = &f.figure.rows[0][0].1 else {
        panic!("a bar panel")
    };
    let bars: Vec<(&str, f64, f64, f64, usize)> = p
        .bars
        .iter()
        .map(|b| {
            (
                b.label.as_str(),
                b.stack[0],
                b.total.min,
                b.total.max,
                b.total.n,
            )
        })
        .collect();
    assert_eq!(
        bars,
        [
            ("ws", 4000.0, 4000.0, 5657.0, 2),
            ("sse", 8000.0, 8000.0, 8800.0, 2),
            // Never failed: no whisker.
            ("short-poll", 16000.0, 16000.0, 16000.0, 1),
            // Failed at the smallest value: no bar, a whisker from 0 to 1.
            ("long-poll", 0.0, 0.0, 1.0, 2),
        ]
    );
    assert!((p.y_max - 16000.0 * 1.15).abs() < 1e-6);
    let legend: Vec<&str> = f.figure.legend.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(legend, ["short-poll (1 s)", "long-poll", "ws", "sse"]);
    // It renders like every other chart.
    let dir = out_dir("capacity-chart");
    let r = charts::render(f, &dir).unwrap();
    assert!(r.svg.contains("capacity (clients)"));
    assert!(r.png_path.is_file());
}

#[test]
fn the_table_gives_the_bracket_and_why() {
    let d = dataset("find", &with_capacity());
    let t = capacity::table(&d).unwrap();
    assert_eq!(
        t.headings,
        [
            "transport",
            "last pass (clients)",
            "first fail (clients)",
            "bracket",
            "first fail because",
            "stop",
            "probes",
            "runs"
        ]
    );
    assert_eq!(
        t.rows[0],
        [
            "ws",
            "4,000",
            "5,657",
            "+41%",
            "p99 142.0 ms > 100.0 ms",
            "run_budget",
            "2",
            "8"
        ]
    );
    assert_eq!(t.rows[1][3..5], ["+10%", "12 events missed"]);
    assert_eq!(
        t.rows[2][1..5],
        [
            "16,000",
            "–",
            "–",
            "client-side limit: 19937 clients need about 20001 file descriptors"
        ]
    );
    assert_eq!(
        t.rows[3][1..6],
        [
            "–",
            "1",
            "–",
            "incomplete: no event was delivered in the measure window",
            "fails_at_minimum"
        ]
    );
    assert!(!t.is_numeric(4) && !t.is_numeric(5) && t.is_numeric(6));
    let c = capacity::of(&d).unwrap();
    assert_eq!(
        capacity::describe(&c),
        "clients within p99=100 ms, no event missed, found by feedbench find (2 runs per probe, \
         every one must pass; 21 runs in 250 s (budget 16 runs per transport, 600 s in all))."
    );
}

#[test]
fn p99_limit_steps_are_a_capacity_and_plain_files_have_none() {
    let mut v = fixtures::baseline();
    v["p99_limit"] = json!({
        "limit_us": 100000,
        "series": [{
            "group": "ws-r1-s64", "transport": "ws", "limit_us": 100000,
            "steps": [
                {"clients": 1000, "repeats": 1, "p99_us": 22000, "server_cpu_s": 0.1, "server_rss_peak_bytes": 1},
                {"clients": 5000, "repeats": 1, "p99_us": 114000, "server_cpu_s": 0.5, "server_rss_peak_bytes": 2}
            ],
            "crossed_at_clients": 5000, "highest_within_clients": 1000
        }]
    });
    let d = dataset("connections", &v);
    let t = capacity::table(&d).unwrap();
    assert_eq!(
        t.rows,
        [[
            "ws-r1-s64",
            "1,000",
            "5,000",
            "+400%",
            "p99 114.0 ms > 100.0 ms",
            "converged",
            "2",
            "2"
        ]]
    );
    let f = capacity_chart::figures(std::slice::from_ref(&d));
    assert_eq!(f.len(), 1);
    assert_eq!(
        f[0].figure.title,
        "Capacity per transport: most clients within p99=100 ms"
    );

    let plain = dataset("baseline", &fixtures::baseline());
    assert!(capacity::of(&plain).is_none());
    assert!(capacity_chart::figures(std::slice::from_ref(&plain)).is_empty());
    let md = summary::render("t", std::slice::from_ref(&plain), &[], None);
    assert!(!md.contains("## Capacity"));
}

#[test]
fn the_report_has_the_chart_and_the_table() {
    let dir = out_dir("capacity-report");
    let path = util::write_json(&dir, "results.json", &with_capacity());
    let out = write_report(
        &[ReportInput {
            path,
            label: Some("find".into()),
        }],
        &dir.join("report"),
    )
    .unwrap();
    assert_eq!(
        out.charts
            .iter()
            .filter(|c| c.kind == ChartKind::Capacity)
            .count(),
        1
    );
    let html = std::fs::read_to_string(&out.index_html).unwrap();
    assert!(html.contains("<h2 id=\"capacity\">Capacity within the SLO</h2>"));
    assert!(html.contains("<h2 id=\"capacity-table\">Capacity</h2>"));
    assert!(html.contains("<td>p99 142.0 ms &gt; 100.0 ms</td>"));
    let md = std::fs::read_to_string(&out.summary_md).unwrap();
    assert!(
        md.contains("| ws | 4,000 | 5,657 | +41% | p99 142.0 ms > 100.0 ms | run_budget | 2 | 8 |")
    );
    assert!(md.contains("[Capacity per transport: most clients within p99=100 ms, no event missed](capacity-clients.svg)"));
}

#[test]
fn two_find_runs_share_one_scale_a_row_each() {
    let first = dataset("run 1", &with_capacity());
    let mut v = with_capacity();
    v["capacity"]["transports"][0]["last_pass"] = json!(2593);
    v["capacity"]["transports"][0]["first_fail"] = json!(20000);
    let second = dataset("run 2", &v);
    let figures = capacity_chart::figures(&[first, second]);
    assert_eq!(figures.len(), 1, "one kind of answer: one figure");
    let rows = &figures[0].figure.rows;
    assert_eq!(rows.len(), 2);
    let panels: Vec<&feedbench_report::charts::panel::BarPanel> = rows
        .iter()
        .map(|r| match &r[0].1 {
            Panel::Bars(p) => p,
            Panel::Lines(_) => panic!("a bar panel"),
        })
        .collect();
    assert_eq!(panels[0].y_max, panels[1].y_max);
    assert!((panels[0].y_max - 20000.0 * 1.15).abs() < 1e-6);
    assert_eq!(
        panels[0].caption,
        "run 1: bar: last pass; whisker: up to the first fail"
    );
    assert_eq!(
        (panels[1].bars[0].stack[0], panels[1].bars[0].total.max),
        (2593.0, 20000.0)
    );
}

/// The find answer with its ends confirmed: ws's bracket 4,757–5,657 stepped out to 4,000
/// (every one of 5 runs passed) and 6,727 (every one failed), with two mixed values; sse
/// found no unanimous fail within its budget.
fn confirmed_capacity() -> Value {
    let mut c = find_capacity();
    c["transports"][0]["last_pass"] = json!(4757);
    c["transports"][0]["first_fail"] = json!(5657);
    c["transports"][0]["stop"] = json!("converged");
    c["transports"][0]["probes"][0]["runs_passed"] = json!(2);
    c["transports"][0]["probes"][1]["runs_passed"] = json!(0);
    c["transports"][0]["probes"][1]["confirm"] = json!(true);
    c["transports"][0]["confirmed"] = json!({
        "runs": 5, "pass": 4000, "fail": 6727,
        "mixed": [{"value": 4757, "passed": 3, "runs": 4}, {"value": 5657, "passed": 1, "runs": 2}],
        "stop": "converged"
    });
    c["transports"][1]["confirmed"] = json!({
        "runs": 5, "pass": 8000, "fail": null, "mixed": [{"value": 8800, "passed": 2, "runs": 3}],
        "stop": "run_budget"
    });
    c
}

#[test]
fn a_confirmed_answer_shows_its_unanimous_ends_and_the_mixed_band() {
    let mut v = fixtures::baseline();
    v["capacity"] = confirmed_capacity();
    let violations = feedbench_results::validate(&v);
    assert!(violations.is_empty(), "{violations:?}");
    let results = util::parse(&v);
    let back = serde_json::to_value(results.capacity.as_ref().unwrap()).unwrap();
    assert_eq!(back, confirmed_capacity(), "every field round-trips");
    let mut bad = v.clone();
    bad["capacity"]["transports"][0]["confirmed"]["stop"] = json!("bored");
    assert!(!feedbench_results::validate(&bad).is_empty());

    let d = dataset("find", &v);
    let t = capacity::table(&d).unwrap();
    assert_eq!(
        t.headings,
        [
            "transport",
            "every run passes (clients)",
            "every run fails (clients)",
            "interval",
            "mixed (passed/runs)",
            "first fail because",
            "stop",
            "probes",
            "runs"
        ]
    );
    assert_eq!(
        t.rows[0][..7],
        [
            "ws",
            "4,000",
            "6,727",
            "+68%",
            "4,757 (3/4), 5,657 (1/2)",
            "p99 142.0 ms > 100.0 ms",
            "converged"
        ]
    );
    assert_eq!(
        t.rows[1][1..7],
        [
            "8,000",
            "–",
            "–",
            "8,800 (2/3)",
            "12 events missed",
            "converged (confirming: run_budget)"
        ]
    );
    // A transport searched without confirmation keeps its bracket in the same table.
    assert_eq!(t.rows[2][1..5], ["16,000", "–", "–", "–"]);
    assert!(!t.is_numeric(4) && !t.is_numeric(5) && t.is_numeric(3));
    let c = capacity::of(&d).unwrap();
    assert!(
        capacity::describe(&c).contains(
            "2 runs per probe, every one must pass; then each end confirmed by 5 runs alike, \
             stepping out while they disagree"
        ),
        "{}",
        capacity::describe(&c)
    );
    // The chart's bar stands at the unanimous pass, its whisker reaches the unanimous fail.
    let figures = capacity_chart::figures(std::slice::from_ref(&d));
    let Panel::Bars(panel) = &figures[0].figure.rows[0][0].1 else {
        panic!("a bar panel")
    };
    assert_eq!(
        panel.caption,
        "bar: every run passes; whisker: up to where every run fails"
    );
    assert_eq!(
        (panel.bars[0].stack[0], panel.bars[0].total.max),
        (4000.0, 6727.0)
    );
}
