//! Chart 3: wire bytes per delivered event per transport, split into payload and protocol
//! overhead, with the setup cost per connection shown apart.
//!
//! One figure per load point; a bar per variant stacks the medians over repeats of
//! payload, overhead down and bytes up per event, with a min–max whisker on the total.
//! The right panel shows setup bytes (connect, handshake, first poll) per connection.

use plotters::style::RGBColor;

use crate::charts::panel::{Bar, BarPanel, Figure, LegendEntry, Mark, Panel};
use crate::charts::{
    all_loads, all_variants, groups_for, panel_caption, style, ChartFigure, ChartKind, NO_DATA,
};
use crate::group::{Dataset, Load, Spread, Variant};
use feedbench_results::ScenarioResult;

/// Segment colours: payload, overhead down, bytes up.
const SEGMENTS: [(&str, RGBColor); 3] = [
    ("payload", RGBColor(170, 170, 170)),
    ("protocol overhead, down", RGBColor(69, 117, 180)),
    ("sent up (requests, acks)", RGBColor(244, 165, 130)),
];

/// Plans one figure per load point.
pub fn figures(datasets: &[Dataset]) -> Vec<ChartFigure> {
    let variants = all_variants(datasets);
    all_loads(datasets)
        .into_iter()
        .map(|load| {
            let steady: Vec<Vec<Bar>> = datasets
                .iter()
                .map(|d| bars(d, &variants, &load, steady_bar))
                .collect();
            let setup: Vec<Vec<Bar>> = datasets
                .iter()
                .map(|d| bars(d, &variants, &load, setup_bar))
                .collect();
            let top = |sets: &[Vec<Bar>]| {
                sets.iter()
                    .flatten()
                    .map(|b| b.total.max.max(b.stack.iter().sum()))
                    .fold(0.0, f64::max)
                    * 1.15
            };
            let (steady_top, setup_top) = (top(&steady), top(&setup));
            let drawn: Vec<&str> = setup.iter().flatten().map(|b| b.label.as_str()).collect();
            let mut legend: Vec<LegendEntry> = SEGMENTS
                .iter()
                .map(|(name, color)| LegendEntry {
                    label: name.to_string(),
                    color: *color,
                    mark: Mark::Swatch,
                })
                .collect();
            legend.extend(
                variants
                    .iter()
                    .filter(|v| drawn.contains(&v.label().as_str()))
                    .map(|v| LegendEntry {
                        label: format!("setup: {}", v.label()),
                        color: style::variant_color(v, &variants),
                        mark: Mark::Swatch,
                    }),
            );
            let rows = datasets
                .iter()
                .zip(steady.into_iter().zip(setup))
                .map(|(dataset, (steady, setup))| {
                    let left = BarPanel {
                        caption: panel_caption(
                            dataset,
                            datasets.len(),
                            "steady state, medians; whiskers min–max",
                        ),
                        y_desc: "bytes per delivered event (B)".to_string(),
                        y_max: steady_top,
                        segments: SEGMENTS.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
                        bars: steady,
                        empty_note: NO_DATA.to_string(),
                    };
                    let right = BarPanel {
                        caption: panel_caption(
                            dataset,
                            datasets.len(),
                            "setup, once per connection",
                        ),
                        y_desc: "setup bytes per connection (B)".to_string(),
                        y_max: setup_top,
                        segments: Vec::new(),
                        bars: setup,
                        empty_note: NO_DATA.to_string(),
                    };
                    vec![(3, Panel::Bars(left)), (2, Panel::Bars(right))]
                })
                .collect();
            ChartFigure {
                kind: ChartKind::BytesPerEvent,
                stem: format!("bytes-per-event-{}", load.slug()),
                figure: Figure {
                    title: format!("Wire bytes per delivered event at {}", load.describe()),
                    rows,
                    legend,
                },
            }
        })
        .collect()
}

/// One bar per variant measured at this load in the dataset.
fn bars(
    dataset: &Dataset,
    variants: &[Variant],
    load: &Load,
    make: fn(&[&ScenarioResult], &Variant, &[Variant]) -> Option<Bar>,
) -> Vec<Bar> {
    variants
        .iter()
        .flat_map(|v| {
            groups_for(dataset, v, |l| l == load)
                .into_iter()
                .map(move |g| (v, g))
        })
        .filter_map(|(v, g)| make(&g.usable().collect::<Vec<_>>(), v, variants))
        .collect()
}

/// The steady-state bar: payload, overhead down, up; whisker on the per-event total.
fn steady_bar(repeats: &[&ScenarioResult], variant: &Variant, all: &[Variant]) -> Option<Bar> {
    let median = |f: &dyn Fn(&ScenarioResult) -> Option<f64>| {
        Spread::of(repeats.iter().filter_map(|s| f(s))).map(|s| s.median)
    };
    let payload = median(&|s| s.payload_per_event())?;
    let down = median(&|s| Some(s.bytes.per_event_down))?;
    let up = median(&|s| Some(s.bytes.per_event_up))?;
    let total = Spread::of(repeats.iter().map(|s| s.bytes.per_event))?;
    Some(Bar {
        label: variant.label(),
        stack: vec![payload, (down - payload).max(0.0), up],
        total,
        color: style::variant_color(variant, all),
    })
}

/// The setup bar: setup bytes in both directions per opened connection.
fn setup_bar(repeats: &[&ScenarioResult], variant: &Variant, all: &[Variant]) -> Option<Bar> {
    let total = Spread::of(
        repeats
            .iter()
            .filter_map(|s| s.setup_bytes_per_connection()),
    )?;
    Some(Bar {
        label: variant.label(),
        stack: vec![total.median],
        total,
        color: style::variant_color(variant, all),
    })
}
