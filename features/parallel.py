"""The one rule for how many cores a process may use: training's threads (``training.cores``), validation's
(``features.load``) and the forked feature workers (``features.invoices.by_date``) all count them here."""

from __future__ import annotations

import os


def count() -> int:
    """The cores this process may run on, at most ``OMP_NUM_THREADS`` when that is set: the usual limit of a
    process's threads, which ``likvid serve`` sets to 1 for its workers (one a core already, and a heavy answer
    must leave the single-invoice calls their cores)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cores, int(limit)) if limit.isdigit() and int(limit) > 0 else cores)
