//! Publication figures of the survival analysis, as SVG and PNG bytes.
//!
//! # Why this shape
//!
//! - **Plain input structs.** Every figure takes a small struct defined here
//!   ([`km::KmPlot`], [`forest::ForestPlot`], [`nomogram::NomogramPlot`],
//!   [`calibration::CalibrationPlot`]), not the statistics' own types, so the
//!   figures can be drawn from any source (a report file, another tool's
//!   numbers) and the statistics do not depend on the plotting code.
//! - **Bytes in memory.** [`render_svg`] returns a `String` and [`render_png`]
//!   a `Vec<u8>`; callers write them where they like (atomically, to an object
//!   store). Nothing here touches the file system.
//! - **plotters as the backend, our own layout.** Clinical figures need exact
//!   control over what the generic chart builders do not offer: a number-at-risk
//!   table aligned with the time axis, rms-style nomogram axes, a forest plot's
//!   text columns. So each figure lays itself out on a [`Canvas`] in logical
//!   units and plotters draws the primitives, to its SVG backend or to its
//!   bitmap backend.
//! - **Pure-Rust text.** PNG text is rasterised by `ab_glyph` with the embedded
//!   Liberation Sans (SIL Open Font License, `common/assets/fonts`), metrically
//!   compatible with Arial/Helvetica, the usual journal font. No system fonts,
//!   no fontconfig or freetype, so figures are identical on every machine. SVG
//!   text stays text, searchable and editable, in the same font where the
//!   viewer has it (`font-family="Liberation Sans, Arial, Helvetica,
//!   sans-serif"`: the layout was measured with these metrics).
//! - **Deterministic.** The same input gives the same bytes.

pub mod calibration;
pub mod forest;
pub mod km;
pub mod nomogram;

mod axis;
mod canvas;

pub use canvas::{Anchor, Baseline, Canvas, text_width};

use plotters::prelude::*;
use plotters::style::FontStyle;
use std::sync::OnceLock;

/// Errors while drawing or encoding a figure.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("invalid figure input: {0}")]
    Invalid(String),
    #[error("the embedded font could not be loaded")]
    Font,
    #[error("drawing failed: {0}")]
    Draw(String),
    #[error("PNG encoding failed: {0}")]
    Encode(String),
}

/// A figure that lays itself out on a [`Canvas`] of `size()` logical units.
pub trait Figure {
    /// Width and height in logical units (1 unit = 1 SVG pixel).
    fn size(&self) -> (u32, u32);
    /// Draw onto the canvas (which scales logical units to device pixels).
    fn draw<DB: DrawingBackend>(&self, canvas: &Canvas<'_, DB>) -> Result<(), PlotError>;
}

/// File format of a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Svg,
    Png,
}

impl Format {
    /// The format named by a file's extension (`.svg` or `.png`, any case).
    pub fn from_path(path: &std::path::Path) -> Result<Format, PlotError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("svg") => Ok(Format::Svg),
            Some("png") => Ok(Format::Png),
            _ => Err(PlotError::Invalid(format!(
                "{}: a figure file must end in .svg or .png",
                path.display()
            ))),
        }
    }
}

/// Render a figure in `format` (PNG at 2 pixels per unit, about 300 dpi).
pub fn render<F: Figure>(figure: &F, format: Format) -> Result<Vec<u8>, PlotError> {
    match format {
        Format::Svg => render_svg(figure).map(String::into_bytes),
        Format::Png => render_png(figure, 2.0),
    }
}

pub(crate) static FONT: &[u8] = include_bytes!("../../assets/fonts/LiberationSans-Regular.ttf");

/// The CSS font list of SVG text: the embedded font first, then the fonts
/// with the same metrics.
pub const SVG_FONT_FAMILY: &str = "Liberation Sans, Arial, Helvetica, sans-serif";

/// Register the embedded font with plotters once (as "sans-serif", and under
/// the SVG family name so plotters finds it for that text style too).
fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
            && plotters::style::register_font(SVG_FONT_FAMILY, FontStyle::Normal, FONT).is_ok()
    });
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

pub(crate) fn draw_err<E: std::fmt::Display>(e: E) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// Render a figure as an SVG document.
pub fn render_svg<F: Figure>(figure: &F) -> Result<String, PlotError> {
    ensure_font()?;
    let (w, h) = figure.size();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        figure.draw(&Canvas::new(&root, 1.0, false))?;
        root.present().map_err(draw_err)?;
    }
    Ok(out)
}

/// The largest PNG rendered, in pixels (about 8000 x 8000).
pub const MAX_PIXELS: u64 = 64_000_000;

