//! Subgroup hazard ratios and the interaction tests against R (coxph on each
//! subgroup, and the LR / Wald tests of the product terms), computed by
//! `bench/survival/subgroup_reference.R` on rossi; and nomogram and
//! calibration properties on a fitted multivariable model.

mod survival_support;

use cohort_common::survival::calibration::calibration;
use cohort_common::survival::cox::{CoxOptions, cox_fit};
use cohort_common::survival::nomogram::{FactorSpec, Nomogram};
use cohort_common::survival::subgroup::subgroup_analysis;
use cohort_common::survival::table::Table;
use serde_json::Value;
use survival_support::*;

fn rossi() -> Table {
    Table::read(&shared_dir().join("rossi.csv")).unwrap()
}

#[test]
fn subgroups_and_interaction_match_r() {
    let table = rossi();
    let data = table.surv("time", "event").unwrap();
    let refs: Value = serde_json::from_str(
        &std::fs::read_to_string(local_dir().join("subgroup_rossi.json")).unwrap(),
    )
    .unwrap();
    for r in refs.as_array().unwrap() {
        let factor = r["factor"].as_str().unwrap();
        let by = r["by"].as_str().unwrap();
        let adjust = strings(&r["adjust"]);
        let g = table.groups(by).unwrap();
        let res = subgroup_analysis(
            &data,
            factor,
            &table.numeric(factor).unwrap(),
            by,
            &g.codes,
            &g.levels,
            &table.design(&adjust, &[]).unwrap(),
            &CoxOptions::default(),
        )
        .unwrap();
        let label = format!("{factor} by {by}");
        for (got, want) in res.subgroups.iter().zip(r["subgroups"].as_array().unwrap()) {
            assert_eq!(got.level, want["level"].as_str().unwrap());
            assert_eq!(got.n as f64, f(&want["n"]));
            assert_eq!(got.events as f64, f(&want["events"]));
            let se = f(&want["se"]);
            close(
                &format!("{label} coef"),
                got.coef,
                f(&want["coef"]),
                1e-6,
                1e-6 * se,
            );
            close(&format!("{label} se"), got.se, se, 1e-5, 0.0);
            close(
                &format!("{label} hr_lower"),
                got.hr_lower,
                f(&want["hr_lower"]),
                1e-5,
                0.0,
            );
            close(
                &format!("{label} hr_upper"),
                got.hr_upper,
                f(&want["hr_upper"]),
                1e-5,
                0.0,
            );
            close(&format!("{label} p"), got.p, f(&want["p"]), 1e-4, 1e-12);
        }
        for (got, key) in [
            (&res.interaction_lr, "interaction_lr"),
            (&res.interaction_wald, "interaction_wald"),
        ] {
            close(
                &format!("{label} {key}"),
                got.stat,
                f(&r[key]["stat"]),
                1e-5,
                1e-9,
            );
            assert_eq!(got.df as f64, f(&r[key]["df"]));
            close(
                &format!("{label} {key} p"),
                got.p,
                f(&r[key]["p"]),
                1e-4,
                1e-12,
            );
        }
    }
}

