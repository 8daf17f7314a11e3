//! Chart 2: p50 and p99 delivery latency vs clients, a line per transport, log axes.
//!
//! One figure per (rate, payload); p50 is solid, p99 dashed, each point the median over
//! repeats with min–max whiskers. A grey dashed line marks where the verdict's p50 leader
//! changes between two client counts, and where a transport's p99 breaks the suite's
//! `p99_limit` (as the results' `p99_limit` block has it).

use crate::charts::panel::{Dash, Figure, Panel, TickFormat};
use crate::charts::{
    all_variants, line_legend, line_panels, rate_payload_slices, series_for, AxisSpec, ChartFigure,
    ChartKind, LineSpec, NO_DATA,
};
use crate::format;
use crate::group::{link_phrase, link_slug, slug_number, stack_phrase, stack_slug, Dataset, Load};
use crate::verdict::{latency_marks, p99_limit_marks, Axis};

/// Plans one figure per (rate, payload).
pub fn figures(datasets: &[Dataset]) -> Vec<ChartFigure> {
    let variants = all_variants(datasets);
    let specs = [
        LineSpec {
            suffix: "p50",
            dash: Dash::Solid,
            metric: |s| Some(s.latency_us.p50 as f64),
        },
        LineSpec {
            suffix: "p99",
            dash: Dash::Dashed,
            metric: |s| Some(s.latency_us.p99 as f64),
        },
    ];
    let x = AxisSpec {
        desc: "clients (log scale)",
        log: true,
        ticks: TickFormat::Number,
        fixed: None,

        label_data: true,
    };
    let y = AxisSpec {
        desc: "delivery latency (log scale)",
        log: true,
        ticks: TickFormat::Micros,
        fixed: None,

        label_data: false,
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
            let per_dataset = datasets
                .iter()
                .map(|d| {
                    series_for(
                        d,
                        &variants,
                        &in_slice,
                        &|g| Some(g.key.load.clients as f64),
                        true,
                        &specs,
                    )
                })
                .collect();
            let what = "solid p50, dashed p99; whiskers min–max of repeats";
            let row: Vec<_> = line_panels(datasets, per_dataset, &x, &y, what, NO_DATA)
                .into_iter()
                .zip(datasets)
                .map(|(mut p, d)| {
                    if let Panel::Lines(lines) = &mut p {
                        lines.marks = latency_marks(d, Axis::Clients, &in_slice, true);
                        lines.marks.extend(p99_limit_marks(d, &in_slice));
                    }
                    (2, p)
                })
                .collect();
            let rows = vec![row];
            let legend = line_legend(&variants, &rows, &specs);
            let rate_hz = rate_mhz as f64 / 1_000.0;
            ChartFigure {
                kind: ChartKind::LatencyVsClients,
                stem: format!(
                    "latency-vs-clients-r{}-s{payload_bytes}{}{}",
                    slug_number(rate_hz),
                    link_slug(link),
                    stack_slug(stack)
                ),
                figure: Figure {
                    title: format!(
                        "p50 and p99 delivery latency vs clients at {}, {payload_bytes} B payload{}{}",
                        format::rate(rate_hz),
                        link_phrase(link),
                        stack_phrase(stack)
                    ),
                    rows,
                    legend,
                },
            }
        })
        .collect()
}
