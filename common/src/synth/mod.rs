//! The synthetic NPC cohort: a cohort shaped like the reference study, with
//! a known ground truth.
//!
//! Real patient data is private, so Cohort ships a generator whose output a
//! test can check training against: `truth.csv` holds every patient's latent
//! log-hazards and their parts (see [`model`] for the model and [`image`] for
//! the volumes).
//!
//! Determinism: every patient draws from its own stream
//! (`Rng::derive_indexed(seed, "patient", i)`), so output is independent of
//! thread count and chunking, and the same seed gives byte-identical files.
//! The manifest is written last: a cohort whose generation was interrupted
//! has no `clinical.csv` and is never mistaken for a complete one.

pub mod image;
pub mod model;

use std::fmt::Write as _;

use chrono::{Duration, NaiveDate};
use futures::{StreamExt, TryStreamExt};
use rayon::prelude::*;

use crate::cohort::split::{DateWindow, SplitRule};
use crate::nifti::{self, Encoding, Volume};
use crate::rng::Rng;
use crate::store::{Store, StoreError};
use model::PatientTruth;

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthConfig {
    pub patients: usize,
    /// Voxels along i, j, k.
    pub shape: [usize; 3],
    pub sequences: Vec<String>,
    pub seed: u64,
    /// The windows diagnosis dates are drawn from.
    pub rule: SplitRule,
    /// The date follow-up ends (administrative censoring).
    pub follow_up_end: NaiveDate,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            patients: 1636,
            shape: [32, 32, 32],
            sequences: vec!["t1".into(), "t2".into(), "t1c".into()],
            seed: 7,
            rule: SplitRule::study(),
            follow_up_end: NaiveDate::from_ymd_opt(2020, 6, 30).expect("valid date"),
        }
    }
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("synth: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("synth: encoding a volume: {0}")]
    Nifti(#[from] nifti::NiftiError),
    #[error("synth: worker task failed: {0}")]
    Task(String),
}

/// A summary of what was written.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SynthSummary {
    pub patients: usize,
    pub development: usize,
    pub test: usize,
    pub volumes: usize,
    pub bytes_written: u64,
    pub dfs_events: usize,
    pub dmfs_events: usize,
}

/// One generated patient: identity, clinical data, observed endpoints, truth.
struct Generated {
    id: String,
    diagnosis_date: NaiveDate,
    truth: PatientTruth,
    dfs: (f64, bool),
    dmfs: (f64, bool),
}

impl SynthConfig {
    fn validate(&self) -> Result<(), SynthError> {
        if self.patients == 0 {
            return Err(SynthError::Config("--patients must be at least 1".into()));
        }
        if self.shape.iter().any(|&n| !(4..=512).contains(&n)) {
            return Err(SynthError::Config(format!(
                "shape {:?}: each axis must be between 4 and 512 voxels",
                self.shape
            )));
        }
        if self.sequences.is_empty() {
            return Err(SynthError::Config("at least one sequence is needed".into()));
        }
        for s in &self.sequences {
            let ok = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok {
                return Err(SynthError::Config(format!(
                    "sequence name {s:?} must be letters, digits, '_' or '-'"
                )));
            }
        }
        let mut sorted = self.sequences.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != self.sequences.len() {
            return Err(SynthError::Config("sequence names must be distinct".into()));
        }
        Ok(())
    }

    /// Patients in the test window: the study's 382 of 1636, scaled.
    pub fn test_patients(&self) -> usize {
        ((self.patients as f64) * 382.0 / 1636.0).round() as usize
    }

    fn id(&self, i: usize) -> String {
        let width = self.patients.to_string().len().max(4);
        format!("NPC{:0width$}", i + 1)
    }

    /// Volume path of patient `id` and `sequence`, relative to the cohort root.
    pub fn volume_path(id: &str, sequence: &str) -> String {
        format!("volumes/{id}/{sequence}.nii.gz")
    }
}

fn random_dates(rng: &mut Rng, window: DateWindow, n: usize) -> Vec<NaiveDate> {
    let days = (window.end - window.start).num_days() as u64 + 1;
    let mut dates: Vec<NaiveDate> = (0..n)
        .map(|_| window.start + Duration::days(rng.below(days) as i64))
        .collect();
    dates.sort();
    dates
}

fn generate_patients(config: &SynthConfig) -> Vec<Generated> {
    let n_test = config.test_patients();
    let n_dev = config.patients - n_test;
    let mut date_rng = Rng::derive(config.seed, "diagnosis-dates");
    let mut dates = random_dates(&mut date_rng, config.rule.development, n_dev);
    dates.extend(random_dates(&mut date_rng, config.rule.test, n_test));
    dates
        .into_par_iter()
        .enumerate()
        .map(|(i, diagnosis_date)| {
            let mut rng = Rng::derive_indexed(config.seed, "patient", i as u64);
            let truth = model::draw_patient(&mut rng);
            let admin = (config.follow_up_end - diagnosis_date).num_days() as f64 / 30.4375;
            let (dfs, dmfs) = model::observe(&truth, admin.max(0.0));
            Generated {
                id: config.id(i),
                diagnosis_date,
                truth,
                dfs,
                dmfs,
            }
        })
        .collect()
}

