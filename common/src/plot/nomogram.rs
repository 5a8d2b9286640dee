//! Nomogram in the layout of R `rms::plot.nomogram`: a "Points" scale on top
//! (0-100 for the factor with the widest effect), one axis per factor whose
//! ticks sit at the points each value earns, a "Total Points" scale, and one
//! axis per predicted t-year survival whose ticks sit at the total points that
//! give that probability. A reader draws a vertical line from each factor's
//! value to the Points scale, adds the points, and reads the survival below.

use super::axis::{LABEL_EM, TICK_EM, TITLE_EM, black, grey};
use super::canvas::{Anchor, Baseline, Canvas};
use super::{Figure, PlotError, format_tick, pretty_breaks};
use plotters::prelude::*;

/// A tick: its position (points for factors, total points for outcomes) and
/// its label (the factor value, or the probability).
#[derive(Clone, Debug, PartialEq)]
pub struct NomogramTick {
    pub position: f64,
    pub label: String,
}

/// One axis: a factor or an outcome.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NomogramAxis {
    pub label: String,
    pub ticks: Vec<NomogramTick>,
}

/// A nomogram figure.
#[derive(Clone, Debug, PartialEq)]
pub struct NomogramPlot {
    pub title: Option<String>,
    /// Top of the points scale (rms: 100).
    pub points_max: f64,
    pub factors: Vec<NomogramAxis>,
    /// Range of the total-points scale; its ticks are chosen automatically.
    pub total_points: (f64, f64),
    /// Predicted survival axes (positions in total points).
    pub outcomes: Vec<NomogramAxis>,
    pub width: u32,
}

impl Default for NomogramPlot {
    fn default() -> Self {
        NomogramPlot {
            title: None,
            points_max: 100.0,
            factors: Vec::new(),
            total_points: (0.0, 100.0),
            outcomes: Vec::new(),
            width: 860,
        }
    }
}

const ROW_H: f64 = 46.0;

impl NomogramPlot {
    fn validate(&self) -> Result<(), PlotError> {
        if self.factors.is_empty() {
            return Err(PlotError::Invalid(
                "a nomogram needs at least one factor".into(),
            ));
        }
        if !(self.points_max.is_finite() && self.points_max > 0.0) {
            return Err(PlotError::Invalid(format!(
                "points_max {} must be positive",
                self.points_max
            )));
        }
        let (a, b) = self.total_points;
        if !(a.is_finite() && b.is_finite() && b > a) {
            return Err(PlotError::Invalid(format!(
                "total points range ({a}, {b}) is empty"
            )));
        }
        for axis in self.factors.iter().chain(&self.outcomes) {
            if let Some(t) = axis.ticks.iter().find(|t| !t.position.is_finite()) {
                return Err(PlotError::Invalid(format!(
                    "axis {}: tick {} has position {}",
                    axis.label, t.label, t.position
                )));
            }
        }
        Ok(())
    }
}

/// Draw one axis: a line over the ticks' span, ticks, and labels above,
/// alternating below where neighbours would overlap (rms does the same).
fn draw_axis<DB: DrawingBackend>(
    c: &Canvas<'_, DB>,
    y: f64,
    ticks: &[(f64, String)],
    line_span: Option<(f64, f64)>,
) -> Result<(), PlotError> {
    let (a, b) = line_span.unwrap_or_else(|| {
        ticks
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (x, _)| {
                (a.min(*x), b.max(*x))
            })
    });
    if a.is_finite() && b > a {
        c.line(&[(a, y), (b, y)], black(), 1.0)?;
    }
    let mut sorted: Vec<&(f64, String)> = ticks.iter().collect();
    sorted.sort_by(|p, q| p.0.total_cmp(&q.0));
    let (mut last_above, mut last_below) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    for (x, label) in sorted {
        c.line(&[(*x, y - 5.0), (*x, y)], black(), 1.0)?;
        let half = c.text_width(label, TICK_EM) / 2.0;
        if x - half >= last_above + 4.0 {
            c.text(
                label,
                (*x, y - 8.0),
                TICK_EM,
                black(),
                Anchor::Middle,
                Baseline::Alphabetic,
            )?;
            last_above = x + half;
        } else if x - half >= last_below + 4.0 {
            c.line(&[(*x, y), (*x, y + 4.0)], black(), 1.0)?;
            c.text(
                label,
                (*x, y + 7.0),
                TICK_EM,
                black(),
                Anchor::Middle,
                Baseline::Hanging,
            )?;
            last_below = x + half;
        } else {
            tracing::debug!(label = %label, "nomogram tick label left out (no room)");
        }
    }
    Ok(())
}

