"""How `likvid score --scheduler` grows with the ledger: time, per-worker peak memory and the machine's load.

For each size it generates a 3-year company of about that many invoices (written as Parquet and validated,
as the command line reads it; not timed), then scores every open invoice with `training.distributed.score`
on a Dask cluster: a fresh `distributed.LocalCluster` per size (``--workers`` processes of one thread), or
the cluster of ``--scheduler`` (its workers must have likvid installed). The models are fitted once on a
small company (no MLflow): what is timed is the command's work after loading, the company-wide feature
pass where the data was read and the per-invoice work (models, SHAP, reasons) on the cluster by customer, on a
folder whose derived state (``features.cache``) a first command has kept, as for every later command on it.
``--check`` also scores in-process and says whether the rows are identical, with the in-process time.

Run: .venv/bin/python benchmarks/dask_scale.py [--invoices 100000 300000 1000000] [--workers 2]
     [--scheduler tcp://HOST:8786] [--check]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from features.asof import last_known_date
from features.invoices import invoice_features
from features.load import validate
from features.synthetic import SyntheticConfig, generate, write
from training import distributed
from training.examples import ExampleConfig, not_yet_due, split
from training.late_payment import build_late_payment, time_slices
from training.payment_timing import build_payment_timing
from training.pipeline import score

INVOICES_PER_CUSTOMER = 243  # over 3 years, as the generator's default customer invoices


def _peak_rss() -> int:
    """This process's peak resident memory in bytes: ``VmHWM``, the high-water mark of its own address space
    (``ru_maxrss`` would also count the parent's before the worker was started)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _warm() -> None:
    import training.scoring  # noqa: F401  (the models' libraries load once per worker, before the clock)


def _models(folder: Path):
    company = validate(write(generate(SyntheticConfig(customers=60, years=1.5, seed=11)), folder / "models")).company
    _, _, train, _ = split(company, None, ExampleConfig(every_days=21, holdout_days=60))
    fit, cal = time_slices(not_yet_due(train), 0.25)
    late = build_late_payment().fit(fit, fit["late"].to_numpy(), cal, cal["late"].to_numpy())
    return late, build_payment_timing().fit(train, train["delay"].to_numpy(), train["censored"].to_numpy())


@contextmanager
def _cluster(address: str | None, workers: int) -> Iterator[str]:
    """The scheduler's address: ``address``, or a fresh local cluster's (closed afterwards)."""
    if address:
        yield address
        return
    from distributed import LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--workers", type=int, default=2, help="local worker processes (without --scheduler)")
    parser.add_argument("--scheduler", default=distributed.scheduler_address(), help="a running cluster")
    parser.add_argument("--check", action="store_true", help="also score in-process and compare")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        models = _models(Path(tmp))
        print(f"{'invoices':>10} {'open':>7} {'features s':>10} {'total s':>8} {'s/100k':>7} "
              f"{'worker peak MB':>16} {'client MB':>9} {'in-process s':>12} {'same':>5}  load (1/5/15 min)")
        for n in args.invoices:
            folder = Path(tmp) / f"company-{n}"
            write(generate(SyntheticConfig(customers=max(n // INVOICES_PER_CUSTOMER, 10), years=3, seed=0)), folder,
                  fmt="parquet")
            company = validate(folder).company
            at = last_known_date(company)
            # What a first command on the folder derives and keeps beside the validation (the ledger pass, the
            # history at the last date) is made before the clock, so that both runs read it back alike.
            invoice_features(company, at)
            with _cluster(args.scheduler, args.workers) as address:
                from distributed import Client

                with Client(address, set_as_default=False) as client:
                    client.run(_warm)
                started = time.perf_counter()
                rows = distributed.score(company, at, models=models, scheduler=address)
                total = time.perf_counter() - started
                with Client(address, set_as_default=False) as client:
                    workers = sorted(client.run(_peak_rss).values())
            started = time.perf_counter()
            invoice_features(company, at)  # the part done where the data was read, timed alone
            features = time.perf_counter() - started
            here, same = "", ""
            if args.check:
                started = time.perf_counter()
                expected = score(company, at, models=models)
                here = f"{time.perf_counter() - started:.1f}"
                same = "yes" if rows.equals(expected) else "NO"
                pd.testing.assert_frame_equal(rows, expected)
            invoices = len(company["invoices"])
            load = "/".join(f"{v:.1f}" for v in os.getloadavg())
            print(f"{invoices:>10,} {len(rows):>7,} {features:>10.1f} {total:>8.1f} {total / invoices * 1e5:>7.2f} "
                  f"{' '.join(f'{w / 2**20:,.0f}' for w in workers):>16} {_peak_rss() / 2**20:>9,.0f} "
                  f"{here:>12} {same:>5}  {load}", flush=True)
            del company, rows


if __name__ == "__main__":
    main()
