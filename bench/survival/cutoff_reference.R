# Extra reference values for Cohort's optimal cut-off (common::survival::cutoff),
# beyond the three data sets in ../shared/reference/survival: heavy ties in the
# score (gbsg2 pnodes), many distinct scores (gbsg2 tsize, progrec) and heavy
# ties in time (the synthetic set of auc_reference.py), with non-default
# proportions too.
#
#   apt-get install -y r-base-core r-cran-survival r-cran-maxstat r-cran-jsonlite
#   venv/bin/python bench/survival/auc_reference.py   # writes the CSVs
#   Rscript bench/survival/cutoff_reference.R
#
# Writes common/tests/data/survival/cutoff/cutoff_reference.json.

suppressPackageStartupMessages({
  library(survival)
  library(maxstat)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
root <- normalizePath(file.path(dirname(script), "..", ".."))
auc_dir <- file.path(root, "common", "tests", "data", "survival", "auc")
out_dir <- file.path(root, "common", "tests", "data", "survival", "cutoff")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

one <- function(name, csv, d, var, minprop, maxprop) {
  f <- as.formula(paste("Surv(time, event) ~", var))
  m94 <- maxstat.test(f, data = d, smethod = "LogRank", pmethod = "Lau94",
                      minprop = minprop, maxprop = maxprop)
  m92 <- maxstat.test(f, data = d, smethod = "LogRank", pmethod = "Lau92",
                      minprop = minprop, maxprop = maxprop)
  x <- d[[var]]
  chisq_at <- function(cuts) sapply(cuts, function(c)
    survdiff(Surv(d$time, d$event) ~ I(x <= c))$chisq)
  q <- quantile(x, c(minprop, maxprop), type = 7)
  ux <- sort(unique(x))
  qcuts <- ux[ux >= q[1] & ux <= q[2] & ux < max(x)]
  mchisq <- chisq_at(m94$cuts)
  qchisq <- chisq_at(qcuts)
  list(
    name = name, csv = csv, variable = var, minprop = minprop, maxprop = maxprop,
    cutpoint = unname(m94$estimate), statistic = unname(m94$statistic),
    p_Lau94 = m94$p.value, p_Lau92 = m92$p.value,
    n_low = sum(x <= m94$estimate), n_high = sum(x > m94$estimate),
    cuts = m94$cuts, stats = m94$stats,
    survdiff_maxstat_cuts = list(cuts = m94$cuts, chisq = mchisq,
                                 best_cut = m94$cuts[which.max(mchisq)]),
    survdiff_quantile_cuts = list(q_low = unname(q[1]), q_high = unname(q[2]),
                                  cuts = qcuts, chisq = qchisq,
                                  best_cut = qcuts[which.max(qchisq)])
  )
}

gb <- read.csv(file.path(auc_dir, "gbsg2.csv"))
syn <- read.csv(file.path(auc_dir, "synthetic_ties.csv"))
cases <- list(
  one("gbsg2_pnodes", "gbsg2.csv", gb, "pnodes", 0.1, 0.9),
  one("gbsg2_tsize", "gbsg2.csv", gb, "tsize", 0.1, 0.9),
  one("gbsg2_tsize_025", "gbsg2.csv", gb, "tsize", 0.25, 0.75),
  one("synthetic_ties_x", "synthetic_ties.csv", syn, "x", 0.1, 0.9),
  one("synthetic_ties_x_02", "synthetic_ties.csv", syn, "x", 0.2, 0.8)
)
ref <- list(
  generated_by = list(R = R.version.string,
                      survival = as.character(packageVersion("survival")),
                      maxstat = as.character(packageVersion("maxstat"))),
  cases = cases
)
writeLines(toJSON(ref, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(out_dir, "cutoff_reference.json"))
for (c in cases) cat(c$name, c$cutpoint, c$statistic, c$p_Lau94, "\n")
