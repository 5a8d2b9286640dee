//! Expanding a job into trials: sweep point × ensemble member.
//!
//! A trial is one model. Its spec is the job's spec with the sweep point's
//! settings applied exactly as `--set` overrides would be (so they are
//! validated like the file), `training.seed` = the point's seed + the ensemble
//! member, and no `[sweep]` section: the worker receives a complete spec for
//! one model and needs to know nothing about the sweep.
//!
//! Invariants:
//! - The expansion is a pure function of the spec: a restarted coordinator
//!   that re-expanded a job would get the same trials (it does not need to:
//!   the trials are persisted, but tests rely on the determinism).
//! - Trial index = point index × members + member, so a point's members are
//!   contiguous.
//! - Grid: every combination, keys in sorted order, the last key varying
//!   fastest. Random: `sweep.trials` points, point i drawn from the stream
//!   `Rng::derive_indexed(sweep.seed, "sweep", i)`.

use std::collections::BTreeMap;

use cohort_common::rng::Rng;
use cohort_common::spec::{JobSpec, SpecError, apply_override};

/// One trial's plan.
#[derive(Clone, Debug, PartialEq)]
pub struct TrialPlan {
    pub index: u32,
    /// Sweep point index (trials of one point form an ensemble).
    pub point: u32,
    pub ensemble_member: u32,
    /// Dotted setting → value as TOML text.
    pub settings: BTreeMap<String, String>,
    /// The complete spec of this trial (TOML).
    pub spec_toml: String,
}

/// Why a job cannot be expanded.
#[derive(Debug, thiserror::Error)]
pub enum ExpandError {
    #[error("trial {trial} ({settings}): {source}")]
    Trial {
        trial: u32,
        settings: String,
        source: SpecError,
    },
    #[error("serialising the spec: {0}")]
    Serialize(String),
    #[error("the job expands to {0} trials, more than the limit of {MAX_TRIALS}")]
    TooMany(usize),
}

/// A job larger than this is surely a mistake (a grid with a typo'd range).
pub const MAX_TRIALS: usize = 10_000;

/// The sweep points of `spec` (one empty point without a sweep).
pub fn sweep_points(spec: &JobSpec) -> Result<Vec<BTreeMap<String, String>>, ExpandError> {
    let Some(sweep) = &spec.sweep else {
        return Ok(vec![BTreeMap::new()]);
    };
    let params: Vec<(&String, Vec<String>)> = sweep
        .parameters
        .iter()
        .map(|(k, vs)| (k, vs.iter().map(value_text).collect()))
        .collect();
    if sweep.method == "random" {
        let n = sweep.trials.unwrap_or(1);
        if n > MAX_TRIALS {
            return Err(ExpandError::TooMany(n));
        }
        return Ok((0..n)
            .map(|i| {
                let mut rng = Rng::derive_indexed(sweep.seed, "sweep", i as u64);
                params
                    .iter()
                    .map(|(k, vs)| {
                        let pick = rng.below(vs.len() as u64) as usize;
                        ((*k).clone(), vs[pick].clone())
                    })
                    .collect()
            })
            .collect());
    }
    let total = params
        .iter()
        .try_fold(1usize, |acc, (_, vs)| acc.checked_mul(vs.len()))
        .unwrap_or(usize::MAX);
    if total > MAX_TRIALS {
        return Err(ExpandError::TooMany(total));
    }
    let mut points = vec![BTreeMap::new()];
    for (key, values) in &params {
        points = points
            .into_iter()
            .flat_map(|p: BTreeMap<String, String>| {
                values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.insert((*key).clone(), v.clone());
                    q
                })
            })
            .collect();
    }
    Ok(points)
}

