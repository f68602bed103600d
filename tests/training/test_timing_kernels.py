"""The timing model's kernels give the numbers of the numpy code they replaced, bit for bit: on random rows with
ties, CDF steps hit exactly, inf (a CDF ending below 1, delays past the horizon), signed zeros and run payers."""

import numpy as np
import pytest

from training import cores
from training.payment_timing import (
    _BIG,
    _BUSINESS_DAY,
    _MONTHLY,
    _ROUNDED,
    _WEEKLY,
    _delays,
    _interp,
    _most_likely,
    _searchsorted_left,
    _slice_starts,
)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def _cdf(rng: np.random.Generator, n: int) -> np.ndarray:
    """A Kaplan-Meier-like CDF: flat over censored steps, ending at 1 or below it (a defect)."""
    cdf = np.maximum.accumulate(np.round(np.sort(rng.random(n)), int(rng.integers(1, 4))))
    return cdf * (0.9 if rng.random() < 0.5 else 1.0 / cdf[-1])


def test_searchsorted_left_is_numpys_on_ties_edges_and_outside_the_unit_interval():
    rng = np.random.default_rng(3)
    for trial in range(200):
        cdf = _cdf(rng, int(rng.integers(1, 3000)))
        if trial == 0:  # a long flat run: 5,000 censored residuals in a row
            cdf = np.concatenate([np.linspace(0.0, 0.4, 100), np.full(5000, 0.4), np.linspace(0.41, 1.0, 100)])
        starts = _slice_starts(cdf)
        p = np.concatenate([rng.random(500), cdf, np.nextafter(cdf, 0.0), np.nextafter(cdf, 1.0),
                            [0.0, -0.0, 1.0, np.nextafter(1.0, 0.0), -0.1, 1.5, np.nan, -np.inf, np.inf]])
        ours = np.array([_searchsorted_left(cdf, starts, v) for v in p])
        assert _same(ours, np.searchsorted(cdf, p, side="left")), trial


def test_interp_is_numpys_at_grid_points_between_and_outside():
    rng = np.random.default_rng(4)
    grid = np.linspace(0.0, 1.0, 201)
    for _ in range(50):
        fp = np.clip(np.maximum.accumulate(np.round(rng.random(201), 1)), 0.0, 1.0)
        x = np.concatenate([rng.random(300), grid, np.nextafter(grid, 2.0), [-0.0, -1e-9, 1.0 + 1e-9, np.nan]])
        ours = np.array([_interp(v, grid, fp) for v in x])
        assert _same(ours, np.interp(x, grid, fp))


