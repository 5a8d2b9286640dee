//! Forest plot of hazard ratios: one row per subgroup or covariate with its
//! label, optional patient count, the HR as a square with its 95% CI on a log
//! axis with the null line at 1, and the numbers "HR (95% CI)" and P printed
//! on the right, as in the subgroup figures of clinical papers.

use super::axis::{LABEL_EM, Scale, TICK_EM, TITLE_EM, black, bottom_axis_labels, grey};
use super::canvas::{Anchor, Baseline, Canvas};
use super::{Figure, PlotError, format_tick, series_color};
use plotters::prelude::*;

/// A hazard ratio with its confidence limits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HrCi {
    pub hr: f64,
    pub lower: f64,
    pub upper: f64,
}

/// One row: a header row has no `hr`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ForestRow {
    pub label: String,
    /// Indentation level of the label (0 for headers, 1 for their rows).
    pub indent: u8,
    /// Text of the count column (e.g. "878" or "45/433"), if shown.
    pub n: Option<String>,
    pub hr: Option<HrCi>,
    pub p: Option<f64>,
}

/// A forest plot.
#[derive(Clone, Debug, PartialEq)]
pub struct ForestPlot {
    pub title: Option<String>,
    pub rows: Vec<ForestRow>,
    /// Title of the label column.
    pub label_header: String,
    /// Title of the count column (shown when any row has `n`).
    pub n_header: String,
    pub x_label: String,
    /// Captions under the axis, left and right of HR = 1.
    pub left_caption: Option<String>,
    pub right_caption: Option<String>,
    /// Axis limits (default: the CIs' range, widened to nice values).
    pub x_limits: Option<(f64, f64)>,
    /// A line under the figure, e.g. "P for interaction = 0.04".
    pub footnote: Option<String>,
    pub width: u32,
}

impl Default for ForestPlot {
    fn default() -> Self {
        ForestPlot {
            title: None,
            rows: Vec::new(),
            label_header: "Subgroup".into(),
            n_header: "No.".into(),
            x_label: "Hazard ratio (95% CI)".into(),
            left_caption: None,
            right_caption: None,
            x_limits: None,
            footnote: None,
            width: 820,
        }
    }
}

const ROW_H: f64 = 26.0;
const PANEL_W: f64 = 300.0;

/// Log-axis ticks from the 1-2-5 sequence inside [lo, hi].
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let (e0, e1) = (lo.log10().floor() as i32 - 1, hi.log10().ceil() as i32 + 1);
    for e in e0..=e1 {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powi(e);
            if v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9) {
                out.push(v);
            }
        }
    }
    if out.len() > 7 {
        // Too dense: keep the powers of ten and 1's neighbours.
        out.retain(|&v| {
            let m = v / 10f64.powf(v.log10().floor());
            (m - 1.0).abs() < 1e-9 || (m - 5.0).abs() < 1e-9
        });
    }
    out
}

fn fmt_hr(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        super::format_p(p).trim_start_matches("p = ").to_string()
    }
}

impl ForestPlot {
    fn limits(&self) -> Result<(f64, f64), PlotError> {
        if let Some((lo, hi)) = self.x_limits {
            if lo > 0.0 && hi > lo && hi.is_finite() {
                return Ok((lo, hi));
            }
            return Err(PlotError::Invalid(format!(
                "x_limits ({lo}, {hi}) must satisfy 0 < lo < hi"
            )));
        }
        let (mut lo, mut hi) = (1.0f64, 1.0f64);
        for r in &self.rows {
            if let Some(h) = r.hr {
                lo = lo.min(h.lower).min(h.hr);
                hi = hi.max(h.upper).max(h.hr);
            }
        }
        // Widen to a 1-2-5 value on each side.
        let down = |v: f64| {
            let e = 10f64.powf(v.log10().floor());
            [5.0, 2.0, 1.0]
                .iter()
                .map(|m| m * e)
                .find(|&c| c <= v)
                .unwrap_or(e)
        };
        let up = |v: f64| {
            let e = 10f64.powf(v.log10().floor());
            [1.0, 2.0, 5.0, 10.0]
                .iter()
                .map(|m| m * e)
                .find(|&c| c >= v)
                .unwrap_or(10.0 * e)
        };
        Ok((down(lo), up(hi)))
    }

