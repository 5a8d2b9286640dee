## rms reference for common::survival::nomogram: points per factor value and
## the total points of predicted 26- and 52-week survival, for
## cph(Surv(time, event) ~ fin + age + prio_group) on rossi (prio_group a
## factor). Needs r-cran-rms. Usage:
##   Rscript bench/survival/nomogram_reference.R ROSSI.csv OUT.json
suppressMessages({ library(rms); library(survival); library(jsonlite) })
args <- commandArgs(TRUE)
d <- read.csv(args[1])
d$prio_group <- factor(d$prio_group)
dd <- datadist(d); options(datadist = "dd")
f <- suppressWarnings(cph(Surv(time, event) ~ fin + age + prio_group, data = d,
                          surv = TRUE, x = TRUE, y = TRUE, eps = 1e-9))
s <- Survival(f)
nom <- nomogram(f, fun = list(function(x) s(26, x), function(x) s(52, x)),
                funlabel = c("26", "52"), maxscale = 100,
                fun.at = c(0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05))
ax <- function(v) list(values = as.character(nom[[v]][[v]]), points = unname(nom[[v]]$points))
out <- list(
  coef = as.list(coef(f)),
  factors = list(fin = ax("fin"), age = ax("age"), prio_group = ax("prio_group")),
  horizons = lapply(c("26", "52"), function(h) list(time = as.numeric(h),
    survival = nom[[h]]$x.real, total_points = unname(nom[[h]]$x))))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), args[2])
