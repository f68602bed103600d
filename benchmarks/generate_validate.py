"""Rows per second for `generate` and `validate` on a company of about 250k invoices.

Run: .venv/bin/python benchmarks/generate_validate.py [--customers 1000 --years 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from features.load import validate
from features.synthetic import SyntheticConfig, generate, write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--years", type=float, default=3.0)
    parser.add_argument("--format", default="csv", choices=["csv", "parquet"])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        tables = generate(SyntheticConfig(customers=args.customers, years=args.years, seed=0))
        built = time.perf_counter()
        write(tables, Path(tmp), args.format)
        written = time.perf_counter()
        rows = sum(len(v) for k, v in tables.items() if not k.startswith("truth"))
        invoices = len(tables["invoices"])

        result = validate(tmp)
        validated = time.perf_counter()

    gen_s, write_s, val_s = built - started, written - built, validated - written
    print(f"company: {args.customers:,} customers, {args.years:g} years, {invoices:,} invoices, "
          f"{rows:,} rows in all tables ({args.format})")
    print(f"generate (build + write): {gen_s + write_s:.2f} s  (build {gen_s:.2f} s, write {write_s:.2f} s)"
          f"  -> {rows / (gen_s + write_s):,.0f} rows/s, {invoices / (gen_s + write_s):,.0f} invoices/s")
    print(f"validate: {val_s:.2f} s  -> {rows / val_s:,.0f} rows/s, {invoices / val_s:,.0f} invoices/s, "
          f"{int(result.summary['rows_rejected'].sum())} rejects")


if __name__ == "__main__":
    main()
