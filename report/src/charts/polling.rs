//! Chart 6: requests per delivered event and the share of empty polls vs event rate, for
//! the polling transports.
//!
//! One figure per (clients, payload) that has polling scenarios; the two panels side by
//! side, a row per dataset. Grey dashed lines mark where the verdict says short-poll's
//! requests per event fall to long-poll's and long-poll starts batching (left), and where
//! short-poll's empty polls end (right).

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
use crate::verdict::{polling_marks, PollingKind};

/// Plans one figure per (clients, payload) with polling scenarios.
pub fn figures(datasets: &[Dataset]) -> Vec<ChartFigure> {
    let variants: Vec<_> = all_variants(datasets)
        .into_iter()
        .filter(|v| v.transport.is_polling())
        .collect();
    if variants.is_empty() {
        return Vec::new();
    }
    let slices: BTreeSet<(u64, u64, Option<Link>, Stack)> = datasets
        .iter()
        .flat_map(|d| d.groups.iter())
        .filter(|g| g.key.variant.transport.is_polling())
        .map(|g| {
            (
                g.key.load.clients,
                g.key.load.payload_bytes,
                g.key.load.link,
                g.key.load.stack,
            )
        })
        .collect();
    let per_event = [LineSpec {
        suffix: "",
        dash: Dash::Solid,
        metric: |s| Some(s.requests.per_event),
    }];
    let empty = [LineSpec {
        suffix: "",
        dash: Dash::Solid,
        metric: |s| s.empty_poll_share(),
    }];
    let rate_axis = AxisSpec {
        desc: "event rate (events/s, log scale)",
        log: true,
        ticks: TickFormat::Number,
        fixed: None,

        label_data: true,
    };
    let per_event_axis = AxisSpec {
        desc: "requests per delivered event (log scale)",
        log: true,
        ticks: TickFormat::Number,
        fixed: None,

        label_data: false,
    };
    let share_axis = AxisSpec {
        desc: "empty polls (% of requests)",
        log: false,
        ticks: TickFormat::Share,
        fixed: Some((0.0, 1.05)),

        label_data: false,
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
            let left_series = datasets
                .iter()
                .map(|d| series_for(d, &variants, &in_slice, &rate_of, true, &per_event))
                .collect();
            let right_series = datasets
                .iter()
                .map(|d| series_for(d, &variants, &in_slice, &rate_of, true, &empty))
                .collect();
            let left = line_panels(
                datasets,
                left_series,
                &rate_axis,
                &per_event_axis,
                "requests per delivered event; whiskers min–max",
                NO_DATA,
            );
            let right = line_panels(
                datasets,
                right_series,
                &rate_axis,
                &share_axis,
                "share of empty polls; whiskers min–max",
                NO_DATA,
            );
            // The verdict's polling changes: where short-poll's requests per event fall to
            // long-poll's and where long-poll starts batching on the left, the end of
            // short-poll's empty polls on the right.
            let mark = |mut p: Panel, d: &Dataset, kinds: &[PollingKind]| {
                if let Panel::Lines(lines) = &mut p {
                    lines.marks = polling_marks(d, kinds, &in_slice);
                }
                p
            };
            let rows: Vec<Vec<(u32, Panel)>> = left
                .into_iter()
                .zip(right)
                .zip(datasets)
                .map(|((l, r), d)| {
                    vec![
                        (
                            2,
                            mark(
                                l,
                                d,
                                &[
                                    PollingKind::FewerRequestsThanLongPoll,
                                    PollingKind::BatchingStarts,
                                ],
                            ),
                        ),
                        (2, mark(r, d, &[PollingKind::EmptyPollsEnd])),
                    ]
                })
                .collect();
            ChartFigure {
                kind: ChartKind::Polling,
                stem: format!(
                    "polling-c{clients}-s{payload_bytes}{}{}",
                    link_slug(link),
                    stack_slug(stack)
                ),
                figure: Figure {
                    title: format!(
                        "Polling efficiency vs event rate at {} clients, {payload_bytes} B payload{}{}",
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
