//! The regression gate: judges a candidate results file against a baseline.
//!
//! Scenarios are matched by [`ScenarioKey`] (transport and parameters, not names or
//! repeat indices), and only repeats that completed are judged. Two classes of metric:
//!
//! - **Exact** (bytes per event each way, requests per event, missed events) depend on
//!   the protocol and encoding, not on the machine. A change beyond `exact_tolerance` is a
//!   regression even with one repeat. The tolerance is widened only by the spread the
//!   repeats themselves show, which is zero for truly exact figures (ws, sse) and keeps
//!   timing-dependent batching (long-poll) from flapping.
//! - **Count** (the server's socket writes and reads, allocations and allocated bytes per
//!   delivered event) are counted, not timed, so a shared runner's noise barely moves
//!   them, but they are not protocol-exact: a few allocations and reads per window follow
//!   the clock (timers, the load generator's `/stats` samples), and batching under load
//!   folds several events into one write. A change fails when it exceeds a small floor
//!   (`count_tolerance`, 2%) plus both sides' half-ranges (the repeats' own spread), *and*
//!   moves the figure by more than `count_floor_per_event` (0.05 per event), so a count
//!   near zero (reads per event on a push transport: 0.007) cannot fail on a handful.
//!   Like noisy metrics they need [`CompareOptions::min_repeats`] repeats a side. One
//!   extra allocation or one extra write per delivered event is a +15% to +100% change
//!   of these figures (6.5 allocations, 1.0 write per SSE event): far outside.
//! - **Noisy** (p50 and p99 delivery latency, server CPU and context switches per event,
//!   peak RSS) are judged
//!   against the noise: the change of the medians must exceed the sum of both sides'
//!   half-ranges (relative to their medians) plus a minimum effect. With fewer than
//!   [`CompareOptions::min_repeats`] repeats on either side the verdict is `inconclusive`,
//!   never `ok`.
//!
//! Exit codes follow from the verdicts: 0 without regressions, 1 with any (or with any
//! inconclusive verdict under `--strict`). Input errors are `Err` and the CLI exits 2.

use std::fmt;

use crate::error::ReportError;
use crate::group::{Dataset, Group, ScenarioKey, Spread};
use feedbench_results::{ScenarioResult, Status};

/// How strict the gate is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompareOptions {
    /// Relative tolerance for exact metrics (0.01 = 1%).
    pub exact_tolerance: f64,
    /// Minimum effect for noisy medians: p50 latency, CPU, RSS (0.10 = 10%).
    pub min_effect_median: f64,
    /// Minimum effect for p99 latency (0.25 = 25%).
    pub min_effect_p99: f64,
    /// Treat `inconclusive` as failing.
    pub strict: bool,
    /// Repeats needed on each side to judge a noisy or count metric.
    pub min_repeats: usize,
    /// Relative floor for count metrics, on top of the repeats' spread (0.02 = 2%).
    pub count_tolerance: f64,
    /// Smallest absolute change per delivered event a count metric can fail on.
    pub count_floor_per_event: f64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            exact_tolerance: 0.01,
            min_effect_median: 0.10,
            min_effect_p99: 0.25,
            strict: false,
            min_repeats: 2,
            count_tolerance: 0.02,
            count_floor_per_event: 0.05,
        }
    }
}

/// Which class a metric belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricClass {
    /// Protocol-determined; tight tolerance.
    Exact,
    /// Counted per delivered event: the repeats' spread plus a small floor.
    Count,
    /// Timing-dependent median; judged against noise plus the median minimum effect.
    NoisyMedian,
    /// Timing-dependent tail; judged against noise plus the p99 minimum effect.
    NoisyTail,
}

