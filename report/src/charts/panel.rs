//! Panels, the drawable unit of every chart, and the code that draws them with plotters.
//!
//! Chart modules turn data into panels; this file knows nothing about results. A
//! [`LinePanel`] draws series of medians joined by lines, each point with a min–max
//! whisker over the repeats; a [`BarPanel`] draws stacked bars, one per category, with a
//! whisker on the stack's total. Axes carry their description with the unit and format
//! their ticks with the same formatter as the tables.

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor;

use crate::charts::style::{self, GRID_COLOR};
use crate::group::Spread;

/// The result plotters' drawing calls return on backend `DB`.
pub type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// How an axis's tick values are spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickFormat {
    /// A plain number with thousands separators.
    Number,
    /// µs shown as µs, ms or s.
    Micros,
    /// Bits per second shown as bit/s, kbit/s, Mbit/s.
    BitsPerS,
    /// A share 0..1 shown as a percentage.
    Share,
    /// `1 / (1 − q)` shown as the percentile q.
    Percentile,
}

impl TickFormat {
    /// Formats one tick value.
    pub fn format(self, v: f64) -> String {
        match self {
            TickFormat::Number => crate::format::sig3(v),
            TickFormat::Micros => crate::format::micros(v),
            TickFormat::BitsPerS => crate::format::bits_per_s(v),
            TickFormat::Share => crate::format::percent(v),
            TickFormat::Percentile => crate::hdr::percentile_label(v),
        }
    }
}

/// One axis of a line panel.
#[derive(Debug, Clone)]
pub struct Axis {
    /// Description with the unit, e.g. `delivery latency`.
    pub desc: String,
    /// Logarithmic scale.
    pub log: bool,
    /// Shown range; for log axes both ends are positive.
    pub range: (f64, f64),
    /// Tick spelling.
    pub ticks: TickFormat,
    /// Put the labelled ticks exactly here (e.g. the client counts measured) instead of
    /// at powers of ten; only for log axes.
    pub ticks_at: Option<Vec<f64>>,
}

impl Axis {
    /// An axis whose range covers `values` with a margin: whole decades on a log scale,
    /// from zero on a linear one.
    pub fn fitted(
        desc: impl Into<String>,
        log: bool,
        ticks: TickFormat,
        values: impl IntoIterator<Item = f64>,
    ) -> Axis {
        let (lo, hi) = values
            .into_iter()
            .filter(|v| v.is_finite() && (!log || *v > 0.0))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        let range = if !lo.is_finite() {
            if log {
                (1.0, 10.0)
            } else {
                (0.0, 1.0)
            }
        } else if log {
            log_range(lo, hi)
        } else {
            let top = if hi <= 0.0 { 1.0 } else { hi * 1.12 };
            (lo.min(0.0), top)
        };
        Axis {
            desc: desc.into(),
            log,
            range,
            ticks,
            ticks_at: None,
        }
    }
}

/// A log axis range around `lo..hi`: padded a little so points (and their dodge) stay
/// off the frame, and widened to whole decades when fewer than two powers of ten would
/// be inside, so there are always at least two labelled ticks.
fn log_range(lo: f64, hi: f64) -> (f64, f64) {
    const PAD: f64 = 1.3;
    let (lo, hi) = (lo / PAD, hi * PAD);
    let decades_inside = hi.log10().floor() - lo.log10().ceil() + 1.0;
    if decades_inside >= 2.0 {
        (lo, hi)
    } else {
        let lo_dec = lo.log10().floor();
        let hi_dec = hi.log10().ceil().max(lo_dec + 1.0);
        (10f64.powf(lo_dec), 10f64.powf(hi_dec))
    }
}

/// A line's dash pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dash {
    /// Solid line with round markers.
    Solid,
    /// Dashed line with square markers.
    Dashed,
}

