## R reference for strata and case weights in common::survival (Cox,
## concordance, log-rank). Usage:
##   Rscript bench/survival/cox_extra_reference.R SHARED_DIR OUT.json
suppressMessages({ library(survival); library(jsonlite) })
args <- commandArgs(TRUE)
vet <- read.csv(file.path(args[1], "veteran.csv"), stringsAsFactors = FALSE)
ros <- read.csv(file.path(args[1], "rossi.csv"), stringsAsFactors = FALSE)
ros$w <- 1 + (ros$prio %% 3) + 0.5 * ros$fin
fitinfo <- function(f, cf) {
  cc <- concordance(f)
  ## With non-integer case weights coxph reports a robust (sandwich) variance;
  ## the model-based one, which the engine computes, is f$naive.var then.
  naive <- if (is.null(f$naive.var)) f$var else f$naive.var
  list(coef = unname(coef(f)), se = unname(sqrt(diag(naive))),
       se_reported = unname(sqrt(diag(vcov(f)))), loglik = f$loglik,
       score = f$score, wald_reported = unname(f$wald.test),
       wald = as.numeric(t(coef(f)) %*% solve(naive) %*% coef(f)), iter = f$iter,
       concordance = cc$concordance, concordance_se = sqrt(cc$var))
}
out <- list()
for (ties in c("efron", "breslow")) {
  f <- coxph(Surv(time, event) ~ trt + karno + age + strata(prior), data = vet, ties = ties)
  out[[paste0("veteran_strata_prior_", ties)]] <- c(list(covariates = I(c("trt", "karno", "age")), strata = "prior"), fitinfo(f))
  f <- coxph(Surv(time, event) ~ fin + age + prio, data = ros, weights = w, ties = ties)
  out[[paste0("rossi_weighted_", ties)]] <- c(list(covariates = I(c("fin", "age", "prio")), weights = "w"), fitinfo(f))
}
sd <- survdiff(Surv(time, event) ~ celltype + strata(prior), data = vet)
rs <- function(m) if (is.matrix(m)) unname(rowSums(m)) else as.numeric(m)  # per group, summed over strata
out$veteran_logrank_celltype_strata_prior <- list(chisq = sd$chisq, obs = rs(sd$obs), exp = rs(sd$exp),
  df = length(sd$n) - 1, p = pchisq(sd$chisq, length(sd$n) - 1, lower.tail = FALSE))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), args[2])
