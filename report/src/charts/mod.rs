//! The report's charts (seven, an eighth for runs over an emulated link, a ninth for runs
//! over several protocol stacks and a tenth for a capacity, `feedbench find`'s or a suite's
//! p99-limit steps): planned from datasets, drawn once as SVG and once as PNG.
//! A chart of lines is drawn only where some line has two points or more.
//!
//! Each chart module turns datasets into [`ChartFigure`]s (one per slice of the scenario
//! matrix: the parameters that are not on the chart's axes). With several datasets
//! (baseline and candidate) every figure shows them side by side on shared axes, so a
//! reader compares shapes, not tick labels. [`render`] draws a figure with both backends.

pub mod bandwidth;
pub mod bytes_per_event;
pub mod capacity;
pub mod latency_spectrum;
pub mod latency_vs_clients;
pub mod latency_vs_rtt;
pub mod panel;
pub mod polling;
pub mod protocol_layers;
pub mod server_cost;
pub mod style;
pub mod vs_rate;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::error::ReportError;
use crate::group::{Dataset, Group, Link, Load, Stack, Variant};
use panel::Figure;

/// Which chart a figure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChartKind {
    /// 1. Delivery-latency percentile spectrum per transport.
    LatencySpectrum,
    /// 2. p50 and p99 delivery latency vs clients.
    LatencyVsClients,
    /// 3. Bytes per delivered event, payload and overhead, setup apart.
    BytesPerEvent,
    /// 4. Bandwidth in each direction vs clients.
    Bandwidth,
    /// 5. Server CPU per 1,000 events and RSS vs open connections.
    ServerCost,
    /// 6. Requests per event and empty polls vs event rate.
    Polling,
    /// 7. p50 delivery latency vs the emulated link's round trip, with the model.
    LatencyVsRtt,
    /// 8. Bytes per delivered event by protocol layer, per transport and protocol stack.
    ProtocolLayers,
    /// 9. Capacity per transport within an SLO, the bracket as an error bar.
    Capacity,
    /// 10. p50 latency, bytes per event and server CPU per 1,000 events vs event rate.
    VsRate,
}

impl ChartKind {
    /// All kinds in report order.
    pub const ALL: [ChartKind; 10] = [
        ChartKind::LatencySpectrum,
        ChartKind::LatencyVsClients,
        ChartKind::BytesPerEvent,
        ChartKind::ProtocolLayers,
        ChartKind::Bandwidth,
        ChartKind::ServerCost,
        ChartKind::VsRate,
        ChartKind::Polling,
        ChartKind::LatencyVsRtt,
        ChartKind::Capacity,
    ];