/// A metric the gate judges. Smaller is better for all of them.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Stable identifier, used as the Bencher measure slug: `bytes-per-event-down`.
    pub id: &'static str,
    /// Name for people: `bytes/event down`.
    pub name: &'static str,
    /// Unit for github-action-benchmark.
    pub unit: &'static str,
    /// Exact or noisy.
    pub class: MetricClass,
    /// Only for the polling transports.
    pub polling_only: bool,
    /// The value of one repeat.
    pub value: fn(&ScenarioResult) -> Option<f64>,
    /// How a value is shown.
    pub show: fn(f64) -> String,
}

/// Every metric the gate judges, in table order.
pub const METRICS: [Metric; 13] = [
    Metric {
        id: "bytes-per-event-down",
        name: "bytes/event down",
        unit: "bytes",
        class: MetricClass::Exact,
        polling_only: false,
        value: |s| Some(s.bytes.per_event_down),
        show: show_bytes,
    },
    Metric {
        id: "bytes-per-event-up",
        name: "bytes/event up",
        unit: "bytes",
        class: MetricClass::Exact,
        polling_only: false,
        value: |s| Some(s.bytes.per_event_up),
        show: show_bytes,
    },
    Metric {
        id: "requests-per-event",
        name: "requests/event",
        unit: "requests",
        class: MetricClass::Exact,
        polling_only: true,
        value: |s| Some(s.requests.per_event),
        show: crate::format::sig3,
    },
    Metric {
        id: "missed-events",
        name: "missed events",
        unit: "events",
        class: MetricClass::Exact,
        polling_only: false,
        value: |s| Some(s.events.missed as f64),
        show: crate::format::sig3,
    },
    Metric {
        id: "latency-p50-us",
        name: "p50 latency",
        unit: "us",
        class: MetricClass::NoisyMedian,
        polling_only: false,
        value: |s| Some(s.latency_us.p50 as f64),
        show: crate::format::micros,
    },
    Metric {
        id: "latency-p99-us",
        name: "p99 latency",
        unit: "us",
        class: MetricClass::NoisyTail,
        polling_only: false,
        value: |s| Some(s.latency_us.p99 as f64),
        show: crate::format::micros,
    },
    Metric {
        id: "server-cpu-ms-per-1k-events",
        name: "server CPU/1k events",
        unit: "ms",
        class: MetricClass::NoisyMedian,
        polling_only: false,
        value: ScenarioResult::server_cpu_ms_per_1k_events,
        show: show_ms,
    },
    Metric {
        id: "server-rss-peak-bytes",
        name: "server peak RSS",
        unit: "bytes",
        class: MetricClass::NoisyMedian,
        polling_only: false,
        value: |s| s.server.as_ref().map(|v| v.rss_peak_bytes as f64),
        show: crate::format::bytes,
    },
    Metric {
        id: "server-socket-writes-per-event",
        name: "server socket writes/event",
        unit: "writes",
        class: MetricClass::Count,
        polling_only: false,
        value: |s| s.server_count_per_event(|c| c.socket_writes),
        show: crate::format::sig3,
    },
    Metric {
        id: "server-socket-reads-per-event",
        name: "server socket reads/event",
        unit: "reads",
        class: MetricClass::Count,
        polling_only: false,
        value: |s| s.server_count_per_event(|c| c.socket_reads),
        show: crate::format::sig3,
    },
    Metric {
        id: "server-allocations-per-event",
        name: "server allocations/event",
        unit: "allocations",
        class: MetricClass::Count,
        polling_only: false,
        value: |s| s.server_count_per_event(|c| c.allocations),
        show: crate::format::sig3,
    },
    Metric {
        id: "server-allocated-bytes-per-event",
        name: "server allocated bytes/event",
        unit: "bytes",
        class: MetricClass::Count,
        polling_only: false,
        value: |s| s.server_count_per_event(|c| c.allocated_bytes),
        show: show_bytes,
    },
    Metric {
        id: "server-context-switches-per-event",
        name: "server context switches/event",
        unit: "switches",
        // Counted, but each one is a thread going to sleep or being preempted: how often
        // that happens follows the timing (an A/A pair of runs read 0.59 and 0.82 per SSE
        // event), so it is judged against the noise like CPU time.
        class: MetricClass::NoisyMedian,
        polling_only: false,
        value: |s| s.server_count_per_event(|c| c.context_switches),
        show: crate::format::sig3,
    },
];

