## R reference for common::survival::subgroup: the HR of a binary factor
## within each level of another, and the interaction tests, on rossi.
## Usage: Rscript bench/survival/subgroup_reference.R ROSSI.csv OUT.json
suppressMessages({ library(survival); library(jsonlite) })
args <- commandArgs(TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE)
specs <- list(list(factor = "fin", by = "wexp", adjust = character()),
              list(factor = "fin", by = "prio_group", adjust = c("age")))
out <- lapply(specs, function(s) {
  rhs <- paste(c(s$factor, s$adjust), collapse = " + ")
  lv <- sort(unique(d[[s$by]]))
  subs <- lapply(lv, function(g) {
    f <- coxph(as.formula(paste("Surv(time, event) ~", rhs)), data = d[d[[s$by]] == g, ])
    ci <- summary(f)$conf.int
    list(level = as.character(g), n = f$n, events = f$nevent,
         coef = unname(coef(f)[s$factor]), se = sqrt(vcov(f)[s$factor, s$factor]),
         hr = unname(exp(coef(f)[s$factor])),
         hr_lower = ci[s$factor, "lower .95"], hr_upper = ci[s$factor, "upper .95"],
         p = summary(f)$coefficients[s$factor, "Pr(>|z|)"])
  })
  d$by_f <- factor(d[[s$by]])
  adj <- if (length(s$adjust)) paste("+", paste(s$adjust, collapse = " + ")) else ""
  f0 <- coxph(as.formula(paste("Surv(time, event) ~", s$factor, "+ by_f", adj)), data = d)
  f1 <- coxph(as.formula(paste("Surv(time, event) ~", s$factor, "* by_f", adj)), data = d)
  idx <- grep(":", names(coef(f1)))
  b <- coef(f1)[idx]
  wald <- as.numeric(t(b) %*% solve(vcov(f1)[idx, idx, drop = FALSE]) %*% b)
  lr <- 2 * (f1$loglik[2] - f0$loglik[2])
  list(factor = s$factor, by = s$by, adjust = I(s$adjust), subgroups = subs,
       interaction_lr = list(stat = lr, df = length(idx), p = pchisq(lr, length(idx), lower.tail = FALSE)),
       interaction_wald = list(stat = wald, df = length(idx), p = pchisq(wald, length(idx), lower.tail = FALSE)))
})
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), args[2])