impl Figure for NomogramPlot {
    fn size(&self) -> (u32, u32) {
        let title = if self.title.is_some() { 34.0 } else { 0.0 };
        let rows = 2 + self.factors.len() + self.outcomes.len();
        (
            self.width,
            (title + 30.0 + rows as f64 * ROW_H + 16.0).ceil() as u32,
        )
    }

    fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<(), PlotError> {
        self.validate()?;
        let w = f64::from(self.width);
        let label_w = self
            .factors
            .iter()
            .chain(&self.outcomes)
            .map(|a| c.text_width(&a.label, LABEL_EM))
            .fold(c.text_width("Total Points", LABEL_EM), f64::max);
        let left = 20.0 + label_w + 24.0;
        let right = w - 36.0;
        let px = |p: f64| left + p / self.points_max * (right - left);
        let (t0, t1) = self.total_points;
        let tx = |t: f64| left + (t - t0) / (t1 - t0) * (right - left);

        let mut y = 16.0;
        if let Some(t) = &self.title {
            c.text(
                t,
                (20.0, y),
                TITLE_EM,
                black(),
                Anchor::Start,
                Baseline::Hanging,
            )?;
            y += 34.0;
        }
        let row_y = |k: usize| y + 30.0 + ROW_H * k as f64;
        let label_at = |text: &str, yy: f64| {
            c.text(
                text,
                (20.0, yy),
                LABEL_EM,
                black(),
                Anchor::Start,
                Baseline::Central,
            )
        };

        // Points scale with minor ticks every tenth of a major step.
        let py = row_y(0);
        label_at("Points", py)?;
        let major = pretty_breaks(0.0, self.points_max, 10);
        let major: Vec<f64> = major
            .into_iter()
            .filter(|&v| v <= self.points_max + 1e-9)
            .collect();
        let step = if major.len() >= 2 {
            major[1] - major[0]
        } else {
            self.points_max
        };
        let minor_n = (self.points_max / (step / 2.0)).round() as usize;
        for k in 0..=minor_n {
            let x = px(k as f64 * step / 2.0);
            c.line(&[(x, py - 3.0), (x, py)], black(), 1.0)?;
        }
        let pticks: Vec<(f64, String)> = major.iter().map(|&v| (px(v), format_tick(v))).collect();
        draw_axis(c, py, &pticks, Some((px(0.0), px(self.points_max))))?;

        // Light vertical guides from the points scale, as a reading aid.
        let bottom = row_y(1 + self.factors.len() + self.outcomes.len());
        for &(x, _) in &pticks {
            c.line(&[(x, py + 2.0), (x, bottom - ROW_H + 12.0)], grey(232), 0.6)?;
        }

        for (k, f) in self.factors.iter().enumerate() {
            let yy = row_y(k + 1);
            label_at(&f.label, yy)?;
            let ticks: Vec<(f64, String)> = f
                .ticks
                .iter()
                .map(|t| (px(t.position), t.label.clone()))
                .collect();
            draw_axis(c, yy, &ticks, None)?;
        }

        let ty = row_y(self.factors.len() + 1);
        label_at("Total Points", ty)?;
        let tb = pretty_breaks(t0, t1, 10);
        let tticks: Vec<(f64, String)> = tb
            .into_iter()
            .filter(|&v| v >= t0 - 1e-9 && v <= t1 + 1e-9)
            .map(|v| (tx(v), format_tick(v)))
            .collect();
        draw_axis(c, ty, &tticks, Some((tx(t0), tx(t1))))?;

        for (k, o) in self.outcomes.iter().enumerate() {
            let yy = row_y(self.factors.len() + 2 + k);
            label_at(&o.label, yy)?;
            let ticks: Vec<(f64, String)> = o
                .ticks
                .iter()
                .filter(|t| t.position >= t0 - 1e-9 && t.position <= t1 + 1e-9)
                .map(|t| (tx(t.position), t.label.clone()))
                .collect();
            draw_axis(c, yy, &ticks, None)?;
        }
        Ok(())
    }
}
