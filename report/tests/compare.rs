//! The compare gate's verdicts and exit codes on fixture pairs.

mod util;

use feedbench_report::compare_output::{bencher_bmf, github_action_benchmark, markdown};
use feedbench_report::{compare, CompareOptions, Comparison, Dataset, Transport, Verdict};
use serde_json::Value;
use util::fixtures::{self, scale_bytes_down, scale_latency, scenarios_mut};

fn run(baseline: &Value, candidate: &Value, opts: &CompareOptions) -> Comparison {
    let b = Dataset::new("baseline", util::parse(baseline));
    let c = Dataset::new("candidate", util::parse(candidate));
    compare(&b, &c, opts).expect("comparable files")
}

fn rows_with(c: &Comparison, verdict: Verdict) -> Vec<String> {
    c.rows
        .iter()
        .filter(|r| r.verdict == verdict)
        .map(|r| format!("{} {}", r.scenario, r.metric))
        .collect()
}

#[test]
fn identical_files_pass() {
    let base = fixtures::baseline();
    let c = run(&base, &base, &CompareOptions::default());
    assert_eq!(c.exit_code(), 0);
    assert!(rows_with(&c, Verdict::Regression).is_empty());
    assert!(
        rows_with(&c, Verdict::Inconclusive).is_empty(),
        "3 repeats a side decide"
    );
    assert!(
        c.rows.iter().all(|r| r.verdict == Verdict::Ok),
        "{:?}",
        rows_with(&c, Verdict::Improved)
    );
    // 20 scenario keys; push transports have 7 metrics, polling ones 8.
    assert_eq!(c.rows.len(), 8 * 7 + 12 * 8);
}

#[test]
fn five_percent_more_ws_bytes_per_event_fails() {
    let base = fixtures::baseline();
    let mut cand = base.clone();
    for s in scenarios_mut(&mut cand).filter(|s| s["transport"] == "ws") {
        scale_bytes_down(s, 1.05);
    }
    let c = run(&base, &cand, &CompareOptions::default());
    assert_eq!(c.exit_code(), 1);
    let regressions = rows_with(&c, Verdict::Regression);
    assert_eq!(regressions.len(), 4, "{regressions:?}");
    assert!(regressions
        .iter()
        .all(|r| r.starts_with("ws-") && r.ends_with("bytes/event down")));
    let row = c
        .rows
        .iter()
        .find(|r| r.verdict == Verdict::Regression)
        .expect("a regression row");
    let change = row.change.expect("a change");
    assert!((change - 0.05).abs() < 0.001, "change {change}");
}

/// Spreads each scenario's latency over its repeats by `factors[repeat]`.
fn spread_latency(results: &mut Value, factors: [f64; 3]) {
    for s in scenarios_mut(results) {
        let repeat = s["repeat"].as_u64().expect("repeat") as usize;
        scale_latency(s, factors[repeat]);
    }
}

#[test]
fn a_latency_change_inside_the_repeats_spread_passes() {
    let mut base = fixtures::baseline();
    let mut cand = base.clone();
    spread_latency(&mut base, [0.85, 1.0, 1.15]);
    // +10% on the medians, well inside ±15% noise on each side plus the 10% minimum effect.
    spread_latency(&mut cand, [0.95, 1.10, 1.25]);
    let c = run(&base, &cand, &CompareOptions::default());
    assert_eq!(c.exit_code(), 0, "{:?}", rows_with(&c, Verdict::Regression));
    assert!(rows_with(&c, Verdict::Regression).is_empty());

    // The same spread with the medians 80% slower is beyond the noise: the gate is live.
    let mut slow = fixtures::baseline();
    spread_latency(&mut slow, [1.55, 1.80, 2.05]);
    let c = run(&base, &slow, &CompareOptions::default());
    assert_eq!(c.exit_code(), 1);
    let regressions = rows_with(&c, Verdict::Regression);
    assert!(
        regressions.iter().all(|r| r.ends_with("latency")),
        "{regressions:?}"
    );
    assert!(regressions.iter().any(|r| r.ends_with("p50 latency")));
}

