"""Time ``likvid train`` end to end on a generated 3-year company, as a user runs it.

Target (issue 17): 1M invoices (about 4,000 customers over 3 years) trained in at most 3 minutes on this
2-core machine. The command runs as a subprocess against a private MLflow store; printed are its wall time,
its peak memory and the load average. By default the data folder's validation cache is cleared first, so the
figure includes validating the CSV files once (``--warm`` times a training whose folder was validated before).

Run (from the repository root):
    .venv/bin/python -m benchmarks.train [--customers 4000] [--years 3] [--work DIR] [--warm] [--threads N]

``--threads`` is passed to ``likvid train`` (LightGBM threads per fit; 0: one per core; its default 1 otherwise).
"""

from __future__ import annotations

import argparse
import re

from benchmarks.commands import cold, company_options, prepared, run, verdict

TARGET_S = 180.0
INVOICES_PER_CUSTOMER_YEAR = 80  # a generated customer issues about this many invoices a year


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    company_options(parser)
    parser.add_argument("--warm", action="store_true", help="Validate first; time training on a cached folder.")
    parser.add_argument("--threads", type=int, default=None, help="likvid train --threads (default: its own).")
    args = parser.parse_args()

    work, data, env = prepared(args, "train")
    cold(data)
    if args.warm:
        print(run(["validate", str(data)], env, work).line())
    threads = [] if args.threads is None else ["--threads", str(args.threads)]
    timed = run(["train", str(data), *threads], env, work, name="likvid train" + (f" --threads {args.threads}"
                                                                                  if threads else ""))
    (work / f"{data.name}.trained").write_text(f"{timed.seconds:.1f}\n")  # commands.trained: champions exist
    invoices = sum(1 for _ in (data / "invoices.csv").open()) - 1
    print(f"company: {args.customers:,} customers x {args.years:g} years = {invoices:,} invoices ({data})")
    print(timed.line(verdict(timed.seconds, TARGET_S) + (" (at 1M invoices)" if invoices < 900_000 else "")))
    for line in timed.output.splitlines():
        if re.search(r"promoted|kept the champion|Cannot", line):
            print("  " + line.strip())


if __name__ == "__main__":
    main()