/// One line: medians joined, with whiskers.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Line and marker colour.
    pub color: RGBColor,
    /// Dash pattern.
    pub dash: Dash,
    /// `(x, spread of y over repeats)`, sorted by x.
    pub points: Vec<(f64, Spread)>,
    /// Factor applied to x when drawing, so lines sharing x values on a log axis do not
    /// hide each other's whiskers; 1 draws points where they are.
    pub dodge: f64,
    /// Draw whiskers at every point (`None`) or only at these x values.
    pub whiskers_at: Option<Vec<f64>>,
    /// Mark every point (off for dense lines such as a spectrum).
    pub markers: bool,
}

/// A panel of lines.
#[derive(Debug, Clone)]
pub struct LinePanel {
    /// Caption above the plot.
    pub caption: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// The lines.
    pub series: Vec<Series>,
    /// Shown in the middle of the panel when there is nothing to draw.
    pub empty_note: String,
    /// Vertical dashed lines at these x values, each labelled at its top (where the
    /// verdict's leader changes).
    pub marks: Vec<(f64, String)>,
}

/// One stacked bar.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Category label under the bar.
    pub label: String,
    /// Segment heights from the bottom, one per [`BarPanel::segments`] entry.
    pub stack: Vec<f64>,
    /// Spread of the total over repeats.
    pub total: Spread,
    /// Colour of single-segment bars (ignored when the panel has several segments).
    pub color: RGBColor,
}

/// A panel of stacked bars.
#[derive(Debug, Clone)]
pub struct BarPanel {
    /// Caption above the plot.
    pub caption: String,
    /// Vertical axis description with the unit.
    pub y_desc: String,
    /// Vertical axis top.
    pub y_max: f64,
    /// Segment names and colours, bottom first; a single entry draws bars in their own colour.
    pub segments: Vec<(String, RGBColor)>,
    /// The bars, left to right.
    pub bars: Vec<Bar>,
    /// Shown in the middle of the panel when there is nothing to draw.
    pub empty_note: String,
}

/// Anything a figure cell can hold.
#[derive(Debug, Clone)]
pub enum Panel {
    /// Lines with whiskers.
    Lines(LinePanel),
    /// Stacked bars.
    Bars(BarPanel),
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A short line (and marker) in this dash pattern.
    Line(Dash),
    /// A filled square, for bars.
    Swatch,
}

/// One legend entry.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendEntry {
    /// Text: a transport's user spelling, or what a line style or colour means.
    pub label: String,
    /// Colour.
    pub color: RGBColor,
    /// Line or swatch.
    pub mark: Mark,
}

/// A figure: a title over rows of panels (each row split by its panels' weights), with
/// one legend for all panels in a column on the right, clear of the data.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Title naming the chart and the scenario parameters.
    pub title: String,
    /// Rows of `(weight, panel)`.
    pub rows: Vec<Vec<(u32, Panel)>>,
    /// The legend, top to bottom.
    pub legend: Vec<LegendEntry>,
}

impl Figure {
    /// Pixel size: a row's weights add up to its width in half panels
    /// ([`style::PANEL_W`] / 2 each); every row is [`style::PANEL_H`] high.
    pub fn size(&self) -> (u32, u32) {
        let widest = self
            .rows
            .iter()
            .map(|row| row.iter().map(|(w, _)| *w).sum::<u32>())
            .max()
            .unwrap_or(1)
            .max(1);
        let w = (style::PANEL_W * widest / 2).max(style::PANEL_W) + style::LEGEND_W;
        let h = style::TITLE_BAND_H + style::PANEL_H * self.rows.len().max(1) as u32;
        (w, h)
    }

    /// The most points any series of its line panels has; `None` for a figure of bars.
    pub fn most_points_per_series(&self) -> Option<usize> {
        self.rows
            .iter()
            .flatten()
            .filter_map(|(_, p)| match p {
                Panel::Lines(l) => Some(l.series.iter().map(|s| s.points.len()).max().unwrap_or(0)),
                Panel::Bars(_) => None,
            })
            .max()
    }

