"""lifelines side of bench/survival/run.sh: CoxPHFitter.fit (Efron, default
options), concordance_index of the fitted linear predictor, and the 2- and
5-group log-rank tests on the synthetic 100k set; median of 5 runs after a
warm-up. Prints JSON with the seconds and the results.
Usage: python bench_lifelines.py synthetic.csv"""
import json
import sys
import time

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter
from lifelines.statistics import logrank_test, multivariate_logrank_test
from lifelines.utils import concordance_index


def med(f):
    """Median (wall, CPU) seconds of 5 runs after a warm-up, and the result."""
    f()
    ts, cs = [], []
    for _ in range(5):
        t0, c0 = time.perf_counter(), time.process_time()
        v = f()
        ts.append(time.perf_counter() - t0)
        cs.append(time.process_time() - c0)
    return (float(np.median(ts)), float(np.median(cs))), v


d = pd.read_csv(sys.argv[1], float_precision="round_trip")
cols = ["time", "event", "x1", "x2", "x3", "x4", "x5"]
fit_s, cph = med(lambda: CoxPHFitter().fit(d[cols], duration_col="time", event_col="event"))
lp = d[["x1", "x2", "x3", "x4", "x5"]].to_numpy() @ cph.params_.to_numpy()
T, E = d["time"].to_numpy(), d["event"].to_numpy()
c_s, c = med(lambda: concordance_index(T, -lp, E))
a = d["x3"].to_numpy() == 1
l2_s, l2 = med(lambda: logrank_test(T[a], T[~a], E[a], E[~a]))
l5_s, l5 = med(lambda: multivariate_logrank_test(T, d["x5"].to_numpy(), E))
print(json.dumps({
    "seconds": {"cox_efron": fit_s[0], "concordance": c_s[0], "logrank_2": l2_s[0], "logrank_5": l5_s[0]},
    "cpu_seconds": {"cox_efron": fit_s[1], "concordance": c_s[1], "logrank_2": l2_s[1], "logrank_5": l5_s[1]},
    "cox": {"coef": cph.params_.tolist(), "se": cph.standard_errors_.tolist(),
            "loglik": cph.log_likelihood_},
    "concordance": {"c": c},
    "logrank_2": {"chisq": l2.test_statistic},
    "logrank_5": {"chisq": l5.test_statistic},
}, indent=2))
