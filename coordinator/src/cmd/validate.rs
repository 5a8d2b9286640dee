//! `cohort validate`: check a cohort's manifest and volumes, and summarise it
//! under a split rule.

use std::process::ExitCode;

use anyhow::Context;
use cohort_common::cohort::summary::{CohortSummary, CovariateSummary, GroupSummary, summarise};
use cohort_common::cohort::{MANIFEST_FILE, Problems, SplitRule, manifest, validate};
use cohort_common::store::{Store, StoreError};
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// The cohort root: a folder or a store URL holding clinical.csv.
    pub cohort: String,
    /// The split rule, `dev=START..END;val=FRACTION|COUNT;test=START..END;seed=N`;
    /// omitted keys take the study's values
    /// (dev=2010-10-01..2015-03-31;val=0.3;test=2015-04-01..2015-09-30;seed=7).
    #[arg(long, default_value_t = SplitRule::study())]
    pub split_rule: SplitRule,
    /// Keep at most this many problems (the rest are counted).
    #[arg(long, default_value_t = 200)]
    pub max_problems: usize,
    /// Skip checking that every volume exists on the store.
    #[arg(long)]
    pub skip_volumes: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Exit code when the cohort has errors (1 is kept for failures to run).
const INVALID: u8 = 2;

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open(&args.cohort).with_context(|| format!("opening {}", args.cohort))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let bytes = match runtime.block_on(store.get(MANIFEST_FILE)) {
        Ok(b) => b,
        Err(StoreError::NotFound { url }) => anyhow::bail!("no manifest: {url} does not exist"),
        Err(e) => return Err(e.into()),
    };
    let parsed = manifest::parse_with_limit(&bytes, MANIFEST_FILE, args.max_problems);
    let mut problems = parsed.problems;
    let manifest = parsed.manifest;
    if !args.skip_volumes && !manifest.patients.is_empty() {
        let volume_problems = runtime
            .block_on(validate::check_volumes(&store, &manifest))
            .context("listing the cohort's volumes")?;
        problems.extend(volume_problems);
    }
    let assignment = args.split_rule.assign(&manifest)?;
    let summary = summarise(&manifest, &assignment);
    let valid = !problems.has_errors();
    if args.json {
        let value = json!({
            "cohort": store.url(),
            "valid": valid,
            "patients": manifest.patients.len(),
            "sequences": manifest.sequences,
            "split_rule": args.split_rule.to_string(),
            "summary": summary,
            "errors": problems.error_count(),
            "warnings": problems.warning_count(),
            "problems": problems.problems,
            "omitted_problems": problems.omitted_errors + problems.omitted_warnings,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print_human(
            store.url(),
            &manifest.sequences,
            &summary,
            &args.split_rule,
            &problems,
        );
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(INVALID)
    })
}

fn fmt_months(m: Option<f64>) -> String {
    m.map_or_else(|| "NR".to_string(), |m| format!("{m:.1}"))
}

fn group_line(name: &str, g: &GroupSummary) -> String {
    format!(
        "{name:<12}{:>9}{:>11}{:>8.1}%{:>12}{:>11}{:>8.1}%{:>12}",
        g.patients,
        g.dfs.events,
        100.0 * g.dfs.event_rate,
        fmt_months(g.dfs.median_follow_up_months),
        g.dmfs.events,
        100.0 * g.dmfs.event_rate,
        fmt_months(g.dmfs.median_follow_up_months),
    )
}

fn print_human(
    url: &str,
    sequences: &[String],
    s: &CohortSummary,
    rule: &SplitRule,
    problems: &Problems,
) {
    println!("cohort      {url}");
    println!("sequences   {}", sequences.join(", "));
    println!("split rule  {rule}");
    println!();
    println!(
        "{:<12}{:>9}{:>11}{:>9}{:>12}{:>11}{:>9}{:>12}",
        "split", "patients", "DFS events", "rate", "median FU", "DMFS evts", "rate", "median FU"
    );
    for (split, g) in &s.splits {
        println!("{}", group_line(split.as_str(), g));
    }
    println!("{}", group_line("all", &s.all));
    println!("(median follow-up in months, reverse Kaplan-Meier; NR = not reached)");
    println!();
    println!("covariates");
    for c in &s.covariates {
        match c {
            CovariateSummary::Numeric {
                name,
                n,
                missing,
                mean,
                sd,
                median,
                min,
                max,
            } => println!(
                "  {name:<18} n={n:<6} missing={missing:<4} mean {mean:.2} (sd {sd:.2}), median {median:.2}, range {min:.2}..{max:.2}"
            ),
            CovariateSummary::Categorical {
                name,
                n,
                missing,
                levels,
            } => {
                let levels: Vec<String> = levels
                    .iter()
                    .map(|(level, count)| {
                        format!(
                            "{level} {count} ({:.1}%)",
                            100.0 * *count as f64 / (*n).max(1) as f64
                        )
                    })
                    .collect();
                println!(
                    "  {name:<18} n={n:<6} missing={missing:<4} {}",
                    levels.join(", ")
                );
            }
        }
    }
    println!();
    if problems.problems.is_empty() {
        println!("no problems found");
    } else {
        print!("{problems}");
        println!(
            "{} errors, {} warnings",
            problems.error_count(),
            problems.warning_count()
        );
    }
}
