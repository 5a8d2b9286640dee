//! Calibration plot: predicted against observed (Kaplan-Meier) t-year
//! survival by risk group, with the observed value's 95% CI and the diagonal
//! of perfect calibration, one series per cohort.

use super::axis::{LABEL_EM, Scale, TICK_EM, TITLE_EM, black, bottom_axis_labels, grey, left_axis};
use super::canvas::{Anchor, Baseline, Canvas};
use super::{Figure, PlotError, series_color};
use plotters::prelude::*;

/// One risk group: mean predicted survival and the KM estimate with its CI.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CalibrationPoint {
    pub predicted: f64,
    pub observed: f64,
    /// CI of the observed value (NaN to leave the bar out).
    pub lower: f64,
    pub upper: f64,
}

/// The points of one cohort.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CalibrationSeries {
    pub label: String,
    pub points: Vec<CalibrationPoint>,
}

/// A calibration figure.
#[derive(Clone, Debug, PartialEq)]
pub struct CalibrationPlot {
    pub title: Option<String>,
    pub series: Vec<CalibrationSeries>,
    pub x_label: String,
    pub y_label: String,
    /// Range of both axes (default: the data's, widened to tenths, within [0, 1]).
    pub limits: Option<(f64, f64)>,
    pub width: u32,
}

impl Default for CalibrationPlot {
    fn default() -> Self {
        CalibrationPlot {
            title: None,
            series: Vec::new(),
            x_label: "Predicted survival probability".into(),
            y_label: "Observed survival probability (Kaplan-Meier)".into(),
            limits: None,
            width: 600,
        }
    }
}

impl CalibrationPlot {
    fn limits(&self) -> Result<(f64, f64), PlotError> {
        if let Some((a, b)) = self.limits {
            if a.is_finite() && b.is_finite() && b > a {
                return Ok((a, b));
            }
            return Err(PlotError::Invalid(format!("limits ({a}, {b}) are empty")));
        }
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for p in self.series.iter().flat_map(|s| &s.points) {
            for v in [p.predicted, p.observed, p.lower, p.upper] {
                if v.is_finite() {
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
        }
        let lo = ((lo * 10.0 - 1e-9).floor() / 10.0).clamp(0.0, 0.9);
        let hi = ((hi * 10.0 + 1e-9).ceil() / 10.0).clamp(lo + 0.1, 1.0);
        Ok((lo, hi))
    }

    fn validate(&self) -> Result<(), PlotError> {
        if self.series.iter().all(|s| s.points.is_empty()) {
            return Err(PlotError::Invalid("a calibration plot needs points".into()));
        }
        for s in &self.series {
            for (i, p) in s.points.iter().enumerate() {
                if !(p.predicted.is_finite() && p.observed.is_finite()) {
                    return Err(PlotError::Invalid(format!(
                        "series {}: point {i} has predicted {} and observed {}",
                        s.label, p.predicted, p.observed
                    )));
                }
            }
        }
        Ok(())
    }
}

impl Figure for CalibrationPlot {
    fn size(&self) -> (u32, u32) {
        let title = if self.title.is_some() { 30.0 } else { 0.0 };
        // A square panel: width - margins.
        let panel = f64::from(self.width) - 96.0 - 24.0;
        (self.width, (title + 24.0 + panel + 70.0).ceil() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<(), PlotError> {
        self.validate()?;
        if self.width < 300 {
            return Err(PlotError::Invalid(format!("width {} < 300", self.width)));
        }
        let (lo, hi) = self.limits()?;
        let left = 96.0;
        let right = f64::from(self.width) - 24.0;
        let mut top = 24.0;
        if let Some(t) = &self.title {
            c.text(
                t,
                (left, 14.0),
                TITLE_EM,
                black(),
                Anchor::Start,
                Baseline::Hanging,
            )?;
            top += 30.0;
        }
        let bottom = top + (right - left);
        let xs = Scale::linear(lo, hi, left, right);
        let ys = Scale::linear(lo, hi, bottom, top);

        c.dashed(
            (xs.map(lo), ys.map(lo)),
            (xs.map(hi), ys.map(hi)),
            grey(120),
            1.0,
            6.0,
            4.0,
        )?;
        for (k, s) in self.series.iter().enumerate() {
            let col = series_color(k).to_rgba();
            let mut pts: Vec<&CalibrationPoint> = s.points.iter().collect();
            pts.sort_by(|a, b| a.predicted.total_cmp(&b.predicted));
            let path: Vec<(f64, f64)> = pts
                .iter()
                .map(|p| (xs.map(p.predicted), ys.map(p.observed)))
                .collect();
            c.line(&path, col, 1.4)?;
            for p in &pts {
                let x = xs.map(p.predicted);
                if p.lower.is_finite() && p.upper.is_finite() {
                    let (a, b) = (ys.map(p.lower.max(lo)), ys.map(p.upper.min(hi)));
                    c.line(&[(x, a), (x, b)], col, 1.3)?;
                    c.line(&[(x - 4.0, a), (x + 4.0, a)], col, 1.3)?;
                    c.line(&[(x - 4.0, b), (x + 4.0, b)], col, 1.3)?;
                }
                c.dot((x, ys.map(p.observed)), 4.0, col)?;
            }
        }

        let step = if hi - lo > 0.5 { 0.2 } else { 0.1 };
        let first = (lo / step - 1e-9).ceil() as i64;
        let last = (hi / step + 1e-9).floor() as i64;
        let ticks: Vec<(f64, String)> = (first..=last)
            .map(|k| k as f64 * step)
            .map(|v| (v, format!("{v:.1}")))
            .collect();
        left_axis(c, &ys, left, &ticks)?;
        bottom_axis_labels(c, &xs, bottom, &ticks)?;
        c.text(
            &self.x_label,
            ((left + right) / 2.0, bottom + 44.0),
            LABEL_EM,
            black(),
            Anchor::Middle,
            Baseline::Alphabetic,
        )?;
        c.text_up(
            &self.y_label,
            (left - 52.0, (top + bottom) / 2.0),
            LABEL_EM,
            black(),
            Anchor::Middle,
            Baseline::Alphabetic,
        )?;

        // Legend in the lower right, inside the panel (below the diagonal).
        let named: Vec<(usize, &CalibrationSeries)> = self
            .series
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.label.is_empty())
            .collect();
        for (row, (k, s)) in named.iter().enumerate() {
            let y = bottom - 18.0 - (named.len() - 1 - row) as f64 * 20.0;
            let x = right - 14.0 - c.text_width(&s.label, TICK_EM);
            let col = series_color(*k).to_rgba();
            c.line(&[(x - 30.0, y), (x - 8.0, y)], col, 1.4)?;
            c.dot((x - 19.0, y), 4.0, col)?;
            c.text(
                &s.label,
                (x, y),
                TICK_EM,
                black(),
                Anchor::Start,
                Baseline::Central,
            )?;
        }
        Ok(())
    }
}
