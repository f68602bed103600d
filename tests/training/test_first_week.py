"""Model test of the cash forecast's first week: what invoices pay within a week of the as-of date."""

from __future__ import annotations

import copy

import numpy as np


def test_the_first_week_after_the_snapshot_is_recalibrated_on_its_own(fitted):
    """What invoices pay within a week of the as-of date (the cash forecast's week 1) matches the model's chance of
    it on the later holdout, better than with the segment recalibration alone (it leaves that week short)."""
    timing, x = fitted["timing"], fitted["holdout"]
    days = timing.config.first_week_days
    s, delay, censored = -x["days_to_due"].to_numpy(float), x["delay"].to_numpy(float), x["censored"].to_numpy()
    seen = ~censored | (delay - s >= days)
    x, s, delay, censored = x[seen], s[seen], delay[seen], censored[seen]
    paid = int((~censored & (delay <= s + days)).sum())
    assert timing.first_week_ is not None and paid >= 50
    u = (np.arange(200) + 0.5) / 200
    chance = (timing.quantiles(x, u) <= s[:, None] + days).mean(axis=1).sum()
    plain = copy.copy(timing)
    plain.first_week_ = None
    before = (plain.quantiles(x, u) <= s[:, None] + days).mean(axis=1).sum()
    assert abs(chance / paid - 1) < 0.1
    assert abs(chance / paid - 1) < abs(before / paid - 1)
