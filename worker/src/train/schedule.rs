//! Learning-rate schedule (linear warm-up, then cosine decay) and early
//! stopping on the validation C-index with best-model keeping.
//!
//! Both are pure functions of their inputs and a few numbers of state, so a
//! checkpoint that records the step and the [`EarlyStopping`] state resumes
//! them exactly.

use serde::{Deserialize, Serialize};

/// Linear warm-up from 0 to `peak` over `warmup_steps`, then cosine decay to
/// `floor` at `total_steps` (and `floor` after it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WarmupCosine {
    pub peak: f64,
    pub floor: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
}

impl WarmupCosine {
    /// The learning rate of step `step` (0-based).
    pub fn at(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.peak * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let decay_steps = self.total_steps.saturating_sub(self.warmup_steps);
        if decay_steps == 0 || step >= self.total_steps {
            return self.floor;
        }
        let progress = (step - self.warmup_steps) as f64 / decay_steps as f64;
        self.floor
            + 0.5 * (self.peak - self.floor) * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

/// What the training loop should do after an evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A new best: keep this model.
    Improved,
    /// No improvement yet within the patience.
    Continue,
    /// Patience exhausted: stop and restore the best model.
    Stop,
}

/// Early stopping on a metric where higher is better (the C-index).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    /// Evaluations without improvement tolerated before stopping.
    pub patience: u32,
    /// Smallest increase that counts as an improvement.
    pub min_delta: f64,
    pub best: Option<f64>,
    pub best_epoch: Option<u64>,
    pub since_best: u32,
}

impl EarlyStopping {
    pub fn new(patience: u32, min_delta: f64) -> Self {
        EarlyStopping {
            patience,
            min_delta,
            best: None,
            best_epoch: None,
            since_best: 0,
        }
    }

    /// Records the metric of `epoch`. A NaN metric never improves.
    pub fn observe(&mut self, epoch: u64, metric: f64) -> Verdict {
        let improved = metric.is_finite() && self.best.is_none_or(|b| metric > b + self.min_delta);
        if improved {
            self.best = Some(metric);
            self.best_epoch = Some(epoch);
            self.since_best = 0;
            return Verdict::Improved;
        }
        self.since_best += 1;
        if self.since_best > self.patience {
            Verdict::Stop
        } else {
            Verdict::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let s = WarmupCosine {
            peak: 1e-3,
            floor: 1e-5,
            warmup_steps: 10,
            total_steps: 110,
        };
        assert!((s.at(0) - 1e-4).abs() < 1e-15);
        assert!((s.at(9) - 1e-3).abs() < 1e-15);
        assert!((s.at(10) - 1e-3).abs() < 1e-15);
        let mid = s.at(60);
        assert!((mid - (1e-5 + 0.5 * (1e-3 - 1e-5))).abs() < 1e-12);
        assert!((s.at(110) - 1e-5).abs() < 1e-15);
        assert!((s.at(500) - 1e-5).abs() < 1e-15);
        assert!((11..110).all(|t| s.at(t) <= s.at(t - 1)));
    }

    #[test]
    fn early_stopping_keeps_the_best_and_waits_for_patience() {
        let mut e = EarlyStopping::new(2, 0.001);
        let verdicts: Vec<Verdict> = [0.60, 0.62, 0.6205, 0.61, f64::NAN, 0.63]
            .iter()
            .enumerate()
            .map(|(i, &m)| e.observe(i as u64, m))
            .collect();
        use Verdict::*;
        assert_eq!(
            verdicts,
            vec![Improved, Improved, Continue, Continue, Stop, Improved]
        );
        assert_eq!(e.best_epoch, Some(5));
    }
}
