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
capacity lies in between. A short-poll transport is judged on each term plus its poll \
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

/// The bracket's width as a share of the last pass, e.g. `+41%`; `–` with an open end.
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

/// The "Capacity" table of a dataset, if it has a capacity.
pub fn table(dataset: &Dataset) -> Option<Table> {
    let c = of(dataset)?;
    let unit = c.vary.unit();
    let rows = c
        .transports
        .iter()
        .map(|t| {
            vec![
                t.label.clone(),
                end(t.last_pass),
                end(t.first_fail),
                uncertainty(t),
                why(t),
                t.stop.as_str().to_string(),
                t.probes.len().to_string(),
                t.runs.to_string(),
            ]
        })
        .collect();
    let (pass, fail) = match unit {
        "clients" => ("last pass (clients)", "first fail (clients)"),
        _ => ("last pass (events/s)", "first fail (events/s)"),
    };
    Some(Table {
        headings: vec![
            "transport",
            pass,
            fail,
            "bracket",
            WHY_HEADING,
            STOP_HEADING,
            "probes",
            "runs",
        ],
        rows,
    })
}

/// The heading of the column of reasons (words, left-aligned).
pub const WHY_HEADING: &str = "first fail because";
/// The heading of the column of stop reasons (words, left-aligned).
pub const STOP_HEADING: &str = "stop";

/// One line above the table: the SLO, how it was searched, and what it spent.
pub fn describe(c: &Capacity) -> String {
    let how = match c.method {
        feedbench_results::Method::Search => {
            let runs = match c.repeats {
                1 => "1 run per probe".to_string(),
                n => format!("{n} runs per probe, every one must pass"),
            };
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