    /// Draws the figure onto a backend's root area.
    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let (title_band, body) = root.split_vertically(style::TITLE_BAND_H);
        let (body_w, _) = body.dim_in_pixel();
        let (body, legend_area) = body.split_horizontally(body_w.saturating_sub(style::LEGEND_W));
        draw_legend(&legend_area, &self.legend)?;
        let (w, _) = title_band.dim_in_pixel();
        // Shrink a long title to fit: DejaVu Sans averages about 0.55 em per character.
        let chars = self.title.chars().count().max(1) as f64;
        let fit = (w as f64 - 24.0) / (chars * 0.55 * 0.81);
        let title_px = (style::TITLE_PX as f64).min(fit).max(12.0);
        let title_style =
            (style::FAMILY, title_px)
                .into_font()
                .color(&BLACK)
                .pos(text_anchor::Pos::new(
                    text_anchor::HPos::Center,
                    text_anchor::VPos::Center,
                ));
        let (_, h) = title_band.dim_in_pixel();
        title_band.draw_text(&self.title, &title_style, (w as i32 / 2, h as i32 / 2))?;
        let rows = body.split_evenly((self.rows.len().max(1), 1));
        for (row_area, row) in rows.iter().zip(&self.rows) {
            let total: u32 = row.iter().map(|(w, _)| *w).sum::<u32>().max(1);
            let mut rest = row_area.clone();
            let (row_w, _) = row_area.dim_in_pixel();
            for (i, (weight, panel)) in row.iter().enumerate() {
                let cell = if i + 1 == row.len() {
                    rest.clone()
                } else {
                    let (cell, right) = rest.split_horizontally(row_w * weight / total);
                    rest = right;
                    cell
                };
                match panel {
                    Panel::Lines(p) => draw_line_panel(&cell, p)?,
                    Panel::Bars(p) => draw_bar_panel(&cell, p)?,
                }
            }
        }
        Ok(())
    }
}

/// Draws the legend entries from the top of the legend column.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
) -> DrawResult<DB> {
    let text = (style::FAMILY, style::LABEL_PX)
        .into_font()
        .color(&BLACK)
        .pos(text_anchor::Pos::new(
            text_anchor::HPos::Left,
            text_anchor::VPos::Center,
        ));
    let row_h = style::LABEL_PX as i32 + 10;
    for (i, e) in entries.iter().enumerate() {
        let y = 70 + i as i32 * row_h;
        let x = 8;
        match e.mark {
            Mark::Line(dash) => {
                let line = e.color.stroke_width(2);
                match dash {
                    Dash::Solid => {
                        area.draw(&PathElement::new(vec![(x, y), (x + 30, y)], line))?;
                        area.draw(&Circle::new((x + 15, y), 3, e.color.filled()))?;
                    }
                    Dash::Dashed => {
                        area.draw(&PathElement::new(vec![(x, y), (x + 10, y)], line))?;
                        area.draw(&PathElement::new(vec![(x + 20, y), (x + 30, y)], line))?;
                        area.draw(&Rectangle::new(
                            [(x + 12, y - 3), (x + 18, y + 3)],
                            e.color.filled(),
                        ))?;
                    }
                }
            }
            Mark::Swatch => area.draw(&Rectangle::new(
                [(x + 8, y - 7), (x + 22, y + 7)],
                e.color.filled(),
            ))?,
        }
        area.draw_text(&e.label, &text, (x + 40, y))?;
    }
    Ok(())
}

/// Writes a note in the middle of an area (for panels with no data).
fn draw_note<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, note: &str) -> DrawResult<DB> {
    let (w, h) = area.dim_in_pixel();
    let style = (style::FAMILY, style::CAPTION_PX)
        .into_font()
        .color(&RGBColor(110, 110, 110))
        .pos(text_anchor::Pos::new(
            text_anchor::HPos::Center,
            text_anchor::VPos::Center,
        ));
    area.draw_text(note, &style, (w as i32 / 2, h as i32 / 2))
}

