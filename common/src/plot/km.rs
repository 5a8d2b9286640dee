//! Kaplan-Meier curves with confidence bands, censoring marks, the log-rank
//! p-value and a number-at-risk table aligned with the time axis, the way
//! clinical papers show them (survminer's `ggsurvplot(risk.table = TRUE)`).

use super::axis::{LABEL_EM, Scale, TICK_EM, TITLE_EM, black, bottom_axis, left_axis};
use super::canvas::{Anchor, Baseline, Canvas, text_width};
use super::{Figure, PlotError, check_finite, format_p, pretty_breaks, series_color};
use crate::survival::km::KmCurve;
use plotters::prelude::*;

/// One Kaplan-Meier curve, as R's `summary(survfit(...), censored = TRUE)`
/// gives it: one entry per distinct time (event or censoring).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KmCurveSeries {
    pub label: String,
    /// Distinct times, ascending.
    pub time: Vec<f64>,
    /// S(t) just after each time.
    pub surv: Vec<f64>,
    /// Lower / upper confidence limits (NaN where undefined, e.g. S = 0).
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
    /// Times of censored observations (drawn as "+" on the curve).
    pub censor_times: Vec<f64>,
    /// Number at risk at each time (#{T >= time}); empty to leave this curve
    /// out of the number-at-risk table.
    pub at_risk: Vec<usize>,
}

impl KmCurveSeries {
    /// The figure's view of a Kaplan-Meier estimate from
    /// [`crate::survival::km`]: its rows, limits, numbers at risk, and a
    /// censoring mark at every time with a censored subject.
    pub fn from_curve(label: impl Into<String>, curve: &KmCurve) -> Self {
        KmCurveSeries {
            label: label.into(),
            time: curve.time.clone(),
            surv: curve.surv.clone(),
            lower: curve.lower.clone(),
            upper: curve.upper.clone(),
            censor_times: curve
                .time
                .iter()
                .zip(&curve.n_censor)
                .filter(|(_, c)| **c > 0)
                .map(|(t, _)| *t)
                .collect(),
            at_risk: curve.n_risk.clone(),
        }
    }

    /// S(t) of the step function (1 before the first time).
    pub fn surv_at(&self, t: f64) -> f64 {
        let k = self.time.partition_point(|&x| x <= t);
        if k == 0 { 1.0 } else { self.surv[k - 1] }
    }

    /// Number at risk at time t: at_risk of the first time >= t, 0 after the
    /// last one.
    pub fn at_risk_at(&self, t: f64) -> usize {
        let k = self.time.partition_point(|&x| x < t);
        self.at_risk.get(k).copied().unwrap_or(0)
    }

    fn validate(&self, i: usize) -> Result<(), PlotError> {
        let n = self.time.len();
        let name = format!("curve {i} ({})", self.label);
        if n == 0 {
            return Err(PlotError::Invalid(format!("{name} has no points")));
        }
        for (what, len) in [
            ("surv", self.surv.len()),
            ("lower", self.lower.len()),
            ("upper", self.upper.len()),
        ] {
            if len != n {
                return Err(PlotError::Invalid(format!(
                    "{name}: {what} has {len} values, time has {n}"
                )));
            }
        }
        if !self.at_risk.is_empty() && self.at_risk.len() != n {
            return Err(PlotError::Invalid(format!(
                "{name}: at_risk has {} values, time has {n}",
                self.at_risk.len()
            )));
        }
        check_finite(&format!("{name} time"), &self.time)?;
        check_finite(&format!("{name} surv"), &self.surv)?;
        check_finite(&format!("{name} censor_times"), &self.censor_times)?;
        if self.time.windows(2).any(|w| w[1] < w[0]) {
            return Err(PlotError::Invalid(format!(
                "{name}: times are not ascending"
            )));
        }
        Ok(())
    }
}

