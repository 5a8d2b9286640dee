//! The job report (`report.json`) and the ensemble's risk scores (`scores.csv`).
//!
//! The ensemble is the sweep point with the highest mean best validation
//! C-index among the points with at least one succeeded member (without a
//! sweep: the only point); its score for a patient is the mean of its members'
//! scores. Written when every trial has ended, whatever the job's outcome, so
//! `cohort report` shows what finished even for a failed job.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::state::{JobRecord, TrialStatus};

pub const REPORT_FILE: &str = "report.json";
pub const SCORES_FILE: &str = "scores.csv";

/// report.json and (when any trial succeeded) scores.csv, as bytes.
pub fn build(job: &JobRecord, state: &str, folder_url: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    let trials: Vec<Value> = job
        .trials
        .iter()
        .map(|t| {
            let r = t.result.as_ref();
            json!({
                "index": t.index,
                "settings": t.settings,
                "ensemble_member": t.ensemble_member,
                "state": format!("{:?}", t.status).to_lowercase(),
                "attempts": t.attempts,
                "best_validation_c_index": r.map(|r| r.best_validation_c_index),
                "best_epoch": r.map(|r| r.best_epoch),
                "model_url": r.map(|r| r.model_url.clone()),
                "steps": r.and_then(|r| r.metrics.get("steps").map(|s| *s as u64)).unwrap_or(t.step),
                "metrics": r.map(|r| r.metrics.clone()),
                "folder": t.folder_url,
                "error": t.error,
            })
        })
        .collect();
    let ensemble = best_point(job);
    let (ensemble_json, csv) = match &ensemble {
        Some((point, members, mean_c)) => {
            let csv = scores_csv(job, members);
            (
                json!({
                    "point": point,
                    "settings": job.trials[members[0] as usize].settings,
                    "members": members,
                    "mean_best_validation_c_index": mean_c,
                    "scores_url": format!("{folder_url}/{SCORES_FILE}"),
                }),
                Some(csv.into_bytes()),
            )
        }
        None => (Value::Null, None),
    };
    let report = json!({
        "job_id": job.job_id,
        "name": job.name,
        "state": state,
        "error": job.error,
        "submitted_unix_ms": job.submitted_unix_ms,
        "finished_unix_ms": job.finished_unix_ms,
        "artifacts": folder_url,
        "trials": trials,
        "ensemble": ensemble_json,
    });
    let bytes = serde_json::to_vec_pretty(&report).expect("JSON values serialise");
    (bytes, csv)
}

/// (point, succeeded member trial indices, mean best validation C).
fn best_point(job: &JobRecord) -> Option<(u32, Vec<u32>, f64)> {
    let mut points: BTreeMap<u32, Vec<(u32, f64)>> = BTreeMap::new();
    for t in &job.trials {
        if let (TrialStatus::Succeeded, Some(r)) = (t.status, &t.result) {
            points
                .entry(t.point)
                .or_default()
                .push((t.index, r.best_validation_c_index));
        }
    }
    points
        .into_iter()
        .map(|(p, ms)| {
            let mean = ms.iter().map(|m| m.1).sum::<f64>() / ms.len() as f64;
            (p, ms.into_iter().map(|m| m.0).collect::<Vec<_>>(), mean)
        })
        .fold(
            None,
            |best: Option<(u32, Vec<u32>, f64)>, cand| match best {
                Some(b) if b.2 >= cand.2 || cand.2.is_nan() => Some(b),
                _ => Some(cand),
            },
        )
}

fn scores_csv(job: &JobRecord, members: &[u32]) -> String {
    // patient -> (split, sum, count), in patient order.
    let mut by_patient: BTreeMap<&str, (&str, f64, usize)> = BTreeMap::new();
    for &m in members {
        let Some(r) = &job.trials[m as usize].result else {
            continue;
        };
        for s in &r.scores {
            let e = by_patient
                .entry(&s.patient_id)
                .or_insert((&s.split, 0.0, 0));
            e.1 += s.score;
            e.2 += 1;
        }
    }
    // The csv writer quotes ids that need it; a patient id from data must not
    // break the file.
    let mut out = csv::Writer::from_writer(Vec::new());
    let _ = out.write_record(["patient_id", "split", "score"]);
    for (patient, (split, sum, n)) in by_patient {
        let _ = out.write_record([patient, split, &(sum / n as f64).to_string()]);
    }
    String::from_utf8(out.into_inner().unwrap_or_default()).unwrap_or_default()
}
