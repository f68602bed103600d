"""Model test of the cash forecast's first week: what invoices pay within a week of the as-of date."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from features.contract import Inv


def test_the_first_week_after_the_snapshot_is_recalibrated_on_its_own(fitted):
    """What invoices pay within a week of the as-of date (the cash forecast's week 1) matches the model's chance of
    it on the later holdout (about 300 payments: within 2.5 standard deviations of their count)."""
    timing, x = fitted["timing"], fitted["holdout"]
    days = timing.config.first_week_days
    s, delay, censored = -x["days_to_due"].to_numpy(float), x["delay"].to_numpy(float), x["censored"].to_numpy()
    seen = ~censored | (delay - s >= days)
    x, s, delay, censored = x[seen], s[seen], delay[seen], censored[seen]
    paid = int((~censored & (delay <= s + days)).sum())
    assert timing.first_week_ is not None and paid >= 50
    u = (np.arange(200) + 0.5) / 200
    chance = (timing.quantiles(x, u) <= s[:, None] + days).mean(axis=1).sum()
    assert abs(chance / paid - 1) < 2.5 / np.sqrt(paid)



def test_invoices_not_yet_issued_pay_their_first_week_as_the_model_says(small_loaded, fitted):
    """Invoices issued after the origin, scored as a forecast at the origin scores them (``issued_later``): what
    they pay within a week of issue matches the model's chance of it, closer than the due-later ratio alone (a
    snapshot seldom holds an invoice its customer pays on receipt)."""
    from training.examples import ISSUED_LATER, issued_later, issued_later_rows, with_rows
    from training.payment_timing import build_payment_timing

    train, origin, at, days = fitted["train"], fitted["origin"], fitted["at"], 7
    rows = with_rows(train, issued_later_rows(small_loaded, origin, train, 0.25, 21))
    assert rows[ISSUED_LATER].sum() > 0 and rows[ISSUED_LATER].iloc[: len(train)].eq(False).all()
    timing = build_payment_timing().fit(rows, rows["delay"].to_numpy(), rows["censored"].to_numpy())
    assert timing.issued_week_ is not None
    later = issued_later(small_loaded, at, pd.date_range(origin, at - pd.Timedelta(days=days), freq="7D"), days)
    later = later[later["terms_days"] > days]
    assert later[Inv.ISSUE].gt(origin).all()
    s, delay, censored = -later["terms_days"].to_numpy(float), later["delay"].to_numpy(float), later["censored"]
    paid = int((~censored & (delay <= s + days)).sum())
    assert paid >= 20
    u = (np.arange(200) + 0.5) / 200
    chance = (timing.quantiles(later, u, s) <= s[:, None] + days).mean(axis=1).sum()
    plain = copy.copy(timing)
    plain.issued_week_ = None
    before = (plain.quantiles(later, u, s) <= s[:, None] + days).mean(axis=1).sum()
    assert abs(chance / paid - 1) < abs(before / paid - 1)
    assert abs(chance / paid - 1) < 0.25  # 37 payments


def test_the_first_week_factor_acts_on_the_odds_and_meets_the_payments_made():
    """The first-week factor is found on the odds: the scaled chances add up to the payments made even where a
    chance multiplied by the same factor would pass 1 (run payers due that week), and stay inside 0..1."""
    from training.payment_timing import _odds_factor, _odds_scaled

    q = np.array([0.9, 0.85, 0.8, 0.2, 0.1, 0.0, 1.0])
    paid = 5  # 1 + 4 of the six chances below 1, which add up to 2.85
    factor = _odds_factor(q, paid)
    scaled = _odds_scaled(q, factor)
    assert abs(scaled.sum() - paid) < 1e-6
    assert (scaled[:5] < 1).all() and scaled[5] == 0 and scaled[6] == 1
    assert np.all(np.diff(scaled[:5]) <= 0)  # the order of the chances is kept
    assert np.clip(q * (paid - 1) / q[:6].sum(), 0, 1).sum() < paid  # multiplying the chances falls short
    assert abs(_odds_factor(np.array([0.5, 0.25, 0.25]), 1) - 1) < 1e-9  # chances already right: factor 1


def test_snapshots_fall_on_the_weekday_forecasts_start_on(small_loaded):
    """Snapshot dates fall on the weekday of the date the examples are for (the week after a date holds a weekly
    payer's run wherever it starts, but which invoices it pays there depends on the weekday): an origin whole weeks
    before shares the later call's dates (the refit reuses them), and ``train --as-of`` another weekday trains on
    that weekday, not on the company's last known date's."""
    from features.asof import last_known_date
    from features.invoices import SNAPSHOT
    from training.examples import ExampleConfig, examples

    at = last_known_date(small_loaded)
    cfg = ExampleConfig(every_days=14, holdout_days=63)
    origin = at - pd.Timedelta(days=63)
    late, early = (set(examples(small_loaded, d, cfg, workers=1)[SNAPSHOT]) for d in (at, origin))
    assert {d.day_of_week for d in late} == {at.day_of_week}
    assert {d.day_of_week for d in early} == {at.day_of_week}
    assert early - {origin} <= late
    other = at - pd.Timedelta(days=60)  # a Wednesday where ``at`` is a Saturday, say
    assert {d.day_of_week for d in examples(small_loaded, other, cfg, workers=1)[SNAPSHOT]} == {other.day_of_week}