/// A Kaplan-Meier figure.
#[derive(Clone, Debug, PartialEq)]
pub struct KmPlot {
    pub curves: Vec<KmCurveSeries>,
    pub title: Option<String>,
    pub x_label: String,
    pub y_label: String,
    /// End of the time axis (default: the largest time, rounded up to a break).
    pub x_max: Option<f64>,
    /// Time-axis breaks, also the columns of the number-at-risk table.
    pub x_breaks: Option<Vec<f64>>,
    /// Log-rank p-value, printed in the lower left of the plot.
    pub p_value: Option<f64>,
    /// Further lines under the p-value (e.g. "HR 0.62 (95% CI 0.55-0.70)").
    pub annotations: Vec<String>,
    pub show_ci: bool,
    pub show_censor: bool,
    pub risk_table: bool,
    /// Width in logical units (SVG pixels); the height follows.
    pub width: u32,
}

impl Default for KmPlot {
    fn default() -> Self {
        KmPlot {
            curves: Vec::new(),
            title: None,
            x_label: "Time".into(),
            y_label: "Survival probability".into(),
            x_max: None,
            x_breaks: None,
            p_value: None,
            annotations: Vec::new(),
            show_ci: true,
            show_censor: true,
            risk_table: true,
            width: 720,
        }
    }
}

const PANEL_H: f64 = 380.0;
const ROW_H: f64 = 21.0;
const LEGEND_ROW_H: f64 = 20.0;

struct Layout {
    left: f64,
    right: f64,
    legend_y: f64,
    top: f64,
    bottom: f64,
    table_top: f64,
    height: f64,
}

impl KmPlot {
    fn table_rows(&self) -> usize {
        if self.risk_table {
            self.curves.iter().filter(|c| !c.at_risk.is_empty()).count()
        } else {
            0
        }
    }

    fn layout(&self, label_width: f64) -> Layout {
        let left = (label_width + 40.0).max(78.0);
        let title_h = if self.title.is_some() { 30.0 } else { 0.0 };
        let legend_y = 14.0 + title_h + 8.0;
        let legend_rows = self.legend_positions(left).last().map_or(1, |p| p.1 + 1);
        let top = legend_y + 24.0 + (legend_rows - 1) as f64 * LEGEND_ROW_H;
        let bottom = top + PANEL_H;
        let table_top = bottom + 62.0;
        let rows = self.table_rows();
        let height = if rows > 0 {
            table_top + 26.0 + rows as f64 * ROW_H + 12.0
        } else {
            bottom + 60.0
        };
        Layout {
            left,
            right: f64::from(self.width) - 24.0,
            legend_y,
            top,
            bottom,
            table_top,
            height,
        }
    }

    fn breaks(&self) -> (f64, Vec<f64>) {
        let t_max = self
            .curves
            .iter()
            .flat_map(|c| c.time.iter().chain(&c.censor_times))
            .fold(0.0f64, |a, &b| a.max(b));
        match (&self.x_breaks, self.x_max) {
            (Some(b), Some(m)) => (
                m,
                b.iter()
                    .copied()
                    .filter(|&v| (0.0..=m * (1.0 + 1e-9)).contains(&v))
                    .collect(),
            ),
            (Some(b), None) => (b.iter().fold(t_max, |a, &v| a.max(v)), b.clone()),
            (None, m) => {
                let hi = m.unwrap_or(t_max).max(1e-12);
                let b = pretty_breaks(0.0, hi, 6);
                let b: Vec<f64> = b.into_iter().filter(|&v| v <= hi * (1.0 + 1e-9)).collect();
                (hi, b)
            }
        }
    }

    /// (x, row) of each legend entry, wrapping before the right margin.
    fn legend_positions(&self, left: f64) -> Vec<(f64, usize)> {
        let right = f64::from(self.width) - 24.0;
        let mut out = Vec::with_capacity(self.curves.len());
        let (mut x, mut row) = (left + 6.0, 0);
        for curve in &self.curves {
            let w = 28.0 + text_width(&curve.label, TICK_EM);
            if x + w > right && x > left + 6.0 {
                x = left + 6.0;
                row += 1;
            }
            out.push((x, row));
            x += w + 26.0;
        }
        out
    }