/// Every trial of `spec`, in index order.
pub fn expand(spec: &JobSpec) -> Result<Vec<TrialPlan>, ExpandError> {
    let points = sweep_points(spec)?;
    let members = spec.ensemble.members;
    if points.len().saturating_mul(members) > MAX_TRIALS {
        return Err(ExpandError::TooMany(points.len().saturating_mul(members)));
    }
    let mut base = spec.clone();
    base.sweep = None;
    let base_table =
        toml::Table::try_from(&base).map_err(|e| ExpandError::Serialize(e.to_string()))?;
    let mut trials = Vec::with_capacity(points.len() * members);
    for (p, settings) in points.iter().enumerate() {
        for member in 0..members {
            let index = (p * members + member) as u32;
            let fail = |source| ExpandError::Trial {
                trial: index,
                settings: describe(settings),
                source,
            };
            let mut table = base_table.clone();
            for (key, value) in settings {
                apply_override(&mut table, &format!("{key}={value}")).map_err(fail)?;
            }
            let text =
                toml::to_string(&table).map_err(|e| ExpandError::Serialize(e.to_string()))?;
            let mut trial_spec =
                JobSpec::parse(&text, &format!("trial {index}"), &[]).map_err(fail)?;
            trial_spec.training.seed = trial_spec.training.seed.wrapping_add(member as u64);
            let spec_toml =
                toml::to_string(&trial_spec).map_err(|e| ExpandError::Serialize(e.to_string()))?;
            trials.push(TrialPlan {
                index,
                point: p as u32,
                ensemble_member: member as u32,
                settings: settings.clone(),
                spec_toml,
            });
        }
    }
    Ok(trials)
}

/// `training.lr=0.001, model.growth_rate=12` (or `defaults`).
pub fn describe(settings: &BTreeMap<String, String>) -> String {
    if settings.is_empty() {
        return "defaults".into();
    }
    settings
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A TOML value as the text an override takes (`0.001`, `"adam"`, `[2, 2]`).
fn value_text(v: &toml::Value) -> String {
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> JobSpec {
        JobSpec::parse(
            &format!("[cohort]\nurl = \"/c\"\n[training]\nseed = 10\n{extra}"),
            "t",
            &[],
        )
        .unwrap()
    }

    #[test]
    fn no_sweep_gives_one_trial_per_member_with_seeds() {
        let trials = expand(&spec("[ensemble]\nmembers = 3\n")).unwrap();
        assert_eq!(trials.len(), 3);
        for (i, t) in trials.iter().enumerate() {
            let s = JobSpec::parse(&t.spec_toml, "assignment", &[]).unwrap();
            assert_eq!(s.training.seed, 10 + i as u64);
            assert!(s.sweep.is_none());
            assert_eq!(t.ensemble_member, i as u32);
        }
    }

    #[test]
    fn grid_is_every_combination() {
        let s = spec(
            "[ensemble]\nmembers = 2\n[sweep]\nmethod = \"grid\"\nparameters = { \"training.lr\" = [1e-4, 3e-4], \"model.preset\" = [\"tiny\", \"small\", \"densenet121\"] }\n",
        );
        let trials = expand(&s).unwrap();
        assert_eq!(trials.len(), 12);
        let t5 = JobSpec::parse(&trials[7].spec_toml, "a", &[]).unwrap();
        // keys sorted, the last varying fastest: point 3 = (small, 3e-4); trial 7 = member 1
        assert_eq!(trials[7].point, 3);
        assert_eq!(t5.model.preset, "small");
        assert_eq!(t5.training.lr, 3e-4);
        assert_eq!(t5.training.seed, 11);
    }

    #[test]
    fn random_draws_are_seeded_and_invalid_points_name_the_trial() {
        let text = "[sweep]\nmethod = \"random\"\ntrials = 4\nseed = 3\nparameters = { \"training.lr\" = [1e-4, 3e-4, 1e-3] }\n";
        let a = expand(&spec(text)).unwrap();
        let b = expand(&spec(text)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 4);
        let bad = spec("[sweep]\nmethod = \"grid\"\nparameters = { \"training.lr\" = [-1.0] }\n");
        let err = expand(&bad).unwrap_err().to_string();
        assert!(
            err.contains("trial 0") && err.contains("training.lr"),
            "{err}"
        );
    }
}
