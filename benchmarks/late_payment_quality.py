"""Late-payment quality against the generator's true probabilities, through the product's own commands.

Target (issue 14): AUC at least 0.985 x the true probabilities' AUC, and ECE at most 0.02, on 500-customer
companies generated with seeds nobody developed on (101, 202, 303; development used 11, 12, 13 and 7).

For each seed: ``likvid generate --seed S --customers 500 --years 3``, ``likvid train --as-of A`` and
``likvid score --as-of A`` (A: ``--before`` days before the company's last day), in a private MLflow store
under a temporary folder. The rows judged are the invoices open and not yet due at A (an invoice already past
due is late, and ``score`` gives it ``p_late`` 1) whose outcome the full data decides. ``late`` is the
product's one definition (``features.invoices.label`` with the company's policy: paid after the due date plus
the grace, or still open after it); a row is decided once paid (a written-off invoice is closed by its credit
note) or past due + grace at the company's last day. On those rows: ``score``'s ``p_late``, the generator's
``p_late_true`` (``truth/invoices.csv``) and the baseline ``likvid train`` logs beside the model, the
customer's historical late share (``training.late_payment.history_baseline``), each with AUC, ECE and Brier.

ECE is ``training.metrics.ece``, the one ``likvid train`` logs: 10 equal-width probability bins, each bin's
|observed late share - mean prediction| weighted by its share of rows (the usual definition, Guo et al. 2017;
equal-width, not equal-count, bins).

Also printed: the ratio on the held-out slice ``likvid train`` logs in MLflow (its ``auc`` metric, of the model
fitted at the origin, over the true probabilities' AUC on the same snapshots, rebuilt here and checked against the
run's ``rows.holdout``), and the ratio by invoice age at A (disputes become known 3-25 days after issue, which
the true probabilities know from the start). Timings are wall and CPU seconds of each command, beside the load.

Run: .venv/bin/python benchmarks/late_payment_quality.py [--seeds 101 202 303] [--customers 500] [--years 3]
     [--before 91] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from features.asof import last_known_date
from features.contract import Inv
from features.invoices import FeatureConfig, invoice_features, label
from features.load import load
from features.policy import load_policy
from training import metrics
from training.examples import ExampleConfig, examples, not_yet_due
from training.late_payment import history_baseline

AUC_RATIO_TARGET, ECE_TARGET = 0.985, 0.02
DISPUTE_KNOWN_BY_DAYS = 25  # the generator raises a dispute 3-24 days after issue
SCORES = {"likvid": "p_late", "true": "p_late_true", "customer_late_share": "p_late_share"}


def _likvid(*args: str, env: dict) -> tuple[float, float]:
    """Run ``likvid ARGS``; (wall seconds, CPU seconds of the command)."""
    likvid = shutil.which("likvid") or str(Path(sys.executable).with_name("likvid"))
    cpu = _children_cpu()
    started = time.perf_counter()
    subprocess.run([likvid, *args], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, _children_cpu() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _holdout_ratio(company, data: Path, features: FeatureConfig, truth: pd.Series, env: dict) -> dict:
    """The held-out slice ``likvid train`` logged: its AUC over the true probabilities' on the same snapshots."""
    import mlflow

    from training import tracking

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(experiment_names=[tracking.LATE_PAYMENT], order_by=["attributes.start_time DESC"],
                              max_results=1)
    run = runs.iloc[0]
    origin, at = pd.Timestamp(run["params.evaluated_origin"]), pd.Timestamp(run["params.fitted_as_of"])
    c = ExampleConfig()
    holdout = not_yet_due(examples(company, at, ExampleConfig(c.every_days, 0, 10**6, c.holdout_days), features,
                                   start=origin))
    if len(holdout) != int(run["params.rows.holdout"]):
        raise SystemExit(f"{data}: rebuilt {len(holdout)} holdout rows, the run logged {run['params.rows.holdout']}")
    true_auc = metrics.classification(holdout["late"].to_numpy(), holdout[Inv.ID].map(truth).to_numpy())["auc"]
    return {"n": len(holdout), "auc": float(run["metrics.auc"]), "true_auc": true_auc,
            "ece": float(run["metrics.ece"]), "brier": float(run["metrics.brier"])}


