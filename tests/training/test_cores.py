"""Work spread over cores: every row done once, by ranges that cover the rows in order; errors come back."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from training import cores


@pytest.mark.parametrize("rows, columns, threads, parts", [(10, 1, 4, 1), (100_000, 1, 4, 4), (3, 100_000, 4, 3),
                                                           (100_000, 1, 1, 1)])
def test_ranges_cover_the_rows_once(rows, columns, threads, parts, monkeypatch):
    monkeypatch.setattr(cores, "count", lambda: threads)
    seen, lock, together = [], threading.Lock(), threading.Barrier(parts, timeout=10)

    def run(start, stop):
        with lock:
            seen.append((start, stop, threading.get_ident()))
        together.wait()  # every range runs at the same time, each on its own thread

    cores.by_rows(run, rows, columns)
    ranges = sorted((a, b) for a, b, _ in seen)
    assert len(ranges) == parts and ranges[0][0] == 0 and ranges[-1][1] == rows
    assert all(b == c for (_, b), (c, _) in zip(ranges, ranges[1:]))
    assert len({t for *_, t in seen}) == parts


def test_an_error_on_another_thread_is_raised(monkeypatch):
    monkeypatch.setattr(cores, "count", lambda: 2)

    def run(start, stop):
        if start > 0:
            raise ValueError("second half")

    with pytest.raises(ValueError, match="second half"):
        cores.by_rows(run, 1_000_000)


@pytest.mark.parametrize("threads", [1, 2])
def test_ahead_gives_the_result_or_the_error(threads, monkeypatch):
    monkeypatch.setattr(cores, "count", lambda: threads)
    rng = np.random.default_rng(1)
    assert np.array_equal(cores.ahead(lambda: rng.standard_normal(5)).result(),
                          np.random.default_rng(1).standard_normal(5))
    with pytest.raises(ZeroDivisionError):
        cores.ahead(lambda: 1 / 0).result()


@pytest.mark.parametrize("limit, expected", [("1", 1), ("", None), ("0", None), ("many", None), ("64", None)])
def test_omp_num_threads_caps_the_cores(limit, expected, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    every = cores.count()
    monkeypatch.setenv("OMP_NUM_THREADS", limit)
    assert cores.count() == (expected if expected is not None else every)
