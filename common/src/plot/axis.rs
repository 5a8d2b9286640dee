//! Linear and log scales and the axes every figure shares.

use super::canvas::{Anchor, Baseline, Canvas};
use super::{PlotError, format_tick};
use plotters::prelude::*;
use plotters::style::RGBAColor;

/// Text and line sizes of all figures, in logical units.
pub(crate) const TICK_EM: f64 = 12.5;
pub(crate) const LABEL_EM: f64 = 14.0;
pub(crate) const TITLE_EM: f64 = 16.0;
pub(crate) const AXIS_WIDTH: f64 = 1.0;
pub(crate) const TICK_LEN: f64 = 5.0;

pub(crate) fn black() -> RGBAColor {
    BLACK.to_rgba()
}

pub(crate) fn grey(level: u8) -> RGBAColor {
    RGBColor(level, level, level).to_rgba()
}

/// Maps data values in [lo, hi] to pixels [a, b] (b < a for a y axis).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scale {
    pub lo: f64,
    pub hi: f64,
    pub a: f64,
    pub b: f64,
    pub log: bool,
}

impl Scale {
    pub fn linear(lo: f64, hi: f64, a: f64, b: f64) -> Self {
        Scale {
            lo,
            hi,
            a,
            b,
            log: false,
        }
    }

    pub fn log(lo: f64, hi: f64, a: f64, b: f64) -> Self {
        Scale {
            lo,
            hi,
            a,
            b,
            log: true,
        }
    }

    pub fn map(&self, v: f64) -> f64 {
        let f = |x: f64| if self.log { x.ln() } else { x };
        let (lo, hi) = (f(self.lo), f(self.hi));
        if hi == lo {
            return self.a;
        }
        self.a + (f(v) - lo) / (hi - lo) * (self.b - self.a)
    }
}

/// A horizontal axis line at `y` from the scale's a to b, ticks down and
/// labels under them.
pub(crate) fn bottom_axis<DB: DrawingBackend>(
    c: &Canvas<'_, DB>,
    s: &Scale,
    y: f64,
    ticks: &[f64],
) -> Result<(), PlotError> {
    let labelled: Vec<(f64, String)> = ticks.iter().map(|&t| (t, format_tick(t))).collect();
    bottom_axis_labels(c, s, y, &labelled)
}

pub(crate) fn bottom_axis_labels<DB: DrawingBackend>(
    c: &Canvas<'_, DB>,
    s: &Scale,
    y: f64,
    ticks: &[(f64, String)],
) -> Result<(), PlotError> {
    c.line(&[(s.a, y), (s.b, y)], black(), AXIS_WIDTH)?;
    for (t, label) in ticks {
        let x = s.map(*t);
        c.line(&[(x, y), (x, y + TICK_LEN)], black(), AXIS_WIDTH)?;
        c.text(
            label,
            (x, y + TICK_LEN + 4.0),
            TICK_EM,
            black(),
            Anchor::Middle,
            Baseline::Hanging,
        )?;
    }
    Ok(())
}

/// A vertical axis line at `x`, ticks to the left, labels right-aligned.
pub(crate) fn left_axis<DB: DrawingBackend>(
    c: &Canvas<'_, DB>,
    s: &Scale,
    x: f64,
    ticks: &[(f64, String)],
) -> Result<(), PlotError> {
    c.line(&[(x, s.a), (x, s.b)], black(), AXIS_WIDTH)?;
    for (t, label) in ticks {
        let y = s.map(*t);
        c.line(&[(x - TICK_LEN, y), (x, y)], black(), AXIS_WIDTH)?;
        c.text(
            label,
            (x - TICK_LEN - 4.0, y),
            TICK_EM,
            black(),
            Anchor::End,
            Baseline::Central,
        )?;
    }
    Ok(())
}
