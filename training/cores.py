"""Row-wise work spread over the machine's cores, with the numbers of one pass.

A compiled kernel that releases the GIL (``numba.njit(nogil=True)``) and computes each row of its output from
that row's inputs alone gives the same numbers whichever thread computes which rows. ``by_rows`` runs such a
kernel on consecutive ranges of rows at once, one range a core; work too small to be worth a thread stays on the
calling one. ``predict_threads`` gives LightGBM's thread count for a prediction the same way. ``ahead`` starts
one call on a second thread (numpy's random fills also release the GIL) while the caller does other work, and
hands back its result when asked.

The simulation's and the payment-timing model's largest loops use them (``training.cash.engine``,
``training.payment_timing``, ``training.late_payment``); a read command runs alone in its process, so every core
is its own. The threads end before the call returns, so nothing is left running when training forks its feature
workers.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future

import numba
import numpy as np

from features.parallel import count  # noqa: F401 - re-exported: training's threads and validation's count alike

MIN_ELEMENTS = 1 << 16  # rows x columns below which a second thread costs more than it saves
PREDICT_ROWS = 10_000  # rows from which a LightGBM prediction runs on every core (a thread team costs 2-7 ms)


def predict_threads(rows: int) -> int:
    """LightGBM's ``num_threads`` for predicting ``rows`` rows: every core for a large batch, else one. A row's
    prediction does not depend on the thread count."""
    return count() if rows >= PREDICT_ROWS else 1


def by_rows(run: Callable[[int, int], None], rows: int, columns: int = 1) -> None:
    """``run(start, stop)`` over consecutive ranges of ``range(rows)``, one a core, at the same time (on this
    thread alone when ``rows x columns`` is under ``MIN_ELEMENTS``); the first error raised is raised here."""
    n = min(count(), rows) if rows * max(columns, 1) >= MIN_ELEMENTS else 1
    if n <= 1:
        run(0, rows)
        return
    edges = np.linspace(0, rows, n + 1).astype(int)
    errors: list[BaseException] = []

    def part(start: int, stop: int) -> None:
        try:
            run(start, stop)
        except BaseException as e:  # noqa: BLE001 - raised again on the calling thread
            errors.append(e)

    others = [threading.Thread(target=part, args=(int(edges[i]), int(edges[i + 1])), daemon=True)
              for i in range(1, n)]
    for t in others:
        t.start()
    part(int(edges[0]), int(edges[1]))
    for t in others:
        t.join()
    if errors:
        raise errors[0]


def ahead(call: Callable[[], object]) -> Future:
    """``call()`` started on a second thread (done at once on this one when ``count()`` is 1); ``.result()`` waits
    for it (and raises what it raised)."""
    done: Future = Future()

    def work() -> None:
        try:
            done.set_result(call())
        except BaseException as e:  # noqa: BLE001 - raised by .result()
            done.set_exception(e)

    if count() <= 1:
        work()
    else:
        threading.Thread(target=work, daemon=True).start()
    return done


def warm_kernels() -> None:
    """Make numba ready to run compiled kernels: its CPU target (registries, lazily imported typing modules)
    is set up by the first kernel a process loads, which took 0.69 of the 0.81 s the forecast's cached kernels
    cost on their first call at 985,325 invoices. A read command calls this on the thread that imports its
    models while it reads the data folder (``serving.cli._warm``); its own kernels then load in about 0.1 s."""
    _ready()


@numba.njit(cache=True)
def _ready() -> int:
    return 0


def lightgbm_threads(threads: int) -> dict:
    """LightGBM's settings for ``threads`` threads a fit. One thread is bit-for-bit repeatable as it is; more are
    made so (``deterministic``, with row-wise histograms rather than the layout LightGBM picks by timing both),
    since the gate takes a champion with the same recipe for the model refitting that recipe would give (on the
    same thread count: fits on different counts may differ, and a count is part of the recipe's settings)."""
    return {"n_jobs": threads} if threads <= 1 else {"n_jobs": threads, "deterministic": True, "force_row_wise": True}


def lightgbm_without_sklearn() -> None:
    """Import LightGBM in its mode without scikit-learn, unless either is imported already: for a command that only
    predicts with LightGBM (its boosters, or its sklearn wrappers on DataFrames, which go straight to the booster),
    run in a process of its own (``serving.cli.run``), so that nothing in it fits a model, which needs the
    scikit-learn checks. scikit-learn is importable again afterwards, as usual; while this runs (on the thread that
    imports the models' modules) an import of it fails in every thread, and the caller's thread imports nothing
    that imports it meanwhile (reading or validating a folder: pandas, pyarrow, pandera). scikit-learn and the
    scipy.stats it imports were 0.86 of the 1.56 s the forecast's modules took to import (warm, this host), and
    held the GIL throughout."""
    if "lightgbm" in sys.modules or "sklearn" in sys.modules:
        return
    sys.modules["sklearn"] = None  # `import sklearn` raises ImportError: lightgbm.compat takes its no-sklearn branch
    try:
        importlib.import_module("lightgbm")
    finally:
        del sys.modules["sklearn"]