fn show_bytes(b: f64) -> String {
    format!("{} B", crate::format::sig3(b))
}

fn show_ms(ms: f64) -> String {
    format!("{} ms", crate::format::sig3(ms))
}

/// The gate's judgement of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Worse beyond tolerance or noise: fails the gate.
    Regression,
    /// Too few repeats to tell; fails only with `--strict`.
    Inconclusive,
    /// Better beyond tolerance or noise.
    Improved,
    /// Within tolerance or noise.
    Ok,
    /// Measured only in the baseline; shown, not judged.
    OnlyBaseline,
    /// Measured only in the candidate; shown, not judged.
    OnlyCandidate,
}

impl Verdict {
    /// The word shown in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Regression => "regression",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Improved => "improved",
            Verdict::Ok => "ok",
            Verdict::OnlyBaseline => "only in baseline",
            Verdict::OnlyCandidate => "only in candidate",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One judged (scenario, metric) pair.
#[derive(Debug, Clone)]
pub struct Row {
    /// Scenario name: `ws-c100-r10-s64`.
    pub scenario: String,
    /// Metric name for people, or `scenario` for whole-scenario rows.
    pub metric: String,
    /// The metric's id (Bencher slug); empty for whole-scenario rows.
    pub metric_id: &'static str,
    /// Unit for github-action-benchmark.
    pub unit: &'static str,
    /// Baseline repeats.
    pub baseline: Option<Spread>,
    /// Candidate repeats.
    pub candidate: Option<Spread>,
    /// Relative change of the medians, candidate / baseline − 1.
    pub change: Option<f64>,
    /// The judgement.
    pub verdict: Verdict,
    /// Why, in a few words: the threshold applied, or what was missing.
    pub reason: String,
    /// How values are shown.
    pub show: fn(f64) -> String,
}

/// The whole comparison.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Baseline label.
    pub baseline_label: String,
    /// Candidate label.
    pub candidate_label: String,
    /// The options used.
    pub options: CompareOptions,
    /// Every row, in scenario then metric order.
    pub rows: Vec<Row>,
}

impl Comparison {
    /// Rows with a given verdict.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.rows.iter().filter(|r| r.verdict == verdict).count()
    }

    /// Whether the gate fails.
    pub fn failed(&self) -> bool {
        self.count(Verdict::Regression) > 0
            || (self.options.strict && self.count(Verdict::Inconclusive) > 0)
    }

    /// The process exit code: 1 when the gate fails, else 0.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.failed())
    }
}

/// Relative change `c / b − 1`; zero over zero is no change, anything over zero is +∞.
fn relative_change(b: f64, c: f64) -> f64 {
    if b == 0.0 {
        if c == 0.0 {
            0.0
        } else {
            f64::INFINITY * c.signum()
        }
    } else {
        c / b - 1.0
    }
}

/// Half the range relative to the median (0 for a zero median).
fn half_range(s: &Spread) -> f64 {
    s.relative_range() / 2.0
}