/// Draws a line panel, choosing the coordinate types for its log/linear axes.
fn draw_line_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &LinePanel,
) -> DrawResult<DB> {
    let (x0, x1) = p.x.range;
    let (y0, y1) = p.y.range;
    match (p.x.log, &p.x.ticks_at, p.y.log) {
        (true, Some(at), true) => {
            let x = (x0..x1).log_scale().with_key_points(at.clone());
            lines_in(area, p, x, (y0..y1).log_scale())
        }
        (true, Some(at), false) => lines_in(
            area,
            p,
            (x0..x1).log_scale().with_key_points(at.clone()),
            y0..y1,
        ),
        (true, None, true) => lines_in(area, p, (x0..x1).log_scale(), (y0..y1).log_scale()),
        (true, None, false) => lines_in(area, p, (x0..x1).log_scale(), y0..y1),
        (false, _, true) => lines_in(area, p, x0..x1, (y0..y1).log_scale()),
        (false, _, false) => lines_in(area, p, x0..x1, y0..y1),
    }
}

/// Draws a line panel on the given coordinate specs.
fn lines_in<DB, X, Y>(area: &DrawingArea<DB, Shift>, p: &LinePanel, x: X, y: Y) -> DrawResult<DB>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(&p.caption, (style::FAMILY, style::CAPTION_PX))
        .margin(12)
        .margin_right(40)
        .x_label_area_size(52)
        .y_label_area_size(90)
        .build_cartesian_2d(x, y)?;
    let x_fmt = |v: &f64| p.x.ticks.format(*v);
    let y_fmt = |v: &f64| p.y.ticks.format(*v);
    chart
        .configure_mesh()
        .x_desc(&p.x.desc)
        .y_desc(&p.y.desc)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((style::FAMILY, style::LABEL_PX))
        .axis_desc_style((style::FAMILY, style::AXIS_DESC_PX))
        .light_line_style(GRID_COLOR.mix(0.5))
        .bold_line_style(GRID_COLOR)
        .draw()?;
    if p.series.iter().all(|s| s.points.is_empty()) {
        return draw_note(&chart.plotting_area().strip_coord_spec(), &p.empty_note);
    }
    let (y_lo, _) = p.y.range;
    // On a log axis a whisker may not reach below the axis floor.
    let clamp = |v: f64| if p.y.log { v.max(y_lo) } else { v };
    for s in &p.series {
        let color = s.color;
        let line_style = color.stroke_width(2);
        let medians: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|(x, sp)| (x * s.dodge, clamp(sp.median)))
            .collect();
        match s.dash {
            Dash::Solid => {
                chart.draw_series(LineSeries::new(medians.clone(), line_style))?;
            }
            Dash::Dashed => {
                chart.draw_series(DashedLineSeries::new(medians.clone(), 8, 5, line_style))?;
            }
        }
        let marker_style = color.filled();
        match (s.markers, s.dash) {
            (false, _) => {}
            (true, Dash::Solid) => {
                chart.draw_series(medians.iter().map(|pt| Circle::new(*pt, 3, marker_style)))?;
            }
            (true, Dash::Dashed) => {
                chart.draw_series(medians.iter().map(|pt| {
                    EmptyElement::at(*pt) + Rectangle::new([(-3, -3), (3, 3)], marker_style)
                }))?;
            }
        }
        let whisker_style = color.stroke_width(1);
        for (x, sp) in &s.points {
            let wanted = match &s.whiskers_at {
                None => true,
                Some(xs) => xs.iter().any(|w| (w - x).abs() <= 1e-9 * w.abs().max(1.0)),
            };
            if !wanted || sp.n < 2 {
                continue;
            }
            let (lo, hi) = (clamp(sp.min), clamp(sp.max));
            let x = &(x * s.dodge);
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(*x, lo), (*x, hi)],
                whisker_style,
            )))?;
            for end in [lo, hi] {
                chart.draw_series(std::iter::once(
                    EmptyElement::at((*x, end))
                        + PathElement::new(vec![(-5, 0), (5, 0)], whisker_style),
                ))?;
            }
        }
    }
    let (y0, y1) = p.y.range;
    for (x, label) in &p.marks {
        chart.draw_series(DashedLineSeries::new(
            [(*x, y0), (*x, y1)],
            6,
            4,
            MARK_COLOR.stroke_width(1),
        ))?;
        // A label right of the panel's middle would run past its edge: it goes to the
        // left of its line there.
        let (x0, x1) = p.x.range;
        let share = if p.x.log {
            (x / x0).ln() / (x1 / x0).ln()
        } else {
            (x - x0) / (x1 - x0)
        };
        let (h_pos, dx) = if share > 0.5 {
            (text_anchor::HPos::Right, -4)
        } else {
            (text_anchor::HPos::Left, 4)
        };
        let font = (style::FAMILY, style::LABEL_PX)
            .into_font()
            .color(&MARK_COLOR)
            .pos(text_anchor::Pos::new(h_pos, text_anchor::VPos::Top));
        chart.draw_series(std::iter::once(
            EmptyElement::at((*x, y1)) + Text::new(label.clone(), (dx, 4), font),
        ))?;
    }
    Ok(())
}

