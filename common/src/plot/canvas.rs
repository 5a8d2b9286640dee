//! A thin drawing surface over a plotters `DrawingArea`: logical units
//! (scaled to device pixels), text placed by its baseline or cap height the
//! same way on the SVG and bitmap backends, and a few primitives.
//!
//! plotters positions text differently per backend (the SVG backend shifts by
//! `dy` in em, the bitmap backend puts the baseline at half the pixel size
//! below the anchor) and sizes it differently (SVG `font-size = size / 1.24`;
//! ab_glyph scales to ascent - descent). Correcting both here makes an SVG and
//! a PNG of the same figure line up.

use super::{PlotError, draw_err};
use ab_glyph::{Font, FontRef, Glyph, GlyphId, PxScale, ScaleFont};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontTransform, RGBAColor};
use std::sync::OnceLock;

/// (ascent - descent) / units-per-em of Liberation Sans (hhea 1854 + 434 over
/// 2048): ab_glyph's pixel size per em.
const AB_SIZE_PER_EM: f64 = 2288.0 / 2048.0;
/// Cap height of Liberation Sans in em (OS/2 sCapHeight 1409 / 2048).
const CAP_HEIGHT: f64 = 1409.0 / 2048.0;

/// Where a text's reference point is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// Along the text: start, centre or end.
    Start,
    Middle,
    End,
}

/// Vertical reference of a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Baseline {
    /// The alphabetic baseline.
    Alphabetic,
    /// The middle of the capital letters (visually centred).
    Central,
    /// The top of the capital letters.
    Hanging,
}

/// A figure's drawing surface.
pub struct Canvas<'a, DB: DrawingBackend> {
    area: &'a DrawingArea<DB, Shift>,
    scale: f64,
    raster: bool,
}

impl<'a, DB: DrawingBackend> Canvas<'a, DB> {
    /// `scale` device pixels per logical unit; `raster` for the bitmap
    /// backend (text placement differs, see the module docs).
    pub(crate) fn new(area: &'a DrawingArea<DB, Shift>, scale: f64, raster: bool) -> Self {
        Canvas {
            area,
            scale,
            raster,
        }
    }

    fn px(&self, v: f64) -> i32 {
        (v * self.scale).round() as i32
    }

    fn pt(&self, (x, y): (f64, f64)) -> (i32, i32) {
        (self.px(x), self.px(y))
    }

    fn width_px(&self, w: f64) -> u32 {
        ((w * self.scale).round() as u32).max(1)
    }

    /// A polyline.
    pub fn line(&self, pts: &[(f64, f64)], color: RGBAColor, width: f64) -> Result<(), PlotError> {
        if pts.len() < 2 {
            return Ok(());
        }
        let p: Vec<(i32, i32)> = pts.iter().map(|&q| self.pt(q)).collect();
        let style = ShapeStyle::from(color).stroke_width(self.width_px(width));
        self.area
            .draw(&PathElement::new(p, style))
            .map_err(draw_err)
    }

    /// A dashed straight segment (dash and gap in logical units).
    pub fn dashed(
        &self,
        a: (f64, f64),
        b: (f64, f64),
        color: RGBAColor,
        width: f64,
        dash: f64,
        gap: f64,
    ) -> Result<(), PlotError> {
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        if len <= 0.0 || dash <= 0.0 {
            return Ok(());
        }
        let (ux, uy) = ((b.0 - a.0) / len, (b.1 - a.1) / len);
        let mut s = 0.0;
        while s < len {
            let e = (s + dash).min(len);
            self.line(
                &[(a.0 + ux * s, a.1 + uy * s), (a.0 + ux * e, a.1 + uy * e)],
                color,
                width,
            )?;
            s = e + gap;
        }
        Ok(())
    }

    /// A filled polygon.
    pub fn polygon(&self, pts: &[(f64, f64)], fill: RGBAColor) -> Result<(), PlotError> {
        if pts.len() < 3 {
            return Ok(());
        }
        let p: Vec<(i32, i32)> = pts.iter().map(|&q| self.pt(q)).collect();
        self.area
            .draw(&Polygon::new(p, ShapeStyle::from(fill).filled()))
            .map_err(draw_err)
    }

    /// A rectangle, filled or outlined.
    pub fn rect(
        &self,
        a: (f64, f64),
        b: (f64, f64),
        color: RGBAColor,
        filled: bool,
        width: f64,
    ) -> Result<(), PlotError> {
        let style = if filled {
            ShapeStyle::from(color).filled()
        } else {
            ShapeStyle::from(color).stroke_width(self.width_px(width))
        };
        self.area
            .draw(&Rectangle::new([self.pt(a), self.pt(b)], style))
            .map_err(draw_err)
    }

    /// A filled circle of radius `r`.
    pub fn dot(&self, c: (f64, f64), r: f64, color: RGBAColor) -> Result<(), PlotError> {
        let radius = ((r * self.scale).round() as i32).max(1);
        self.area
            .draw(&Circle::new(
                self.pt(c),
                radius,
                ShapeStyle::from(color).filled(),
            ))
            .map_err(draw_err)
    }

    /// Width of `text` at `em` logical units per em; see [`text_width`].
    pub fn text_width(&self, text: &str, em: f64) -> f64 {
        text_width(text, em)
    }

    /// Horizontal text at (x, y).
    pub fn text(
        &self,
        text: &str,
        (x, y): (f64, f64),
        em: f64,
        color: RGBAColor,
        anchor: Anchor,
        baseline: Baseline,
    ) -> Result<(), PlotError> {
        self.text_impl(text, (x, y), em, color, anchor, baseline, false)
    }

