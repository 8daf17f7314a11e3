//! Chart 4: steady-state bandwidth of all clients in each direction vs clients.
//!
//! One figure per (rate, payload); down is solid, up dashed, in bits per second on log
//! axes, each point the median over repeats with min–max whiskers.

use crate::charts::panel::{Dash, Figure, TickFormat};
use crate::charts::{
    all_variants, line_legend, line_panels, rate_payload_slices, series_for, AxisSpec, ChartFigure,
    ChartKind, LineSpec, NO_DATA,
};
use crate::format;
use crate::group::{link_phrase, link_slug, slug_number, stack_phrase, stack_slug, Dataset, Load};

/// Plans one figure per (rate, payload).
pub fn figures(datasets: &[Dataset]) -> Vec<ChartFigure> {
    let variants = all_variants(datasets);
    let specs = [
        LineSpec {
            suffix: "down",
            dash: Dash::Solid,
            metric: |s| s.bits_per_s_down(),
        },
        LineSpec {
            suffix: "up",
            dash: Dash::Dashed,
            metric: |s| s.bits_per_s_up(),
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
        desc: "bandwidth, all clients (bit/s, log scale)",
        log: true,
        ticks: TickFormat::BitsPerS,
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
            let what = "solid down, dashed up; whiskers min–max of repeats";
            let row: Vec<_> = line_panels(datasets, per_dataset, &x, &y, what, NO_DATA)
                .into_iter()
                .map(|p| (2, p))
                .collect();
            let rows = vec![row];
            let legend = line_legend(&variants, &rows, &specs);
            let rate_hz = rate_mhz as f64 / 1_000.0;
            ChartFigure {
                kind: ChartKind::Bandwidth,
                stem: format!(
                    "bandwidth-r{}-s{payload_bytes}{}{}",
                    slug_number(rate_hz),
                    link_slug(link),
                    stack_slug(stack)
                ),
                figure: Figure {
                    title: format!(
                        "Bandwidth vs clients at {}, {payload_bytes} B payload{}{}",
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
