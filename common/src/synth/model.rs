//! The ground-truth model of the synthetic cohort: clinical factors, tumour
//! features, the latent log-hazards and the survival times.
//!
//! Two cause-specific hazards, both proportional hazards with the same Weibull
//! shape `k`:
//!
//! ```text
//! h_dm(t | x) = k t^(k-1) * lambda_dm * exp(lp_dm(x))    distant metastasis
//! h_lr(t | x) = k t^(k-1) * lambda_lr * exp(lp_lr(x))    loco-regional recurrence
//! ```
//!
//! DMFS is the time to distant metastasis; DFS the time to the first failure
//! of either kind. Because both share the shape `k`, DFS is itself a
//! proportional-hazards model with the same baseline and the known log-hazard
//! `log((lambda_dm e^lp_dm + lambda_lr e^lp_lr) / (lambda_dm + lambda_lr))`,
//! which `truth.csv` records.
//!
//! The tumour's volume, contrast enhancement and heterogeneity are drawn here
//! and rendered into the volumes by [`super::image`]; their weighted sum, the
//! *image score*, is the signal a 3D DenseNet can learn. Concurrent
//! chemotherapy helps high-risk patients and slightly harms low-risk ones
//! (an interaction the subgroup analysis must find), and is given more often
//! to advanced stages (confounding by indication, as in real cohorts).

use crate::rng::Rng;

/// Weibull shape shared by both causes.
pub const WEIBULL_SHAPE: f64 = 1.1;
/// Baseline scale of distant metastasis, per month^k.
pub const LAMBDA_DM: f64 = 0.55 * BASELINE_CUMHAZ_60 / 90.357951;
/// Baseline scale of loco-regional recurrence, per month^k.
pub const LAMBDA_LR: f64 = 0.45 * BASELINE_CUMHAZ_60 / 90.357951;
/// Cumulative DFS hazard at 60 months for lp = 0 (S = 0.76). `90.357951` is
/// 60^1.1, so that `(LAMBDA_DM + LAMBDA_LR) * 60^k` equals this.
const BASELINE_CUMHAZ_60: f64 = 0.225;

/// Rate of loss to follow-up per month (about 8% lost by 5 years).
pub const LOSS_RATE: f64 = 0.0014;

/// Coefficients of the image score (on standardised features).
pub const IMAGE_VOLUME: f64 = 0.80;
pub const IMAGE_ENHANCEMENT: f64 = 0.45;
pub const IMAGE_HETEROGENEITY: f64 = 0.60;

/// Everything drawn for one patient.
#[derive(Clone, Debug, PartialEq)]
pub struct PatientTruth {
    pub age: f64,
    pub male: bool,
    /// 1..=4
    pub t_stage: u8,
    /// 0..=3
    pub n_stage: u8,
    /// Plasma EBV DNA, copies/mL (0 = undetectable).
    pub ebv_dna: f64,
    pub concurrent_chemo: bool,
    /// Tumour volume in mL.
    pub tumour_volume_ml: f64,
    /// Standardised contrast enhancement (drives T1c brightness).
    pub enhancement: f64,
    /// Standardised heterogeneity (drives texture amplitude and necrosis).
    pub heterogeneity: f64,
    /// The image-derived part of the log-hazard.
    pub image_score: f64,
    /// The clinical parts of the two log-hazards.
    pub clinical_dm: f64,
    pub clinical_lr: f64,
    /// The chemotherapy term (zero without chemotherapy).
    pub chemo_effect: f64,
    pub lp_dm: f64,
    pub lp_lr: f64,
    /// The DFS log-hazard relative to the baseline (see the module docs).
    pub dfs_log_hazard: f64,
    /// Latent event times in months, before censoring.
    pub dm_latent_months: f64,
    pub lr_latent_months: f64,
    /// Time to loss to follow-up, months.
    pub loss_months: f64,
}

/// Mean and SD of log(volume) over the population, to standardise it.
const LOG_VOLUME_MEAN: f64 = 2.82;
const LOG_VOLUME_SD: f64 = 0.64;

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn categorical(rng: &mut Rng, probabilities: &[f64]) -> usize {
    let u = rng.uniform();
    let mut acc = 0.0;
    for (i, p) in probabilities.iter().enumerate() {
        acc += p;
        if u < acc {
            return i;
        }
    }
    probabilities.len() - 1
}

/// Weibull time with cumulative hazard `lambda e^lp t^k`.
fn weibull_time(rng: &mut Rng, lambda: f64, lp: f64) -> f64 {
    (rng.exponential() / (lambda * lp.exp())).powf(1.0 / WEIBULL_SHAPE)
}