    /// Section heading.
    pub fn heading(self) -> &'static str {
        match self {
            ChartKind::LatencySpectrum => "Delivery latency spectrum",
            ChartKind::LatencyVsClients => "Delivery latency vs clients",
            ChartKind::BytesPerEvent => "Bytes per delivered event",
            ChartKind::Bandwidth => "Bandwidth vs clients",
            ChartKind::ServerCost => "Server CPU and memory",
            ChartKind::Polling => "Polling efficiency",
            ChartKind::LatencyVsRtt => "Delivery latency vs round trip",
            ChartKind::ProtocolLayers => "Bytes per event by protocol layer",
            ChartKind::Capacity => "Capacity within the SLO",
            ChartKind::VsRate => "Latency, bytes and CPU vs event rate",
        }
    }

    /// One sentence on how to read the chart.
    pub fn explanation(self) -> &'static str {
        match self {
            ChartKind::LatencySpectrum => {
                "Time from publish to receipt at each percentile, 0% to 99.99%, per transport \
                 (HdrHistogram percentile plot; both axes logarithmic). Lower is better."
            }
            ChartKind::LatencyVsClients => {
                "Median (solid) and 99th percentile (dashed) delivery latency as the number of \
                 clients grows; logarithmic axes. A grey dashed line marks where the verdict's \
                 p50 leader changes, labelled with the leader from there on, and where a \
                 transport's p99 breaks the suite's p99 limit. Lower is better."
            }
            ChartKind::BytesPerEvent => {
                "Steady-state wire bytes per delivered event, split into the event's payload, \
                 the protocol's overhead on the way down, and what clients send up; the \
                 one-off setup cost per connection is shown apart. Lower is better."
            }
            ChartKind::Bandwidth => {
                "Steady-state traffic of all clients together, down (solid) and up (dashed), \
                 in bits per second; logarithmic axes."
            }
            ChartKind::ServerCost => {
                "Server CPU time per 1,000 delivered events as clients grow (a grey dashed \
                 line where the verdict's CPU leader changes), and the server's peak resident \
                 memory against the connections open at once."
            }
            ChartKind::Polling => {
                "For the polling transports: requests sent per delivered event, and the share \
                 of polls that came back empty, as the event rate changes. Grey dashed lines \
                 mark where long-poll starts batching and where short-poll's empty polls end."
            }
            ChartKind::LatencyVsRtt => {
                "Median delivery latency as the emulated link's round trip grows (solid, \
                 measured), beside the analytic model of MODEL.md (dashed, same colour): push \
                 pays one transit, short-poll half an interval more, and long-poll one \
                 transit until the round trip reaches the event interval, then about a \
                 whole round trip."
            }
            ChartKind::ProtocolLayers => {
                "Steady-state wire bytes per delivered event, both directions, for each \
                 transport over each protocol stack, split by the layer that sent them: the \
                 event's payload, the transport's framing (HTTP/1.1 heads, ws frame headers, \
                 SSE fields, the poll envelope), HTTP/2 frames and HPACK, TLS record headers \
                 and tags, and TLS handshakes (with session tickets and alerts). Medians over \
                 repeats; whiskers min–max of the total. Lower is better."
            }
            ChartKind::Capacity => {
                "The most clients (or events per second) each transport sustained within the \
                 latency SLO: the bar is the last value that passed, the whisker reaches the \
                 first that failed, and the capacity lies inside the whisker. No whisker: it \
                 never failed up to the bar. Higher is better."
            }
            ChartKind::VsRate => {
                "Median delivery latency, socket bytes per delivered event and server CPU per \
                 1,000 events as the event rate grows, at one client count; logarithmic axes. \
                 A grey dashed line marks where the verdict's leader changes, labelled with \
                 the leader from there on. Lower is better."
            }
        }
    }
}

/// A planned chart: what it is, its file stem, and the figure to draw.
#[derive(Debug, Clone)]
pub struct ChartFigure {
    /// Which chart.
    pub kind: ChartKind,
    /// File stem: `latency-spectrum-c100-r10-s64` gives `.svg` and `.png`.
    pub stem: String,
    /// The figure.
    pub figure: Figure,
}

/// A drawn chart.
#[derive(Debug, Clone)]
pub struct RenderedChart {
    /// Which chart.
    pub kind: ChartKind,
    /// File stem.
    pub stem: String,
    /// The figure's title.
    pub title: String,
    /// The SVG document, for inlining into HTML.
    pub svg: String,
    /// Where the SVG was written.
    pub svg_path: PathBuf,
    /// Where the PNG was written.
    pub png_path: PathBuf,
    /// Pixel size of both.
    pub size: (u32, u32),
}

/// Plans every chart for the datasets, in report order.
pub fn plan(datasets: &[Dataset]) -> Result<Vec<ChartFigure>, ReportError> {
    let mut figures = latency_spectrum::figures(datasets)?;
    figures.extend(latency_vs_clients::figures(datasets));
    figures.extend(bytes_per_event::figures(datasets));
    figures.extend(protocol_layers::figures(datasets));
    figures.extend(bandwidth::figures(datasets));
    figures.extend(server_cost::figures(datasets));
    figures.extend(vs_rate::figures(datasets));
    figures.extend(polling::figures(datasets));
    figures.extend(latency_vs_rtt::figures(datasets));
    figures.extend(capacity::figures(datasets));
    // A chart of lines over an axis on which the grid has one value draws a lone dot per
    // transport, which reads as a curve it is not (and repeats what the spectrum and the
    // bytes chart of that point show): it is left out.
    figures.retain(|f| f.figure.most_points_per_series().is_none_or(|n| n >= 2));
    Ok(figures)
}

