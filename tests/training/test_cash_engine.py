"""The simulation's compiled loops against the numpy expressions they stand for: equal to the last bit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from features import cash
from training import cores
from training.cash import engine
from training.cash.model import CommonShocks


def _numpy_picks(common: engine._Common, customer, due_day, rng, levels):
    """``_Common.picks`` as numpy computes it: the normal scores in float32, then their CDF's steps."""
    score = rng.standard_normal((len(customer), common.paths), dtype=np.float32)
    has, due = customer >= 0, due_day > 0
    if common.week is not None:
        own = np.where(due, np.where(has, common.own, common.own_alone), np.where(has, common.own_overdue, 1))
        score *= own[:, None]
        score[due] += np.float32(np.sqrt(common.shares.company)) * common.week[
            engine._weeks_of_days(due_day[due], common.weeks).astype(np.intp)]
    else:
        score *= np.where(has, common.own, common.own_alone)[:, None]
    if common.customer is not None and has.any():
        period = np.clip(np.floor(np.maximum(due_day[has], 0) / (7 * CommonShocks.CUSTOMER_WEEKS)), 0,
                         common.periods - 1).astype(np.intp)
        score[has] += np.float32(np.sqrt(common.shares.customer)) * common.customer[customer[has], period]
    return np.minimum(ndtr(score) * levels, levels - 1).astype(np.int16)


@pytest.mark.parametrize("levels", [1, 2, 7, 100])
def test_a_scores_level_is_the_number_of_bounds_at_or_below_it(levels):
    bounds = engine._level_bounds(levels)
    assert len(bounds) == levels - 1 and np.all(np.diff(bounds) >= 0)
    rng = np.random.default_rng(levels)
    near = (engine._key_of(bounds)[:, None] + np.arange(-300, 300)).ravel()  # every float around each bound
    scores = np.concatenate([rng.standard_normal(200_000).astype(np.float32) * np.float32(3),
                             engine._float32_of(near), np.array([-np.inf, -0.0, 0.0, np.inf], np.float32)])
    assert np.array_equal(np.searchsorted(bounds, scores, side="right"), engine._levels_of(scores, levels))


@pytest.mark.parametrize("rows, threads", [(700, 1), (3001, 3)])  # 3 x 1,000 rows x 90 paths: split over threads
@pytest.mark.parametrize("shares", [CommonShocks(0.2, 0.5, 0.15, 0.3), CommonShocks(0.3, 0.2), CommonShocks()])
def test_picks_are_numpys(shares, rows, threads, monkeypatch):
    monkeypatch.setattr(cores, "count", lambda: threads)
    customers = np.array(["a", "b", "c"])
    rng = np.random.default_rng(3)
    customer = rng.integers(-1, 3, rows)
    due_day = rng.uniform(-60, 120, rows).round()
    common = engine._Common(shares, customers, 13, 90, np.random.default_rng(5))
    got = common.picks(customer, due_day, common.normals(np.random.default_rng(7), rows), 100)
    assert np.array_equal(got, _numpy_picks(common, customer, due_day, np.random.default_rng(7), 100))


def test_overdue_invoices_take_no_week_factor_and_keep_their_spread():
    # only a company factor, no correlation from one week to the next: invoices due in the same week after as-of
    # move together on a path; overdue ones (due by as-of) do not, with each other or with week 1's, and their
    # levels still spread evenly
    common = engine._Common(CommonShocks(0.5, 0.0), np.array([], dtype=str), 13, 4000, np.random.default_rng(2))
    due_day = np.array([3.0, 4.0, 10.0, 11.0, 0.0, -2.0, -3.0, -40.0])
    level = common.picks(np.full(len(due_day), -1), due_day, common.normals(np.random.default_rng(3), 8), 100)
    r = np.corrcoef(level.astype(float))
    assert r[0, 1] > 0.4 and r[2, 3] > 0.4  # the same due week
    for apart in [(0, 2), (0, 4), (4, 5), (5, 6), (6, 7), (0, 6), (1, 7)]:
        assert abs(r[apart]) < 0.06
    for row in range(4, 8):
        counts = np.bincount(level[row], minlength=100).reshape(10, 10).sum(axis=1)  # deciles of the levels
        assert counts.min() > 330 and counts.max() < 470  # 400 each


