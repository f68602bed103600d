"""Rows per second for `generate` and `validate` on a company of about 250k invoices, or `validate` alone on a folder.

Run: .venv/bin/python benchmarks/generate_validate.py [--customers 1000 --years 3]
     .venv/bin/python benchmarks/generate_validate.py --data FOLDER   (a cold validation: the cache is not read)

Validation prints wall and CPU time, peak memory and the load, beside the target for 1M invoices (issue 17).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from features.load import validate
from features.synthetic import SyntheticConfig, generate, write

TARGET_1M_S = 20.0  # a cold validation of a 1M-invoice folder


def _validate_cold(folder: Path) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    result = validate(folder, cache=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rows = int(result.summary["rows_read"].sum())
    invoices = int(result.summary.set_index("table").loc["invoices", "rows_read"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"validate {folder}: {invoices:,} invoices, {rows:,} rows, {int(result.summary['rows_rejected'].sum())} "
          f"rejects")
    print(f"  {wall:.1f} s wall, {cpu:.1f} s CPU, peak {peak:,.0f} MB, load {os.getloadavg()[0]:.2f} "
          f"-> {invoices / cpu:,.0f} invoices per CPU second")
    if invoices >= 900_000:
        print(f"  target at 1M invoices: <= {TARGET_1M_S:g} s: CPU {'met' if cpu <= TARGET_1M_S else 'not met'}, "
              f"wall {'met' if wall <= TARGET_1M_S else 'not met'}")
    else:
        print(f"  (the <= {TARGET_1M_S:g} s target is for 1M invoices: --data a folder of that size)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--years", type=float, default=3.0)
    parser.add_argument("--format", default="csv", choices=["csv", "parquet"])
    parser.add_argument("--data", type=Path, help="validate this folder (cold) instead of generating one")
    args = parser.parse_args()
    if args.data is not None:
        _validate_cold(args.data)
        return

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        tables = generate(SyntheticConfig(customers=args.customers, years=args.years, seed=0))
        built = time.perf_counter()
        write(tables, Path(tmp), args.format)
        written = time.perf_counter()
        rows = sum(len(v) for k, v in tables.items() if not k.startswith("truth"))
        invoices = len(tables["invoices"])
        print(f"company: {args.customers:,} customers, {args.years:g} years, {invoices:,} invoices, "
              f"{rows:,} rows in all tables ({args.format})")
        gen_s, write_s = built - started, written - built
        print(f"generate (build + write): {gen_s + write_s:.2f} s  (build {gen_s:.2f} s, write {write_s:.2f} s)"
              f"  -> {rows / (gen_s + write_s):,.0f} rows/s, {invoices / (gen_s + write_s):,.0f} invoices/s")
        _validate_cold(Path(tmp))


if __name__ == "__main__":
    main()
