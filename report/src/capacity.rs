//! Capacity: the largest client count (or event rate) each transport sustains within an
//! SLO, as `feedbench find` bracketed it, for the capacity chart and the "Capacity" table.
//!
//! A file from `feedbench find` carries the answer in its `capacity` field. A suite run
//! with a `p99_limit` (the connections suite) reads as the same thing: its steps are the
//! probes and p99 the only SLO term ([`Capacity::from_p99_limit`]). Other files have no
//! capacity and render exactly as before.

use feedbench_results::{Capacity, TransportCapacity};

use crate::format;
use crate::group::Dataset;
use crate::table::Table;

/// What the table says before its rows.
pub const TABLE_NOTE: &str = "The largest value that passed (every run of its probe within \
every SLO term, and, for feedbench find, no event missed) and the smallest that failed: the \
capacity lies in between. When feedbench find confirmed its answer (--confirm N), the ends \
are where every one of N runs passed and where every one failed, found by stepping out from \
the bracket while runs disagree; the values in between whose runs disagreed are listed as \
mixed: near its capacity a server passes some runs and fails others, and the interval holds \
that band. A short-poll transport is judged on each term plus its poll \
interval. Stop says why the search ended: converged (the bracket as narrow as asked), \
max_reached (passed at the largest value allowed), fails_at_minimum, run_budget or \
time_budget (the next probe would not fit), client_limit (the load generator's descriptors \
or ports), aborted.";

/// The dataset's capacity: its `capacity` field, else its `p99_limit` steps read as one.
pub fn of(dataset: &Dataset) -> Option<Capacity> {
    let r = &dataset.results;
    r.capacity
        .clone()
        .or_else(|| r.p99_limit.as_ref().map(Capacity::from_p99_limit))
        .filter(|c| !c.transports.is_empty())
}

/// `≥ 4,000`, `4,000`, or `–` for a bracket end.
fn end(value: Option<u64>) -> String {
    value.map_or("–".to_string(), format::thousands)
}

/// The interval's width as a share of its low end, e.g. `+41%`; `–` with an open end.
fn uncertainty(t: &TransportCapacity) -> String {
    t.relative_uncertainty()
        .map_or("–".to_string(), |u| format!("+{:.0}%", u * 100.0))
}

/// Why the first fail failed, or the client-side limit that stopped the search.
fn why(t: &TransportCapacity) -> String {
    let mut parts: Vec<String> = t.first_fail_reasons.iter().map(|r| r.describe()).collect();
    if let Some(limit) = &t.client_limit {
        parts.push(format!("client-side limit: {limit}"));
    }
    if parts.is_empty() {
        "–".to_string()
    } else {
        parts.join("; ")
    }
}

/// The runs each end of a confirmed answer needed, if the capacity was confirmed.
pub fn confirm_runs(c: &Capacity) -> Option<u32> {
    c.transports
        .iter()
        .find_map(|t| t.confirmed.as_ref().map(|x| x.runs))
}

/// The values whose runs disagreed, e.g. `4,757 (3/5), 5,657 (1/5)`; `–` if none.
fn mixed(t: &TransportCapacity) -> String {
    let Some(c) = &t.confirmed else {
        return "–".to_string();
    };
    if c.mixed.is_empty() {
        return "–".to_string();
    }
    c.mixed
        .iter()
        .map(|m| format!("{} ({}/{})", format::thousands(m.value), m.passed, m.runs))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The "Capacity" table of a dataset, if it has a capacity. A confirmed answer's ends are
/// where every run passed and where every run failed, with the values in between whose
/// runs disagreed; otherwise the ends are the bracket's last pass and first fail.
pub fn table(dataset: &Dataset) -> Option<Table> {
    let c = of(dataset)?;
    let unit = c.vary.unit();
    let confirmed = confirm_runs(&c);
    let rows = c
        .transports
        .iter()
        .map(|t| {
            let (low, high) = t.interval();
            let mut row = vec![t.label.clone(), end(low), end(high), uncertainty(t)];
            if confirmed.is_some() {
                row.push(mixed(t));
            }
            row.extend([
                why(t),
                t.confirmed
                    .as_ref()
                    .filter(|x| x.stop != feedbench_results::Stop::Converged)
                    .map_or(t.stop.as_str().to_string(), |x| {
                        format!("{} (confirming: {})", t.stop.as_str(), x.stop.as_str())
                    }),
                t.probes.len().to_string(),
                t.runs.to_string(),
            ]);
            row
        })
        .collect();
    let clients = unit == "clients";
    let mut headings: Vec<&'static str> = match (confirmed.is_some(), clients) {
        (true, true) => vec![
            "transport",
            "every run passes (clients)",
            "every run fails (clients)",
            "interval",
            MIXED_HEADING,
        ],
        (true, false) => vec![
            "transport",
            "every run passes (events/s)",
            "every run fails (events/s)",
            "interval",
            MIXED_HEADING,
        ],
        (false, true) => vec![
            "transport",
            "last pass (clients)",
            "first fail (clients)",
            "bracket",
        ],
        (false, false) => vec![
            "transport",
            "last pass (events/s)",
            "first fail (events/s)",
            "bracket",
        ],
    };
    headings.extend([WHY_HEADING, STOP_HEADING, "probes", "runs"]);
    Some(Table { headings, rows })
}

/// The heading of the column of reasons (words, left-aligned).
pub const WHY_HEADING: &str = "first fail because";
/// The heading of the column of values whose runs disagreed (words, left-aligned).
pub const MIXED_HEADING: &str = "mixed (passed/runs)";
/// The heading of the column of stop reasons (words, left-aligned).
pub const STOP_HEADING: &str = "stop";

/// One line above the table: the SLO, how it was searched, and what it spent.
pub fn describe(c: &Capacity) -> String {
    let how = match c.method {
        feedbench_results::Method::Search => {
            let mut runs = match c.repeats {
                1 => "1 run per probe".to_string(),
                n => format!("{n} runs per probe, every one must pass"),
            };
            if let Some(k) = confirm_runs(c) {
                runs.push_str(&format!(
                    "; then each end confirmed by {k} runs alike, stepping out while they \
                     disagree"
                ));
            }
            let spent = c.budget.as_ref().map_or(String::new(), |b| {
                format!(
                    "; {} runs in {:.0} s (budget {} runs per transport, {:.0} s in all)",
                    b.runs_used, b.time_used_s, b.max_runs, b.max_time_s
                )
            });
            format!("found by feedbench find ({runs}{spent})")
        }
        feedbench_results::Method::Steps => "read from the suite's steps".to_string(),
    };
    format!("{} within {}, {how}.", c.vary.unit(), c.slo_text())
}