#[test]
fn nomogram_points_reproduce_cox_predictions() {
    let table = rossi();
    let data = table.surv("time", "event").unwrap();
    let covs: Vec<String> = ["fin", "age", "prio", "prio_group"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let x = table.design(&covs, &["prio_group".to_string()]).unwrap();
    assert_eq!(
        x.names(),
        &["fin", "age", "prio", "prio_group_1", "prio_group_2"]
    );
    let fit = cox_fit(&data, &x, None, None, &CoxOptions::default()).unwrap();
    let specs = vec![
        FactorSpec::Categorical {
            name: "fin".into(),
            levels: vec![("0".into(), vec![(0, 0.0)]), ("1".into(), vec![(0, 1.0)])],
        },
        FactorSpec::Continuous {
            name: "age".into(),
            column: 1,
        },
        FactorSpec::Continuous {
            name: "prio".into(),
            column: 2,
        },
        FactorSpec::Categorical {
            name: "prio_group".into(),
            levels: vec![
                ("0".into(), vec![]),
                ("1".into(), vec![(3, 1.0)]),
                ("2".into(), vec![(4, 1.0)]),
            ],
        },
    ];
    let nomo = Nomogram::build(&fit, &x, &specs, &[26.0, 52.0], 0).unwrap();
    // The widest factor spans exactly 0-100 points, every axis starts at 0.
    let spans: Vec<(f64, f64)> = nomo
        .factors
        .iter()
        .map(|f| {
            let p: Vec<f64> = f.points.iter().map(|p| p.points).collect();
            (
                p.iter().cloned().fold(f64::INFINITY, f64::min),
                p.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            )
        })
        .collect();
    let widest = spans.iter().map(|(a, b)| b - a).fold(0.0, f64::max);
    assert!((widest - 100.0).abs() < 1e-9, "{spans:?}");
    for i in 0..data.len() {
        let row = x.row(i);
        let (_, total) = nomo.points(row);
        for t in [26.0, 52.0] {
            let want = fit.survival(row, 0, t).unwrap();
            assert!(
                (nomo.survival(total, t) - want).abs() < 1e-12,
                "row {i} t {t}"
            );
        }
    }
    for h in &nomo.horizons {
        for tick in &h.ticks {
            assert!((nomo.survival(tick.total_points, h.time) - tick.survival).abs() < 1e-12);
        }
    }

    // Calibration of the 52-week predictions in 4 groups: sizes, ordering,
    // and observed KM values that are probabilities with CIs around them.
    let pred: Vec<f64> = (0..data.len())
        .map(|i| fit.survival(x.row(i), 0, 52.0).unwrap())
        .collect();
    let cal = calibration(&data, &pred, 52.0, 4).unwrap();
    assert_eq!(cal.groups.iter().map(|g| g.n).sum::<usize>(), data.len());
    for w in cal.groups.windows(2) {
        assert!(w[0].predicted_max <= w[1].predicted_min);
    }
    for g in &cal.groups {
        assert!(g.lower <= g.observed && g.observed <= g.upper, "{g:?}");
        // A correctly specified model is roughly calibrated on its own data.
        assert!((g.observed - g.predicted).abs() < 0.15, "{g:?}");
    }
}

/// The nomogram against `rms::nomogram` (rms 6.5, `maxscale = 100`,
/// `nint = 10`), from `bench/survival/nomogram_reference.R`: points of every
/// labelled value, and the total points of predicted 26- and 52-week
/// survival.
#[test]
fn nomogram_matches_rms() {
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(local_dir().join("nomogram_rossi.json")).unwrap(),
    )
    .unwrap();
    let table = rossi();
    let data = table.surv("time", "event").unwrap();
    let covs: Vec<String> = ["fin", "age", "prio_group"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let x = table.design(&covs, &["prio_group".to_string()]).unwrap();
    let fit = cox_fit(&data, &x, None, None, &CoxOptions::default()).unwrap();
    let specs = vec![
        FactorSpec::Continuous {
            name: "fin".into(),
            column: 0,
        },
        FactorSpec::Continuous {
            name: "age".into(),
            column: 1,
        },
        FactorSpec::Categorical {
            name: "prio_group".into(),
            levels: vec![
                ("0".into(), vec![]),
                ("1".into(), vec![(2, 1.0)]),
                ("2".into(), vec![(3, 1.0)]),
            ],
        },
    ];
    let nomo = Nomogram::build(&fit, &x, &specs, &[26.0, 52.0], 0).unwrap();
    for f_ in &nomo.factors {
        let want = &r["factors"][&f_.name];
        assert_eq!(
            f_.points
                .iter()
                .map(|p| p.label.clone())
                .collect::<Vec<_>>(),
            strings(&want["values"]),
            "{} labels",
            f_.name
        );
        for (p, w) in f_.points.iter().zip(arr(&want["points"])) {
            close(
                &format!("{} = {} points", f_.name, p.label),
                p.points,
                w,
                0.0,
                1e-5,
            );
        }
    }
    let mut compared = 0;
    for (h, want) in nomo.horizons.iter().zip(r["horizons"].as_array().unwrap()) {
        let surv = arr(&want["survival"]);
        let tp = arr(&want["total_points"]);
        for (s, t) in surv.iter().zip(&tp) {
            // rms labels every probability its scale reaches; we label those
            // inside [0, max total points]. Compare where both have one.
            if let Some(tick) = h.ticks.iter().find(|k| (k.survival - s).abs() < 1e-12) {
                compared += 1;
                close(
                    &format!("t={} S={s} total points", h.time),
                    tick.total_points,
                    *t,
                    0.0,
                    1e-4,
                );
            }
        }
    }
    assert!(compared >= 8, "only {compared} survival ticks compared");
}
