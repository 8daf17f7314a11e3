//! The per-scenario table shared by `summary.md` and `index.html`: one row per scenario
//! key, medians over repeats; "–" where a figure is unknown (e.g. server memory per
//! connection in files written before the load generator measured it).
//!
//! A "clock ±" column follows the latency columns only when some group's latency carries a
//! clock uncertainty (the load generator and the server on different hosts, and a file that
//! records the clock estimate); a loopback run's table is the same as before the column
//! existed. Likewise the link columns ([`NET_HEADINGS`]) are appended only when some
//! scenario ran over an emulated link, and a "stack" column ([`STACK_HEADING`]) follows the
//! transport only when some scenario ran over a protocol stack other than plaintext
//! HTTP/1.1 (TLS, HTTP/2, shared HTTP/2 connections).

use crate::format;
use crate::group::{Dataset, Group, Spread};
use feedbench_results::model::deviation_with;
use feedbench_results::ScenarioResult;

/// Column headings, without the clock column.
const HEADINGS: [&str; 14] = [
    "transport",
    "clients",
    "rate",
    "payload",
    "repeats",
    "p50 latency",
    "p99 latency",
    "bytes/event",
    "overhead",
    "requests/event",
    "empty polls",
    "server CPU/1k events",
    "server peak RSS",
    "server memory/connection",
];

/// The clock column's heading: how far delivery latency may be off because the two clocks
/// could only be compared so well.
pub const CLOCK_HEADING: &str = "clock ±";

/// The columns added at the end when some scenario ran over an emulated link.
pub const NET_HEADINGS: [&str; 7] = [
    "link",
    "RTT measured",
    "IP bytes/event",
    "TCP retransmits",
    "drops loss/queue",
    "model latency",
    "vs model",
];

/// Where the clock column goes: right after "p99 latency".
const CLOCK_COLUMN: usize = 7;

/// The stack column's heading: the protocol stack a row's scenarios ran over (`TLS·h2`).
pub const STACK_HEADING: &str = "stack";

/// Where the stack column goes: right after the transport.
const STACK_COLUMN: usize = 1;

/// A dataset's table: headings and one row of formatted cells per group.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column headings.
    pub headings: Vec<&'static str>,
    /// One row per group, as many cells as headings.
    pub rows: Vec<Vec<String>>,
}

/// Headings of columns that hold words, after the first (the transport): the stack, and
/// the "Protocol stacks" table's load and negotiated TLS parameters.
const TEXT_HEADINGS: [&str; 8] = [
    STACK_HEADING,
    "load",
    "TLS version",
    "cipher suite",
    "ALPN",
    crate::capacity::WHY_HEADING,
    crate::capacity::STOP_HEADING,
    crate::capacity::MIXED_HEADING,
];

impl Table {
    /// Whether a column holds numbers (right-aligned): all but the first and the columns of
    /// words (the stack, the load, and the negotiated TLS version, cipher suite and ALPN).
    pub fn is_numeric(&self, column: usize) -> bool {
        column >= 1
            && self
                .headings
                .get(column)
                .is_none_or(|h| !TEXT_HEADINGS.contains(h))
    }
}

/// The table for a dataset.
pub fn table(dataset: &Dataset) -> Table {
    let loopback = dataset.target_is_loopback();
    let clock: Vec<Option<f64>> = dataset
        .groups
        .iter()
        .map(|g| g.clock_uncertainty_us(loopback))
        .collect();
    let with_clock = clock.iter().any(Option::is_some);
    let with_net = dataset.groups.iter().any(|g| g.key.load.link.is_some());
    let with_stack = dataset.groups.iter().any(|g| !g.key.load.stack.is_plain());
    let mut headings = HEADINGS.to_vec();
    if with_clock {
        headings.insert(CLOCK_COLUMN, CLOCK_HEADING);
    }
    if with_net {
        headings.extend(NET_HEADINGS);
    }
    if with_stack {
        headings.insert(STACK_COLUMN, STACK_HEADING);
    }
    let rows = dataset
        .groups
        .iter()
        .zip(clock)
        .map(|(g, clock_us)| {
            let mut cells = row(g).to_vec();
            if with_clock {
                let clock_cell = clock_us.map_or_else(|| "–".to_string(), format::micros);
                cells.insert(CLOCK_COLUMN, clock_cell);
            }
            if with_net {
                cells.extend(net_cells(dataset, g));
            }
            if with_stack {
                cells.insert(STACK_COLUMN, g.key.load.stack.label());
            }
            cells
        })
        .collect();
    Table { headings, rows }
}