/// Judges one metric from both sides' repeats.
fn judge(metric: &Metric, b: Spread, c: Spread, opts: &CompareOptions) -> (Verdict, String) {
    let change = relative_change(b.median, c.median);
    let (threshold, reason) = match metric.class {
        MetricClass::Exact => {
            // Exact figures are judged even with one repeat: they do not depend on timing.
            let spread = b.relative_range().max(c.relative_range());
            let t = opts.exact_tolerance.max(spread);
            let why = if spread > opts.exact_tolerance {
                format!("exact, ±{} (repeats' own spread)", pct(t))
            } else {
                format!("exact, ±{}", pct(t))
            };
            (t, why)
        }
        MetricClass::Count => {
            if b.n < opts.min_repeats || c.n < opts.min_repeats {
                return (
                    Verdict::Inconclusive,
                    format!(
                        "needs {} repeats on each side, has {} and {}",
                        opts.min_repeats, b.n, c.n
                    ),
                );
            }
            let noise = half_range(&b) + half_range(&c);
            let t = opts.count_tolerance + noise;
            let why = format!(
                "count, ±{} (spread {} + floor {}), and > {} per event",
                pct(t),
                pct(noise),
                pct(opts.count_tolerance),
                crate::format::sig3(opts.count_floor_per_event)
            );
            if (c.median - b.median).abs() <= opts.count_floor_per_event {
                return (Verdict::Ok, why);
            }
            (t, why)
        }
        MetricClass::NoisyMedian | MetricClass::NoisyTail => {
            if b.n < opts.min_repeats || c.n < opts.min_repeats {
                return (
                    Verdict::Inconclusive,
                    format!(
                        "needs {} repeats on each side, has {} and {}",
                        opts.min_repeats, b.n, c.n
                    ),
                );
            }
            let effect = if metric.class == MetricClass::NoisyTail {
                opts.min_effect_p99
            } else {
                opts.min_effect_median
            };
            let noise = half_range(&b) + half_range(&c);
            (
                noise + effect,
                format!("noise ±{} + effect {}", pct(noise), pct(effect)),
            )
        }
    };
    let verdict = if change > threshold {
        Verdict::Regression
    } else if change < -threshold {
        Verdict::Improved
    } else {
        Verdict::Ok
    };
    (verdict, reason)
}

/// `0.1` → `10%`.
fn pct(x: f64) -> String {
    format!("{}%", crate::format::sig3(x * 100.0))
}

/// Spread of a metric over a group's completed repeats.
fn complete_spread(group: &Group, metric: &Metric) -> Option<Spread> {
    Spread::of(group.complete().filter_map(|s| (metric.value)(s)))
}

/// Compares two datasets.
pub fn compare(
    baseline: &Dataset,
    candidate: &Dataset,
    opts: &CompareOptions,
) -> Result<Comparison, ReportError> {
    let mut keys: Vec<ScenarioKey> = baseline
        .groups
        .iter()
        .chain(&candidate.groups)
        .map(|g| g.key)
        .collect();
    keys.sort();
    keys.dedup();
    let matched = keys
        .iter()
        .filter(|k| baseline.group(k).is_some() && candidate.group(k).is_some())
        .count();
    if matched == 0 {
        return Err(ReportError::Input(format!(
            "no scenario of {} matches one of {} by transport and parameters",
            candidate.label, baseline.label
        )));
    }
    let mut rows = Vec::new();
    for key in &keys {
        match (baseline.group(key), candidate.group(key)) {
            (Some(b), Some(c)) => rows.extend(compare_group(baseline.short_name(key), b, c, opts)),
            (Some(_), None) => {
                rows.push(unmatched(baseline.short_name(key), Verdict::OnlyBaseline))
            }
            (None, Some(_)) => {
                rows.push(unmatched(candidate.short_name(key), Verdict::OnlyCandidate))
            }
            (None, None) => {}
        }
    }
    Ok(Comparison {
        baseline_label: baseline.label.clone(),
        candidate_label: candidate.label.clone(),
        options: *opts,
        rows,
    })
}

/// A whole-scenario row for a key measured on one side only.
fn unmatched(scenario: String, verdict: Verdict) -> Row {
    Row {
        scenario,
        metric: "scenario".to_string(),
        metric_id: "",
        unit: "",
        baseline: None,
        candidate: None,
        change: None,
        verdict,
        reason: "not measured on both sides".to_string(),
        show: crate::format::sig3,
    }
}

