"""What the command-path benchmarks share: a generated company on disk, and a ``likvid`` command timed as a
subprocess with its own peak memory and the machine's load.

The figures are of the whole command a user runs (start-up, imports, reading the folder, models, writing the
output), not of the functions inside it. The peak memory is the child's maximum resident set
(``os.wait4``'s ``ru_maxrss``: what ``resource.getrusage(RUSAGE_CHILDREN)`` reports, for that child alone).
The machine is shared: each figure is printed beside ``os.getloadavg()`` taken as the command ended, and
beside the child's CPU time (user + system), which waiting for a busy core does not inflate.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIKVID = [sys.executable, "-m", "serving.cli"]
CACHE_DIR = ".likvid-cache"  # features.cache.CACHE_DIR, not imported: a benchmark should not load pandas to start


@dataclass
class Timed:
    command: str
    seconds: float
    cpu_seconds: float  # the child's user + system time: on a loaded machine, wall time minus waiting for a core
    peak_mb: float
    load: tuple[float, float, float]
    returncode: int
    output: str

    def line(self, target: str = "") -> str:
        load = ", ".join(f"{v:.1f}" for v in self.load)
        return (f"{self.command:<40} {self.seconds:7.1f} s (CPU {self.cpu_seconds:6.1f} s)  "
                f"peak {self.peak_mb:6,.0f} MB  load {load}"
                + (f"  {target}" if target else ""))


def run(args: list[str], env: dict[str, str], cwd: Path, name: str | None = None) -> Timed:
    """Run ``likvid ARGS`` and time it; a failure prints its output and exits."""
    started = time.perf_counter()
    proc = subprocess.Popen([*LIKVID, *args], cwd=cwd, env={**os.environ, **env, "PYTHONPATH": str(REPO),
                                                            "COLUMNS": "160"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    timed = Timed(name or "likvid " + " ".join(a if "/" not in a else Path(a).name for a in args[:2]),
                  seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, os.getloadavg(), code, output)
    if code != 0:
        print(output)
        sys.exit(f"{timed.command} failed with exit code {code}")
    return timed


def company(work: Path, customers: int, years: float, seed: int = 0, name: str | None = None) -> Path:
    """A generated company in ``work`` (kept between runs: generating one is not what is measured)."""
    folder = work / (name or f"company-{customers}x{years:g}y-s{seed}")
    if not (folder / "invoices.csv").is_file():
        run(["generate", str(folder), "--customers", str(customers), "--years", str(years), "--seed", str(seed)],
            {}, work)
    return folder


def company_options(parser: argparse.ArgumentParser) -> None:
    """The options every whole-command benchmark takes: the generated company's size and seed, and the folder."""
    parser.add_argument("--customers", type=int, default=4000)
    parser.add_argument("--years", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="Folder for the company and the MLflow store (kept).")
    parser.add_argument("--data", type=Path, help="An existing company folder to time instead of a generated one "
                        "(trained into --work's store unless WORK/NAME.trained says it was).")


def prepared(args: argparse.Namespace, name: str) -> tuple[Path, Path, dict[str, str]]:
    """(the work folder, the generated company in it, the environment of a private MLflow store there)."""
    work = args.work or Path(tempfile.mkdtemp(prefix=f"likvid-bench-{name}-"))
    work.mkdir(parents=True, exist_ok=True)
    data = args.data.resolve() if args.data else company(work, args.customers, args.years, args.seed)
    return work, data, tracking_env(work)


def cold(folder: Path) -> None:
    """Forget the folder's validation cache, so the next command validates from the files."""
    shutil.rmtree(folder / CACHE_DIR, ignore_errors=True)


def count_rows(path: Path) -> int:
    with path.open() as f:
        return sum(1 for _ in f) - 1


def tracking_env(work: Path) -> dict[str, str]:
    """A private MLflow store in the work folder (never the repository's)."""
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}


def verdict(seconds: float, target: float) -> str:
    return f"target <= {target:g} s: {'met' if seconds <= target else 'NOT met'}"


def trained(work: Path, data: Path, env: dict[str, str]) -> Timed | None:
    """Champions for ``data`` in the work folder's store: trains once (``likvid train``) when there are none yet;
    returns that training's timing, or None when an earlier run trained already."""
    marker = work / f"{data.name}.trained"
    if marker.is_file():
        return None
    timed = run(["train", str(data)], env, work)
    marker.write_text(f"{timed.seconds:.1f}\n")
    return timed