/// Draws a figure as `DIR/STEM.svg` and `DIR/STEM.png`.
pub fn render(chart: &ChartFigure, out_dir: &Path) -> Result<RenderedChart, ReportError> {
    style::ensure_font()?;
    let size = chart.figure.size();
    let fail = |e: &dyn std::fmt::Display| ReportError::Chart {
        chart: chart.stem.clone(),
        reason: e.to_string(),
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        chart.figure.draw(&root).map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    let svg_path = out_dir.join(format!("{}.svg", chart.stem));
    std::fs::write(&svg_path, &svg).map_err(|source| ReportError::Write {
        path: svg_path.clone(),
        source,
    })?;
    let png_path = out_dir.join(format!("{}.png", chart.stem));
    {
        let root = BitMapBackend::new(&png_path, size).into_drawing_area();
        chart.figure.draw(&root).map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(RenderedChart {
        kind: chart.kind,
        stem: chart.stem.clone(),
        title: chart.figure.title.clone(),
        svg,
        svg_path,
        png_path,
        size,
    })
}

/// Every legend entry in any dataset, sorted (transport order, then interval).
pub fn all_variants(datasets: &[Dataset]) -> Vec<Variant> {
    let set: BTreeSet<Variant> = datasets
        .iter()
        .flat_map(|d| d.groups.iter().map(|g| g.key.variant))
        .collect();
    set.into_iter().collect()
}

/// Every load point in any dataset, sorted.
pub fn all_loads(datasets: &[Dataset]) -> Vec<Load> {
    let set: BTreeSet<Load> = datasets
        .iter()
        .flat_map(|d| d.groups.iter().map(|g| g.key.load))
        .collect();
    set.into_iter().collect()
}

/// The groups of one dataset for a variant that satisfy a load filter, in load order.
pub fn groups_for<'a>(
    dataset: &'a Dataset,
    variant: &Variant,
    load_filter: impl Fn(&Load) -> bool,
) -> Vec<&'a Group> {
    dataset
        .groups
        .iter()
        .filter(|g| g.key.variant == *variant && load_filter(&g.key.load))
        .collect()
}

/// A panel caption: the dataset's label when several are side by side, else a note on
/// how repeats are drawn.
pub fn panel_caption(dataset: &Dataset, n_datasets: usize, what: &str) -> String {
    let prefix = if n_datasets > 1 {
        format!("{}: ", dataset.label)
    } else {
        String::new()
    };
    format!("{prefix}{what}")
}

/// Spreads points that share an x on a log axis a little apart, so whiskers of different
/// lines do not hide each other: series `index` of `count`.
pub fn dodge(x: f64, index: usize, count: usize) -> f64 {
    let offset = index as f64 - (count as f64 - 1.0) / 2.0;
    x * 10f64.powf(0.012 * offset)
}

/// A note for panels whose dataset has nothing for this slice.
pub const NO_DATA: &str = "no data for these parameters";

/// What a line chart's axis shows; the range is fitted to the data of all datasets.
#[derive(Debug, Clone)]
pub struct AxisSpec {
    /// Description with the unit.
    pub desc: &'static str,
    /// Logarithmic scale.
    pub log: bool,
    /// Tick spelling.
    pub ticks: panel::TickFormat,
    /// A fixed range instead of a fitted one.
    pub fixed: Option<(f64, f64)>,
    /// Label the values measured (client counts, rates) rather than powers of ten.
    pub label_data: bool,
}

impl AxisSpec {
    /// The axis for these values.
    pub fn fit(&self, values: impl IntoIterator<Item = f64>) -> panel::Axis {
        let values: Vec<f64> = values.into_iter().collect();
        let mut axis = panel::Axis::fitted(self.desc, self.log, self.ticks, values.iter().copied());
        if let Some(range) = self.fixed {
            axis.range = range;
        }
        if self.label_data && self.log {
            let mut at: Vec<f64> = values.into_iter().filter(|v| *v > 0.0).collect();
            at.sort_by(f64::total_cmp);
            at.dedup();
            axis.ticks_at = Some(at);
        }
        axis
    }
}

/// One metric drawn as a line per variant.
#[derive(Clone, Copy)]
pub struct LineSpec {
    /// What this line style means in the legend (`p99`, `down`); empty for a single metric.
    pub suffix: &'static str,
    /// Dash pattern.
    pub dash: panel::Dash,
    /// The metric of one repeat.
    pub metric: fn(&feedbench_results::ScenarioResult) -> Option<f64>,
}

