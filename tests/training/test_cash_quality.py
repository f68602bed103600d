"""Model tests of the cash forecast's quality: the weekly invoicing forecast finds a smooth season and growth
where one noisy week a year earlier would mislead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.cash.evaluate import wape
from training.cash.series import _harmonic, build_weekly_series


def _truth(t: np.ndarray) -> np.ndarray:
    """Weekly totals with 8 % yearly growth and a yearly cycle of ± 20 %."""
    return 1000.0 * 1.08 ** (t / 52) * (1 + 0.2 * np.cos(2 * np.pi * t / (365.25 / 7)))


def _seasonal(weeks: int, noise: float, seed: int = 0) -> tuple[pd.Series, np.ndarray]:
    """``_truth`` with multiplicative noise, and the truth."""
    truth = _truth(np.arange(weeks))
    y = truth * np.exp(np.random.default_rng(seed).normal(0, noise, weeks))
    return pd.Series(y, index=pd.date_range("2022-01-02", periods=weeks, freq="7D")), truth


def test_the_harmonic_trend_recovers_season_and_growth_through_noise():
    y, truth = _seasonal(170, 0.15)
    hs = np.arange(1, 14)
    t = 156
    smooth = _harmonic(y.to_numpy(), t, hs)
    last_year = y.to_numpy()[t + hs - 52]
    assert wape(truth[t + hs], smooth) < 0.05  # within the level's own noise (8 weeks of 15 %)
    assert wape(truth[t + hs], smooth) < 0.5 * wape(truth[t + hs], last_year)


def test_the_harmonic_trend_needs_a_year_and_a_level_of_history():
    y, _ = _seasonal(55, 0.1)
    assert np.isnan(_harmonic(y.to_numpy(), 54, np.arange(1, 4))).all()


def test_the_series_model_prefers_the_harmonic_trend_on_a_noisy_seasonal_series():
    y, truth = _seasonal(156, 0.15, seed=1)
    model = build_weekly_series().fit(y)
    assert model.holdout_wape_["harmonic"] < model.holdout_wape_["seasonal_naive"]
    assert model.holdout_wape_["harmonic"] < model.holdout_wape_["mean8"]
    assert model.method_ in ("harmonic", "lightgbm")
    assert wape(_truth(np.arange(156, 169)), model.predict(y, 13)) == pytest.approx(0.0, abs=0.08)
