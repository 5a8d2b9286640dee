//! The exact Cox loss of a global batch and its closed-form gradient with
//! respect to the log-risks.
//!
//! The Cox negative log partial likelihood is not a sum of per-sample terms:
//! each event's term depends on its whole risk set. Under data parallelism,
//! averaging per-worker Cox losses optimises a different (and worse) objective.
//! Cohort instead all-gathers `(eta, time, event)` of the global batch, and
//! every worker evaluates [`cox_loss_and_grad`] on it, then back-propagates
//! `sum_k g_k * eta_k` (with `g` detached) for its own samples. The parameter
//! gradient summed over workers then equals the gradient one worker holding the
//! whole batch would compute.
//!
//! The loss is normalised by the number of events in the batch, so its scale
//! does not depend on batch size; a batch without events has loss 0 and
//! gradient 0.
//!
//! Ties follow R's `coxph`: Breslow counts every tied event against the full
//! risk set; Efron (the default) removes tied events from the risk set in
//! equal steps. Sums of `exp(eta)` are kept as `(max, scaled sum)` pairs — a
//! running log-sum-exp — so no log-risk, however large, overflows, and no risk
//! set underflows to zero.

use cohort_common::survival::cox::Ties;

/// Why the loss cannot be evaluated.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CoxLossError {
    #[error("cox loss: {field} has {got} values, eta has {expected}")]
    Length {
        field: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("cox loss: {field}[{index}] is not finite ({value})")]
    NotFinite {
        field: &'static str,
        index: usize,
        value: f64,
    },
}

/// The loss and the gradient with respect to each `eta`.
#[derive(Clone, Debug, PartialEq)]
pub struct CoxLoss {
    /// Negative log partial likelihood divided by the number of events.
    pub loss: f64,
    /// `d loss / d eta_k`, one per sample, in input order.
    pub grad: Vec<f64>,
    /// Events in the batch (the normaliser).
    pub events: usize,
}

/// A sum of exponentials held as `exp(max) * scaled`.
#[derive(Clone, Copy, Debug)]
struct LogSum {
    max: f64,
    scaled: f64,
}

impl LogSum {
    const EMPTY: LogSum = LogSum {
        max: f64::NEG_INFINITY,
        scaled: 0.0,
    };

    fn add(&mut self, x: f64) {
        if x > self.max {
            self.scaled = self.scaled * (self.max - x).exp() + 1.0;
            self.max = x;
        } else {
            self.scaled += (x - self.max).exp();
        }
    }

    /// The sum in the scale of `max` (which must be >= this sum's max).
    fn in_scale_of(&self, max: f64) -> f64 {
        if self.scaled == 0.0 {
            0.0
        } else {
            self.scaled * (self.max - max).exp()
        }
    }
}

fn check(eta: &[f64], time: &[f64], event: &[bool]) -> Result<(), CoxLossError> {
    let n = eta.len();
    for (field, got) in [("time", time.len()), ("event", event.len())] {
        if got != n {
            return Err(CoxLossError::Length {
                field,
                expected: n,
                got,
            });
        }
    }
    for (field, values) in [("eta", eta), ("time", time)] {
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(CoxLossError::NotFinite {
                field,
                index,
                value,
            });
        }
    }
    Ok(())
}

/// Per distinct event time: the risk-set sum and the quantities the gradient
/// needs, all in the scale `exp(max)` of that risk set.
struct TimeBlock {
    /// Sorted positions `start..end` of the samples at this time.
    start: usize,
    end: usize,
    max: f64,
    /// `sum_l 1 / (S_R - l/d S_D)` scaled by `exp(max)`: the weight of a
    /// sample at risk that is not one of the tied events.
    at_risk_weight: f64,
    /// `sum_l (1 - l/d) / (S_R - l/d S_D)` scaled likewise: the weight of one
    /// of the tied events (Efron); equal to `at_risk_weight` for Breslow.
    event_weight: f64,
}