def _nearest(kind: int, value: np.ndarray, month_days: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The run classes' numpy ``nearest`` (rows x k): a business day, a weekly run day, a monthly run day."""
    w = value[:, None]
    if kind == _BUSINESS_DAY:
        day = np.round(v)
        into = np.maximum(np.mod(w + day, 7) - 4, 0)
        return np.where(into == 1, np.where(v < day + 0.5, day - 1, day + 2), np.where(into == 2, day + 1, day))
    if kind == _WEEKLY:
        return 7.0 * np.floor((v + w) / 7.0 + 0.5) - w
    days = month_days[value.astype(int)]
    offset = (value.astype(int) * _BIG)[:, None]
    flat = (month_days + (np.arange(len(month_days)) * _BIG)[:, None]).ravel()
    hi = np.searchsorted(flat, (np.clip(v, -_BIG // 4, _BIG // 4) + offset).ravel(), side="left")
    hi = np.clip(hi.reshape(v.shape) - value.astype(int)[:, None] * month_days.shape[1], 0, days.shape[1] - 1)
    upper = np.take_along_axis(days, hi, axis=1)
    lower = np.take_along_axis(days, np.maximum(hi - 1, 0), axis=1)
    return np.where(v - lower < upper - v, lower, upper)


def _reference(u, q, t, grid, table, segment, lo, centre, scale, first, cdf, values, kind, value, month_days,
               max_delay):
    """The numpy code ``_delays`` replaced: ``_conditional``, ``_levels`` and ``_days`` as they were."""
    u = np.broadcast_to(np.atleast_2d(u), (len(lo), np.shape(np.atleast_2d(u))[1]))
    if len(q):
        q, t = q[:, None], t[:, None]
        inside = u * q / np.maximum(t, 1e-12)
        after = (u - t) * (1.0 - q) / np.maximum(1.0 - t, 1e-12) + q
        u = np.clip(np.where(u < t, inside, after), 0.0, 1.0)
    uu = u.copy()
    if len(table):
        for seg in np.unique(segment):
            uu[segment == seg] = np.interp(u[segment == seg], grid, table[seg])
    p = uu * (1.0 - lo[:, None]) + lo[:, None]
    idx = np.searchsorted(cdf, p, side="left")
    d = np.where(idx >= len(values), np.inf, values[np.minimum(idx, len(values) - 1)])
    d = d * scale[:, None] + centre[:, None]
    out = np.maximum(np.round(d), first[:, None])
    for code in (_BUSINESS_DAY, _WEEKLY, _MONTHLY):
        rows = kind == code
        v = d[rows]
        snapped = _nearest(code, value[rows], month_days, np.where(np.isfinite(v), v, 0.0))
        out[rows] = np.where(np.isfinite(v), np.maximum(snapped, first[rows, None]), np.inf)
    out[out > max_delay] = np.inf
    return out


@pytest.mark.parametrize("threads", [1, 3])  # 3: rows spread over threads however few
def test_delays_are_the_numpy_codes_on_random_rows_with_runs_ties_and_inf(threads, monkeypatch):
    monkeypatch.setattr(cores, "count", lambda: threads)
    monkeypatch.setattr(cores, "MIN_ELEMENTS", 1 if threads > 1 else cores.MIN_ELEMENTS)
    rng = np.random.default_rng(5)
    grid = np.linspace(0.0, 1.0, 201)
    for trial in range(40):
        n = int(rng.integers(1, 300))
        cdf = _cdf(rng, int(rng.integers(1, 2000)))
        values = np.sort(rng.normal(0.0, 3.0, len(cdf)))
        if trial % 2:  # half days on whole-day centres: ties of rounding and of the nearest run day
            values = np.round(values * 2.0) / 2.0
        table = np.maximum.accumulate(rng.random((6, 201)), axis=1) if trial % 4 else np.zeros((0, 0))
        segment = rng.integers(0, 6, n)
        q = rng.choice([0.0, 0.3, 1.0, rng.random()], n) if trial % 3 else np.zeros(0)
        t = np.where(q < 1.0, np.clip(q * rng.uniform(0.8, 1.3, n), 0.0, 1.0 - 1e-9), q) if len(q) else np.zeros(0)
        lo = rng.choice([0.0, 0.5, rng.random()], n) * (rng.random(n) < 0.7)
        centre = np.round(rng.normal(0.0, 20.0, n), trial % 2)
        scale = rng.uniform(2.0, 60.0, n) if trial % 4 == 3 else rng.choice([1.0, 3.0], n)
        first = np.round(rng.normal(0.0, 10.0, n)) * (rng.random(n) < 0.8)  # a zero against a rounded -0.0
        kind = rng.integers(_ROUNDED, _MONTHLY + 1, n)
        value = np.where(kind == _BUSINESS_DAY, rng.integers(0, 7, n), rng.integers(-3, 4, n)).astype(float)
        monthly = kind == _MONTHLY
        value[monthly] = np.arange(monthly.sum())
        month_days = np.sort(rng.integers(-60, 120, (max(1, monthly.sum()), 25)), axis=1).astype(float)
        u = rng.random((n, 7)) if trial % 2 else np.concatenate([[0.0, 1.0, 0.5], rng.random(20)])[None, :]
        max_delay = float(rng.choice([60.0, 365.0]))
        ours = _delays(u, (q, t, np.maximum(t, 1e-12), 1.0 - q, np.maximum(1.0 - t, 1e-12)), (grid, table, segment),
                       (lo, 1.0 - lo, centre, scale, first), (cdf, _slice_starts(cdf), values),
                       (kind, value, month_days), max_delay)
        expected = _reference(u, q, t, grid, table, segment, lo, centre, scale, first, cdf, values, kind, value,
                              month_days, max_delay)
        assert _same(ours, expected), trial


def _most_likely_reference(d: np.ndarray, w: int) -> np.ndarray:
    """``_pay_days``' numpy code: one binary search of every row at once."""
    finite = np.isfinite(d)
    flat = (np.where(finite, d, 4.0 * _BIG) + (np.arange(len(d)) * 16 * _BIG)[:, None]).ravel()
    count = np.searchsorted(flat, flat + w, side="right") - np.searchsorted(flat, flat - w, side="left")
    count = np.where(finite, count.reshape(d.shape), -1)
    best = np.take_along_axis(d, count.argmax(axis=1)[:, None], axis=1)[:, 0]
    return np.where(finite.any(axis=1), best, np.inf)


def test_most_likely_day_is_the_binary_searches_on_sorted_rows_with_ties_and_inf():
    rng = np.random.default_rng(6)
    for trial in range(100):
        d = np.sort(np.round(rng.normal(0.0, 15.0, (int(rng.integers(1, 200)), int(rng.integers(1, 60))))), axis=1)
        d[rng.random(d.shape) < 0.1] = np.inf
        d = np.sort(d, axis=1)
        d[rng.random(len(d)) < 0.1] = np.inf  # rows never paid within the horizon
        for w in (0, 3, 7):
            assert _same(_most_likely(d, w), _most_likely_reference(d, w)), (trial, w)


def test_most_likely_day_of_a_row_out_of_order_is_still_the_binary_searches():
    d = np.array([[1.0, 2.0, 2.0, 9.0], [5.0, 3.0, 4.0, np.inf], [0.0, 0.0, 1.0, 1.0]])
    assert _same(_most_likely(d, 3), _most_likely_reference(d, 3))