    fn validate(&self) -> Result<(), PlotError> {
        if self.rows.is_empty() {
            return Err(PlotError::Invalid("a forest plot needs rows".into()));
        }
        for (i, r) in self.rows.iter().enumerate() {
            if let Some(h) = r.hr {
                let ok = [h.hr, h.lower, h.upper]
                    .iter()
                    .all(|v| v.is_finite() && *v > 0.0)
                    && h.lower <= h.hr
                    && h.hr <= h.upper;
                if !ok {
                    return Err(PlotError::Invalid(format!(
                        "row {i} ({}): HR {} with CI ({}, {}) is not positive and ordered",
                        r.label, h.hr, h.lower, h.upper
                    )));
                }
            }
        }
        Ok(())
    }
}

impl ForestPlot {
    /// Offsets below the axis line of the captions and of the last text line
    /// (the axis title at 42, then captions, then the footnote).
    fn below_axis(&self) -> (f64, f64) {
        let has_caption = self.left_caption.is_some() || self.right_caption.is_some();
        let caption = 60.0;
        let foot = if has_caption { 84.0 } else { 66.0 };
        let last = if self.footnote.is_some() {
            foot
        } else if has_caption {
            caption
        } else {
            42.0
        };
        (caption, last)
    }
}

impl Figure for ForestPlot {
    fn size(&self) -> (u32, u32) {
        let title = if self.title.is_some() { 30.0 } else { 0.0 };
        // rows_top + rows + rule + axis, then the lowest text line and a margin.
        let axis_y = 20.0 + title + 22.0 + self.rows.len() as f64 * ROW_H + 10.0;
        let (_, last) = self.below_axis();
        (self.width, (axis_y + last + 14.0).ceil() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<(), PlotError> {
        self.validate()?;
        let (lo, hi) = self.limits()?;
        let w = f64::from(self.width);
        let show_n = self.rows.iter().any(|r| r.n.is_some());
        let label_w = self
            .rows
            .iter()
            .map(|r| c.text_width(&r.label, TICK_EM) + 16.0 * f64::from(r.indent))
            .fold(c.text_width(&self.label_header, TICK_EM), f64::max);
        let x_label = 16.0;
        let x_n = x_label + label_w + 24.0;
        let n_w = if show_n {
            self.rows
                .iter()
                .filter_map(|r| r.n.as_ref().map(|s| c.text_width(s, TICK_EM)))
                .fold(c.text_width(&self.n_header, TICK_EM), f64::max)
                + 24.0
        } else {
            0.0
        };
        let panel_l = x_n + n_w;
        let panel_w = PANEL_W.min(w - panel_l - 200.0).max(120.0);
        let panel_r = panel_l + panel_w;
        let x_hr = panel_r + 24.0;
        let x_p = w - 16.0;

        let mut y = 20.0;
        if let Some(t) = &self.title {
            c.text(
                t,
                (x_label, y),
                TITLE_EM,
                black(),
                Anchor::Start,
                Baseline::Hanging,
            )?;
            y += 30.0;
        }
        // Column headers and a rule under them.
        let head_y = y + 8.0;
        c.text(
            &self.label_header,
            (x_label, head_y),
            TICK_EM,
            black(),
            Anchor::Start,
            Baseline::Central,
        )?;
        if show_n {
            c.text(
                &self.n_header,
                (x_n, head_y),
                TICK_EM,
                black(),
                Anchor::Start,
                Baseline::Central,
            )?;
        }
        c.text(
            "HR (95% CI)",
            (x_hr, head_y),
            TICK_EM,
            black(),
            Anchor::Start,
            Baseline::Central,
        )?;
        c.text(
            "P",
            (x_p, head_y),
            TICK_EM,
            black(),
            Anchor::End,
            Baseline::Central,
        )?;
        let rows_top = y + 22.0;
        c.line(&[(x_label, rows_top), (x_p, rows_top)], black(), 0.8)?;

        let xs = Scale::log(lo, hi, panel_l, panel_r);
        let rows_bottom = rows_top + self.rows.len() as f64 * ROW_H + 6.0;
        // Null line at HR = 1.
        if lo < 1.0 && hi > 1.0 {
            let x1 = xs.map(1.0);
            c.dashed(
                (x1, rows_top + 4.0),
                (x1, rows_bottom),
                grey(110),
                1.0,
                4.0,
                3.0,
            )?;
        }
        let col = series_color(0).to_rgba();
        for (i, r) in self.rows.iter().enumerate() {
            let yc = rows_top + ROW_H * (i as f64 + 0.5) + 3.0;
            c.text(
                &r.label,
                (x_label + 16.0 * f64::from(r.indent), yc),
                TICK_EM,
                black(),
                Anchor::Start,
                Baseline::Central,
            )?;
            if let Some(n) = &r.n {
                c.text(
                    n,
                    (x_n, yc),
                    TICK_EM,
                    black(),
                    Anchor::Start,
                    Baseline::Central,
                )?;
            }
            if let Some(h) = r.hr {
                let (a, b) = (xs.map(h.lower.max(lo)), xs.map(h.upper.min(hi)));
                c.line(&[(a, yc), (b, yc)], col, 1.6)?;
                // Caps, or arrows where the CI leaves the axis.
                for (x, clipped, dir) in [(a, h.lower < lo, -1.0), (b, h.upper > hi, 1.0)] {
                    if clipped {
                        c.polygon(&[(x + dir * 6.0, yc), (x, yc - 4.0), (x, yc + 4.0)], col)?;
                    } else {
                        c.line(&[(x, yc - 4.0), (x, yc + 4.0)], col, 1.6)?;
                    }
                }
                if h.hr >= lo && h.hr <= hi {
                    let xm = xs.map(h.hr);
                    c.rect((xm - 4.5, yc - 4.5), (xm + 4.5, yc + 4.5), col, true, 1.0)?;
                }
                let txt = format!(
                    "{} ({}\u{2013}{})",
                    fmt_hr(h.hr),
                    fmt_hr(h.lower),
                    fmt_hr(h.upper)
                );
                c.text(
                    &txt,
                    (x_hr, yc),
                    TICK_EM,
                    black(),
                    Anchor::Start,
                    Baseline::Central,
                )?;
            }
            if let Some(p) = r.p {
                c.text(
                    &fmt_p(p),
                    (x_p, yc),
                    TICK_EM,
                    black(),
                    Anchor::End,
                    Baseline::Central,
                )?;
            }
        }
        c.line(&[(x_label, rows_bottom), (x_p, rows_bottom)], black(), 0.8)?;
        let ticks: Vec<(f64, String)> = log_ticks(lo, hi)
            .into_iter()
            .map(|v| (v, format_tick(v)))
            .collect();
        let axis_y = rows_bottom + 4.0;
        bottom_axis_labels(c, &xs, axis_y, &ticks)?;
        c.text(
            &self.x_label,
            ((panel_l + panel_r) / 2.0, axis_y + 42.0),
            LABEL_EM,
            black(),
            Anchor::Middle,
            Baseline::Alphabetic,
        )?;
        let x1 = xs.map(1.0f64.clamp(lo, hi));
        if let Some(t) = &self.left_caption {
            c.text(
                &format!("\u{2190} {t}"),
                (x1 - 6.0, axis_y + self.below_axis().0),
                TICK_EM,
                grey(60),
                Anchor::End,
                Baseline::Alphabetic,
            )?;
        }
        if let Some(t) = &self.right_caption {
            c.text(
                &format!("{t} \u{2192}"),
                (x1 + 6.0, axis_y + self.below_axis().0),
                TICK_EM,
                grey(60),
                Anchor::Start,
                Baseline::Alphabetic,
            )?;
        }
        if let Some(t) = &self.footnote {
            c.text(
                t,
                (x_label, axis_y + self.below_axis().1),
                TICK_EM,
                black(),
                Anchor::Start,
                Baseline::Alphabetic,
            )?;
        }
        Ok(())
    }
}
