//! Chart 8: bytes per delivered event by protocol layer, a bar per transport and protocol
//! stack, so one transport over HTTP/1.1 and HTTP/2, plaintext and TLS, stands side by side.
//!
//! One figure per load point apart from the stack (clients, rate, payload, link), drawn only
//! when [`stacks::shown`] says the runs have stacks to compare. In a figure, a row per
//! dataset and a panel per variant (transport, interval, keep-alive); in a panel a bar per
//! stack, which stacks the medians over repeats of payload, framing, HTTP/2 frames, TLS
//! records and TLS handshakes per delivered event (both directions), with a min–max whisker
//! on the total. Every panel shares one vertical scale.

use std::collections::BTreeSet;

use plotters::style::RGBColor;

use crate::charts::panel::{Bar, BarPanel, Figure, LegendEntry, Mark, Panel};
use crate::charts::{all_variants, panel_caption, style, ChartFigure, ChartKind, NO_DATA};
use crate::group::{Dataset, Load, Variant};
use crate::stacks::{self, layers_per_event, LAYERS};

/// Segment colours, bottom first, one per [`LAYERS`] entry: payload grey as in chart 3,
/// then framing, HTTP/2, TLS records and handshakes from cool to warm.
const COLORS: [RGBColor; 5] = [
    RGBColor(170, 170, 170),
    RGBColor(69, 117, 180),
    RGBColor(117, 112, 179),
    RGBColor(244, 165, 130),
    RGBColor(202, 0, 32),
];

/// Plans one figure per load point (stack aside) where some group has a byte split.
pub fn figures(datasets: &[Dataset]) -> Vec<ChartFigure> {
    if !stacks::shown(datasets) {
        return Vec::new();
    }
    let variants = all_variants(datasets);
    let slices: BTreeSet<Load> = datasets
        .iter()
        .flat_map(|d| d.groups.iter())
        .filter(|g| stacks::has_split(g))
        .map(|g| g.key.load.without_stack())
        .collect();
    slices
        .into_iter()
        .map(|slice| figure(datasets, &variants, &slice))
        .collect()
}

/// The bars of one dataset for one variant at a load point: one per stack with a split,
/// in stack order (plaintext before TLS, HTTP/1.1 before HTTP/2).
pub fn bars(dataset: &Dataset, variant: &Variant, slice: &Load) -> Vec<Bar> {
    dataset
        .groups
        .iter()
        .filter(|g| g.key.variant == *variant && g.key.load.without_stack() == *slice)
        .filter_map(|g| {
            let (layers, total) = layers_per_event(g)?;
            Some(Bar {
                label: g.key.load.stack.label(),
                stack: LAYERS.iter().map(|l| (l.of)(&layers)).collect(),
                total,
                color: COLORS[0],
            })
        })
        .collect()
}

/// Label width the plot of half a panel holds, px: half of [`style::PANEL_W`] less the
/// vertical axis's labels and the margins.
const HALF_PANEL_PLOT_PX: usize = 250;

/// A panel's width in half panels: one when every dataset's bars and their labels fit in
/// half a panel, else a whole panel (two).
fn panel_weight(per_dataset: &[Vec<Bar>]) -> u32 {
    // DejaVu Sans at the label size averages about 0.55 em per character; 16 px between
    // labels.
    let label_px = |b: &Bar| b.label.chars().count() * style::LABEL_PX as usize * 55 / 100 + 16;
    let widest = per_dataset
        .iter()
        .map(|bars| bars.iter().map(|b| label_px(b).max(60)).sum::<usize>())
        .max()
        .unwrap_or(0);
    if widest <= HALF_PANEL_PLOT_PX {
        1
    } else {
        2
    }
}

/// The figure of one load point.
fn figure(datasets: &[Dataset], variants: &[Variant], slice: &Load) -> ChartFigure {
    // (variant, its bars in each dataset), for the variants with a bar anywhere.
    let columns: Vec<(Variant, Vec<Vec<Bar>>)> = variants
        .iter()
        .map(|v| (*v, datasets.iter().map(|d| bars(d, v, slice)).collect()))
        .filter(|(_, per_dataset): &(Variant, Vec<Vec<Bar>>)| {
            per_dataset.iter().any(|b| !b.is_empty())
        })
        .collect();
    let y_max = columns
        .iter()
        .flat_map(|(_, per_dataset)| per_dataset.iter().flatten())
        .map(|b| b.total.max.max(b.stack.iter().sum()))
        .fold(0.0, f64::max)
        * 1.15;
    let segments: Vec<(String, RGBColor)> = LAYERS
        .iter()
        .zip(COLORS)
        .map(|(l, c)| (l.name.to_string(), c))
        .collect();
    let rows = datasets
        .iter()
        .enumerate()
        .map(|(i, dataset)| {
            columns
                .iter()
                .map(|(variant, per_dataset)| {
                    let weight = panel_weight(per_dataset);
                    let panel = BarPanel {
                        caption: panel_caption(dataset, datasets.len(), &variant.label()),
                        y_desc: "bytes per delivered event (B)".to_string(),
                        y_max,
                        segments: segments.clone(),
                        bars: per_dataset[i].clone(),
                        empty_note: NO_DATA.to_string(),
                    };
                    (weight, Panel::Bars(panel))
                })
                .collect()
        })
        .collect();
    let legend = segments
        .iter()
        .map(|(label, color)| LegendEntry {
            label: label.clone(),
            color: *color,
            mark: Mark::Swatch,
        })
        .collect();
    ChartFigure {
        kind: ChartKind::ProtocolLayers,
        stem: format!("protocol-layers-{}", slice.slug()),
        figure: Figure {
            title: format!(
                "Bytes per delivered event by protocol layer at {}",
                slice.describe()
            ),
            rows,
            legend,
        },
    }
}
