#!/usr/bin/env python3
"""Reference values for Cohort's time-dependent AUC (common::survival::auc).

Computes scikit-survival's `cumulative_dynamic_auc` (the cumulative/dynamic
AUC of Uno et al. 2007 with inverse probability of censoring weights, and its
integrated mean) on a few data sets and writes them, with the small data sets
they need, to common/tests/data/survival/auc/.

    python3 -m venv venv && venv/bin/pip install scikit-survival==0.28.0 pandas
    venv/bin/python bench/survival/auc_reference.py

Data: veteran and ovarian from ../shared/reference/survival (R's survival
data sets as written by R), gbsg2 from sksurv.datasets (heavy ties in the
score `pnodes`), and a seeded synthetic set with integer times (heavy ties in
time, events and censorings at the same times) and a rounded score, also
evaluated with a separate training set for the censoring distribution. rossi
is recorded as an error case: every subject still at risk at week 52 is
censored there, so sksurv's censoring survival function is 0 at an event time.
"""

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import sksurv
from sksurv.datasets import load_gbsg2
from sksurv.metrics import cumulative_dynamic_auc
from sksurv.util import Surv

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "reference" / "survival"
OUT = ROOT / "common" / "tests" / "data" / "survival" / "auc"


def surv(df):
    return Surv.from_arrays(event=df["event"].astype(bool).to_numpy(), time=df["time"].astype(float).to_numpy())


def case(name, csv, df, score, times, train_rows=None, test_rows=None, sign=1.0):
    """One case: AUC of `sign * df[score]` at `times`, the censoring KM from
    `train_rows` (default: all rows) and the AUC on `test_rows` (default: all)."""
    train = df if train_rows is None else df.iloc[train_rows[0]:train_rows[1]]
    test = df if test_rows is None else df.iloc[test_rows[0]:test_rows[1]]
    est = sign * test[score].astype(float).to_numpy()
    entry = {
        "name": name,
        "csv": csv,
        "score": score,
        "sign": sign,
        "times": [float(t) for t in times],
        "train_rows": train_rows,
        "test_rows": test_rows,
    }
    try:
        auc, mean_auc = cumulative_dynamic_auc(surv(train), surv(test), est, times)
        entry["auc"] = [float(a) for a in np.atleast_1d(auc)]
        entry["mean_auc"] = float(mean_auc)
    except ValueError as e:
        entry["error"] = str(e)
    return entry


def main():
    # `float_precision="round_trip"` reads R's numbers back exactly; pandas 2.3
    # calls it deprecated but it is still what we want.
    warnings.filterwarnings("ignore", message=".*float_precision.*")
    OUT.mkdir(parents=True, exist_ok=True)
    cases = []

    vet = pd.read_csv(SHARED / "veteran.csv", float_precision="round_trip")
    # A low Karnofsky score means a high risk.
    cases.append(case("veteran_karno", "shared:veteran.csv", vet, "karno", [30, 90, 180, 365], sign=-1.0))
    cases.append(case("veteran_age_single", "shared:veteran.csv", vet, "age", [100]))

    ova = pd.read_csv(SHARED / "ovarian.csv", float_precision="round_trip")
    cases.append(case("ovarian_age", "shared:ovarian.csv", ova, "age", [365, 730, 1000]))

    rossi = pd.read_csv(SHARED / "rossi.csv", float_precision="round_trip")
    cases.append(case("rossi_prio_error", "shared:rossi.csv", rossi, "prio", [10, 20, 30]))

    X, y = load_gbsg2()
    gb = pd.DataFrame({"time": y["time"], "event": y["cens"].astype(int), "pnodes": X["pnodes"], "tsize": X["tsize"]})
    gb.to_csv(OUT / "gbsg2.csv", index=False)
    cases.append(case("gbsg2_pnodes", "gbsg2.csv", gb, "pnodes", [365, 730, 1095, 1460, 1825]))
    cases.append(case("gbsg2_tsize", "gbsg2.csv", gb, "tsize", [500, 1000, 1500, 2000]))

    rng = np.random.default_rng(20240601)
    n = 400
    x = np.round(rng.normal(size=n), 1)
    t_event = np.ceil(rng.exponential(12.0 * np.exp(-0.7 * x)))
    t_cens = np.ceil(rng.uniform(1, 40, size=n))
    syn = pd.DataFrame(
        {
            "time": np.minimum(np.minimum(t_event, t_cens), 30).astype(int),
            # Events only before the administrative end at 30, so that the
            # censoring distribution stays positive at every event time.
            "event": ((t_event <= t_cens) & (t_event < 30)).astype(int),
            "x": x,
        }
    )
    # Scores that differ by less than sksurv's tied_tol (1e-8) count as tied.
    syn["x_jitter"] = syn["x"] + 1e-10 * rng.integers(0, 3, size=n)
    syn.to_csv(OUT / "synthetic_ties.csv", index=False)
    cases.append(case("synthetic_ties", "synthetic_ties.csv", syn, "x", [2, 5, 8, 12, 20, 25]))
    cases.append(case("synthetic_near_ties", "synthetic_ties.csv", syn, "x_jitter", [2, 5, 8, 12, 20, 25]))
    cases.append(
        case("synthetic_train_test", "synthetic_ties.csv", syn, "x", [3, 6, 10, 15], train_rows=[0, 250], test_rows=[250, 400])
    )

    ref = {
        "generated_by": {
            "python": sys.version.split()[0],
            "scikit-survival": sksurv.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "call": "sksurv.metrics.cumulative_dynamic_auc(survival_train, survival_test, sign * score, times)",
        },
        "cases": cases,
    }
    (OUT / "auc_reference.json").write_text(json.dumps(ref, indent=1) + "\n")
    for c in cases:
        print(c["name"], c.get("auc", c.get("error")), c.get("mean_auc"))


if __name__ == "__main__":
    main()
