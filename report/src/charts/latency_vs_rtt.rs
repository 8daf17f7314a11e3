//! Chart 7: p50 delivery latency vs the link's round trip, a colour per transport, with the
//! analytic model (`MODEL.md`) as a dashed line of the same colour.
//!
//! Drawn only for scenarios over a single-class, loss-free emulated link (the model has no
//! loss), and only for slices (clients, rate, payload, protocol stack) measured at two or
//! more round trips.
//! Measured points are medians over repeats (solid line, round markers, min–max whiskers);
//! the model is evaluated on a fine grid from 0 to the largest round trip, with the link's
//! jitter and bandwidth and the transport's loopback p50 at the same load as its base
//! latency L0 when the dataset has one (else 0), so its knees show where they fall. A grey
//! dashed line marks where the verdict's p50 leader changes between two round trips.

use std::collections::BTreeSet;

use feedbench_results::model::{predict, ModelInput};
use feedbench_results::ScenarioResult;

use crate::charts::panel::{Dash, Figure, LinePanel, Panel, Series, TickFormat};
use crate::charts::{
    all_variants, line_legend, panel_caption, style, AxisSpec, ChartFigure, ChartKind, LineSpec,
    NO_DATA,
};
use crate::format;
use crate::group::{
    slug_number, stack_phrase, stack_slug, Dataset, Group, Load, Spread, Stack, Variant,
};
use crate::verdict::{latency_marks, Axis};

/// Model points per line: fine enough to draw long-poll's knee as a step.
const MODEL_POINTS: usize = 200;

/// A slice of the matrix: clients, rate (mHz), payload, protocol stack.
type Slice = (u64, u64, u64, Stack);

/// Whether a group is drawn: a loss-free single-class link.
fn on_plain_link(g: &Group) -> Option<f64> {
    let link = g.key.load.link?;
    (link.loss_ppm == 0).then_some(())?;
    link.rtt_ms()
}

fn slice_of(g: &Group) -> Slice {
    let l = g.key.load;
    (l.clients, l.rate_mhz, l.payload_bytes, l.stack)
}

/// Plans one figure per slice measured at two or more round trips; none without links.
pub fn figures(datasets: &[Dataset]) -> Vec<ChartFigure> {
    let groups = || datasets.iter().flat_map(|d| d.groups.iter());
    let slices: BTreeSet<Slice> = groups()
        .filter(|g| on_plain_link(g).is_some())
        .map(slice_of)
        .collect();
    let variants = all_variants(datasets);
    let specs = [
        LineSpec {
            suffix: "measured p50",
            dash: Dash::Solid,
            metric: |s| Some(s.latency_us.p50 as f64),
        },
        LineSpec {
            suffix: "model",
            dash: Dash::Dashed,
            metric: |_| None,
        },
    ];
    slices
        .into_iter()
        .filter(|slice| {
            let rtts: BTreeSet<u64> = groups()
                .filter(|g| slice_of(g) == *slice)
                .filter_map(|g| on_plain_link(g).map(|ms| (ms * 1e3) as u64))
                .collect();
            rtts.len() >= 2
        })
        .map(|slice| figure(datasets, &variants, slice, &specs))
        .collect()
}