def test_picked_weeks_add_as_a_bincount():
    rng = np.random.default_rng(11)
    rows, paths, levels, width = 300, 40, 10, 7
    pick = rng.integers(0, levels, (rows, paths)).astype(np.int16)
    mine = np.sort(rng.choice(rows, 120, replace=False))
    grid = rng.integers(0, width, len(mine) * levels).astype(np.uint8)
    amount = rng.normal(size=(rows, paths)) * 1e3
    for w, share in ((amount, 1.0), (np.broadcast_to(amount[:, :1], amount.shape), 0.3)):
        cols = slice(8, 40)
        sums = rng.normal(size=(paths, width))
        expected = sums.copy()
        week = grid[pick[mine, cols] + (np.arange(len(mine)) * levels)[:, None]].astype(np.intp)
        value = w[mine, cols] if share == 1.0 else w[mine, cols] * share
        flat = week + np.arange(week.shape[1]) * width
        expected[cols] += np.bincount(flat.ravel(), weights=value.ravel(), minlength=flat.shape[1] * width).reshape(
            -1, width)
        engine._add_picked(sums, cols.start, pick, mine, grid, levels, w[:, cols], share, share != 1.0)
        assert np.array_equal(sums, expected)


def test_draws_are_numpys():
    rng = np.random.default_rng(13)
    values = np.sort(rng.integers(-20, 60, 500).astype(float))
    floor = np.concatenate([rng.uniform(-30, 70, 40).round(), [-np.inf, 59.0, 60.0, 200.0]])
    uniforms = rng.random((len(floor), 25))
    lo = np.searchsorted(values, floor, side="left")
    n = len(values)
    idx = (uniforms * np.maximum(n - lo, 0)[:, None]).astype(np.intp) + np.minimum(lo, n - 1)[:, None]
    expected = np.where((lo >= n)[:, None], floor[:, None], values[idx])
    assert np.array_equal(engine._draw_rows(values, lo, floor, uniforms), expected)


def _numpy_bill_weeks(issue, due, offsets, run, at, weeks, draws, slot, window, picks, discount_days, take_share):
    """``_pay_bills``'s weeks of one block as numpy computed them (``run``: kind, weekday, monthday)."""
    week = np.empty(offsets.shape, dtype=np.uint8)
    taken = np.zeros((int(slot.max()) + 1, offsets.shape[1]), dtype=bool)
    earliest = np.maximum(issue, 1)
    on_due = np.maximum(due + offsets, earliest)
    if run[0] != cash.RUN_NONE:
        beyond = 7 * (weeks + 1) + 32
        after, before = cash.run_days(at, 0, beyond, run[0])
        row = run[1] if run[0] == cash.RUN_WEEKLY else min(max(run[2], 1), 31) - 1
        before = before[row]
        run_week = np.concatenate([engine._weeks_of_days(after[row], weeks),
                                   engine._weeks_of_days(before, weeks)]).astype(np.uint8)
        d = np.minimum(np.ceil(on_due), beyond).astype(np.intp)
        d += (before[d] >= earliest) * len(before)
        np.take(run_week, d, out=week)
    else:
        week[:] = engine._weeks_of_days(on_due, weeks)
    mine = slot >= 0
    issue, earliest = np.broadcast_to(issue, draws.shape)[mine], np.broadcast_to(earliest, draws.shape)[mine]
    wnd = window[mine][:, None]
    take = (issue + wnd >= 1) & (draws[mine] < take_share)
    in_window = np.minimum(issue + (discount_days[picks[slot[mine]]] if len(discount_days) else wnd), issue + wnd)
    week[mine] = np.where(take, engine._weeks_of_days(np.maximum(in_window, earliest), weeks), week[mine])
    taken[slot[mine]] = take
    return week, taken