/// Lines for one dataset: for each variant and spec, the groups in the slice as points
/// `(x_of(group), spread of metric)`, dodged apart on log x axes.
pub fn series_for(
    dataset: &Dataset,
    variants: &[Variant],
    in_slice: &dyn Fn(&Load) -> bool,
    x_of: &dyn Fn(&Group) -> Option<f64>,
    x_log: bool,
    specs: &[LineSpec],
) -> Vec<panel::Series> {
    let mut series = Vec::new();
    for (vi, variant) in variants.iter().enumerate() {
        let groups = groups_for(dataset, variant, in_slice);
        for spec in specs {
            let mut points: Vec<(f64, crate::group::Spread)> = groups
                .iter()
                .filter_map(|g| g.spread(spec.metric).map(|sp| (x_of(g), sp)))
                .filter_map(|(x, sp)| Some((x?, sp)))
                .collect();
            if points.is_empty() {
                continue;
            }
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            series.push(panel::Series {
                label: variant.label(),
                color: style::variant_color(variant, variants),
                dash: spec.dash,
                points,
                dodge: if x_log {
                    dodge(1.0, vi, variants.len())
                } else {
                    1.0
                },
                whiskers_at: None,
                markers: true,
            });
        }
    }
    series
}

/// One line panel per dataset, on axes shared by all of them.
pub fn line_panels(
    datasets: &[Dataset],
    per_dataset: Vec<Vec<panel::Series>>,
    x: &AxisSpec,
    y: &AxisSpec,
    what: &str,
    empty_note: &str,
) -> Vec<panel::Panel> {
    let all = || per_dataset.iter().flatten().flat_map(|s| s.points.iter());
    let x_axis = x.fit(all().map(|(x, _)| *x));
    let y_axis = y.fit(all().flat_map(|(_, sp)| [sp.min, sp.max]));
    datasets
        .iter()
        .zip(per_dataset)
        .map(|(dataset, series)| {
            panel::Panel::Lines(panel::LinePanel {
                caption: panel_caption(dataset, datasets.len(), what),
                x: x_axis.clone(),
                y: y_axis.clone(),
                series,
                empty_note: empty_note.to_string(),
                marks: Vec::new(),
            })
        })
        .collect()
}

/// The (rate, payload, link, stack) slices of all datasets, sorted: a chart over clients
/// never mixes links or protocol stacks.
pub fn rate_payload_slices(datasets: &[Dataset]) -> Vec<(u64, u64, Option<Link>, Stack)> {
    let set: BTreeSet<(u64, u64, Option<Link>, Stack)> = all_loads(datasets)
        .iter()
        .map(|l| (l.rate_mhz, l.payload_bytes, l.link, l.stack))
        .collect();
    set.into_iter().collect()
}

/// Dark grey for legend entries that explain a line style rather than a transport.
const KEY_COLOR: plotters::style::RGBColor = plotters::style::RGBColor(90, 90, 90);

/// The legend of a line figure: an entry per variant that has a line (in the global
/// variant order), then, when lines come in several styles, what each style means.
pub fn line_legend(
    variants: &[Variant],
    rows: &[Vec<(u32, panel::Panel)>],
    specs: &[LineSpec],
) -> Vec<panel::LegendEntry> {
    let drawn: BTreeSet<String> = rows
        .iter()
        .flatten()
        .filter_map(|(_, p)| match p {
            panel::Panel::Lines(l) => Some(l.series.iter().map(|s| s.label.clone())),
            panel::Panel::Bars(_) => None,
        })
        .flatten()
        .collect();
    let mut legend: Vec<panel::LegendEntry> = variants
        .iter()
        .filter(|v| drawn.contains(&v.label()))
        .map(|v| panel::LegendEntry {
            label: v.label(),
            color: style::variant_color(v, variants),
            mark: panel::Mark::Line(panel::Dash::Solid),
        })
        .collect();
    if specs.len() > 1 {
        legend.extend(specs.iter().map(|s| panel::LegendEntry {
            label: s.suffix.to_string(),
            color: KEY_COLOR,
            mark: panel::Mark::Line(s.dash),
        }));
    }
    legend
}
