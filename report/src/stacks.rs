//! Protocol stacks (TLS, HTTP/2): when the report shows them, each group's bytes per event
//! by protocol layer, and the "Protocol stacks" table of `summary.md` and `index.html`.
//!
//! The load generator splits a scenario's window bytes into payload, transport framing,
//! HTTP/2 framing and HPACK, TLS records and TLS handshakes (`StackFigures.split`, whose
//! layers sum to the socket bytes exactly). The report shows the split only where it
//! tells something: when some scenario has a split and the file holds more than one stack
//! or any stack other than plaintext HTTP/1.1 ([`shown`]). A plaintext HTTP/1.1 run, and
//! every file written before stacks were recorded, renders exactly as before.

use feedbench_results::{LayersPer, ScenarioResult};

use crate::format;
use crate::group::{Dataset, Group, Spread, Stack};
use crate::table::Table;

/// A layer of the split: its name for legends and headings and its figure per event.
#[derive(Clone, Copy)]
pub struct Layer {
    /// The name in legends and table headings.
    pub name: &'static str,
    /// The layer's share of a per-event split.
    pub of: fn(&LayersPer) -> f64,
}

/// The five layers, bottom of a bar first.
pub const LAYERS: [Layer; 5] = [
    Layer {
        name: "payload",
        of: |l| l.payload,
    },
    Layer {
        name: "framing",
        of: |l| l.framing,
    },
    Layer {
        name: "HTTP/2 frames",
        of: |l| l.h2,
    },
    Layer {
        name: "TLS records",
        of: |l| l.tls,
    },
    Layer {
        name: "TLS handshakes",
        of: |l| l.handshake,
    },
];

/// Whether a group's repeats carry the byte split.
pub fn has_split(group: &Group) -> bool {
    group.usable().any(|s| s.stack.is_some())
}

/// Whether the report shows protocol stacks for these datasets: some group has a byte
/// split, and the groups with one span more than one stack or any stack other than
/// plaintext HTTP/1.1.
pub fn shown(datasets: &[Dataset]) -> bool {
    let mut stacks: Vec<Stack> = datasets
        .iter()
        .flat_map(|d| d.groups.iter())
        .filter(|g| has_split(g))
        .map(|g| g.key.load.stack)
        .collect();
    stacks.sort();
    stacks.dedup();
    stacks.len() > 1 || stacks.iter().any(|s| !s.is_plain())
}

/// A group's bytes per delivered event by layer, both directions: each layer the median
/// over the usable repeats that have a split, with the spread of their totals.
pub fn layers_per_event(group: &Group) -> Option<(LayersPer, Spread)> {
    let splits: Vec<LayersPer> = group
        .usable()
        .filter_map(ScenarioResult::split_per_event)
        .collect();
    let total = Spread::of(splits.iter().map(LayersPer::sum))?;
    let median =
        |layer: &Layer| Spread::of(splits.iter().map(|l| (layer.of)(l))).map_or(0.0, |s| s.median);
    let [payload, framing, h2, tls, handshake] = LAYERS.map(|l| median(&l));
    Some((
        LayersPer {
            payload,
            framing,
            h2,
            tls,
            handshake,
        },
        total,
    ))
}

/// The median of a metric over a group's usable repeats.
pub fn median(group: &Group, metric: impl Fn(&ScenarioResult) -> Option<f64>) -> Option<f64> {
    group.spread(metric).map(|s| s.median)
}

/// The "Protocol stacks" table's headings.
pub const HEADINGS: [&str; 17] = [
    "transport",
    "stack",
    "load",
    "TLS version",
    "cipher suite",
    "ALPN",
    "bytes/event",
    "payload",
    "framing",
    "HTTP/2 frames",
    "TLS records",
    "TLS handshakes",
    "handshakes/1k events",
    "resumed",
    "server CPU/1k events",
    "p50 latency",
    "p99 latency",
];

/// The sentence above the table: what its figures are.
pub const TABLE_NOTE: &str = "Bytes per delivered event in both directions, medians over \
     repeats; payload, framing (HTTP/1.1 heads, ws frame headers, SSE fields, the poll \
     envelope), HTTP/2 frames (frame headers, HPACK, control frames), TLS records (record \
     headers and tags) and TLS handshakes (with session tickets and alerts) add up to \
     bytes/event in each repeat. Handshakes are those completed inside the window.";

/// The "Protocol stacks" table of a dataset: a row per group with a byte split, in group
/// order (transport, then load, then stack); `None` when [`shown`] says no.
pub fn table(dataset: &Dataset) -> Option<Table> {
    if !shown(std::slice::from_ref(dataset)) {
        return None;
    }
    let rows = dataset
        .groups
        .iter()
        .filter(|g| has_split(g))
        .map(row)
        .collect();
    Some(Table {
        headings: HEADINGS.to_vec(),
        rows,
    })
}

/// One group's row.
fn row(g: &Group) -> Vec<String> {
    let figures = g.usable().find_map(|s| s.stack.as_ref());
    let text = |f: fn(&feedbench_results::StackFigures) -> Option<&String>| {
        figures
            .and_then(f)
            .cloned()
            .unwrap_or_else(|| "–".to_string())
    };
    let dash = || "–".to_string();
    let layers = layers_per_event(g).map(|(l, _)| l);
    let mut cells = vec![
        g.key.variant.label(),
        g.key.load.stack.label(),
        g.key.load.without_stack().describe(),
        text(|f| f.tls_version.as_ref()),
        text(|f| f.cipher_suite.as_ref()),
        text(|f| f.alpn.as_ref()),
        median(g, |s| Some(s.bytes.per_event)).map_or_else(dash, format::bytes),
    ];
    cells.extend(LAYERS.iter().map(|layer| {
        layers
            .as_ref()
            .map_or_else(dash, |l| format::bytes((layer.of)(l)))
    }));
    let tls = g.key.load.stack.tls;
    cells.extend([
        if tls {
            median(g, ScenarioResult::handshakes_per_event)
                .map_or_else(dash, |h| format::sig3(h * 1_000.0))
        } else {
            dash()
        },
        median(g, ScenarioResult::resumed_share).map_or_else(dash, format::percent),
        median(g, ScenarioResult::server_cpu_ms_per_1k_events)
            .map_or_else(dash, |v| format!("{} ms", format::sig3(v))),
        median(g, |s| Some(s.latency_us.p50 as f64)).map_or_else(dash, format::micros),
        median(g, |s| Some(s.latency_us.p99 as f64)).map_or_else(dash, format::micros),
    ]);
    cells
}
