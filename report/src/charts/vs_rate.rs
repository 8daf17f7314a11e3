//! Chart 9: p50 delivery latency, bytes per delivered event and server CPU per 1,000
//! events vs the event rate, a line per transport, log axes.
//!
//! One figure per (clients, payload, link, stack) slice, the three panels side by side and
//! a row per dataset; each point the median over repeats with min–max whiskers. These are
//! three of the verdict's criteria, so each panel marks where its leader changes between
//! two rates (a grey dashed line labelled with the new leader, `→ ws`), as the verdict's
//! sentence says.

use std::collections::BTreeSet;

use crate::charts::panel::{Dash, Figure, Panel, TickFormat};
use crate::charts::{
    all_variants, line_legend, line_panels, series_for, AxisSpec, ChartFigure, ChartKind, LineSpec,
    NO_DATA,
};
use crate::format;
use crate::group::{
    link_phrase, link_slug, stack_phrase, stack_slug, Dataset, Group, Link, Load, Stack,
};
use crate::verdict::{crossover_marks, Axis, Criterion, CPU, LATENCY, SOCKET_BYTES};

/// One panel: the verdict's criterion it draws, and its vertical axis.
struct PanelSpec {
    criterion: Criterion,
    axis: AxisSpec,
    what: &'static str,
}

/// Plans one figure per (clients, payload, link, stack).
pub fn figures(datasets: &[Dataset]) -> Vec<ChartFigure> {
    let variants = all_variants(datasets);
    let slices: BTreeSet<(u64, u64, Option<Link>, Stack)> = datasets
        .iter()
        .flat_map(|d| d.groups.iter())
        .map(|g| {
            let l = g.key.load;
            (l.clients, l.payload_bytes, l.link, l.stack)
        })
        .collect();
    let log_axis = |desc: &'static str, ticks: TickFormat| AxisSpec {
        desc,
        log: true,
        ticks,
        fixed: None,
        label_data: false,
    };
    let panels = [
        PanelSpec {
            criterion: LATENCY,
            axis: log_axis("p50 delivery latency (log scale)", TickFormat::Micros),
            what: "p50 delivery latency; whiskers min–max",
        },
        PanelSpec {
            criterion: SOCKET_BYTES,
            axis: log_axis(
                "bytes per delivered event (B, log scale)",
                TickFormat::Number,
            ),
            what: "socket bytes per delivered event",
        },
        PanelSpec {
            criterion: CPU,
            axis: log_axis(
                "server CPU per 1,000 events (ms, log scale)",
                TickFormat::Number,
            ),
            what: "server CPU per 1,000 delivered events",
        },
    ];
    let rate_axis = AxisSpec {
        desc: "event rate (events/s, log scale)",
        log: true,
        ticks: TickFormat::Number,
        fixed: None,
        label_data: true,
    };
    let rate_of = |g: &Group| Some(g.key.load.rate_hz()).filter(|r| *r > 0.0);
    slices
        .into_iter()
        .map(|(clients, payload_bytes, link, stack)| {
            let in_slice = |l: &Load| {
                l.clients == clients
                    && l.payload_bytes == payload_bytes
                    && l.link == link
                    && l.stack == stack
            };
            let columns: Vec<Vec<Panel>> = panels
                .iter()
                .map(|spec| {
                    let line = [LineSpec {
                        suffix: "",
                        dash: Dash::Solid,
                        metric: spec.criterion.metric,
                    }];
                    let series = datasets
                        .iter()
                        .map(|d| series_for(d, &variants, &in_slice, &rate_of, true, &line))
                        .collect();
                    line_panels(datasets, series, &rate_axis, &spec.axis, spec.what, NO_DATA)
                        .into_iter()
                        .zip(datasets)
                        .map(|(mut p, d)| {
                            if let Panel::Lines(lines) = &mut p {
                                lines.marks = crossover_marks(
                                    d,
                                    &spec.criterion,
                                    Axis::Rate,
                                    &in_slice,
                                    true,
                                );
                            }
                            p
                        })
                        .collect()
                })
                .collect();
            // Columns of panels (one per criterion) into rows (one per dataset).
            let rows: Vec<Vec<(u32, Panel)>> = (0..datasets.len())
                .map(|i| columns.iter().map(|c| (2, c[i].clone())).collect())
                .collect();
            ChartFigure {
                kind: ChartKind::VsRate,
                stem: format!(
                    "vs-rate-c{clients}-s{payload_bytes}{}{}",
                    link_slug(link),
                    stack_slug(stack)
                ),
                figure: Figure {
                    title: format!(
                        "Latency, bytes and server CPU per event vs event rate at {} clients, \
                         {payload_bytes} B payload{}{}",
                        format::thousands(clients),
                        link_phrase(link),
                        stack_phrase(stack)
                    ),
                    legend: line_legend(&variants, &rows, &[]),
                    rows,
                },
            }
        })
        .collect()
}