/// The exact global-batch Cox loss and its gradient (see the module docs).
pub fn cox_loss_and_grad(
    eta: &[f64],
    time: &[f64],
    event: &[bool],
    ties: Ties,
) -> Result<CoxLoss, CoxLossError> {
    check(eta, time, event)?;
    let n = eta.len();
    let events = event.iter().filter(|&&e| e).count();
    if events == 0 {
        return Ok(CoxLoss {
            loss: 0.0,
            grad: vec![0.0; n],
            events: 0,
        });
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| time[a].total_cmp(&time[b]));

    // Backward pass over distinct times: accumulate the risk set.
    let mut risk = LogSum::EMPTY;
    let mut blocks: Vec<TimeBlock> = Vec::new();
    let mut log_lik = 0.0;
    let mut end = n;
    while end > 0 {
        let t = time[order[end - 1]];
        let mut start = end;
        while start > 0 && time[order[start - 1]] == t {
            start -= 1;
        }
        let mut deaths = LogSum::EMPTY;
        let mut d = 0usize;
        for &i in &order[start..end] {
            risk.add(eta[i]);
            if event[i] {
                deaths.add(eta[i]);
                d += 1;
                log_lik += eta[i];
            }
        }
        if d > 0 {
            let s_r = risk.scaled;
            let s_d = deaths.in_scale_of(risk.max);
            let (mut at_risk_weight, mut event_weight) = (0.0, 0.0);
            for l in 0..d {
                let frac = match ties {
                    Ties::Breslow => 0.0,
                    Ties::Efron => l as f64 / d as f64,
                };
                // S_R - frac * S_D >= S_D / d > 0 exactly; clamp against rounding.
                let denom = (s_r - frac * s_d)
                    .max(s_d / d as f64 * f64::EPSILON)
                    .max(f64::MIN_POSITIVE);
                log_lik -= risk.max + denom.ln();
                at_risk_weight += 1.0 / denom;
                event_weight += (1.0 - frac) / denom;
            }
            blocks.push(TimeBlock {
                start,
                end,
                max: risk.max,
                at_risk_weight,
                event_weight,
            });
        }
        end = start;
    }

    // Forward pass: every sample at time t_k is at risk at each event time
    // <= t_k. `cum` is sum over earlier blocks of at_risk_weight * exp(-max),
    // held in the scale of the current block's max (maxima only fall as time
    // grows, so rescaling multiplies by exp(<= 0)).
    let mut grad = vec![0.0; n];
    let norm = events as f64;
    let mut cum = 0.0;
    let mut cum_max = f64::INFINITY;
    let mut next_position = 0;
    let mut assign =
        |positions: std::ops::Range<usize>, cum: f64, cum_max: f64, block: Option<&TimeBlock>| {
            for &i in &order[positions] {
                let base = if cum == 0.0 {
                    0.0
                } else {
                    cum * (eta[i] - cum_max).exp()
                };
                let g = match block {
                    Some(b) if event[i] => {
                        let before = base - b.at_risk_weight * (eta[i] - b.max).exp();
                        before + b.event_weight * (eta[i] - b.max).exp() - 1.0
                    }
                    _ => base,
                };
                grad[i] = g / norm;
            }
        };
    for b in blocks.iter().rev() {
        // Samples strictly before this block's time see only earlier blocks.
        assign(next_position..b.start, cum, cum_max, None);
        cum = if cum == 0.0 {
            0.0
        } else {
            cum * (b.max - cum_max).exp()
        };
        cum_max = b.max;
        cum += b.at_risk_weight;
        assign(b.start..b.end, cum, cum_max, Some(b));
        next_position = b.end;
    }
    assign(next_position..n, cum, cum_max, None);
    Ok(CoxLoss {
        loss: -log_lik / norm,
        grad,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finite_difference(eta: &[f64], time: &[f64], event: &[bool], ties: Ties) -> Vec<f64> {
        let h = 1e-6;
        (0..eta.len())
            .map(|k| {
                let mut up = eta.to_vec();
                let mut down = eta.to_vec();
                up[k] += h;
                down[k] -= h;
                let f = |e: &[f64]| cox_loss_and_grad(e, time, event, ties).unwrap().loss;
                (f(&up) - f(&down)) / (2.0 * h)
            })
            .collect()
    }

    fn batch() -> (Vec<f64>, Vec<f64>, Vec<bool>) {
        // Ties among events, among censorings, and between the two.
        let time = vec![5.0, 3.0, 3.0, 8.0, 3.0, 1.0, 8.0, 10.0, 5.0, 12.0];
        let event = vec![
            true, true, true, false, false, true, true, false, true, true,
        ];
        let eta = vec![0.3, -1.2, 0.8, 2.0, -0.1, 0.0, 1.1, -0.7, 0.5, 0.25];
        (eta, time, event)
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (eta, time, event) = batch();
        for ties in [Ties::Breslow, Ties::Efron] {
            let got = cox_loss_and_grad(&eta, &time, &event, ties).unwrap();
            let fd = finite_difference(&eta, &time, &event, ties);
            for (k, (g, f)) in got.grad.iter().zip(&fd).enumerate() {
                assert!((g - f).abs() < 1e-7, "{ties:?} k={k}: {g} vs {f}");
            }
            // The gradient of a partial likelihood sums to zero (shift invariance).
            assert!(got.grad.iter().sum::<f64>().abs() < 1e-12);
        }
    }

    #[test]
    fn breslow_loss_by_hand() {
        // Two events at distinct times, no ties: -(eta1 - log(e^eta1 + e^eta2)) - (eta2 - log e^eta2).
        let eta = [0.5, -0.25];
        let got = cox_loss_and_grad(&eta, &[1.0, 2.0], &[true, true], Ties::Breslow).unwrap();
        let expected = -((0.5 - (0.5f64.exp() + (-0.25f64).exp()).ln()) + 0.0) / 2.0;
        assert!(
            (got.loss - expected).abs() < 1e-15,
            "{} vs {expected}",
            got.loss
        );
    }

    #[test]
    fn shifting_eta_changes_nothing_and_huge_eta_stays_finite() {
        let (eta, time, event) = batch();
        let base = cox_loss_and_grad(&eta, &time, &event, Ties::Efron).unwrap();
        for shift in [1000.0, -1000.0] {
            let shifted: Vec<f64> = eta.iter().map(|e| e + shift).collect();
            let s = cox_loss_and_grad(&shifted, &time, &event, Ties::Efron).unwrap();
            assert!((s.loss - base.loss).abs() < 1e-9);
            for (a, b) in s.grad.iter().zip(&base.grad) {
                assert!((a - b).abs() < 1e-12);
            }
        }
        // Log-risks 2000 apart: no overflow, no NaN.
        let wild = [2000.0, -2000.0, 0.0, 1500.0];
        let w = cox_loss_and_grad(
            &wild,
            &[1.0, 2.0, 3.0, 4.0],
            &[true, true, true, false],
            Ties::Efron,
        )
        .unwrap();
        assert!(
            w.loss.is_finite() && w.grad.iter().all(|g| g.is_finite()),
            "{w:?}"
        );
    }

    #[test]
    fn no_events_gives_zero_loss_and_gradient() {
        let got =
            cox_loss_and_grad(&[1.0, 2.0], &[1.0, 2.0], &[false, false], Ties::Efron).unwrap();
        assert_eq!((got.loss, got.grad, got.events), (0.0, vec![0.0, 0.0], 0));
        let empty = cox_loss_and_grad(&[], &[], &[], Ties::Efron).unwrap();
        assert_eq!(empty.loss, 0.0);
    }

    #[test]
    fn row_order_does_not_matter() {
        let (eta, time, event) = batch();
        let a = cox_loss_and_grad(&eta, &time, &event, Ties::Efron).unwrap();
        let perm = [9, 2, 4, 0, 7, 1, 8, 3, 6, 5];
        let p = |v: &[f64]| perm.iter().map(|&i| v[i]).collect::<Vec<_>>();
        let ev: Vec<bool> = perm.iter().map(|&i| event[i]).collect();
        let b = cox_loss_and_grad(&p(&eta), &p(&time), &ev, Ties::Efron).unwrap();
        assert!((a.loss - b.loss).abs() < 1e-14);
        for (j, &i) in perm.iter().enumerate() {
            assert!((b.grad[j] - a.grad[i]).abs() < 1e-14);
        }
    }

    #[test]
    fn bad_input_is_named() {
        assert_eq!(
            cox_loss_and_grad(&[1.0], &[1.0, 2.0], &[true], Ties::Efron),
            Err(CoxLossError::Length {
                field: "time",
                expected: 1,
                got: 2
            })
        );
        let err = cox_loss_and_grad(&[f64::NAN], &[1.0], &[true], Ties::Efron).unwrap_err();
        assert!(err.to_string().contains("eta[0]"), "{err}");
    }

    #[test]
    fn sharded_exact_gradient_is_the_global_one_and_naive_is_not() {
        // A global batch split over two workers. Exact: every worker evaluates
        // the global loss on the all-gathered batch and keeps its own samples'
        // gradient. Naive: every worker's own Cox loss on its shard.
        let (eta, time, event) = batch();
        let global = cox_loss_and_grad(&eta, &time, &event, Ties::Efron).unwrap();
        let shards = [0..4, 4..10];
        let mut exact = vec![0.0; eta.len()];
        let mut naive = vec![0.0; eta.len()];
        for shard in shards {
            let g = cox_loss_and_grad(&eta, &time, &event, Ties::Efron).unwrap();
            exact[shard.clone()].copy_from_slice(&g.grad[shard.clone()]);
            let local = cox_loss_and_grad(
                &eta[shard.clone()],
                &time[shard.clone()],
                &event[shard.clone()],
                Ties::Efron,
            )
            .unwrap();
            // Data-parallel averaging of two local means.
            for (k, gk) in shard.zip(local.grad) {
                naive[k] = gk / 2.0;
            }
        }
        assert_eq!(exact, global.grad);
        let diff: f64 = naive
            .iter()
            .zip(&global.grad)
            .map(|(a, b)| (a - b).abs())
            .sum();
        assert!(
            diff > 0.1,
            "naive per-worker losses should differ, got {diff}"
        );
    }
}
