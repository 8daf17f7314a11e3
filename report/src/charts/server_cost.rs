//! Chart 5: server CPU per 1,000 delivered events vs clients, and server RSS vs open
//! connections.
//!
//! The CPU panel marks where the verdict's CPU leader changes between two client counts.
//!
//! One figure per (rate, payload), the two panels side by side; with several datasets each
//! gets a row. Scenarios without server figures (an external server whose `/stats` could
//! not be read) are left out.

use crate::charts::panel::{Dash, Figure, Panel, TickFormat};
use crate::charts::{
    all_variants, line_legend, line_panels, rate_payload_slices, series_for, AxisSpec, ChartFigure,
    ChartKind, LineSpec,
};
use crate::format;
use crate::group::{
    link_phrase, link_slug, slug_number, stack_phrase, stack_slug, Dataset, Group, Load,
};
use crate::verdict::{crossover_marks, Axis, CPU};

/// Shown when no scenario in a panel has server figures.
const NO_SERVER: &str = "no server figures (/stats unavailable)";

/// Plans one figure per (rate, payload).
pub fn figures(datasets: &[Dataset]) -> Vec<ChartFigure> {
    let variants = all_variants(datasets);
    let cpu = [LineSpec {
        suffix: "",
        dash: Dash::Solid,
        metric: |s| s.server_cpu_ms_per_1k_events(),
    }];
    let rss = [LineSpec {
        suffix: "",
        dash: Dash::Solid,
        metric: |s| {
            s.server
                .as_ref()
                .map(|v| v.rss_peak_bytes as f64 / (1024.0 * 1024.0))
        },
    }];
    let clients_axis = AxisSpec {
        desc: "clients (log scale)",
        log: true,
        ticks: TickFormat::Number,
        fixed: None,

        label_data: true,
    };
    let cpu_axis = AxisSpec {
        desc: "server CPU per 1,000 events (ms, log scale)",
        log: true,
        ticks: TickFormat::Number,
        fixed: None,

        label_data: false,
    };
    let open_axis = AxisSpec {
        desc: "connections open at once (log scale)",
        log: true,
        ticks: TickFormat::Number,
        fixed: None,

        label_data: true,
    };
    let rss_axis = AxisSpec {
        desc: "server peak RSS (MiB)",
        log: false,
        ticks: TickFormat::Number,
        fixed: None,

        label_data: false,
    };
    let clients_of = |g: &Group| Some(g.key.load.clients as f64);
    let open_of = |g: &Group| {
        g.spread(|s| Some(s.connections.peak_open as f64))
            .map(|sp| sp.median.max(1.0))
    };
    rate_payload_slices(datasets)
        .into_iter()
        .map(|(rate_mhz, payload_bytes, link, stack)| {
            let in_slice = |l: &Load| {
                l.rate_mhz == rate_mhz
                    && l.payload_bytes == payload_bytes
                    && l.link == link
                    && l.stack == stack
            };
            let cpu_series = datasets
                .iter()
                .map(|d| series_for(d, &variants, &in_slice, &clients_of, true, &cpu))
                .collect();
            let rss_series = datasets
                .iter()
                .map(|d| series_for(d, &variants, &in_slice, &open_of, true, &rss))
                .collect();
            let what_cpu = "CPU per 1,000 delivered events; whiskers min–max";
            let what_rss = "peak RSS vs open connections; whiskers min–max";
            let left = line_panels(
                datasets,
                cpu_series,
                &clients_axis,
                &cpu_axis,
                what_cpu,
                NO_SERVER,
            )
            .into_iter()
            .zip(datasets)
            .map(|(mut p, d)| {
                // The verdict's CPU criterion: where its leader changes along clients.
                if let Panel::Lines(lines) = &mut p {
                    lines.marks = crossover_marks(d, &CPU, Axis::Clients, &in_slice, true);
                }
                p
            });
            let right = line_panels(
                datasets, rss_series, &open_axis, &rss_axis, what_rss, NO_SERVER,
            );
            let rows: Vec<Vec<(u32, Panel)>> = left
                .into_iter()
                .zip(right)
                .map(|(l, r)| vec![(2, l), (2, r)])
                .collect();
            let rate_hz = rate_mhz as f64 / 1_000.0;
            ChartFigure {
                kind: ChartKind::ServerCost,
                stem: format!(
                    "server-cost-r{}-s{payload_bytes}{}{}",
                    slug_number(rate_hz),
                    link_slug(link),
                    stack_slug(stack)
                ),
                figure: Figure {
                    title: format!(
                        "Server CPU and memory at {}, {payload_bytes} B payload{}{}",
                        format::rate(rate_hz),
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
