//! Timing of the survival engine on a large table, for
//! `bench/survival/run.sh` (run by hand, not in CI):
//!
//! ```sh
//! cargo run --release -p cohort-common --example survival_bench -- synthetic.csv
//! ```
//!
//! On the 100,000-row synthetic set of `scripts/build_data.R` it times, with
//! the data already in memory, the Cox Efron fit on x1..x5, Harrell's C with
//! its jackknife SE of the fitted linear predictor, and the log-rank test of
//! x3 (2 groups) and x5 (5 groups): the median of 5 runs after one warm-up,
//! as the R and lifelines timings in the reference README. It prints one JSON
//! object with the seconds and the results (to check agreement).

use cohort_common::survival::concordance::concordance;
use cohort_common::survival::cox::{CoxOptions, cox_fit};
use cohort_common::survival::logrank::logrank;
use cohort_common::survival::table::Table;
use std::time::Instant;

/// CPU time of this thread in seconds (`/proc/thread-self/schedstat`, whose
/// first field is nanoseconds on a CPU): unlike the wall clock it does not
/// grow when other processes share the cores.
fn thread_cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns * 1e-9)
}

/// Median wall and mean CPU seconds of 5 timed runs after a warm-up (as the
/// README's R timings), or of `SURVIVAL_BENCH_RUNS` runs.
fn median_secs<T>(mut f: impl FnMut() -> T) -> ((f64, f64), T) {
    let runs: usize = std::env::var("SURVIVAL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut out = f();
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        let (t0, c0) = (Instant::now(), thread_cpu());
        out = f();
        cpu.push(thread_cpu() - c0);
        wall.push(t0.elapsed().as_secs_f64());
    }
    wall.sort_by(f64::total_cmp);
    // The kernel updates a running thread's CPU time at scheduler ticks
    // (a few ms), so the mean over the runs is the fair summary for CPU.
    let cpu_mean = cpu.iter().sum::<f64>() / cpu.len() as f64;
    ((wall[wall.len() / 2], cpu_mean), out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: survival_bench FILE.csv (with time, event, x1..x5)")?;
    let t0 = Instant::now();
    let table = Table::read(std::path::Path::new(&path))?;
    let data = table.surv("time", "event")?;
    let covs: Vec<String> = (1..=5).map(|k| format!("x{k}")).collect();
    let x = table.design(&covs, &[])?;
    let g3 = table.groups("x3")?;
    let g5 = table.groups("x5")?;
    let load = t0.elapsed().as_secs_f64();

    let opts = CoxOptions::default();
    let (cox_s, fit) = median_secs(|| cox_fit(&data, &x, None, None, &opts));
    let fit = fit?;
    let lp = fit.linear_predictors(&x);
    let (c_s, c) = median_secs(|| concordance(&data, &lp, None, None));
    let c = c?;
    let (lr2_s, lr2) = median_secs(|| logrank(&data, &g3.codes, g3.levels.len(), None));
    let lr2 = lr2?;
    let (lr5_s, lr5) = median_secs(|| logrank(&data, &g5.codes, g5.levels.len(), None));
    let lr5 = lr5?;
    let out = serde_json::json!({
        "n": data.len(),
        "events": data.n_events(),
        "load_seconds": load,
        "seconds": {"cox_efron": cox_s.0, "concordance": c_s.0, "logrank_2": lr2_s.0, "logrank_5": lr5_s.0},
        "cpu_seconds": {"cox_efron": cox_s.1, "concordance": c_s.1, "logrank_2": lr2_s.1, "logrank_5": lr5_s.1},
        "cox": {"coef": fit.coef, "se": fit.se(), "loglik": fit.loglik, "iterations": fit.iterations},
        "concordance": {"c": c.c, "se": c.se},
        "logrank_2": {"chisq": lr2.stat, "log_p": lr2.log_p},
        "logrank_5": {"chisq": lr5.stat, "log_p": lr5.log_p},
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