/// The link columns of a group: its spec, measured RTT, IP figures and the model's
/// latency (p50; the mean for short-poll, as [`deviation_with`] judges it) with the
/// measurement's deviation from it. "–" on loopback and where the file lacks a figure.
fn net_cells(dataset: &Dataset, g: &Group) -> [String; 7] {
    let Some(link) = g.key.load.link else {
        return std::array::from_fn(|_| "–".to_string());
    };
    let base_ms = dataset.model_base_latency_ms(&g.key).unwrap_or(0.0);
    let check = |s: &ScenarioResult| deviation_with(s, base_ms);
    let model = match (
        g.spread(|s| check(s).map(|c| c.model)),
        g.usable().find_map(check),
    ) {
        (Some(m), Some(c)) => format!("{} {}", format::micros(m.median * 1e3), short(c.metric)),
        _ => "–".to_string(),
    };
    let drops = match (
        g.spread(|s| {
            s.net
                .as_ref()
                .map(|n| (n.down.drops_loss + n.up.drops_loss) as f64)
        }),
        g.spread(|s| {
            s.net
                .as_ref()
                .map(|n| (n.down.drops_queue + n.up.drops_queue) as f64)
        }),
    ) {
        (Some(loss), Some(queue)) => format!(
            "{}/{}",
            format::sig3(loss.median),
            format::sig3(queue.median)
        ),
        _ => "–".to_string(),
    };
    [
        link.spec().to_string(),
        cell(
            g,
            |s| Some(s.net.as_ref()?.rtt_measured_ms?.p50 * 1e3),
            format::micros,
        ),
        cell(g, ScenarioResult::ip_bytes_per_event, format::bytes),
        cell(g, |s| s.tcp_retransmits().map(|n| n as f64), format::sig3),
        drops,
        model,
        // A ratio to a zero model (an RTT of 0 with no loopback run to take L0 from) says
        // nothing: "–" rather than a made-up 0%.
        cell(
            g,
            |s| {
                check(s)
                    .filter(|c| c.model > 0.0)
                    .map(|c| c.deviation_ratio)
            },
            signed_percent,
        ),
    ]
}

/// `p50` or `mean`, from a check's metric.
fn short(metric: &str) -> &str {
    metric.split(' ').next().unwrap_or(metric)
}

/// A ratio as a signed percentage: `+2.0%`, `-13%`.
fn signed_percent(ratio: f64) -> String {
    let sign = if ratio >= 0.0 { "+" } else { "" };
    format!("{sign}{}", format::percent(ratio))
}

fn cell(
    group: &Group,
    metric: impl Fn(&ScenarioResult) -> Option<f64>,
    fmt: impl Fn(f64) -> String,
) -> String {
    match group.spread(metric) {
        Some(Spread { median, .. }) => fmt(median),
        None => "–".to_string(),
    }
}

fn row(g: &Group) -> [String; 14] {
    let polling = g.key.variant.transport.is_polling();
    let usable = g.usable().count();
    let repeats = if usable == g.repeats.len() {
        usable.to_string()
    } else {
        format!("{usable} of {}", g.repeats.len())
    };
    [
        g.key.variant.label(),
        format::thousands(g.key.load.clients),
        format::rate(g.key.load.rate_hz()),
        format!("{} B", g.key.load.payload_bytes),
        repeats,
        cell(g, |s| Some(s.latency_us.p50 as f64), format::micros),
        cell(g, |s| Some(s.latency_us.p99 as f64), format::micros),
        cell(g, |s| Some(s.bytes.per_event), format::bytes),
        cell(g, |s| Some(s.bytes.overhead_ratio), format::percent),
        if polling {
            cell(g, |s| Some(s.requests.per_event), format::sig3)
        } else {
            "–".to_string()
        },
        if polling {
            cell(g, ScenarioResult::empty_poll_share, format::percent)
        } else {
            "–".to_string()
        },
        cell(g, ScenarioResult::server_cpu_ms_per_1k_events, |v| {
            format!("{} ms", format::sig3(v))
        }),
        cell(
            g,
            |s| s.server.as_ref().map(|v| v.rss_peak_bytes as f64),
            format::bytes,
        ),
        cell(
            g,
            ScenarioResult::server_memory_per_connection,
            format::bytes,
        ),
    ]
}
