//! Chart 1: the delivery-latency percentile spectrum, one figure per load point.
//!
//! Each repeat's histogram is decoded from its `hdr` field and sampled at the same
//! percentiles; a line is the median over repeats at each percentile, with min–max
//! whiskers at 50%, 90%, 99%, 99.9% and 99.99%.

use crate::charts::panel::{Axis, Dash, Figure, LinePanel, Panel, Series, TickFormat};
use crate::charts::{
    all_loads, all_variants, groups_for, line_legend, panel_caption, style, ChartFigure, ChartKind,
    NO_DATA,
};
use crate::error::ReportError;
use crate::group::{Dataset, Group, Spread};
use crate::hdr;

/// Spectrum samples per decade of the x axis.
const POINTS_PER_DECADE: usize = 24;

/// x positions (`1 / (1 − q)`) that carry whiskers: 50%, 90%, 99%, 99.9%, 99.99%.
const WHISKER_XS: [f64; 5] = [2.0, 10.0, 100.0, 1_000.0, 10_000.0];

/// Plans one spectrum figure per load point.
pub fn figures(datasets: &[Dataset]) -> Result<Vec<ChartFigure>, ReportError> {
    let variants = all_variants(datasets);
    let mut out = Vec::new();
    for load in all_loads(datasets) {
        let mut panels = Vec::new();
        for dataset in datasets {
            let mut series = Vec::new();
            for variant in &variants {
                for group in groups_for(dataset, variant, |l| *l == load) {
                    let points = spectrum_over_repeats(group)?;
                    if points.is_empty() {
                        continue;
                    }
                    series.push(Series {
                        label: variant.label(),
                        color: style::variant_color(variant, &variants),
                        dash: Dash::Solid,
                        points,
                        dodge: 1.0,
                        whiskers_at: Some(WHISKER_XS.to_vec()),
                        markers: false,
                    });
                }
            }
            panels.push((dataset, series));
        }
        let y_values: Vec<f64> = panels
            .iter()
            .flat_map(|(_, s)| {
                s.iter()
                    .flat_map(|s| s.points.iter().flat_map(|(_, sp)| [sp.min, sp.max]))
            })
            .collect();
        let y = Axis::fitted(
            "delivery latency (log scale)",
            true,
            TickFormat::Micros,
            y_values,
        );
        let x = Axis {
            desc: "percentile (log scale of 1 / (1 − p))".to_string(),
            log: true,
            range: (1.0, hdr::x_of_quantile(hdr::MAX_QUANTILE)),
            ticks: TickFormat::Percentile,
            ticks_at: None,
        };
        let row: Vec<_> = panels
            .into_iter()
            .map(|(dataset, series)| {
                let panel = LinePanel {
                    marks: Vec::new(),
                    caption: panel_caption(
                        dataset,
                        datasets.len(),
                        "median of repeats, whiskers min–max",
                    ),
                    x: x.clone(),
                    y: y.clone(),
                    series,
                    empty_note: NO_DATA.to_string(),
                };
                (2, Panel::Lines(panel))
            })
            .collect();
        out.push(ChartFigure {
            kind: ChartKind::LatencySpectrum,
            stem: format!("latency-spectrum-{}", load.slug()),
            figure: {
                let rows = vec![row];
                Figure {
                    title: format!("Delivery latency by percentile at {}", load.describe()),
                    legend: line_legend(&variants, &rows, &[]),
                    rows,
                }
            },
        });
    }
    Ok(out)
}

/// Samples every usable repeat's spectrum and takes the spread at each percentile.
fn spectrum_over_repeats(group: &Group) -> Result<Vec<(f64, Spread)>, ReportError> {
    let mut per_repeat = Vec::new();
    for scenario in group.usable() {
        let hist = scenario
            .latency_us
            .histogram()
            .map_err(|e| ReportError::Histogram {
                scenario: format!("{} repeat {}", scenario.name, scenario.repeat),
                reason: e.to_string(),
            })?;
        let points = hdr::spectrum(&hist, POINTS_PER_DECADE);
        if !points.is_empty() {
            per_repeat.push(points);
        }
    }
    let Some(first) = per_repeat.first() else {
        return Ok(Vec::new());
    };
    // Every repeat is sampled at the same x positions, so index i is the same percentile.
    Ok(first
        .iter()
        .enumerate()
        .filter_map(|(i, (x, _))| {
            Spread::of(per_repeat.iter().filter_map(|r| r.get(i).map(|(_, v)| *v))).map(|s| (*x, s))
        })
        .collect())
}
