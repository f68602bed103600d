"""Time a cash forecast with ~50k open invoices and 1,000 Monte Carlo paths.

Target (issue 5): at most 5 s on a 2-core machine. The payment-timing model is fitted on a small
company (as a trained champion would be); the cash model and the forecast run on a large generated
company whose open invoices number about ``--open`` (customers scaled to reach it, 9 months of
history). Prints the end-to-end forecast time, the process's CPU time meanwhile (on a shared machine the
wall time also counts other work; its system part is mostly the kernel handing out fresh memory pages),
the time of building the open invoices' features alone (which the forecast does inside) and the load average.

Run: .venv/bin/python benchmarks/forecast.py [--open 50000] [--paths 1000] [--weeks 13]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from features.asof import last_known_date
from features.invoices import invoice_features
from features.load import validate
from features.synthetic import SyntheticConfig, generate, write
from training.cash.forecast import forecast
from training.cash.model import ForecastModels, build_cash_model
from training.examples import ExampleConfig, examples
from training.payment_timing import build_payment_timing

OPEN_PER_CUSTOMER = 7.2  # open invoices per customer at the end of a generated company


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--open", type=int, default=50_000)
    parser.add_argument("--paths", type=int, default=1000)
    parser.add_argument("--weeks", type=int, default=13)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        small = validate(write(generate(SyntheticConfig(customers=300, years=2, seed=1)), f"{tmp}/small")).company
        customers = int(args.open / OPEN_PER_CUSTOMER)
        big = validate(write(generate(SyntheticConfig(customers=customers, years=0.75, seed=2)), f"{tmp}/big",
                             fmt="parquet")).company
    at = last_known_date(small)
    ex = examples(small, at, ExampleConfig(every_days=28, max_snapshots=13))
    timing = build_payment_timing().fit(ex, ex["delay"].to_numpy(), ex["censored"].to_numpy())
    at = last_known_date(big)
    models = ForecastModels(timing, build_cash_model().fit(big, at))

    started = time.perf_counter()
    x = invoice_features(big, at)
    features_s = time.perf_counter() - started
    forecast(big, at, args.weeks, models=models, paths=args.paths)  # warm-up (imports, caches)
    started, cpu, before = time.perf_counter(), time.process_time(), os.times()
    rows = forecast(big, at, args.weeks, models=models, paths=args.paths)
    total_s, cpu_s, after = time.perf_counter() - started, time.process_time() - cpu, os.times()
    print(f"company: {customers:,} customers, {len(big['invoices']):,} invoices, {len(x):,} open at {at:%Y-%m-%d}")
    print(f"forecast, {args.weeks} weeks x {args.paths:,} paths, end to end: {total_s:.2f} s (target <= 5 s)")
    print(f"  CPU time of this process meanwhile: {cpu_s:.2f} s (wall time above CPU time = other load), of which "
          f"system {after.system - before.system:.2f} s (mostly fresh memory pages)")
    print(f"  building the open invoices' features alone (done inside the forecast): {features_s:.2f} s")
    print(f"  load average (1, 5, 15 min): {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"  week 1 inflow p10/p50/p90: {rows['inflow_p10'].iloc[0]:,.0f} / {rows['inflow_p50'].iloc[0]:,.0f} / "
          f"{rows['inflow_p90'].iloc[0]:,.0f}")


if __name__ == "__main__":
    main()
