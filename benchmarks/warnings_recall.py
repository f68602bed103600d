"""Early warnings through the product's own commands, against the generator's truth (issue 14, item 4).

Target: warn at least 75 % of the customers that began to worsen 30-240 days before a quarter-end, while
warning at most 10 % of the customers that never worsened, pooled over five quarter-ends and over companies
generated with seeds nobody developed on (101, 202, 303; the warnings were tuned on 1001-1005).

For each seed: ``likvid generate`` writes the company once; then, for the code before the change (``--before``,
a git ref, read with ``git archive`` into the work folder; ``none`` skips it) and for this checkout,
``likvid train`` fills a private MLflow store in the work folder and ``likvid customers --as-of Q`` writes
the rows at each quarter-end. "Worsened" is the generator's ``truth/customers.csv`` ``deteriorates_from``
(the day its delays start to ramp up by 10-25 days and, 30 days later, its orders fall by 25-50 %);
"never" is a customer with no such date. Printed: recall by months since the deterioration began and
pooled, and the false-alarm rate, per company and pooled, for each version.

The champion customer model is fitted on everything known at the company's last day and then used at the
earlier quarter-ends too (as ``likvid customers --as-of`` does), so the change of ``p_late_next`` a warning
reads at an early quarter-end comes from a model that has seen what followed it. ``--train-each-quarter``
removes that hindsight: ``likvid train --as-of Q`` into a store of its own for every quarter-end (five
trainings per company and version instead of one).

Run: .venv/bin/python benchmarks/warnings_recall.py [--seeds 101,202,303] [--customers 200] [--years 3]
     [--before HEAD] [--work DIR] [--train-each-quarter]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
QUARTER_ENDS = ["2024-06-30", "2024-09-30", "2024-12-31", "2025-03-31", "2025-06-30"]
AGE_BANDS = [(30, 60), (61, 90), (91, 120), (121, 180), (181, 240)]  # days since the deterioration began
RECALL_TARGET, FALSE_ALARM_TARGET = 0.75, 0.10


def _likvid(source: Path, args: list[str], env: dict[str, str], cwd: Path) -> None:
    """``likvid ARGS`` from the code in ``source``; a failure prints its output and exits."""
    done = subprocess.run([sys.executable, "-m", "serving.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **env, "PYTHONPATH": str(source), "COLUMNS": "160"})
    if done.returncode != 0:
        print(done.stdout, done.stderr)
        sys.exit(f"likvid {' '.join(args[:2])} failed with exit code {done.returncode}")


def _checkout(ref: str, into: Path) -> Path:
    """The repository's files at ``ref`` (read with ``git archive``; the checkout is left as it is)."""
    if not (into / "serving" / "cli.py").is_file():
        tar = subprocess.run(["git", "archive", ref], cwd=REPO, capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
            archive.extractall(into, filter="data")
    return into


def _trained(source: Path, data: Path, work: Path, as_of: str | None = None) -> dict[str, str]:
    """The environment of ``work``'s own store, trained on ``data`` (as of ``as_of``, else its last day) once."""
    work.mkdir(exist_ok=True)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    if not (work / "trained").is_file():
        _likvid(source, ["train", str(data)] + (["--as-of", as_of] if as_of else []), env, work)
        (work / "trained").write_text("ok\n")
    return env


def _rows(source: Path, data: Path, work: Path, each_quarter: bool = False) -> pd.DataFrame:
    """Train into ``work``'s own store (one per quarter-end, trained as of it, when ``each_quarter``), then
    the customers rows at every quarter-end, with ``as_of``."""
    env = None if each_quarter else _trained(source, data, work)
    frames = []
    for q in QUARTER_ENDS:
        if each_quarter:
            env = _trained(source, data, work / f"trained-{q}", q)
        out = work / f"customers-{q}.csv"
        if not out.is_file():
            _likvid(source, ["customers", str(data), "--as-of", q, "--out", str(out)], env, work)
        rows = pd.read_csv(out, dtype={"customer_id": str}, keep_default_na=False)
        frames.append(rows[["customer_id", "warning"]].assign(as_of=pd.Timestamp(q)))
    return pd.concat(frames, ignore_index=True)


def judged(rows: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Each row with ``age`` (days since its customer began to worsen, NaN: never), ``warned``."""
    start = rows["customer_id"].map(truth["deteriorates_from"])
    return rows.assign(age=(rows["as_of"] - start).dt.days, warned=rows["warning"].fillna("") != "")


def summary(j: pd.DataFrame) -> dict[str, str]:
    """Recall by band of days since the deterioration began, pooled 30-240, and false alarms."""
    out = {}
    for lo, hi in AGE_BANDS:
        band = j[(j["age"] >= lo) & (j["age"] <= hi)]
        out[f"{lo}-{hi} d"] = f"{band['warned'].mean():.0%} of {len(band)}" if len(band) else "-"
    worsened, never = j[(j["age"] >= 30) & (j["age"] <= 240)], j[j["age"].isna()]
    out["recall 30-240 d"] = f"{worsened['warned'].mean():.1%} of {len(worsened)}"
    out["false alarms"] = f"{never['warned'].mean():.1%} of {len(never)}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="101,202,303")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--years", type=float, default=3.0)
    parser.add_argument("--before", default="HEAD", help="git ref of the code to compare with; 'none' to skip")
    parser.add_argument("--work", type=Path, help="Folder for the companies and the stores (kept; reused).")
    parser.add_argument("--train-each-quarter", action="store_true",
                        help="Train as of every quarter-end (no hindsight in p_late_next), not once at the last day.")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="likvid-warnings-"))
    work.mkdir(parents=True, exist_ok=True)
    versions = {"after": REPO}
    if args.before.lower() != "none":
        versions = {f"before ({args.before})": _checkout(args.before, work / "before-code"), **versions}
    started = time.perf_counter()
    results: dict[str, list[pd.DataFrame]] = {v: [] for v in versions}
    for seed in [int(s) for s in args.seeds.split(",")]:
        data = work / f"company-s{seed}"
        if not (data / "invoices.csv").is_file():
            _likvid(REPO, ["generate", str(data), "--customers", str(args.customers), "--years", str(args.years),
                           "--seed", str(seed)], {}, work)
        truth = pd.read_csv(data / "truth" / "customers.csv", dtype={"customer_id": str},
                            parse_dates=["deteriorates_from"]).set_index("customer_id")
        for version, source in versions.items():
            folder = work / f"{version.split()[0]}{'-each' if args.train_each_quarter else ''}-s{seed}"
            folder.mkdir(exist_ok=True)
            results[version].append(judged(_rows(source, data, folder, args.train_each_quarter), truth)
                                    .assign(seed=seed))
            print(f"seed {seed}, {version}: " + "; ".join(f"{k} {v}" for k, v in summary(results[version][-1]).items()),
                  flush=True)
    print(f"\nPooled over seeds {args.seeds} x {len(QUARTER_ENDS)} quarter-ends ({args.customers} customers, "
          f"{args.years:g} years each); load {', '.join(f'{v:.1f}' for v in os.getloadavg())}; "
          f"{time.perf_counter() - started:.0f} s; work folder {work}")
    table = pd.DataFrame({v: summary(pd.concat(frames)) for v, frames in results.items()})
    print(table.to_string())
    after = pd.concat(results["after"])
    worsened, never = after[(after["age"] >= 30) & (after["age"] <= 240)], after[after["age"].isna()]
    recall, alarms = worsened["warned"].mean(), never["warned"].mean()
    print(f"target recall >= {RECALL_TARGET:.0%}: {'met' if recall >= RECALL_TARGET else 'NOT met'} ({recall:.1%}); "
          f"false alarms <= {FALSE_ALARM_TARGET:.0%}: {'met' if alarms <= FALSE_ALARM_TARGET else 'NOT met'} "
          f"({alarms:.1%})")


if __name__ == "__main__":
    main()