/// The figure of one slice.
fn figure(
    datasets: &[Dataset],
    variants: &[Variant],
    slice: Slice,
    specs: &[LineSpec],
) -> ChartFigure {
    let (clients, rate_mhz, payload_bytes, stack) = slice;
    let per_dataset: Vec<Vec<Series>> = datasets
        .iter()
        .map(|d| series(d, variants, slice))
        .collect();
    let all = || per_dataset.iter().flatten().flat_map(|s| s.points.iter());
    let x_spec = AxisSpec {
        desc: "round trip of the link (ms)",
        log: false,
        ticks: TickFormat::Number,
        fixed: None,
        label_data: false,
    };
    let y_spec = AxisSpec {
        desc: "p50 delivery latency",
        log: false,
        ticks: TickFormat::Micros,
        fixed: None,
        label_data: false,
    };
    let x = x_spec.fit(all().map(|(x, _)| *x));
    let y = y_spec.fit(all().flat_map(|(_, sp)| [sp.min, sp.max]));
    let row: Vec<(u32, Panel)> = datasets
        .iter()
        .zip(per_dataset)
        .map(|(d, series)| {
            let what = "solid measured p50 (whiskers min–max), dashed model";
            let in_slice = |l: &Load| {
                (l.clients, l.rate_mhz, l.payload_bytes, l.stack) == slice
                    && l.link.is_some_and(|link| link.loss_ppm == 0)
            };
            let panel = Panel::Lines(LinePanel {
                marks: latency_marks(d, Axis::Rtt, &in_slice, false),
                caption: panel_caption(d, datasets.len(), what),
                x: x.clone(),
                y: y.clone(),
                series,
                empty_note: NO_DATA.to_string(),
            });
            (2, panel)
        })
        .collect();
    let rows = vec![row];
    let legend = line_legend(variants, &rows, specs);
    let rate_hz = rate_mhz as f64 / 1_000.0;
    ChartFigure {
        kind: ChartKind::LatencyVsRtt,
        stem: format!(
            "latency-vs-rtt-c{clients}-r{}-s{payload_bytes}{}",
            slug_number(rate_hz),
            stack_slug(stack)
        ),
        figure: Figure {
            title: format!(
                "p50 delivery latency vs round trip at {} clients, {}, {payload_bytes} B payload{}",
                format::thousands(clients),
                format::rate(rate_hz),
                stack_phrase(stack)
            ),
            rows,
            legend,
        },
    }
}

/// For each variant measured in the slice: its measured line, then its model line.
fn series(dataset: &Dataset, variants: &[Variant], slice: Slice) -> Vec<Series> {
    let mut out = Vec::new();
    for variant in variants {
        let groups: Vec<(&Group, f64)> = dataset
            .groups
            .iter()
            .filter(|g| g.key.variant == *variant && slice_of(g) == slice)
            .filter_map(|g| on_plain_link(g).map(|rtt| (g, rtt)))
            .collect();
        let mut points: Vec<(f64, Spread)> = groups
            .iter()
            .filter_map(|(g, rtt)| {
                g.spread(|s| Some(s.latency_us.p50 as f64))
                    .map(|sp| (*rtt, sp))
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let color = style::variant_color(variant, variants);
        let max_rtt = points.last().map_or(0.0, |p| p.0);
        let model = groups
            .iter()
            .find_map(|(g, _)| g.usable().next())
            .map(|s| model_points(dataset, s, max_rtt))
            .unwrap_or_default();
        out.push(Series {
            label: variant.label(),
            color,
            dash: Dash::Solid,
            points,
            dodge: 1.0,
            whiskers_at: None,
            markers: true,
        });
        if !model.is_empty() {
            out.push(Series {
                label: variant.label(),
                color,
                dash: Dash::Dashed,
                points: model,
                dodge: 1.0,
                whiskers_at: Some(Vec::new()),
                markers: false,
            });
        }
    }
    out
}

/// The model's p50 (µs) from RTT 0 to `max_rtt_ms`, for the scenario's transport, feed and
/// link (jitter, bandwidth), with L0 from a loopback run of the same key if there is one.
fn model_points(
    dataset: &Dataset,
    scenario: &ScenarioResult,
    max_rtt_ms: f64,
) -> Vec<(f64, Spread)> {
    let key = crate::group::ScenarioKey::of_scenario(scenario);
    let base_latency_ms = dataset.model_base_latency_ms(&key).unwrap_or(0.0);
    let Some(input) = ModelInput::of(scenario, base_latency_ms) else {
        return Vec::new();
    };
    (0..=MODEL_POINTS)
        .map(|i| {
            let rtt_ms = max_rtt_ms * i as f64 / MODEL_POINTS as f64;
            let p50_us = predict(&ModelInput {
                rtt_ms,
                ..input.clone()
            })
            .p50_ms
                * 1e3;
            let point = Spread {
                median: p50_us,
                min: p50_us,
                max: p50_us,
                n: 1,
            };
            (rtt_ms, point)
        })
        .collect()
}
