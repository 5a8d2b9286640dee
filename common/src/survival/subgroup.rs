//! Subgroup analysis: the hazard ratio of a binary factor (e.g. concurrent
//! chemotherapy) within each level of another (e.g. the risk group), and the
//! test of whether the effect differs between levels (interaction).
//!
//! Within level g, `coxph(Surv(time, event) ~ factor [+ adjust])` is fitted
//! on the subjects of g alone; its HR, 95% CI and Wald p are reported. The
//! interaction test compares, on all subjects, the model
//! `~ factor + by + factor:by [+ adjust]` (by dummy-coded against its first
//! level) with the model without the product terms: the likelihood-ratio
//! test 2(ℓ₁ - ℓ₀) and the Wald test β_Iᵀ V_I⁻¹ β_I on the product
//! coefficients, each on (levels - 1) df, as `anova()` and `summary()` of R's
//! coxph would give them. A subgroup whose model cannot be fitted (no events,
//! a constant factor) is reported with NaN estimates and the reason.

use super::cox::{ChisqTest, CoxOptions, cox_fit};
use super::linalg::quad_form_inv;
use super::{Design, SurvData, SurvivalError};
use serde::Serialize;

/// The factor's effect within one level of the grouping.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubgroupEffect {
    pub level: String,
    pub n: usize,
    pub events: usize,
    pub coef: f64,
    pub se: f64,
    pub hr: f64,
    pub hr_lower: f64,
    pub hr_upper: f64,
    pub p: f64,
    /// Why the estimate is missing, or a fit warning.
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubgroupAnalysis {
    pub factor: String,
    pub by: String,
    pub subgroups: Vec<SubgroupEffect>,
    pub interaction_lr: ChisqTest,
    pub interaction_wald: ChisqTest,
}

/// Subgroup hazard ratios of the 0/1 `factor` within the levels `by`
/// (codes into `levels`), adjusted for `adjust` (may have no columns).
#[allow(clippy::too_many_arguments)]
pub fn subgroup_analysis(
    data: &SurvData,
    factor_name: &str,
    factor: &[f64],
    by_name: &str,
    by: &[usize],
    levels: &[String],
    adjust: &Design,
    opts: &CoxOptions,
) -> Result<SubgroupAnalysis, SurvivalError> {
    let n = data.len();
    if factor.len() != n || by.len() != n || adjust.n_rows() != n {
        return Err(SurvivalError::Length {
            field: "factor/by/adjust".into(),
            expected: n,
            got: factor.len().min(by.len()).min(adjust.n_rows()),
        });
    }
    if let Some(i) = factor.iter().position(|&v| v != 0.0 && v != 1.0) {
        return Err(SurvivalError::BadValue {
            row: i + 1,
            field: factor_name.into(),
            value: factor[i],
            expected: "0 or 1 (a binary factor)",
        });
    }
    if levels.len() < 2 {
        return Err(SurvivalError::Invalid(format!(
            "{by_name} has {} level(s); subgroups need at least 2",
            levels.len()
        )));
    }
    let zq = super::dist::norm_quantile(0.975);
    let adj_names: Vec<String> = adjust.names().to_vec();
    let with_adjust =
        |rows: &[usize], extra: Vec<(String, Vec<f64>)>| -> Result<Design, SurvivalError> {
            let mut cols = extra;
            for (j, name) in adj_names.iter().enumerate() {
                cols.push((
                    name.clone(),
                    rows.iter().map(|&i| adjust.row(i)[j]).collect(),
                ));
            }
            Design::from_columns(cols)
        };
    let mut subgroups = Vec::new();
    for (g, level) in levels.iter().enumerate() {
        let rows: Vec<usize> = (0..n).filter(|&i| by[i] == g).collect();
        let sub = data.subset(&rows)?;
        let x = with_adjust(
            &rows,
            vec![(
                factor_name.to_string(),
                rows.iter().map(|&i| factor[i]).collect(),
            )],
        )?;
        let mut eff = SubgroupEffect {
            level: level.clone(),
            n: rows.len(),
            events: sub.n_events(),
            coef: f64::NAN,
            se: f64::NAN,
            hr: f64::NAN,
            hr_lower: f64::NAN,
            hr_upper: f64::NAN,
            p: f64::NAN,
            note: None,
        };
        match cox_fit(&sub, &x, None, None, opts) {
            Ok(fit) if !fit.aliased[0] => {
                let t = &fit.terms(0.95)[0];
                eff.coef = t.coef;
                eff.se = t.se;
                eff.hr = t.hr;
                eff.hr_lower = (t.coef - zq * t.se).exp();
                eff.hr_upper = (t.coef + zq * t.se).exp();
                eff.p = t.p;
                if !fit.warnings.is_empty() {
                    eff.note = Some(fit.warnings.join("; "));
                }
            }
            Ok(_) => eff.note = Some(format!("{factor_name} is constant in this subgroup")),
            Err(e) => eff.note = Some(e.to_string()),
        }
        subgroups.push(eff);
    }

    // Interaction: main effects + products, against main effects only.
    let all: Vec<usize> = (0..n).collect();
    let mut main = vec![(factor_name.to_string(), factor.to_vec())];
    for (g, level) in levels.iter().enumerate().skip(1) {
        main.push((
            format!("{by_name}_{level}"),
            by.iter().map(|&b| f64::from(u8::from(b == g))).collect(),
        ));
    }
    let mut full = main.clone();
    for (g, level) in levels.iter().enumerate().skip(1) {
        full.push((
            format!("{factor_name}:{by_name}_{level}"),
            (0..n)
                .map(|i| factor[i] * f64::from(u8::from(by[i] == g)))
                .collect(),
        ));
    }
    let x0 = with_adjust(&all, main)?;
    let x1 = with_adjust(&all, full)?;
    let f0 = cox_fit(data, &x0, None, None, opts)?;
    let f1 = cox_fit(data, &x1, None, None, opts)?;
    let p1 = f1.coef.len();
    let inter: Vec<usize> = (levels.len()..(2 * levels.len() - 1))
        .filter(|&j| !f1.aliased[j])
        .collect();
    let df = inter.len();
    let lr = ChisqTest::new(2.0 * (f1.loglik - f0.loglik), df.max(1));
    let mut v = Vec::with_capacity(df * df);
    for &a in &inter {
        for &b in &inter {
            v.push(f1.var[a * p1 + b]);
        }
    }
    let b: Vec<f64> = inter.iter().map(|&j| f1.coef[j]).collect();
    let wald = ChisqTest::new(
        quad_form_inv(&v, df, &b, f64::EPSILON.powf(0.75)),
        df.max(1),
    );
    Ok(SubgroupAnalysis {
        factor: factor_name.into(),
        by: by_name.into(),
        subgroups,
        interaction_lr: ChisqTest { df, ..lr },
        interaction_wald: ChisqTest { df, ..wald },
    })
}