/// Draws one patient from its own stream.
pub fn draw_patient(rng: &mut Rng) -> PatientTruth {
    let age = (45.0 + 11.0 * rng.normal()).clamp(18.0, 80.0).round();
    let male = rng.bernoulli(0.73);
    let t_stage = 1 + categorical(rng, &[0.15, 0.25, 0.40, 0.20]) as u8;
    let n_stage = categorical(rng, &[0.15, 0.45, 0.30, 0.10]) as u8;

    let log_volume = 1.95 + 0.33 * f64::from(t_stage) + 0.55 * rng.normal();
    let tumour_volume_ml = log_volume.exp().clamp(1.0, 120.0);
    let z_volume = (tumour_volume_ml.ln() - LOG_VOLUME_MEAN) / LOG_VOLUME_SD;
    let enhancement = rng.normal();
    let heterogeneity = 0.4 * z_volume + (1.0f64 - 0.16).sqrt() * rng.normal();

    // EBV DNA: undetectable in ~25%, otherwise log-normal, rising with burden.
    let ebv_dna = if rng.bernoulli(0.25 - 0.05 * z_volume.clamp(-2.0, 2.0)) {
        0.0
    } else {
        let log10 = 3.0 + 0.45 * z_volume + 0.2 * f64::from(n_stage) + 0.8 * rng.normal();
        10f64.powf(log10.clamp(1.0, 7.0)).round()
    };
    let z_ebv = ((ebv_dna + 1.0).log10() - 2.6) / 1.5;

    let stage = f64::from(t_stage) - 2.5 + f64::from(n_stage) - 1.5;
    let concurrent_chemo = rng.bernoulli(sigmoid(0.3 + 0.9 * stage));

    let image_score = IMAGE_VOLUME * z_volume
        + IMAGE_ENHANCEMENT * enhancement
        + IMAGE_HETEROGENEITY * heterogeneity;
    let age_term = 0.12 * (age - 45.0) / 10.0;
    let clinical_dm = age_term + 0.35 * (f64::from(n_stage) - 1.5) + 0.30 * z_ebv;
    let clinical_lr = age_term + 0.20 * (f64::from(t_stage) - 2.5) + 0.15 * z_ebv;
    // Chemotherapy: from +0.25 (no benefit, toxicity) at low risk to -0.65 at high risk.
    let risk = image_score + 0.5 * (clinical_dm + clinical_lr);
    let chemo_effect = if concurrent_chemo {
        0.25 - 0.9 * sigmoid(2.5 * risk)
    } else {
        0.0
    };
    let lp_dm = image_score + clinical_dm + chemo_effect;
    let lp_lr = image_score + clinical_lr + chemo_effect;
    let dfs_log_hazard =
        ((LAMBDA_DM * lp_dm.exp() + LAMBDA_LR * lp_lr.exp()) / (LAMBDA_DM + LAMBDA_LR)).ln();

    let dm_latent_months = weibull_time(rng, LAMBDA_DM, lp_dm);
    let lr_latent_months = weibull_time(rng, LAMBDA_LR, lp_lr);
    let loss_months = rng.exponential() / LOSS_RATE;
    PatientTruth {
        age,
        male,
        t_stage,
        n_stage,
        ebv_dna,
        concurrent_chemo,
        tumour_volume_ml,
        enhancement,
        heterogeneity,
        image_score,
        clinical_dm,
        clinical_lr,
        chemo_effect,
        lp_dm,
        lp_lr,
        dfs_log_hazard,
        dm_latent_months,
        lr_latent_months,
        loss_months,
    }
}

/// Observed DFS and DMFS as `(months, event)`, censored at
/// `min(loss to follow-up, administrative follow-up)`.
pub fn observe(truth: &PatientTruth, admin_follow_up_months: f64) -> ((f64, bool), (f64, bool)) {
    let censor = truth.loss_months.min(admin_follow_up_months);
    let dfs_latent = truth.dm_latent_months.min(truth.lr_latent_months);
    let round = |m: f64| (m * 100.0).round() / 100.0;
    let observe_one = |latent: f64| {
        if latent <= censor {
            (round(latent).max(0.01), true)
        } else {
            (round(censor).max(0.01), false)
        }
    };
    let dfs = observe_one(dfs_latent);
    let mut dmfs = observe_one(truth.dm_latent_months);
    // Rounding must not make DMFS shorter than DFS.
    if dmfs.0 < dfs.0 {
        dmfs.0 = dfs.0;
    }
    (dfs, dmfs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_constants_are_consistent() {
        let h60 = (LAMBDA_DM + LAMBDA_LR) * 60f64.powf(WEIBULL_SHAPE);
        assert!((h60 - BASELINE_CUMHAZ_60).abs() < 1e-6, "{h60}");
    }

    #[test]
    fn population_looks_like_an_npc_cohort() {
        let n = 20_000;
        let mut events_5y = 0;
        let mut chemo = 0;
        let mut log_vol = Vec::with_capacity(n);
        for i in 0..n {
            let mut rng = Rng::derive_indexed(1, "patient", i as u64);
            let t = draw_patient(&mut rng);
            log_vol.push(t.tumour_volume_ml.ln());
            chemo += usize::from(t.concurrent_chemo);
            let ((months, event), _) = observe(&t, 60.0);
            if event && months <= 60.0 {
                events_5y += 1;
            }
        }
        let rate = events_5y as f64 / n as f64;
        assert!(
            (0.18..=0.30).contains(&rate),
            "5-year DFS event rate {rate}"
        );
        let chemo_rate = chemo as f64 / n as f64;
        assert!((0.5..=0.8).contains(&chemo_rate), "chemo rate {chemo_rate}");
        let mean = log_vol.iter().sum::<f64>() / n as f64;
        let sd = (log_vol.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        assert!(
            (mean - LOG_VOLUME_MEAN).abs() < 0.1,
            "log-volume mean {mean}"
        );
        assert!((sd - LOG_VOLUME_SD).abs() < 0.1, "log-volume sd {sd}");
    }
}