#[test]
fn a_single_repeat_is_inconclusive_never_ok() {
    let mut single = fixtures::baseline();
    single["scenarios"]
        .as_array_mut()
        .expect("scenarios")
        .retain(|s| s["repeat"] == 0);
    let c = run(&single, &single, &CompareOptions::default());
    let noisy = [
        "p50 latency",
        "p99 latency",
        "server CPU/1k events",
        "server peak RSS",
    ];
    for r in &c.rows {
        if noisy.contains(&r.metric.as_str()) {
            assert_eq!(
                r.verdict,
                Verdict::Inconclusive,
                "{} {}",
                r.scenario,
                r.metric
            );
        } else {
            assert_eq!(
                r.verdict,
                Verdict::Ok,
                "exact metrics need one repeat: {} {}",
                r.scenario,
                r.metric
            );
        }
    }
    assert_eq!(c.exit_code(), 0, "inconclusive does not fail by default");
    let strict = CompareOptions {
        strict: true,
        ..CompareOptions::default()
    };
    assert_eq!(
        run(&single, &single, &strict).exit_code(),
        1,
        "--strict fails on inconclusive"
    );
    assert!(markdown(&c).contains("*inconclusive*"));
}

#[test]
fn missed_events_appearing_fail_the_gate() {
    let base = fixtures::baseline();
    let mut cand = base.clone();
    for s in scenarios_mut(&mut cand).filter(|s| s["transport"] == "sse") {
        s["events"]["missed"] = Value::from(2);
    }
    let c = run(&base, &cand, &CompareOptions::default());
    assert_eq!(c.exit_code(), 1);
    assert!(rows_with(&c, Verdict::Regression)
        .iter()
        .all(|r| r.starts_with("sse-") && r.ends_with("missed events")));
}

#[test]
fn scenarios_match_by_parameters_not_by_name_or_order() {
    let base = fixtures::baseline();
    let mut cand = base.clone();
    let list = cand["scenarios"].as_array_mut().expect("scenarios");
    list.reverse();
    for s in list.iter_mut() {
        s["name"] = Value::from(format!(
            "renamed-{}",
            s["name"].as_str().unwrap_or_default()
        ));
    }
    // A scenario only the candidate has is shown, not judged.
    let mut extra = list[0].clone();
    extra["params"]["clients"] = Value::from(1000);
    list.push(extra);
    let c = run(&base, &cand, &CompareOptions::default());
    assert_eq!(c.exit_code(), 0);
    assert_eq!(rows_with(&c, Verdict::OnlyCandidate).len(), 1);
    assert!(rows_with(&c, Verdict::Regression).is_empty());
}

#[test]
fn files_with_nothing_in_common_are_an_input_error() {
    let base = fixtures::baseline();
    let mut other = base.clone();
    for s in scenarios_mut(&mut other) {
        s["params"]["payload_bytes"] = Value::from(4096);
    }
    let b = Dataset::new("baseline", util::parse(&base));
    let c = Dataset::new("candidate", util::parse(&other));
    let err = compare(&b, &c, &CompareOptions::default()).expect_err("nothing to compare");
    assert!(err.to_string().contains("no scenario"), "{err}");
}

#[test]
fn outputs_follow_their_formats() {
    let base = fixtures::baseline();
    let mut cand = base.clone();
    for s in scenarios_mut(&mut cand).filter(|s| s["transport"] == "ws") {
        scale_bytes_down(s, 1.05);
    }
    let c = run(&base, &cand, &CompareOptions::default());

    let md = markdown(&c);
    assert!(md.contains("| scenario | metric | baseline | candidate | change | verdict |"));
    assert!(md.contains("**regression**"));
    assert!(md.contains("+5.0%"));

    let gab = github_action_benchmark(&c);
    let entries = gab.as_array().expect("an array");
    assert_eq!(entries.len(), c.rows.len());
    for e in entries {
        assert!(
            e["name"].is_string() && e["unit"].is_string() && e["value"].is_number(),
            "{e}"
        );
    }
    assert!(entries
        .iter()
        .any(|e| e["name"] == "ws-c100-r10-s64 / p99 latency" && e["unit"] == "us"));

    let bmf = bencher_bmf(&c);
    let ws = &bmf["ws-c100-r10-s64"];
    for measure in [
        "bytes-per-event-down",
        "latency-p50-us",
        "latency-p99-us",
        "server-rss-peak-bytes",
    ] {
        let m = &ws[measure];
        assert!(m["value"].is_number(), "{measure}: {m}");
        assert!(m["lower_value"].as_f64() <= m["value"].as_f64());
        assert!(m["upper_value"].as_f64() >= m["value"].as_f64());
    }
    assert!(bmf
        .as_object()
        .expect("object")
        .keys()
        .all(|k| k.len() <= 1024));
    assert!(ws
        .as_object()
        .expect("object")
        .keys()
        .all(|k| k.len() <= 64));
    let _ = Transport::Ws;
}