    fn label_width(&self) -> f64 {
        self.curves
            .iter()
            .map(|c| text_width(&c.label, TICK_EM))
            .fold(0.0, f64::max)
    }
}

/// Points of a step function from t = 0 (value 1) to `x_max`.
fn step_path(time: &[f64], value: &[f64], start: f64, x_max: f64) -> Vec<(f64, f64)> {
    let mut pts = vec![(0.0, start)];
    let mut cur = start;
    for (&t, &v) in time.iter().zip(value) {
        if t > x_max {
            break;
        }
        pts.push((t, cur));
        pts.push((t, v));
        cur = v;
    }
    pts.push((x_max, cur));
    pts
}

impl Figure for KmPlot {
    fn size(&self) -> (u32, u32) {
        let l = self.layout(self.label_width());
        (self.width, l.height.ceil() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<(), PlotError> {
        if self.curves.is_empty() {
            return Err(PlotError::Invalid(
                "a Kaplan-Meier plot needs a curve".into(),
            ));
        }
        for (i, curve) in self.curves.iter().enumerate() {
            curve.validate(i)?;
        }
        if self.width < 300 {
            return Err(PlotError::Invalid(format!("width {} < 300", self.width)));
        }
        let l = self.layout(self.label_width());
        let (x_max, breaks) = self.breaks();
        if !(x_max.is_finite() && x_max > 0.0) {
            return Err(PlotError::Invalid(format!(
                "time axis end {x_max} is not positive"
            )));
        }
        check_finite("x_breaks", &breaks)?;
        let xs = Scale::linear(0.0, x_max, l.left, l.right);
        let ys = Scale::linear(0.0, 1.0, l.bottom, l.top);

        if let Some(title) = &self.title {
            c.text(
                title,
                (l.left, 14.0),
                TITLE_EM,
                black(),
                Anchor::Start,
                Baseline::Hanging,
            )?;
        }

        // Bands, then curves, then censoring marks, so lines stay on top.
        for (i, curve) in self.curves.iter().enumerate() {
            let col = series_color(i);
            if self.show_ci {
                draw_band(c, curve, &xs, &ys, x_max, col.mix(0.15))?;
            }
        }
        for (i, curve) in self.curves.iter().enumerate() {
            let col = series_color(i).to_rgba();
            let pts: Vec<(f64, f64)> = step_path(&curve.time, &curve.surv, 1.0, x_max)
                .into_iter()
                .map(|(t, s)| (xs.map(t), ys.map(s)))
                .collect();
            c.line(&pts, col, 1.8)?;
            if self.show_censor {
                for &t in curve.censor_times.iter().filter(|&&t| t <= x_max) {
                    let (x, y) = (xs.map(t), ys.map(curve.surv_at(t)));
                    c.line(&[(x - 3.5, y), (x + 3.5, y)], col, 1.2)?;
                    c.line(&[(x, y - 3.5), (x, y + 3.5)], col, 1.2)?;
                }
            }
        }

        // Axes (L-shaped frame, no grid, as journals print them).
        let y_ticks: Vec<(f64, String)> = (0..=5)
            .map(|k| (k as f64 * 0.2, format!("{:.1}", k as f64 * 0.2)))
            .collect();
        left_axis(c, &ys, l.left, &y_ticks)?;
        bottom_axis(c, &xs, l.bottom, &breaks)?;
        c.text(
            &self.x_label,
            ((l.left + l.right) / 2.0, l.bottom + 40.0),
            LABEL_EM,
            black(),
            Anchor::Middle,
            Baseline::Alphabetic,
        )?;
        c.text_up(
            &self.y_label,
            (l.left - 48.0, (l.top + l.bottom) / 2.0),
            LABEL_EM,
            black(),
            Anchor::Middle,
            Baseline::Alphabetic,
        )?;

        // Legend above the panel: a line sample and the label per curve.
        let positions = self.legend_positions(l.left);
        for (i, (curve, &(x, row))) in self.curves.iter().zip(&positions).enumerate() {
            let col = series_color(i).to_rgba();
            let y = l.legend_y + row as f64 * LEGEND_ROW_H;
            c.line(&[(x, y), (x + 22.0, y)], col, 2.2)?;
            c.text(
                &curve.label,
                (x + 28.0, y),
                TICK_EM,
                black(),
                Anchor::Start,
                Baseline::Central,
            )?;
        }

        // p-value and annotations in the lower left of the panel.
        let mut lines: Vec<String> = Vec::new();
        if let Some(p) = self.p_value {
            lines.push(format!("Log-rank {}", format_p(p)));
        }
        lines.extend(self.annotations.iter().cloned());
        let n = lines.len();
        for (k, line) in lines.iter().enumerate() {
            let y = l.bottom - 14.0 - (n - 1 - k) as f64 * 19.0;
            c.text(
                line,
                (l.left + 14.0, y),
                TICK_EM,
                black(),
                Anchor::Start,
                Baseline::Alphabetic,
            )?;
        }

        if self.table_rows() > 0 {
            draw_risk_table(c, self, &l, &xs, &breaks)?;
        }
        Ok(())
    }
}

fn draw_band<DB: DrawingBackend>(
    c: &Canvas<'_, DB>,
    curve: &KmCurveSeries,
    xs: &Scale,
    ys: &Scale,
    x_max: f64,
    fill: RGBAColor,
) -> Result<(), PlotError> {
    // Steps (start, end, lower, upper): [0, t_0) is the point S = 1, then
    // [t_i, t_{i+1}) carries the limits at t_i. Consecutive steps with both
    // limits defined form one polygon.
    let n = curve.time.len();
    let mut steps = vec![(0.0, curve.time[0].min(x_max), 1.0, 1.0)];
    for i in 0..n {
        let start = curve.time[i];
        if start >= x_max {
            break;
        }
        let end = if i + 1 < n {
            curve.time[i + 1].min(x_max)
        } else {
            x_max
        };
        steps.push((start, end, curve.lower[i], curve.upper[i]));
    }
    let mut run: Vec<(f64, f64, f64, f64)> = Vec::new();
    for step in steps
        .into_iter()
        .chain(std::iter::once((0.0, 0.0, f64::NAN, f64::NAN)))
    {
        if step.2.is_finite() && step.3.is_finite() {
            run.push((step.0, step.1, step.2.max(0.0), step.3.min(1.0)));
            continue;
        }
        if !run.is_empty() {
            let mut poly = Vec::with_capacity(run.len() * 4);
            for &(a, b, _, hi) in &run {
                poly.push((xs.map(a), ys.map(hi)));
                poly.push((xs.map(b), ys.map(hi)));
            }
            for &(a, b, lo, _) in run.iter().rev() {
                poly.push((xs.map(b), ys.map(lo)));
                poly.push((xs.map(a), ys.map(lo)));
            }
            c.polygon(&poly, fill)?;
            run.clear();
        }
    }
    Ok(())
}

fn draw_risk_table<DB: DrawingBackend>(
    c: &Canvas<'_, DB>,
    plot: &KmPlot,
    l: &Layout,
    xs: &Scale,
    breaks: &[f64],
) -> Result<(), PlotError> {
    c.text(
        "Number at risk",
        (12.0, l.table_top),
        LABEL_EM,
        black(),
        Anchor::Start,
        Baseline::Alphabetic,
    )?;
    let mut row = 0;
    for (i, curve) in plot.curves.iter().enumerate() {
        if curve.at_risk.is_empty() {
            continue;
        }
        let col = series_color(i).to_rgba();
        let y = l.table_top + 26.0 + row as f64 * ROW_H;
        c.text(
            &curve.label,
            (l.left - 26.0, y),
            TICK_EM,
            col,
            Anchor::End,
            Baseline::Central,
        )?;
        for &b in breaks {
            c.text(
                &curve.at_risk_at(b).to_string(),
                (xs.map(b), y),
                TICK_EM,
                col,
                Anchor::Middle,
                Baseline::Central,
            )?;
        }
        row += 1;
    }
    Ok(())
}
