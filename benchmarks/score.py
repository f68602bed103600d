"""Time to score open invoices with calibrated risk, pay-date range and three reasons.

Target (issue 3): 100k open invoices with reasons in at most 20 s on a 2-core machine.
Fits both models on a generated company, then scores a batch of N open-invoice rows
(features already built, as a service holding history would) and prints the split.

Run: .venv/bin/python benchmarks/score.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from features.load import validate
from features.synthetic import SyntheticConfig, generate, write
from training.decisions.reasons import top_reasons
from training.examples import ExampleConfig, not_yet_due, split
from training.late_payment import build_late_payment, time_slices
from training.payment_timing import build_payment_timing
from training.scoring import score_features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=300)
    args = parser.parse_args()

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        company = validate(write(generate(SyntheticConfig(customers=args.customers, years=2, seed=1)), tmp)).company
    _, _, train, holdout = split(company, None, ExampleConfig(every_days=14))
    tr = not_yet_due(train)
    fit, cal = time_slices(tr, 0.25)
    late = build_late_payment().fit(fit, fit["late"].to_numpy(), cal, cal["late"].to_numpy())
    timing = build_payment_timing().fit(train, train["delay"].to_numpy(), train["censored"].to_numpy())
    rows = holdout.sample(args.rows, replace=True, random_state=0).reset_index(drop=True)
    trees = late.booster_.booster_.num_trees()

    t0 = time.perf_counter()
    p = late.predict_proba(rows)
    t1 = time.perf_counter()
    contributions = late.contributions(rows)
    t2 = time.perf_counter()
    top_reasons(rows, contributions)
    t3 = time.perf_counter()
    timing.quantiles(rows)
    timing.expected_days_late(rows)
    t4 = time.perf_counter()
    started = time.perf_counter()
    scored = score_features(rows, late, timing)
    total = time.perf_counter() - started

    print(f"{args.rows:,} open invoices, classifier {trees} trees, {len(late.features_)} features")
    print(f"  calibrated p_late:          {t1 - t0:6.2f} s")
    print(f"  SHAP (LightGBM TreeSHAP):   {t2 - t1:6.2f} s  ({(t2 - t1) / args.rows * 1e6:.1f} us/row)")
    print(f"  reason sentences:           {t3 - t2:6.2f} s")
    print(f"  pay-date quantiles + E[late]: {t4 - t3:4.2f} s")
    print(f"score_features end to end:    {total:6.2f} s  -> {args.rows / total:,.0f} invoices/s "
          f"(target: 100,000 in <= 20 s); {scored['reason_1'].notna().mean():.0%} with a first reason")
    assert np.isfinite(p).all()


if __name__ == "__main__":
    main()