def one_seed(seed: int, customers: int, years: float, before: int, work: Path) -> tuple[pd.DataFrame, dict]:
    """(the judged rows of one company with every score and ``late``, its timings and held-out figures). A seed
    whose commands all ran in ``work`` before (its ``timings_S.json`` there) is judged again without rerunning them."""
    data = work / f"company_{seed}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / f'mlflow_{seed}.db'}"}
    done = work / f"timings_{seed}.json"
    out = work / f"score_{seed}.csv"
    timings = json.loads(done.read_text()) if done.is_file() else {}
    if not timings:
        timings["generate"] = _likvid("generate", str(data), "--seed", str(seed), "--customers", str(customers),
                                      "--years", str(years), env=env)
    company = load(data)
    features = FeatureConfig.from_policy(load_policy(data))
    end = last_known_date(company)
    at = end - pd.Timedelta(days=before)
    if "score" not in timings:
        timings["train"] = _likvid("train", str(data), "--as-of", f"{at:%Y-%m-%d}", env=env)
        timings["score"] = _likvid("score", str(data), "--as-of", f"{at:%Y-%m-%d}", "--out", str(out), env=env)
        done.write_text(json.dumps(timings))

    scored = pd.read_csv(out, dtype={Inv.ID: str})[[Inv.ID, "p_late"]]
    truth = pd.read_csv(data / "truth" / "invoices.csv", dtype={Inv.ID: str}).set_index(Inv.ID)
    x = invoice_features(company, at, features)
    x = x[x["days_to_due"] >= 0].merge(scored, on=Inv.ID, how="left", validate="one_to_one")
    if x["p_late"].isna().any():
        raise SystemExit(f"seed {seed}: {int(x['p_late'].isna().sum())} open invoices at {at:%Y-%m-%d} not scored")
    x = pd.concat([x, label(x, company, end, features)], axis=1)
    x = x[x["late"].notna()]
    x = x.assign(p_late_true=x[Inv.ID].map(truth["p_late_true"]), p_late_share=history_baseline(x),
                 written_off=x[Inv.ID].map(truth["written_off"]).astype(bool))
    rows = pd.DataFrame({"seed": seed, "as_of": at, "late": x["late"].to_numpy(), "age_days": x["age_days"].to_numpy(),
                         "paid": ~x["censored"].to_numpy(), "written_off": x["written_off"].to_numpy(),
                         **{col: x[col].to_numpy() for col in SCORES.values()}})
    held = _holdout_ratio(company, data, features, truth["p_late_true"], env)
    return rows, {"timings": timings, "holdout": held, "at": at}


def _figures(rows: pd.DataFrame) -> dict[str, dict[str, float]]:
    return {name: metrics.classification(rows["late"].to_numpy(), rows[col].to_numpy()) for name, col in SCORES.items()}


def report(rows: pd.DataFrame, runs: dict[int, dict]) -> None:
    def line(name: str, part: pd.DataFrame) -> None:
        f = _figures(part)
        ratio = f["likvid"]["auc"] / f["true"]["auc"]
        print(f"  {name:<24} n={len(part):>5} late {part['late'].mean():5.1%}  AUC likvid {f['likvid']['auc']:.4f} "
              f"true {f['true']['auc']:.4f} ratio {ratio:.4f}{'' if ratio >= AUC_RATIO_TARGET else ' (miss)'}"
              f" | ECE {f['likvid']['ece']:.4f}{'' if f['likvid']['ece'] <= ECE_TARGET else ' (miss)'}"
              f" true {f['true']['ece']:.4f} | Brier {f['likvid']['brier']:.4f} true {f['true']['brier']:.4f}"
              f" | late share: AUC {f['customer_late_share']['auc']:.4f} ECE {f['customer_late_share']['ece']:.4f}"
              f" Brier {f['customer_late_share']['brier']:.4f}")

    print("Open, not-yet-due invoices at as-of, outcome decided by the last day:")
    for seed, part in rows.groupby("seed"):
        run = runs[seed]
        print(f"seed {seed}: as of {run['at']:%Y-%m-%d}; {int(part['paid'].sum())} paid "
              f"({int(part['written_off'].sum())} of them written off), {int((~part['paid']).sum())} still open "
              "past due at the last day")
        line("all", part)
        young = part["age_days"] < DISPUTE_KNOWN_BY_DAYS
        line(f"age < {DISPUTE_KNOWN_BY_DAYS} days", part[young])
        line(f"age >= {DISPUTE_KNOWN_BY_DAYS} days", part[~young])
        h = run["holdout"]
        print(f"  {'train holdout (MLflow)':<24} n={h['n']:>5}  AUC likvid {h['auc']:.4f} true {h['true_auc']:.4f} "
              f"ratio {h['auc'] / h['true_auc']:.4f} | ECE {h['ece']:.4f} | Brier {h['brier']:.4f}")
        timings = ", ".join(f"{k} {w:.0f} / {c:.0f}" for k, (w, c) in run["timings"].items())
        print(f"  timings (wall / CPU s): {timings}")
    ratios = [_figures(p)["likvid"]["auc"] / _figures(p)["true"]["auc"] for _, p in rows.groupby("seed")]
    print(f"median ratio over seeds {np.median(ratios):.4f}; pooled rows:")
    line("all seeds", rows)
    print(f"targets: AUC ratio >= {AUC_RATIO_TARGET}, ECE <= {ECE_TARGET}; ECE over 10 equal-width bins; "
          f"load average {os.getloadavg()[0]:.2f} / {os.getloadavg()[1]:.2f} / {os.getloadavg()[2]:.2f} (1/5/15 min)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 202, 303])
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--years", type=float, default=3.0)
    parser.add_argument("--before", type=int, default=91, help="as-of: this many days before the last day")
    parser.add_argument("--keep", type=Path, default=None,
                        help="work in this folder and keep it; seeds already run there are judged without rerunning")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        results = {s: one_seed(s, args.customers, args.years, args.before, work) for s in args.seeds}
    rows = pd.concat([r for r, _ in results.values()], ignore_index=True)
    report(rows, {s: run for s, (_, run) in results.items()})
    print(f"wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
