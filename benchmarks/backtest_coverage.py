"""The cash forecast's coverage, bias, WAPE ratio and pinball loss by horizon band, through the product's commands.

For each seed (by default 101, 202 and 303, which nobody developed on) it runs ``likvid generate --seed S``,
``likvid train`` and ``likvid backtest --out`` as a user would, in a private MLflow store under a temporary
folder in /tmp, and prints the backtest's receipts figures by horizon band (weeks 1, 2-4, 5-8, 9-13, and
14-26, 27-52 with ``--weeks 26`` / ``52``) for each company and pooled over them, against issue 14's targets:
p10-p90 coverage 0.80 ± 0.05 in every band, week-1 actual receipts inside p10-p90 at ≥ 70 % of origins, and
receipts WAPE ≤ 0.35 × the better naive baseline (the 8-week mean or the same weeks a year earlier). The
receipts band is also scored before the widening learned from earlier origins (``CashModel.fit_bands``).

Run: .venv/bin/python benchmarks/backtest_coverage.py [--seeds 101 202 303] [--weeks 13] [--origins 14]
     [--paths 500] [--customers 200] [--years 3] [--no-train] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from training.cash.backtest import band_table, by_band
from training.cash.evaluate import wape

LIKVID = Path(sys.executable).with_name("likvid")
TARGET_COVERAGE, TOLERANCE, WEEK1_SHARE, WAPE_RATIO = 0.80, 0.05, 0.70, 0.35


def _run(args: list[str], env: dict[str, str], cwd: Path) -> float:
    """Run one likvid command; its wall time in seconds (the output is kept only when it fails)."""
    started = time.perf_counter()
    done = subprocess.run([str(LIKVID), *args], env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"likvid {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started


def _print(weekly: pd.DataFrame, title: str) -> None:
    table = band_table(by_band(weekly), "receipts")
    naive = min(wape(weekly["receipts"], weekly[f"receipts_{m}"].fillna(0.0)) for m in ("mean8", "last_year"))
    overall = wape(weekly["receipts"], weekly["receipts_p50"]) / naive
    print(f"\n{title}: {weekly['origin'].nunique()} origins x {weekly['week'].max()} weeks; receipts WAPE "
          f"{overall:.2f} x the better naive baseline (target <= {WAPE_RATIO})")
    print(f"{'weeks':>6} {'n':>4} {'coverage':>9} {'mean8 cov':>9} {'bias':>7} {'WAPE':>6} {'x naive':>7} "
          f"{'pinball':>7} {'x naive':>7}  coverage vs 0.80 ± 0.05")
    for r in table.itertuples(index=False):
        miss = r.coverage - TARGET_COVERAGE
        verdict = "met" if abs(miss) <= TOLERANCE else f"missed by {abs(miss) - TOLERANCE:.3f} ({miss:+.3f})"
        print(f"{r.band:>6} {r.n:>4} {r.coverage:>9.3f} {r.coverage_mean8:>9.3f} {r.bias:>+7.3f} {r.wape:>6.3f} "
              f"{r.wape_vs_naive:>7.2f} {r.pinball:>7.3f} {r.pinball_vs_naive:>7.2f}  {verdict}")
    if "receipts_p10_unwidened" in weekly:
        raw = weekly.assign(receipts_p10=weekly["receipts_p10_unwidened"],
                            receipts_p90=weekly["receipts_p90_unwidened"])
        before = band_table(by_band(raw), "receipts")
        print("before the band widening: coverage " + " / ".join(f"{c:.3f}" for c in before["coverage"])
              + ", pinball " + " / ".join(f"{c:.3f}" for c in before["pinball"])
              + f", week 1 inside at {round(before.iloc[0].coverage * before.iloc[0].n)} of {before.iloc[0].n}")
        factors = weekly.groupby("week")["receipts_band_factor"].median()
        print("median widening by week: " + " ".join(f"{f:.2f}" for f in factors))
    first = table.iloc[0]
    print(f"week 1: inside p10-p90 at {round(first.coverage * first.n)} of {first.n} origins "
          f"({first.coverage:.0%}; target >= {WEEK1_SHARE:.0%}), bias {first.bias:+.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 202, 303])
    parser.add_argument("--weeks", type=int, default=13)
    parser.add_argument("--origins", type=int, default=14)
    parser.add_argument("--paths", type=int, default=500)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--years", type=float, default=3.0)
    parser.add_argument("--no-train", action="store_true", help="Skip likvid train (the backtest refits anyway).")
    parser.add_argument("--keep", type=Path, help="Keep every company's backtest weeks (csv) in this folder.")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="likvid-coverage-", dir="/tmp"))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    frames = []
    try:
        for seed in args.seeds:
            data, weeks_csv = root / f"seed{seed}", root / f"backtest-seed{seed}.csv"
            times = {"generate": _run(["generate", str(data), "--seed", str(seed), "--customers", str(args.customers),
                                       "--years", str(args.years)], env, root)}
            if not args.no_train:
                times["train"] = _run(["train", str(data)], env, root)
            times["backtest"] = _run(["backtest", str(data), "--weeks", str(args.weeks), "--origins", str(args.origins),
                                      "--paths", str(args.paths), "--out", str(weeks_csv)], env, root)
            weekly = pd.read_csv(weeks_csv, parse_dates=["origin"])
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(weeks_csv, args.keep / weeks_csv.name)
            print(f"\nseed {seed}: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
            _print(weekly, f"seed {seed}")
            frames.append(weekly.assign(origin=weekly["origin"].astype(str) + f"/{seed}"))
        if len(frames) > 1:
            _print(pd.concat(frames, ignore_index=True), f"pooled over seeds {', '.join(map(str, args.seeds))}")
        print(f"\nload average at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
