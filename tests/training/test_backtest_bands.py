"""Forecast bands by horizon: the figures of each band, the common shocks that tie invoices together, and bands
that widen with the horizon."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract import Inv
from training import metrics
from training.cash.backtest import BANDS, band_name, band_table, by_band
from training.cash.model import (
    NO_COMMON_SHOCKS,
    CashForecastConfig,
    CommonShocks,
    ForecastModels,
    _usual_delays,
    build_cash_model,
    fit_common_shocks,
)


def _weekly(weeks: int, origins: int = 3) -> pd.DataFrame:
    """Backtest rows with every method's columns: likvid's band is actual ± 10 % but misses at week 1."""
    rows = []
    for o in range(origins):
        for w in range(1, weeks + 1):
            row = {"origin": o, "week": w}
            for target in ("receipts", "payments", "net"):
                y = 100.0 + w
                p50 = y * 1.5 if w == 1 else y
                row.update({target: y, f"{target}_p10": p50 * 0.9, f"{target}_p50": p50, f"{target}_p90": p50 * 1.1,
                            f"{target}_likvid": p50, f"{target}_mean8": 100.0, f"{target}_mean8_p10": 95.0,
                            f"{target}_mean8_p90": 105.0, f"{target}_last_year": np.nan,
                            f"{target}_due_date": 0.0, f"{target}_due_plus_delay": y})
            rows.append(row)
    return pd.DataFrame(rows)


def test_pinball_loss_by_hand():
    actual = np.array([10.0, 20.0])
    # p10 = 8: misses 2 and 12 under by 0.1 each; p90 = 30: over by 20 and 10 at 0.1 each
    assert metrics.pinball(actual, {0.1: np.array([8.0, 8.0]), 0.9: np.array([30.0, 30.0])}) == pytest.approx(
        (0.1 * (2 + 12) / 2 + 0.1 * (20 + 10) / 2) / 2)
    point = np.array([12.0, 15.0])
    assert metrics.pinball(actual, {0.1: point, 0.5: point, 0.9: point}) == pytest.approx(0.5 * np.mean([2, 5]))


def test_bands_score_every_method_on_the_same_rows():
    bands = by_band(_weekly(30))
    assert list(bands["band"].unique()) == ["1", "2-4", "5-8", "9-13", "14-26", "27-30"]  # cut at the horizon
    r = bands[bands["target"] == "receipts"].set_index(["band", "method"])
    assert r.loc[("1", "likvid"), "coverage"] == 0 and r.loc[("2-4", "likvid"), "coverage"] == 1
    assert r.loc[("1", "likvid"), "bias"] == pytest.approx(-0.5)  # p50 half again the actual
    assert r.loc[("2-4", "due_plus_delay"), "wape"] == 0 and r.loc[("2-4", "due_plus_delay"), "pinball"] == 0
    assert np.isnan(r.loc[("2-4", "due_date"), "coverage"]) and r.loc[("2-4", "due_date"), "bias"] == 1
    assert (r.xs("likvid", level="method")["n"] == [3, 9, 12, 15, 39, 12]).all()
    table = band_table(bands, "receipts").set_index("band")
    # the better naive baseline: the 8-week mean (last year has no history and counts as zero)
    assert table.loc["5-8", "wape_vs_naive"] == 0
    ratio = r.loc[("1", "likvid"), "wape"] / r.loc[("1", "mean8"), "wape"]
    assert table.loc["1", "wape_vs_naive"] == pytest.approx(ratio)
    assert list(by_band(_weekly(13))["band"].unique()) == [band_name(*b) for b in BANDS[:4]]


def _invoices(shock_sd: float, seed: int = 0) -> pd.DataFrame:
    """40 customers paying 3 invoices a week for 80 weeks, delay 5 ± 4 days, plus a shock of each due week."""
    rng = np.random.default_rng(seed)
    weeks, customers, per = 80, 40, 3
    week = np.repeat(np.arange(weeks), customers * per)
    due = pd.Timestamp("2024-01-01") + pd.to_timedelta(7 * week + rng.integers(0, 7, len(week)), unit="D")
    shock = rng.normal(0, shock_sd, weeks)[week]
    delay = np.round(5 + rng.normal(0, 4, len(week)) + shock)
    return pd.DataFrame({Inv.CUSTOMER: np.tile(np.repeat(np.arange(customers), per), weeks).astype(str),
                         Inv.DUE: due, Inv.PAID: due + pd.to_timedelta(delay, unit="D")})


def test_common_shocks_find_a_planted_week_shock_and_none_where_there_is_none():
    at = pd.Timestamp("2025-07-15")
    planted = fit_common_shocks(_invoices(4.0), at)
    none = fit_common_shocks(_invoices(0.0), at)
    assert 0.25 < planted.company < 0.6  # 16 / (16 + 16) of the variance, seen through rank scores
    assert none.company < 0.02 and none.customer < 0.05
    assert fit_common_shocks(_invoices(4.0).head(30), at).company == 0  # too little history: no shock


def test_a_customers_usual_delay_is_pandas_rolling_mean_and_spread_of_its_previous_ten():
    rng = np.random.default_rng(4)
    customer = np.sort(rng.integers(0, 60, 3000))  # some customers with 1 or 2 rows
    customer[-5:] = -1  # and rows of no customer
    delay = rng.integers(-20, 90, len(customer)).astype(float)
    delay[:40] = 7.0  # a customer whose delays never vary
    s = pd.Series(delay)
    group = pd.Series(np.where(customer >= 0, customer, np.nan))
    rolling = s.groupby(group).shift().groupby(group).rolling(10, min_periods=3)
    usual = rolling.mean().reset_index(level=0, drop=True).reindex(s.index).to_numpy()
    spread = rolling.std().reset_index(level=0, drop=True).reindex(s.index).to_numpy()
    got_usual, got_spread = _usual_delays(customer, delay)
    np.testing.assert_array_equal(np.isnan(got_usual), np.isnan(usual))
    np.testing.assert_allclose(got_usual, usual, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(got_spread, spread, rtol=1e-9, atol=1e-6)


@pytest.fixture(scope="module")
def forecasts(small_loaded, fitted):
    """26 weeks from the small company: with the learned common shocks, strong ones, and independent draws."""
    import copy

    from training.cash.forecast import forecast

    learned = build_cash_model().fit(small_loaded, fitted["at"])
    out = {}
    for name, shares in (("learned", learned.common_shocks()), ("strong", CommonShocks(0.3, 0.5, 0.2, 0.5)),
                         ("independent", NO_COMMON_SHOCKS)):
        cash = copy.copy(learned)
        cash.common_shocks_ = shares
        out[name] = forecast(small_loaded, fitted["at"], 26, models=ForecastModels(fitted["timing"], cash),
                             paths=200)
    return out


def _width(rows: pd.DataFrame, weeks: slice) -> float:
    """Mean p10-p90 width of the weekly receipts relative to the p50."""
    part = rows.iloc[weeks]
    return float(((part["inflow_p90"] - part["inflow_p10"]) / part["inflow_p50"]).mean())


def test_bands_widen_with_the_horizon(forecasts):
    rows = forecasts["learned"]
    near, middle, far = _width(rows, slice(0, 4)), _width(rows, slice(4, 13)), _width(rows, slice(13, 26))
    assert near < middle < far, (near, middle, far)


def test_tied_payment_days_widen_the_band_and_keep_the_centre(forecasts, small_loaded, fitted):
    first = slice(0, 8)
    independent = _width(forecasts["independent"], first)
    assert independent < _width(forecasts["learned"], first) < _width(forecasts["strong"], first)
    assert _width(forecasts["strong"], first) > 1.3 * independent
    # each invoice keeps its own distribution: the centre barely moves
    for name in ("learned", "strong"):
        centre = forecasts[name]["inflow_p50"].iloc[first].sum()
        assert abs(centre / forecasts["independent"]["inflow_p50"].iloc[first].sum() - 1) < 0.05, name
    assert build_cash_model(CashForecastConfig(common_shocks=False)).fit(
        small_loaded, fitted["at"]).common_shocks() == NO_COMMON_SHOCKS


def test_backtest_command_reports_bands_past_13_weeks_and_refuses_53(store, small_company):
    from typer.testing import CliRunner

    from serving.cli import app

    run = CliRunner().invoke(app, ["backtest", str(small_company), "--weeks", "14", "--origins", "1", "--paths", "40"],
                             env={"COLUMNS": "220"})
    assert run.exit_code == 0, run.output
    assert "By horizon band" in run.output and "9-13" in run.output and "│ 14 " in run.output
    assert "Week 1 receipts: inside likvid's p10-p90 at" in run.output
    import mlflow

    metrics_logged = mlflow.search_runs(experiment_names=["likvid-cash-forecast"]).columns
    assert {"metrics.coverage_w1_receipts_likvid", "metrics.pinball_w14_receipts_mean8",
            "metrics.bias_w2_4_receipts_likvid", "metrics.pinball_receipts_likvid"} <= set(metrics_logged)
    bad = CliRunner().invoke(app, ["backtest", str(small_company), "--weeks", "53"])
    assert bad.exit_code == 2 and "--weeks" in bad.output
