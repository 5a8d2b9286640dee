## R side of bench/survival/run.sh: times survival's coxph.fit core (Efron),
## concordance() of the fit, and survdiff with 2 and 5 groups on the
## synthetic 100k set, median of 5 runs after a warm-up, as in the reference
## README; prints JSON with the seconds and the results.
## Usage: Rscript bench/survival/bench.R synthetic.csv
suppressMessages({ library(survival); library(jsonlite) })
d <- read.csv(commandArgs(TRUE)[1])
X <- as.matrix(d[, paste0("x", 1:5)])
Y <- Surv(d$time, d$event)
med <- function(f) {
  f()
  t <- sapply(1:5, function(i) { st <- system.time(f()); c(st[["elapsed"]], st[["user.self"]] + st[["sys.self"]]) })
  list(s = median(t[1, ]), cpu = median(t[2, ]), v = f())
}
cf <- med(function() survival::coxph.fit(X, Y, NULL, NULL, NULL, coxph.control(), NULL, "efron", NULL))
fit <- coxph(Surv(time, event) ~ x1 + x2 + x3 + x4 + x5, data = d, ties = "efron")
cc <- med(function() concordance(fit))
s2 <- med(function() survdiff(Surv(time, event) ~ x3, data = d))
s5 <- med(function() survdiff(Surv(time, event) ~ x5, data = d))
out <- list(
  seconds = list(cox_efron = cf$s, concordance = cc$s, logrank_2 = s2$s, logrank_5 = s5$s),
  cpu_seconds = list(cox_efron = cf$cpu, concordance = cc$cpu, logrank_2 = s2$cpu, logrank_5 = s5$cpu),
  cox = list(coef = unname(cf$v$coefficients), se = unname(sqrt(diag(cf$v$var))), loglik = cf$v$loglik[2],
             iterations = cf$v$iter),
  concordance = list(c = cc$v$concordance, se = sqrt(cc$v$var)),
  logrank_2 = list(chisq = s2$v$chisq, log_p = pchisq(s2$v$chisq, 1, lower.tail = FALSE, log.p = TRUE)),
  logrank_5 = list(chisq = s5$v$chisq, log_p = pchisq(s5$v$chisq, 4, lower.tail = FALSE, log.p = TRUE)))
cat(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "\n")
