//! Kaplan-Meier and log-rank against R (`survfit`, `quantile.survfit`,
//! `survdiff`) on every reference data set: every row of every curve
//! (overall and by group) to 1e-8, the counts exactly, the quantiles with
//! their CIs, and the log-rank statistic, df, p, O, E and V. Plus the
//! property that KM does not depend on the order of the rows.

mod survival_support;

use cohort_common::rng::Rng;
use cohort_common::survival::SurvData;
use cohort_common::survival::km::{KmCurve, kaplan_meier, kaplan_meier_by};
use cohort_common::survival::logrank::logrank;
use serde_json::Value;
use survival_support::*;

fn check_curve(label: &str, c: &KmCurve, r: &Value) {
    let times = arr(&r["time"]);
    assert_eq!(c.time, times, "{label} times");
    let ints = |k: &str| {
        arr(&r[k])
            .into_iter()
            .map(|v| v as usize)
            .collect::<Vec<_>>()
    };
    assert_eq!(c.n_risk, ints("n_risk"), "{label} n_risk");
    assert_eq!(c.n_event, ints("n_event"), "{label} n_event");
    assert_eq!(c.n_censor, ints("n_censor"), "{label} n_censor");
    let se_surv = c.se_surv();
    for k in 0..times.len() {
        let w = |key: &str| opt(&r[key][k]);
        let what = |s: &str| format!("{label} {s}[t={}]", times[k]);
        close(&what("surv"), c.surv[k], w("surv").unwrap(), 0.0, 1e-8);
        close(
            &what("cumhaz"),
            c.cumhaz[k],
            w("cumhaz").unwrap(),
            1e-8,
            1e-12,
        );
        close(
            &what("std_chaz"),
            c.std_chaz[k],
            w("std_chaz").unwrap(),
            1e-8,
            1e-12,
        );
        match w("std_err") {
            Some(v) => close(&what("std_err"), c.std_err[k], v, 1e-8, 1e-12),
            None => assert!(c.std_err[k].is_infinite(), "{}", what("std_err")),
        }
        match w("std_err_surv") {
            Some(v) => close(&what("se"), se_surv[k], v, 1e-8, 1e-12),
            None => assert!(se_surv[k].is_nan(), "{}", what("se")),
        }
        for (key, got) in [("lower", c.lower[k]), ("upper", c.upper[k])] {
            match w(key) {
                Some(v) => close(&what(key), got, v, 0.0, 1e-8),
                None => assert!(got.is_nan(), "{} should be NA", what(key)),
            }
        }
    }
    let s = &r["summary"];
    assert_eq!(c.n as f64, f(&s["records"]), "{label} records");
    assert_eq!(c.events as f64, f(&s["events"]), "{label} events");
    let m = c.median();
    assert_eq!(m.quantile, opt(&s["median"]), "{label} median");
    assert_eq!(m.lower, opt(&s["median_lower"]), "{label} median lower");
    assert_eq!(m.upper, opt(&s["median_upper"]), "{label} median upper");
    let q = &r["quantiles"];
    for (k, p) in arr(&q["probs"]).into_iter().enumerate() {
        let got = c.quantile(p);
        assert_eq!(got.quantile, opt(&q["quantile"][k]), "{label} q{p}");
        assert_eq!(got.lower, opt(&q["lower"][k]), "{label} q{p} lower");
        assert_eq!(got.upper, opt(&q["upper"][k]), "{label} q{p} upper");
    }
}

#[test]
fn kaplan_meier_matches_survfit() {
    for (name, table, json) in datasets() {
        let data = table.surv("time", "event").unwrap();
        let km = &json["km"];
        check_curve(
            &format!("{name} overall"),
            &kaplan_meier(&data, 0.95).unwrap(),
            &km["overall"],
        );
        for key in ["by_two_group", "by_multi_group"] {
            let g = table
                .groups(km[key]["group_var"].as_str().unwrap())
                .unwrap();
            let curves = kaplan_meier_by(&data, &g.codes, g.levels.len(), 0.95).unwrap();
            let strata = km[key]["strata"].as_object().unwrap();
            assert_eq!(strata.len(), g.levels.len(), "{name} {key} groups");
            for (level, curve) in g.levels.iter().zip(&curves) {
                let label = format!("{name} {key} {level}");
                check_curve(&label, curve.as_ref().unwrap(), &strata[level]);
            }
        }
    }
}

#[test]
fn logrank_matches_survdiff() {
    for (name, table, json) in datasets() {
        let data = table.surv("time", "event").unwrap();
        for key in ["two_group", "multi_group"] {
            let r = &json["logrank"][key];
            let g = table.groups(r["group_var"].as_str().unwrap()).unwrap();
            assert_eq!(g.levels, strings(&r["groups"]), "{name} {key} levels");
            let lr = logrank(&data, &g.codes, g.levels.len(), None).unwrap();
            let label = format!("{name} {key}");
            close(
                &format!("{label} chisq"),
                lr.stat,
                f(&r["chisq"]),
                1e-5,
                1e-10,
            );
            assert_eq!(lr.df as f64, f(&r["df"]), "{label} df");
            close_p(
                &format!("{label} p"),
                lr.p,
                lr.log_p,
                f(&r["p"]),
                opt(&r["log_p"]),
            );
            let k = g.levels.len();
            for a in 0..k {
                assert_eq!(lr.groups[a].n as f64, f(&r["n"][a]), "{label} n");
                close(
                    &format!("{label} obs"),
                    lr.groups[a].observed,
                    f(&r["obs"][a]),
                    1e-12,
                    1e-12,
                );
                close(
                    &format!("{label} exp"),
                    lr.groups[a].expected,
                    f(&r["exp"][a]),
                    1e-10,
                    1e-10,
                );
                let row = arr(&r["var"][a]);
                for (b, want) in row.into_iter().enumerate() {
                    close(
                        &format!("{label} var"),
                        lr.var[a * k + b],
                        want,
                        1e-9,
                        1e-10,
                    );
                }
            }
        }
    }
}

#[test]
fn kaplan_meier_does_not_depend_on_row_order() {
    for (name, table, _) in datasets() {
        let data = table.surv("time", "event").unwrap();
        let base = kaplan_meier(&data, 0.95).unwrap();
        let mut idx: Vec<usize> = (0..data.len()).collect();
        Rng::seed_from_u64(7).shuffle(&mut idx);
        let shuffled = SurvData::new(
            idx.iter().map(|&i| data.time()[i]).collect(),
            idx.iter().map(|&i| data.event()[i]).collect(),
        )
        .unwrap();
        let other = kaplan_meier(&shuffled, 0.95).unwrap();
        // Compare as JSON: NaN (R's NA) limits compare equal there.
        let js = |c| serde_json::to_string(c).unwrap();
        assert!(
            js(&base) == js(&other),
            "{name}: KM changed with the row order"
        );
    }
}