    /// Text reading upwards (a y-axis title); `baseline` is measured along x.
    pub fn text_up(
        &self,
        text: &str,
        (x, y): (f64, f64),
        em: f64,
        color: RGBAColor,
        anchor: Anchor,
        baseline: Baseline,
    ) -> Result<(), PlotError> {
        self.text_impl(text, (x, y), em, color, anchor, baseline, true)
    }

    #[allow(clippy::too_many_arguments)]
    fn text_impl(
        &self,
        text: &str,
        (x, y): (f64, f64),
        em: f64,
        color: RGBAColor,
        anchor: Anchor,
        baseline: Baseline,
        up: bool,
    ) -> Result<(), PlotError> {
        if text.is_empty() {
            return Ok(());
        }
        // Distance from the reference point to the baseline, towards the
        // glyphs' bottom (down for horizontal text, right for upward text).
        let to_baseline = match baseline {
            Baseline::Alphabetic => 0.0,
            Baseline::Central => CAP_HEIGHT / 2.0 * em,
            Baseline::Hanging => CAP_HEIGHT * em,
        };
        if self.raster {
            return self.raster_text(text, (x, y), em, color, anchor, to_baseline, up);
        }
        // SVG: plotters writes `font-size = size / 1.24` and, for a
        // top-anchored text, `dy = 0.76em`, which puts the baseline 0.76 em
        // below the anchor.
        let h = match anchor {
            Anchor::Start => HPos::Left,
            Anchor::Middle => HPos::Center,
            Anchor::End => HPos::Right,
        };
        let mut style = TextStyle::from((super::SVG_FONT_FAMILY, em * 1.24).into_font())
            .color(&color)
            .pos(Pos::new(h, VPos::Top));
        let pos = if up {
            style = style.transform(FontTransform::Rotate270);
            (self.px(x + to_baseline - 0.76 * em), self.px(y))
        } else {
            (self.px(x), self.px(y + to_baseline - 0.76 * em))
        };
        self.area
            .draw(&Text::new(text.to_string(), pos, style))
            .map_err(draw_err)
    }

    /// Bitmap text, rasterised here with sub-pixel glyph positions (plotters'
    /// own ab_glyph path rounds every glyph to whole pixels, which shows as
    /// uneven letter spacing).
    #[allow(clippy::too_many_arguments)]
    fn raster_text(
        &self,
        text: &str,
        (x, y): (f64, f64),
        em: f64,
        color: RGBAColor,
        anchor: Anchor,
        to_baseline: f64,
        up: bool,
    ) -> Result<(), PlotError> {
        let font = font().ok_or(PlotError::Font)?;
        let scale = PxScale::from((em * self.scale * AB_SIZE_PER_EM) as f32);
        let sf = font.as_scaled(scale);
        let (glyphs, width) = layout(&sf, text, 0.0);
        let shift = match anchor {
            Anchor::Start => 0.0,
            Anchor::Middle => -f64::from(width) / 2.0,
            Anchor::End => -f64::from(width),
        };
        // Device position of the text origin on the baseline.
        let (ox, oy) = if up {
            ((x + to_baseline) * self.scale, y * self.scale - shift)
        } else {
            (x * self.scale + shift, (y + to_baseline) * self.scale)
        };
        let mut result = Ok(());
        for mut g in glyphs {
            // Lay out along +x from the origin's fractional part, then map.
            let (fx, fy) = if up {
                (oy.fract(), ox.fract())
            } else {
                (ox.fract(), oy.fract())
            };
            g.position = ab_glyph::point(g.position.x + fx as f32, fy as f32);
            let Some(outline) = font.outline_glyph(g) else {
                continue;
            };
            let b = outline.px_bounds();
            let (bx, by) = (b.min.x as i32, b.min.y as i32);
            let (ix, iy) = (ox.floor() as i32, oy.floor() as i32);
            outline.draw(|gx, gy, cov| {
                if cov <= 0.0 || result.is_err() {
                    return;
                }
                let (vx, vy) = (bx + gx as i32, by + gy as i32);
                let p = if up {
                    (ix + vy, iy - vx)
                } else {
                    (ix + vx, iy + vy)
                };
                let c = RGBAColor(color.0, color.1, color.2, color.3 * f64::from(cov.min(1.0)));
                if let Err(e) = self.area.draw_pixel(p, &c) {
                    result = Err(draw_err(e));
                }
            });
        }
        result
    }
}

/// Width of `text` at `em` logical units per em (the font's advances and
/// kerning, the same on every backend), for layout before drawing.
pub fn text_width(text: &str, em: f64) -> f64 {
    let Some(font) = font() else {
        return 0.55 * em * text.chars().count() as f64;
    };
    let sf = font.as_scaled(PxScale::from((1000.0 * AB_SIZE_PER_EM) as f32));
    f64::from(layout(&sf, text, 0.0).1) / 1000.0 * em
}

/// The embedded font, parsed once.
fn font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(super::FONT).ok())
        .as_ref()
}

/// Glyphs of `text` placed along the baseline from x0 (kerning applied), and
/// the total advance.
fn layout<F: Font>(sf: &ab_glyph::PxScaleFont<&F>, text: &str, x0: f32) -> (Vec<Glyph>, f32) {
    let mut caret = x0;
    let mut prev: Option<GlyphId> = None;
    let mut out = Vec::with_capacity(text.len());
    for ch in text.chars() {
        let id = sf.glyph_id(ch);
        if let Some(p) = prev {
            caret += sf.kern(p, id);
        }
        out.push(id.with_scale_and_position(sf.scale(), ab_glyph::point(caret, 0.0)));
        caret += sf.h_advance(id);
        prev = Some(id);
    }
    (out, caret - x0)
}