fn clinical_csv(config: &SynthConfig, patients: &[Generated]) -> String {
    let mut s = String::from("patient_id,diagnosis_date");
    for seq in &config.sequences {
        let _ = write!(s, ",mri_{seq}");
    }
    s.push_str(",dfs_months,dfs_event,dmfs_months,dmfs_event,age,sex,t_stage,n_stage,ebv_dna,concurrent_chemo\n");
    for p in patients {
        let t = &p.truth;
        let _ = write!(s, "{},{}", p.id, p.diagnosis_date);
        for seq in &config.sequences {
            let _ = write!(s, ",{}", SynthConfig::volume_path(&p.id, seq));
        }
        let _ = writeln!(
            s,
            ",{:.2},{},{:.2},{},{},{},T{},N{},{},{}",
            p.dfs.0,
            u8::from(p.dfs.1),
            p.dmfs.0,
            u8::from(p.dmfs.1),
            t.age,
            if t.male { "M" } else { "F" },
            t.t_stage,
            t.n_stage,
            t.ebv_dna,
            u8::from(t.concurrent_chemo)
        );
    }
    s
}

fn truth_csv(patients: &[Generated]) -> String {
    let mut s = String::from(
        "patient_id,tumour_volume_ml,enhancement,heterogeneity,image_score,clinical_dm,clinical_lr,\
         chemo_effect,lp_dm,lp_lr,dfs_log_hazard,dmfs_log_hazard,dm_latent_months,lr_latent_months,loss_months\n",
    );
    for p in patients {
        let t = &p.truth;
        let _ = writeln!(
            s,
            "{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.4},{:.4},{:.4}",
            p.id,
            t.tumour_volume_ml,
            t.enhancement,
            t.heterogeneity,
            t.image_score,
            t.clinical_dm,
            t.clinical_lr,
            t.chemo_effect,
            t.lp_dm,
            t.lp_lr,
            t.dfs_log_hazard,
            t.lp_dm,
            t.dm_latent_months,
            t.lr_latent_months,
            t.loss_months
        );
    }
    s
}

fn encode_patient(
    config: &SynthConfig,
    index: usize,
    p: &Generated,
) -> Result<Vec<(String, Vec<u8>)>, SynthError> {
    let mut rng = Rng::derive_indexed(config.seed, "volume", index as u64);
    let images = image::render_patient(&p.truth, &config.sequences, config.shape, &mut rng);
    let pixdim = config
        .shape
        .map(|n| (image::FIELD_OF_VIEW_MM / n as f64) as f32);
    let mut affine = Volume::axis_aligned_affine(pixdim);
    for (axis, &n) in config.shape.iter().enumerate() {
        affine[axis][3] = -(n as f64 - 1.0) / 2.0 * f64::from(pixdim[axis]);
    }
    config
        .sequences
        .iter()
        .zip(images)
        .map(|(seq, data)| {
            let volume = Volume {
                dims: config.shape,
                pixdim,
                affine,
                data,
            };
            let bytes = nifti::encode(&volume, Encoding::Int16Scaled, true)?;
            Ok((SynthConfig::volume_path(&p.id, seq), bytes))
        })
        .collect()
}

/// Patients rendered per batch: enough to keep every core busy, few enough
/// that memory stays small at any cohort size.
const BATCH: usize = 64;
/// Concurrent object-store writes.
const CONCURRENT_PUTS: usize = 16;

/// Generates the cohort and writes it under `store`. `progress` is called
/// with the number of patients just finished.
pub async fn write_cohort(
    store: &Store,
    config: &SynthConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<SynthSummary, SynthError> {
    config.validate()?;
    let config_owned = config.clone();
    let patients = tokio::task::spawn_blocking(move || generate_patients(&config_owned))
        .await
        .map_err(|e| SynthError::Task(e.to_string()))?;
    let patients = std::sync::Arc::new(patients);
    let mut bytes_written = 0u64;
    for start in (0..patients.len()).step_by(BATCH) {
        let end = (start + BATCH).min(patients.len());
        let (cfg, all) = (config.clone(), patients.clone());
        let encoded: Vec<(String, Vec<u8>)> = tokio::task::spawn_blocking(move || {
            (start..end)
                .into_par_iter()
                .map(|i| encode_patient(&cfg, i, &all[i]))
                .collect::<Result<Vec<_>, _>>()
                .map(|v| v.into_iter().flatten().collect())
        })
        .await
        .map_err(|e| SynthError::Task(e.to_string()))??;
        bytes_written += encoded.iter().map(|(_, b)| b.len() as u64).sum::<u64>();
        futures::stream::iter(encoded)
            .map(|(path, bytes)| async move { store.put(&path, bytes).await })
            .buffer_unordered(CONCURRENT_PUTS)
            .try_collect::<Vec<()>>()
            .await?;
        progress((end - start) as u64);
    }
    let truth = truth_csv(&patients);
    let clinical = clinical_csv(config, &patients);
    bytes_written += (truth.len() + clinical.len()) as u64;
    store.put("truth.csv", truth.into_bytes()).await?;
    store
        .put(crate::cohort::MANIFEST_FILE, clinical.into_bytes())
        .await?;
    let n_test = config.test_patients();
    Ok(SynthSummary {
        patients: patients.len(),
        development: patients.len() - n_test,
        test: n_test,
        volumes: patients.len() * config.sequences.len(),
        bytes_written,
        dfs_events: patients.iter().filter(|p| p.dfs.1).count(),
        dmfs_events: patients.iter().filter(|p| p.dmfs.1).count(),
    })
}

/// Parses a shape like `32x32x32` (or one number for a cube).
pub fn parse_shape(raw: &str) -> Result<[usize; 3], SynthError> {
    let parts: Vec<&str> = raw.split(['x', 'X']).collect();
    let bad = || SynthError::Config(format!("shape {raw:?} must look like 32x32x32"));
    let nums: Vec<usize> = parts
        .iter()
        .map(|p| p.trim().parse::<usize>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    match nums[..] {
        [n] => Ok([n, n, n]),
        [a, b, c] => Ok([a, b, c]),
        _ => Err(bad()),
    }
}
