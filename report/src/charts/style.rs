//! The charts' look: the embedded font, sizes, and one colour per legend entry.
//!
//! The font is DejaVu Sans, compiled into the binary and registered with plotters as
//! `sans-serif`, so PNGs render the same on a bare machine with no fonts installed. SVGs
//! name `sans-serif` too and let the viewer pick its own.

use std::sync::OnceLock;

use plotters::style::{FontStyle, RGBColor};

use crate::error::ReportError;
use crate::group::Variant;
use feedbench_results::Transport;

/// DejaVu Sans (see `assets/LICENSE-DejaVu.txt`).
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// The family name every chart's text uses.
pub const FAMILY: &str = "sans-serif";
/// Figure title size, px.
pub const TITLE_PX: u32 = 26;
/// Panel caption size, px.
pub const CAPTION_PX: u32 = 20;
/// Axis description size, px.
pub const AXIS_DESC_PX: u32 = 18;
/// Tick label and legend size, px.
pub const LABEL_PX: u32 = 16;
/// Width of one panel, px.
pub const PANEL_W: u32 = 720;
/// Height of one panel, px.
pub const PANEL_H: u32 = 500;
/// Width of the legend column on the right of every figure, px.
pub const LEGEND_W: u32 = 230;
/// Height of the figure title band, px.
pub const TITLE_BAND_H: u32 = 44;

/// Registers the embedded font once per process; every chart calls this first.
pub fn ensure_font() -> Result<(), ReportError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(ReportError::Chart {
            chart: "(font)".to_string(),
            reason: "the embedded DejaVu Sans font does not parse".to_string(),
        })
    }
}

/// The base colour of a transport (colour-blind-safe hues, distinct in greyscale too).
pub fn transport_color(t: Transport) -> RGBColor {
    match t {
        Transport::ShortPoll => RGBColor(217, 95, 2),
        Transport::LongPoll => RGBColor(117, 112, 179),
        Transport::Ws => RGBColor(31, 120, 180),
        Transport::Sse => RGBColor(27, 158, 119),
    }
}

/// The colour of a legend entry: its transport's colour, lightened for the second and
/// later variants of the same transport (e.g. a second poll interval).
pub fn variant_color(variant: &Variant, all: &[Variant]) -> RGBColor {
    let base = transport_color(variant.transport);
    let index = all
        .iter()
        .filter(|v| v.transport == variant.transport)
        .position(|v| v == variant)
        .unwrap_or(0);
    lighten(base, 0.3 * index.min(2) as f64)
}

/// Mixes a colour with white: `amount` 0 keeps it, 1 gives white.
pub fn lighten(c: RGBColor, amount: f64) -> RGBColor {
    let mix = |v: u8| (v as f64 + (255.0 - v as f64) * amount).round() as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

/// Colour of the payload share of a bar.
pub const PAYLOAD_COLOR: RGBColor = RGBColor(120, 120, 120);
/// Light grid lines.
pub const GRID_COLOR: RGBColor = RGBColor(225, 225, 225);