/// The rows of one matched scenario.
fn compare_group(scenario: String, b: &Group, c: &Group, opts: &CompareOptions) -> Vec<Row> {
    let mut rows = Vec::new();
    let incomplete = |g: &Group| {
        g.repeats
            .iter()
            .filter(|s| s.status != Status::Complete)
            .count()
    };
    let (b_bad, c_bad) = (incomplete(b), incomplete(c));
    if c_bad > b_bad {
        rows.push(Row {
            scenario: scenario.clone(),
            metric: "scenario".to_string(),
            metric_id: "",
            unit: "",
            baseline: None,
            candidate: None,
            change: None,
            verdict: Verdict::Regression,
            reason: format!(
                "{c_bad} of {} candidate repeats did not complete (baseline: {b_bad})",
                c.repeats.len()
            ),
            show: crate::format::sig3,
        });
    }
    let polling = b.key.variant.transport.is_polling();
    for metric in METRICS.iter().filter(|m| polling || !m.polling_only) {
        let (bs, cs) = (complete_spread(b, metric), complete_spread(c, metric));
        let (verdict, reason, change) = match (bs, cs) {
            (Some(bs), Some(cs)) => {
                let (v, why) = judge(metric, bs, cs, opts);
                (v, why, Some(relative_change(bs.median, cs.median)))
            }
            // A figure one side has and the other lacks (e.g. no /stats) cannot be judged.
            (None, None) => continue,
            _ => (
                Verdict::Inconclusive,
                "figure missing on one side".to_string(),
                None,
            ),
        };
        rows.push(Row {
            scenario: scenario.clone(),
            metric: metric.name.to_string(),
            metric_id: metric.id,
            unit: metric.unit,
            baseline: bs,
            candidate: cs,
            change,
            verdict,
            reason,
            show: metric.show,
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(values: &[f64]) -> Spread {
        Spread::of(values.iter().copied()).unwrap()
    }

    #[test]
    fn exact_metrics_use_the_tight_tolerance() {
        let m = &METRICS[0];
        let opts = CompareOptions::default();
        assert_eq!(
            judge(m, spread(&[106.0]), spread(&[106.0]), &opts).0,
            Verdict::Ok
        );
        assert_eq!(
            judge(m, spread(&[106.0]), spread(&[107.0]), &opts).0,
            Verdict::Ok
        );
        assert_eq!(
            judge(m, spread(&[106.0]), spread(&[111.3]), &opts).0,
            Verdict::Regression
        );
        assert_eq!(
            judge(m, spread(&[106.0]), spread(&[100.0]), &opts).0,
            Verdict::Improved
        );
    }

    #[test]
    fn missed_events_from_zero_are_a_regression() {
        let m = &METRICS[3];
        let opts = CompareOptions::default();
        assert_eq!(
            judge(m, spread(&[2.0, 2.0]), spread(&[2.0, 2.0]), &opts).0,
            Verdict::Ok
        );
        // Missing events in even one repeat, where the baseline missed none, is a regression.
        assert_eq!(
            judge(m, spread(&[0.0, 0.0]), spread(&[0.0, 3.0]), &opts).0,
            Verdict::Regression
        );
        assert_eq!(
            judge(m, spread(&[0.0, 0.0]), spread(&[3.0, 3.0]), &opts).0,
            Verdict::Regression
        );
    }

    fn metric(id: &str) -> &'static Metric {
        METRICS.iter().find(|m| m.id == id).unwrap()
    }

    #[test]
    fn counts_fail_beyond_their_spread_and_floor() {
        let m = metric("server-allocations-per-event");
        let opts = CompareOptions::default();
        let base = spread(&[6.50, 6.55, 6.60]);
        // One repeat a side is not enough.
        assert_eq!(
            judge(m, spread(&[6.5]), spread(&[7.5]), &opts).0,
            Verdict::Inconclusive
        );
        // Spread ±0.77% a side + 2% floor = 3.54%: 6.55 → 6.75 (+3.1%) is ok, → 6.85
        // (+4.6%) and one more allocation per event (+15%) are regressions.
        assert_eq!(
            judge(m, base, spread(&[6.70, 6.75, 6.80]), &opts).0,
            Verdict::Ok
        );
        assert_eq!(
            judge(m, base, spread(&[6.80, 6.85, 6.90]), &opts).0,
            Verdict::Regression
        );
        assert_eq!(
            judge(m, base, spread(&[7.50, 7.55, 7.60]), &opts).0,
            Verdict::Regression
        );
        assert_eq!(
            judge(m, base, spread(&[5.50, 5.55, 5.60]), &opts).0,
            Verdict::Improved
        );
        // Near zero, +43% is 0.003 per event: under the absolute floor.
        let reads = metric("server-socket-reads-per-event");
        assert_eq!(
            judge(
                reads,
                spread(&[0.007, 0.007]),
                spread(&[0.010, 0.010]),
                &opts
            )
            .0,
            Verdict::Ok
        );
    }

    #[test]
    fn noisy_metrics_need_repeats_and_a_real_effect() {
        let p50 = &METRICS[4];
        let opts = CompareOptions::default();
        assert_eq!(
            judge(p50, spread(&[100.0]), spread(&[500.0]), &opts).0,
            Verdict::Inconclusive
        );
        // ±10% noise each side + 10% effect = 30% threshold.
        let base = spread(&[90.0, 100.0, 110.0]);
        assert_eq!(
            judge(p50, base, spread(&[115.0, 125.0, 135.0]), &opts).0,
            Verdict::Ok
        );
        assert_eq!(
            judge(p50, base, spread(&[144.0, 160.0, 176.0]), &opts).0,
            Verdict::Regression
        );
        let p99 = &METRICS[5];
        // The same +60% is inside p99's wider 25% effect only when noise is large.
        assert_eq!(
            judge(p99, base, spread(&[144.0, 160.0, 176.0]), &opts).0,
            Verdict::Regression
        );
        assert_eq!(
            judge(p99, base, spread(&[126.0, 140.0, 154.0]), &opts).0,
            Verdict::Ok
        );
    }
}

/// Parses a percentage for the CLI: `1%`, `1` and `0.5%` mean 1%, 1% and 0.5%; returns
/// the fraction (0.01).
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%').trim();
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a percentage (like 1% or 2.5%)"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("{text:?} must be a percentage of zero or more"));
    }
    Ok(value / 100.0)
}

