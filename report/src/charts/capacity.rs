//! Chart 9: capacity per transport, the bracket as an error bar.
//!
//! Drawn for files with a capacity ([`crate::capacity::of`]: a `feedbench find` output, or
//! a suite's p99-limit steps). One figure per kind of answer (what varied and the SLO); in
//! a figure, a row per dataset, and in a row a bar per transport whose height is the last
//! value that passed, with a whisker up to the first that failed: the capacity lies inside
//! the whisker. A confirmed answer draws its confirmed ends instead (every run passes at
//! the bar, every run fails at the whisker's top). A transport that never failed has no whisker (its capacity is at least the
//! bar); one that failed at the smallest value has no bar, only the whisker from 0. Every
//! row shares one vertical scale.

use feedbench_results::{Capacity, TransportCapacity};

use crate::capacity;
use crate::charts::panel::{Bar, BarPanel, Figure, LegendEntry, Mark, Panel};
use crate::charts::{panel_caption, style, ChartFigure, ChartKind, NO_DATA};
use crate::group::{Dataset, Spread, Variant};

/// The bar of one transport: the answer's low end (the last pass, or where every run
/// passed when confirmed), with a whisker up to its high end.
pub fn bar(t: &TransportCapacity, all: &[Variant]) -> Bar {
    let (low, high) = t.interval();
    let pass = low.unwrap_or(0) as f64;
    let total = match high {
        Some(fail) => Spread {
            median: pass,
            min: pass,
            max: fail as f64,
            n: 2,
        },
        None => Spread {
            median: pass,
            min: pass,
            max: pass,
            n: 1,
        },
    };
    Bar {
        label: t.label.clone(),
        stack: vec![pass],
        total,
        color: style::variant_color(&variant(t), all),
    }
}

/// A transport's legend entry (its poll interval for short-poll).
fn variant(t: &TransportCapacity) -> Variant {
    Variant {
        transport: t.transport,
        poll_interval_ms: t.poll_interval_ms,
        keepalive: true,
    }
}

/// What makes answers comparable on one chart: what varied and the SLO.
fn kind_of(c: &Capacity) -> (String, String) {
    (c.vary.unit().to_string(), c.slo_text())
}

/// Plans one figure per kind of answer found in the datasets.
pub fn figures(datasets: &[Dataset]) -> Vec<ChartFigure> {
    let capacities: Vec<Option<Capacity>> = datasets.iter().map(capacity::of).collect();
    let mut kinds: Vec<(String, String)> = capacities.iter().flatten().map(kind_of).collect();
    kinds.sort();
    kinds.dedup();
    kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| figure(datasets, &capacities, kind, i))
        .collect()
}

/// The figure of one kind of answer.
fn figure(
    datasets: &[Dataset],
    capacities: &[Option<Capacity>],
    kind: &(String, String),
    index: usize,
) -> ChartFigure {
    let of_kind: Vec<Option<&Capacity>> = capacities
        .iter()
        .map(|c| c.as_ref().filter(|c| kind_of(c) == *kind))
        .collect();
    let mut variants: Vec<Variant> = of_kind
        .iter()
        .flatten()
        .flat_map(|c| c.transports.iter().map(variant))
        .collect();
    variants.sort();
    variants.dedup();
    let per_dataset: Vec<Vec<Bar>> = of_kind
        .iter()
        .map(|c| {
            c.map_or(Vec::new(), |c| {
                c.transports.iter().map(|t| bar(t, &variants)).collect()
            })
        })
        .collect();
    let y_max = per_dataset
        .iter()
        .flatten()
        .map(|b| b.total.max)
        .fold(0.0, f64::max)
        * 1.15;
    let (unit, slo) = kind;
    let confirmed = of_kind
        .iter()
        .flatten()
        .any(|c| capacity::confirm_runs(c).is_some());
    let caption = if confirmed {
        "bar: every run passes; whisker: up to where every run fails"
    } else {
        "bar: last pass; whisker: up to the first fail"
    };
    let rows = datasets
        .iter()
        .zip(&per_dataset)
        .map(|(dataset, bars)| {
            let panel = BarPanel {
                caption: panel_caption(dataset, datasets.len(), caption),
                y_desc: format!("capacity ({unit})"),
                y_max,
                segments: vec![(String::new(), style::PAYLOAD_COLOR)],
                bars: bars.clone(),
                empty_note: NO_DATA.to_string(),
            };
            vec![(2, Panel::Bars(panel))]
        })
        .collect();
    let legend = variants
        .iter()
        .map(|v| LegendEntry {
            label: v.label(),
            color: style::variant_color(v, &variants),
            mark: Mark::Swatch,
        })
        .collect();
    let stem = match index {
        0 => format!("capacity-{}", slug(unit)),
        n => format!("capacity-{}-{}", slug(unit), n + 1),
    };
    ChartFigure {
        kind: ChartKind::Capacity,
        stem,
        figure: Figure {
            title: format!("Capacity per transport: most {unit} within {slo}"),
            rows,
            legend,
        },
    }
}

/// `clients` or `rate` for file names.
fn slug(unit: &str) -> &'static str {
    if unit == "clients" {
        "clients"
    } else {
        "rate"
    }
}
