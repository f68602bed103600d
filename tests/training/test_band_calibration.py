"""The receipts bands' widening by horizon: learned only from earlier origins whose weeks are known, wider where
the forecasts were too narrow, narrower where too wide, and applied to the paths without moving the median."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.asof import as_of, last_known_date
from features.load import validate
from features.synthetic import SyntheticConfig, generate, write
from training.cash.backtest import BacktestConfig, band_origins, band_rows
from training.cash.engine import _Paths, path_totals, widen_receipts
from training.cash.model import (
    NO_BAND_CALIBRATION,
    BandCalibration,
    CashForecastConfig,
    band_scores,
    fit_band_calibration,
)

AT = pd.Timestamp("2025-06-30")
ON = CashForecastConfig(band_origins=8)  # the widening is off by default


def _rows(origins: int, spread: float, last: pd.Timestamp = AT - pd.Timedelta(weeks=13), weeks: int = 13,
          seed: int = 0) -> pd.DataFrame:
    """Forecasts every 4 weeks up to ``last`` whose p10-p90 band is +-10 around a p50 of 100, and actuals that
    scatter around it ``spread`` times as much as the band says (1: the band is right)."""
    rng = np.random.default_rng(seed)
    rows = []
    for j in range(origins):
        origin = last - pd.Timedelta(weeks=4 * j)
        for week in range(1, weeks + 1):
            rows.append({"origin": origin, "week": week, "receipts": 100 + spread * 10 / 1.2816 * rng.standard_normal(),
                         "receipts_p10": 90.0, "receipts_p50": 100.0, "receipts_p90": 110.0})
    return pd.DataFrame(rows)


def _coverage(rows: pd.DataFrame, factors: BandCalibration) -> float:
    return float((band_scores(rows) <= factors.factor(13)[rows["week"].to_numpy() - 1]).mean())


def test_scores_are_the_factor_that_just_covers_each_week():
    rows = pd.DataFrame({"receipts": [100.0, 120.0, 85.0, 100.0, 101.0], "receipts_p10": [90.0, 90, 90, 100, 100],
                         "receipts_p50": [100.0, 100, 100, 100, 100], "receipts_p90": [110.0, 110, 110, 100, 100]})
    assert band_scores(rows).tolist() == [0.0, 2.0, 1.5, 0.0, np.inf]


def test_the_widening_is_learned_only_from_origins_whose_weeks_are_known():
    config = ON
    known = _rows(8, 2.0)
    bands = fit_band_calibration(known, AT, config)
    assert bands.origins == 8 and bands.last_origin == AT - pd.Timedelta(weeks=13)
    # later origins, whose weeks had not all ended at AT, and their wild actuals change nothing
    later = _rows(3, 50.0, AT - pd.Timedelta(weeks=1), seed=1)
    assert fit_band_calibration(pd.concat([known, later]), AT, config) == bands
    # nor does an origin older than the latest band_origins ones
    older = _rows(1, 50.0, AT - pd.Timedelta(weeks=13 + 4 * 8), seed=2)
    assert fit_band_calibration(pd.concat([older, known]), AT, config) == bands
    # the origins a model trained at AT learns from are all fully known at AT
    assert all(o + pd.Timedelta(weeks=config.band_weeks) <= AT for o in band_origins(AT, config))
    assert len(band_origins(AT, config)) == config.band_origins


def test_a_too_narrow_forecast_gets_wider_and_a_too_wide_one_narrower():
    narrow, wide, right = _rows(8, 2.0), _rows(8, 0.5, seed=3), _rows(8, 1.0, seed=4)
    assert _coverage(narrow, NO_BAND_CALIBRATION) < 0.6 and _coverage(wide, NO_BAND_CALIBRATION) > 0.95
    widened, narrowed = fit_band_calibration(narrow, AT, ON), fit_band_calibration(wide, AT, ON)
    assert min(widened.factors) > 1.4 and max(narrowed.factors) < 0.8
    assert 0.7 <= _coverage(narrow, widened) <= 0.9 and 0.7 <= _coverage(wide, narrowed) <= 0.9
    assert 0.8 < np.median(fit_band_calibration(right, AT, ON).factors) < 1.25
    # learned on one set of origins, it holds on fresh ones drawn alike
    assert 0.7 <= _coverage(_rows(8, 2.0, seed=5), widened) <= 0.9


def test_too_few_known_origins_keep_todays_bands_and_say_so():
    bands = fit_band_calibration(_rows(3, 2.0), AT, ON)
    assert bands.factors == () and "fewer than 4" in bands.note
    assert (bands.factor(13) == 1).all()
    off = fit_band_calibration(_rows(8, 2.0), AT, CashForecastConfig(band_origins=0))
    assert off.factors == () and "off" in off.note


def test_widening_moves_every_path_but_not_the_median():
    rng = np.random.default_rng(0)
    sim = _Paths(3, 1000)
    for c in sim.sums:
        sim.sums[c][:] = rng.gamma(4.0, 25.0, sim.sums[c].shape)
    before = path_totals(sim, 0.0)
    widen_receipts(sim, BandCalibration((2.0, 1.0, 0.5)))
    after = path_totals(sim, 0.0)
    q0, q1 = (np.quantile(t["inflow"], [0.1, 0.5, 0.9], axis=0) for t in (before, after))
    np.testing.assert_allclose(q1[1], q0[1])
    width0, width1 = q0[2] - q0[0], q1[2] - q1[0]
    assert width1[0] > 1.8 * width0[0] and width1[1] == pytest.approx(width0[1]) and width1[2] < 0.6 * width0[2]
    assert (after["inflow"] > -1e-9).all()
    np.testing.assert_allclose(after["outflow"], before["outflow"])  # payments are left as they were


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    """A company long enough to learn from: two years and a bit, so four origins have a year behind them."""
    return validate(write(generate(SyntheticConfig(customers=30, years=2.3, seed=7)),
                          tmp_path_factory.mktemp("bands"))).company


def test_future_rows_change_no_learned_widening(company):
    # two earlier origins, each refitted (half the test's 31 s with four): what later rows could reach is the same
    cfg = BacktestConfig(cash=CashForecastConfig(band_origins=2, band_paths=40))
    at = last_known_date(company) - pd.Timedelta(weeks=6)
    rows = band_rows(company, at, cfg)
    assert rows["origin"].nunique() == 2 and (rows["origin"] + pd.Timedelta(weeks=13) <= at).all()
    pd.testing.assert_frame_equal(rows, band_rows(as_of(company, at), at, cfg))
