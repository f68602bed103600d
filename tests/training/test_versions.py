"""Saved forecast versions (MLflow runs with the table as an artifact) and the "no opening balance" rule."""

from __future__ import annotations

import pandas as pd
import pytest

from features import cash
from features.contract import Bal
from training.cash.forecast import forecast
from training.cash.model import ForecastModels, build_cash_model
from training.cash.shocks import Shocks
from training.cash.versions import LIST_COLUMNS, list_versions, load_version, save_version


@pytest.fixture(scope="module")
def models(small_loaded, fitted):
    return ForecastModels(fitted["timing"], build_cash_model().fit(small_loaded, fitted["at"]))


def test_saved_versions_list_oldest_first_and_load_back_unchanged(store, small_loaded, fitted, models):
    at = fitted["at"]
    rows = forecast(small_loaded, at, 4, Shocks(customer_delay_days=5), models=models, paths=50)
    first = save_version(rows, "acme", at - pd.Timedelta(days=7), Shocks(), {"m": "1"}, paths=50, seed=0)
    second = save_version(rows, "acme", at, Shocks(customer_delay_days=5), {"m": "1"}, paths=50, seed=0)
    listed = list_versions("acme")
    assert list(listed.columns) == LIST_COLUMNS and listed["version"].tolist() == [first, second]
    v = load_version("acme", second[:8])
    assert v.as_of == at and v.weeks == 4 and v.shocks == Shocks(customer_delay_days=5) and v.models == {"m": "1"}
    cols = ["week", "week_end", "balance_p50"]
    pd.testing.assert_frame_equal(v.table[cols], rows[cols], check_dtype=False)
    assert list_versions("other").empty
    with pytest.raises(LookupError, match="is not a saved forecast"):
        load_version("acme", "ffffff")


def test_a_version_changed_after_saving_is_refused(store, small_loaded, fitted, models):
    import mlflow

    rows = forecast(small_loaded, fitted["at"], 2, models=models, paths=50)
    vid = save_version(rows, "acme", fitted["at"], Shocks(), {}, paths=50, seed=0)
    with mlflow.start_run(run_id=vid):
        mlflow.log_text("week\n1\n", "forecast.csv")  # overwrite the table behind the version's back
    with pytest.raises(ValueError, match="immutable"):
        load_version("acme", vid)


def test_without_cash_balances_the_forecast_says_no_opening_balance(small_loaded, fitted, models):
    at = fitted["at"]
    known = forecast(small_loaded, at, 2, models=models, paths=50)
    assert (known["opening_note"] == "").all() and known["opening_balance"].notna().all()
    bare = small_loaded.replace(**{Bal.TABLE: small_loaded[Bal.TABLE].iloc[0:0]})
    rows = forecast(bare, at, 2, models=models, paths=50)
    assert rows["opening_balance"].isna().all()
    assert (rows["opening_note"] == cash.NO_OPENING_BALANCE).all() and "no opening balance" in cash.NO_OPENING_BALANCE
