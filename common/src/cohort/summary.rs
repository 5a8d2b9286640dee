//! The descriptive summary of a cohort: counts per split, event rates,
//! median follow-up and a covariate table, as a study's "Table 1" would show.

use std::collections::BTreeMap;

use serde::Serialize;

use super::manifest::{Covariate, Endpoint, Manifest};
use super::split::{Split, SplitAssignment};

/// One endpoint in one group of patients.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EndpointSummary {
    pub events: usize,
    pub event_rate: f64,
    /// Median follow-up by the reverse Kaplan-Meier method (censoring as the
    /// event), the usual definition in clinical papers; `None` if never reached.
    pub median_follow_up_months: Option<f64>,
}

/// One split (or the whole cohort).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupSummary {
    pub patients: usize,
    pub dfs: EndpointSummary,
    pub dmfs: EndpointSummary,
}

/// A covariate's distribution over the whole cohort.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum CovariateSummary {
    Numeric {
        name: String,
        n: usize,
        missing: usize,
        mean: f64,
        sd: f64,
        median: f64,
        min: f64,
        max: f64,
    },
    Categorical {
        name: String,
        n: usize,
        missing: usize,
        levels: BTreeMap<String, usize>,
    },
}

/// The summary of a cohort under a split.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CohortSummary {
    pub all: GroupSummary,
    pub splits: BTreeMap<Split, GroupSummary>,
    pub covariates: Vec<CovariateSummary>,
}

/// Median of the reverse Kaplan-Meier curve: the time at which the
/// "survival" of follow-up (censorings as events, events as censorings) first
/// drops to 0.5 or below. Events at a time count as still followed at it.
fn reverse_km_median(endpoints: &[Endpoint]) -> Option<f64> {
    let mut times: Vec<(f64, bool)> = endpoints.iter().map(|e| (e.months, !e.event)).collect();
    times.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut at_risk = times.len();
    let mut surv = 1.0;
    let mut i = 0;
    while i < times.len() {
        let t = times[i].0;
        let mut censored_here = 0;
        let mut total_here = 0;
        while i < times.len() && times[i].0 == t {
            censored_here += usize::from(times[i].1);
            total_here += 1;
            i += 1;
        }
        if censored_here > 0 {
            surv *= 1.0 - censored_here as f64 / at_risk as f64;
            if surv <= 0.5 {
                return Some(t);
            }
        }
        at_risk -= total_here;
    }
    None
}

fn endpoint_summary(endpoints: &[Endpoint]) -> EndpointSummary {
    let events = endpoints.iter().filter(|e| e.event).count();
    EndpointSummary {
        events,
        event_rate: if endpoints.is_empty() {
            0.0
        } else {
            events as f64 / endpoints.len() as f64
        },
        median_follow_up_months: reverse_km_median(endpoints),
    }
}

fn group_summary(manifest: &Manifest, indices: &[usize]) -> GroupSummary {
    let dfs: Vec<Endpoint> = indices.iter().map(|&i| manifest.patients[i].dfs).collect();
    let dmfs: Vec<Endpoint> = indices.iter().map(|&i| manifest.patients[i].dmfs).collect();
    GroupSummary {
        patients: indices.len(),
        dfs: endpoint_summary(&dfs),
        dmfs: endpoint_summary(&dmfs),
    }
}

fn covariate_summary(name: &str, values: &[&Covariate]) -> CovariateSummary {
    let missing = values
        .iter()
        .filter(|v| matches!(v, Covariate::Missing))
        .count();
    let numbers: Vec<f64> = values.iter().filter_map(|v| v.as_f64()).collect();
    let has_categories = values.iter().any(|v| matches!(v, Covariate::Category(_)));
    if !has_categories && !numbers.is_empty() {
        let n = numbers.len() as f64;
        let mean = numbers.iter().sum::<f64>() / n;
        let var = numbers.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        let mut sorted = numbers.clone();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        let median = if sorted.len().is_multiple_of(2) {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        } else {
            sorted[mid]
        };
        CovariateSummary::Numeric {
            name: name.to_string(),
            n: numbers.len(),
            missing,
            mean,
            sd: var.sqrt(),
            median,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        }
    } else {
        let mut levels = BTreeMap::new();
        for v in values {
            let key = match v {
                Covariate::Category(s) => s.clone(),
                Covariate::Number(x) => x.to_string(),
                Covariate::Missing => continue,
            };
            *levels.entry(key).or_insert(0) += 1;
        }
        CovariateSummary::Categorical {
            name: name.to_string(),
            n: values.len() - missing,
            missing,
            levels,
        }
    }
}

/// Summarises `manifest` under `assignment` (from the same manifest).
pub fn summarise(manifest: &Manifest, assignment: &SplitAssignment) -> CohortSummary {
    let all: Vec<usize> = (0..manifest.patients.len()).collect();
    let mut splits = BTreeMap::new();
    for split in [
        Split::Train,
        Split::Validation,
        Split::Test,
        Split::Excluded,
    ] {
        let indices = assignment.indices(split);
        if split != Split::Excluded || !indices.is_empty() {
            splits.insert(split, group_summary(manifest, &indices));
        }
    }
    let covariates = manifest
        .covariate_names
        .iter()
        .map(|name| {
            let values = manifest.covariate(name).unwrap_or_default();
            covariate_summary(name, &values)
        })
        .collect();
    CohortSummary {
        all: group_summary(manifest, &all),
        splits,
        covariates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(months: f64, event: bool) -> Endpoint {
        Endpoint { months, event }
    }

    #[test]
    fn reverse_km_median_by_hand() {
        // Censorings (the reverse events) at 5, 8, 12; events at 3 and 9.
        // Reverse KM: at 5, 4 at risk -> 3/4; at 8, 3 at risk -> 3/4*2/3 = 1/2.
        let data = [
            e(3.0, true),
            e(5.0, false),
            e(8.0, false),
            e(9.0, true),
            e(12.0, false),
        ];
        assert_eq!(reverse_km_median(&data), Some(8.0));
        assert_eq!(reverse_km_median(&[e(1.0, true)]), None);
    }

    #[test]
    fn covariates_are_summarised_by_kind() {
        let values = [
            Covariate::Number(1.0),
            Covariate::Number(3.0),
            Covariate::Missing,
        ];
        let refs: Vec<&Covariate> = values.iter().collect();
        match covariate_summary("age", &refs) {
            CovariateSummary::Numeric {
                mean,
                median,
                missing,
                sd,
                ..
            } => {
                assert_eq!((mean, median, missing), (2.0, 2.0, 1));
                assert!((sd - 2f64.sqrt()).abs() < 1e-12);
            }
            other => panic!("{other:?}"),
        }
        let cats = [
            Covariate::Category("T1".into()),
            Covariate::Category("T1".into()),
        ];
        let refs: Vec<&Covariate> = cats.iter().collect();
        match covariate_summary("t_stage", &refs) {
            CovariateSummary::Categorical { levels, .. } => assert_eq!(levels["T1"], 2),
            other => panic!("{other:?}"),
        }
    }
}