/// Loads one side of a comparison: a results file, or a directory whose runs
/// (`results.json` in it and in its subdirectories) are pooled as further repeats, as
/// `scripts/ci-regression.sh` does with interleaved rounds.
pub fn load_side(path: &std::path::Path) -> Result<Dataset, ReportError> {
    let label = crate::group::default_label(path);
    if !path.is_dir() {
        return Ok(Dataset::new(label, feedbench_results::Results::load(path)?));
    }
    let mut files = Vec::new();
    let direct = path.join("results.json");
    if direct.is_file() {
        files.push(direct);
    }
    let entries = std::fs::read_dir(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let nested = entry.path().join("results.json");
        if nested.is_file() {
            files.push(nested);
        }
    }
    files.sort();
    let mut files = files.into_iter();
    let first = files.next().ok_or_else(|| {
        ReportError::Input(format!(
            "{} holds no results.json (nor do its subdirectories)",
            path.display()
        ))
    })?;
    let mut dataset = Dataset::new(label, feedbench_results::Results::load(&first)?);
    for file in files {
        dataset.merge(feedbench_results::Results::load(&file)?);
    }
    Ok(dataset)
}

#[cfg(test)]
mod percent_tests {
    use super::parse_percent;

    #[test]
    fn percentages_parse_with_or_without_the_sign() {
        assert_eq!(parse_percent("1%"), Ok(0.01));
        assert_eq!(parse_percent("25"), Ok(0.25));
        assert_eq!(parse_percent(" 0.5 % "), Ok(0.005));
        assert!(parse_percent("-1%").is_err());
        assert!(parse_percent("lots").is_err());
    }
}