@pytest.mark.parametrize("run", [(cash.RUN_NONE, 0, 0), (cash.RUN_WEEKLY, 3, 0), (cash.RUN_MONTHLY, 0, 31)])
@pytest.mark.parametrize("choices", [0, 4])
def test_bill_weeks_are_numpys(run, choices):
    rng = np.random.default_rng(17)
    rows, paths, weeks = 60, 30, 13
    issue = rng.integers(-40, 20, (rows, 1)).astype(float)
    due = issue + rng.integers(0, 60, (rows, paths))
    offsets = rng.integers(-10, 40, (rows, paths)).astype(float)
    slot = np.full(rows, -1)
    offered = np.flatnonzero(rng.random(rows) < 0.4)
    slot[offered] = np.arange(len(offered))
    window = np.where(slot >= 0, rng.integers(5, 30, rows), 0).astype(float)
    picks = rng.integers(0, max(choices, 1), (len(offered), paths)).astype(np.int32)
    discount_days = np.sort(rng.integers(1, 20, choices)).astype(float)
    draws = rng.random((rows, paths))
    at = np.datetime64("2025-06-30")
    expected = _numpy_bill_weeks(issue, due, offsets, run, at, weeks, draws, slot, window, picks, discount_days, 0.6)
    if run[0] != cash.RUN_NONE:
        beyond = 7 * (weeks + 1) + 32
        after, before = cash.run_days(at, 0, beyond, run[0])
        row = run[1] if run[0] == cash.RUN_WEEKLY else min(max(run[2], 1), 31) - 1
        run_week = np.concatenate([engine._weeks_of_days(after[row], weeks),
                                   engine._weeks_of_days(before[row], weeks)]).astype(np.uint8)
        before = before[row]
    else:
        beyond, before, run_week = 0, np.zeros(0), np.zeros(0, dtype=np.uint8)
    week, taken = np.empty((rows, paths), dtype=np.uint8), np.zeros((len(offered), paths), dtype=bool)
    engine._bill_weeks(week, taken, np.broadcast_to(issue, offsets.shape), due, offsets, run_week, before, beyond,
                       weeks, draws, slot, window, picks, discount_days, 0.6)
    assert np.array_equal(week, expected[0]) and np.array_equal(taken, expected[1])
    assert taken.any() and (~taken).any()


def test_bills_add_as_a_bincount_less_their_discounts():
    rng = np.random.default_rng(19)
    rows, paths, width = 200, 50, 9
    week = rng.integers(0, width, (rows, paths)).astype(np.uint8)
    amount = rng.normal(1e4, 3e3, rows)
    slot = np.full(rows, -1)
    offered = np.flatnonzero(rng.random(rows) < 0.5)
    slot[offered] = np.arange(len(offered))
    taken, factor = rng.random((len(offered), paths)) < 0.5, 1 - rng.uniform(1, 3, len(offered)) / 100
    value = np.repeat(amount[:, None], paths, axis=1)
    value[offered] *= np.where(taken, factor[:, None], 1.0)
    flat = week.astype(np.intp) + np.arange(paths) * width
    expected = np.bincount(flat.ravel(), weights=value.ravel(), minlength=paths * width).reshape(-1, width)
    sums = np.zeros((paths, width))
    engine._add_bills(sums, week, np.broadcast_to(amount[:, None], week.shape), slot, taken, factor)
    assert np.array_equal(sums, expected)


@pytest.mark.parametrize("shape", [(1, 5), (3, 7), (9, 14), (130, 1), (257, 33), (4001, 97)])
def test_week_totals_are_numpys_sums(shape):
    rng = np.random.default_rng(shape[0])
    week = rng.integers(0, 6, shape).astype(np.uint8)
    amount = rng.lognormal(8, 2, shape[0]) * np.where(rng.random(shape[0]) < 0.2, -1, 1)
    expected = [(amount[:, None] * (week == k)).sum() for k in range(1, 6)]
    assert np.array_equal(engine._week_totals(week, amount, 5), expected)
    negative = -np.abs(amount)  # sums of negative zeros: numpy's start from 0 decides their sign
    assert [str(v) for v in engine._week_totals(week, negative, 7)] == [
        str((negative[:, None] * (week == k)).sum()) for k in range(1, 8)]
