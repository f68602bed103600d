"""Model tests of the cash forecast's quality: the weekly invoicing forecast finds a smooth season and growth
where one noisy week a year earlier would mislead, and does not carry a maturing company's early growth forward;
the sales not yet ordered are the share of invoicing open orders cannot show."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.cash.evaluate import wape
from training.cash.model import _unordered_share
from training.cash.series import SeriesConfig, _harmonic, build_weekly_series


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


def test_the_harmonic_trend_carries_only_part_of_a_maturing_companys_growth_forward():
    # Growth from 40 % a year in the first year to 9 % in the third, as new customers become a smaller share.
    t = np.arange(170)
    truth = 1000.0 * (1 + 1.5 * (1 - np.exp(-t / 70))) * (1 + 0.2 * np.cos(2 * np.pi * t / (365.25 / 7)))
    y = truth * np.exp(np.random.default_rng(0).normal(0, 0.1, len(t)))
    hs = np.arange(1, 14)

    def over_forecast(damping: float) -> float:
        """The mean over origins in the last year of the 13 weeks' forecast total relative to the truth's."""
        return float(np.mean([_harmonic(y, o, hs, damping).sum() / truth[o + hs].sum() - 1 for o in range(104, 157)]))

    damping = SeriesConfig().trend_damping
    assert 0 < damping < 1
    assert over_forecast(damping) < over_forecast(1.0) - 0.015
    seen = pd.Series(y[:157], index=pd.date_range("2022-01-02", periods=157, freq="7D"))
    model = build_weekly_series(SeriesConfig(prefer_margin=1.0)).fit(seen)  # the harmonic trend, whatever the holdout
    assert model.method_ == "harmonic"
    assert model.predict(seen, 13) == pytest.approx(_harmonic(y, 156, hs, damping))


def test_the_share_not_yet_ordered_follows_the_order_lead_time():
    # An invoice of 1 every day, each ordered 10 days before it is issued: an origin's open orders show all of
    # week 1, 3 of week 2's 7 days, nothing later.
    issue = pd.Series(pd.date_range("2024-01-01", "2024-12-31", freq="D"))
    share = _unordered_share(issue, issue - pd.Timedelta(days=10), np.ones(len(issue)), issue.iloc[-1])
    assert share == pytest.approx([0.0, 4 / 7] + [1.0] * 11)
    # Invoices raised without an order are never among the open orders.
    direct = _unordered_share(issue, pd.Series(pd.NaT, index=issue.index), np.ones(len(issue)), issue.iloc[-1])
    assert direct == pytest.approx(np.ones(13))


def test_a_company_without_orders_fits_the_cash_model_and_counts_every_sale_not_yet_ordered(small_loaded):
    """IBM's ledger has no sales orders: the order-date lookup met an empty mapper (and failed on dates)."""
    from features.company import Company
    from features.contract import Inv, Ord
    from training.cash.model import build_cash_model

    tables = {t: (f.iloc[:0] if t == Ord.TABLE else f) for t, f in small_loaded.tables.items()}
    tables[Inv.TABLE] = tables[Inv.TABLE].assign(**{Inv.ORDER: pd.NA})
    company = Company(tables, small_loaded.supplied, small_loaded.base_currency)
    model = build_cash_model().fit(company, small_loaded[Inv.TABLE][Inv.ISSUE].max())
    assert np.allclose(model.unordered_share(13), 1.0)