/// Colour of a panel's vertical marks.
const MARK_COLOR: RGBColor = RGBColor(90, 90, 90);

/// Draws a bar panel: stacked segments per bar, a min–max whisker on each total.
fn draw_bar_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &BarPanel,
) -> DrawResult<DB> {
    let n = p.bars.len().max(1) as i32;
    // Single-colour bars are named by the figure's legend; stacked bars by axis labels.
    let named_by_axis = p.segments.len() > 1;
    let mut chart = ChartBuilder::on(area)
        .caption(&p.caption, (style::FAMILY, style::CAPTION_PX))
        .margin(12)
        .x_label_area_size(if named_by_axis { 52 } else { 16 })
        .y_label_area_size(90)
        // An i32 range is inclusive as a discrete axis: 0..n-1 gives exactly n segments.
        .build_cartesian_2d((0..n - 1).into_segmented(), 0f64..p.y_max.max(1.0))?;
    let labels: Vec<&str> = p.bars.iter().map(|b| b.label.as_str()).collect();
    let x_fmt = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) if named_by_axis => labels
            .get(*i as usize)
            .map(|s| s.to_string())
            .unwrap_or_default(),
        _ => String::new(),
    };
    let y_fmt = |v: &f64| crate::format::sig3(*v);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(p.bars.len().max(1))
        .y_desc(&p.y_desc)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((style::FAMILY, style::LABEL_PX))
        .axis_desc_style((style::FAMILY, style::AXIS_DESC_PX))
        .light_line_style(GRID_COLOR.mix(0.5))
        .bold_line_style(GRID_COLOR)
        .draw()?;
    if p.bars.is_empty() {
        return draw_note(&chart.plotting_area().strip_coord_spec(), &p.empty_note);
    }
    let single = p.segments.len() <= 1;
    for (i, bar) in p.bars.iter().enumerate() {
        let i = i as i32;
        let mut bottom = 0.0;
        for (k, height) in bar.stack.iter().enumerate() {
            let color = if single {
                bar.color
            } else {
                p.segments.get(k).map(|(_, c)| *c).unwrap_or(bar.color)
            };
            let top = bottom + height.max(0.0);
            let mut rect = Rectangle::new(
                [
                    (SegmentValue::Exact(i), bottom),
                    (SegmentValue::Exact(i + 1), top),
                ],
                color.filled(),
            );
            rect.set_margin(0, 0, 14, 14);
            chart.draw_series(std::iter::once(rect))?;
            bottom = top;
        }
        if bar.total.n >= 2 {
            let x = SegmentValue::CenterOf(i);
            let whisker = BLACK.stroke_width(1);
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x.clone(), bar.total.min), (x.clone(), bar.total.max)],
                whisker,
            )))?;
            for end in [bar.total.min, bar.total.max] {
                chart.draw_series(std::iter::once(
                    EmptyElement::at((x.clone(), end))
                        + PathElement::new(vec![(-6, 0), (6, 0)], whisker),
                ))?;
            }
        }
    }
    Ok(())
}