/// Render a figure as a PNG, `scale` device pixels per logical unit (2 gives
/// a 1440-pixel-wide image from a 720-unit figure, about 300 dpi at the width
/// of a journal column and a half).
pub fn render_png<F: Figure>(figure: &F, scale: f64) -> Result<Vec<u8>, PlotError> {
    ensure_font()?;
    if !(scale.is_finite() && (0.25..=8.0).contains(&scale)) {
        return Err(PlotError::Invalid(format!(
            "PNG scale {scale} is outside 0.25..=8"
        )));
    }
    let (w, h) = figure.size();
    let (pw, ph) = (
        (f64::from(w) * scale).round() as u32,
        (f64::from(h) * scale).round() as u32,
    );
    // A figure is at most a few megapixels; refuse sizes that would only
    // exhaust memory (the sizes come from user-controlled input).
    if pw == 0 || ph == 0 || u64::from(pw) * u64::from(ph) > MAX_PIXELS {
        return Err(PlotError::Invalid(format!(
            "a {pw} x {ph} pixel PNG is outside 1..={MAX_PIXELS} pixels"
        )));
    }
    let mut rgb = vec![0u8; pw as usize * ph as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (pw, ph)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        figure.draw(&Canvas::new(&root, scale, true))?;
        root.present().map_err(draw_err)?;
    }
    encode_png(&rgb, pw, ph, scale)
}

/// Encode 8-bit RGB pixels as PNG, with the physical resolution set so that
/// one logical unit is 1/96 inch (as in SVG).
fn encode_png(rgb: &[u8], w: u32, h: u32, scale: f64) -> Result<Vec<u8>, PlotError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::High);
        let ppm = (96.0 * scale / 0.0254).round() as u32;
        enc.set_pixel_dims(Some(png::PixelDimensions {
            xppu: ppm,
            yppu: ppm,
            unit: png::Unit::Meter,
        }));
        let mut writer = enc
            .write_header()
            .map_err(|e| PlotError::Encode(e.to_string()))?;
        writer
            .write_image_data(rgb)
            .map_err(|e| PlotError::Encode(e.to_string()))?;
        writer
            .finish()
            .map_err(|e| PlotError::Encode(e.to_string()))?;
    }
    Ok(out)
}

/// The figure colours: the NEJM palette used by many clinical journals
/// (blue, red, green, orange, purple, teal), distinguishable in print.
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(0x00, 0x72, 0xB5),
    RGBColor(0xBC, 0x3C, 0x29),
    RGBColor(0x20, 0x85, 0x4E),
    RGBColor(0xE1, 0x87, 0x27),
    RGBColor(0x78, 0x76, 0xB1),
    RGBColor(0x6F, 0x99, 0xAD),
];

/// Colour of series `i` (cycling through [`PALETTE`]).
pub fn series_color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Format a p-value as journals do: "p < 0.001" below 0.001, two
/// significant figures otherwise ("p = 0.0013", "p = 0.050", "p = 0.22").
pub fn format_p(p: f64) -> String {
    if !p.is_finite() {
        return "p = NA".into();
    }
    if p < 0.001 {
        return "p < 0.001".into();
    }
    let digits = (1 - p.log10().floor() as i32).clamp(2, 4) as usize;
    let s = format!("{p:.digits$}");
    format!("p = {s}")
}

/// "Nice" axis breaks covering `[lo, hi]` (R's `pretty` idea: steps of 1, 2,
/// 2.5 or 5 times a power of ten, about `n` intervals).
pub fn pretty_breaks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo || n == 0 {
        return vec![lo];
    }
    let raw = (hi - lo) / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * 0.99)
        .unwrap_or(10.0 * mag);
    let start = (lo / step + 1e-9).floor() as i64;
    let end = (hi / step - 1e-9).ceil() as i64;
    (start..=end).map(|k| k as f64 * step).map(clean).collect()
}

/// Remove floating noise such as 0.30000000000000004 from a break.
fn clean(v: f64) -> f64 {
    let r = (v * 1e9).round() / 1e9;
    if r == 0.0 { 0.0 } else { r }
}

/// Shortest label of a break value ("0", "12", "0.25", "1e+05" style avoided).
pub fn format_tick(v: f64) -> String {
    let s = format!("{:.6}", clean(v));
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

fn check_finite(what: &str, values: &[f64]) -> Result<(), PlotError> {
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(PlotError::Invalid(format!(
            "{what}[{i}] is not finite ({})",
            values[i]
        )));
    }
    Ok(())
}
