"""Forecast against actual, the bridge and the monthly view, on a company generated with a seed nobody developed
on (83): two forecasts saved four weeks apart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.synthetic import SyntheticConfig, generate, write

PATHS = 200


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Seed 83: models fitted at as-of V (registered as the cash forecast), V and W (4 weeks later) saved."""
    import mlflow

    from features.asof import last_known_date
    from features.load import validate
    from training import tracking
    from training.cash.family import cash_output
    from training.cash.forecast import forecast
    from training.cash.model import ForecastModels, build_cash_model
    from training.cash.shocks import Shocks
    from training.cash.versions import load_version, save_version
    from training.examples import ExampleConfig, split
    from training.payment_timing import build_payment_timing

    root = tmp_path_factory.mktemp("seed83")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    mp.chdir(root)
    folder = write(generate(SyntheticConfig(customers=50, years=1.5, seed=83)), root / "co")
    company = validate(folder).company
    w_at = last_known_date(company) - pd.Timedelta(days=7)
    v_at = w_at - pd.Timedelta(days=28)
    _, _, train, _ = split(company, v_at, ExampleConfig(every_days=21, holdout_days=60))
    timing = build_payment_timing().fit(train, train["delay"].to_numpy(), train["censored"].to_numpy())
    models = ForecastModels(timing, build_cash_model().fit(company, v_at))
    tracking.connect()
    mlflow.set_experiment("fixture")
    with mlflow.start_run():
        info = tracking.log_model(models, tracking.CASH_FORECAST, "co", pd.DataFrame([{
            "data": str(folder), "as_of": f"{v_at:%Y-%m-%d}", "weeks": 2, "paths": 20}]), cash_output)
    versions = {tracking.CASH_FORECAST: str(info.registered_model_version)}
    ids = []
    for at in (v_at, w_at):
        rows = forecast(company, at, 13, models=models, paths=PATHS)
        ids.append(save_version(rows, "co", at, Shocks(), versions,
                                paths=PATHS, seed=0, data=str(folder)))
    yield {"company": company, "models": models, "v": load_version("co", ids[0]), "w": load_version("co", ids[1]),
           "folder": folder}
    mp.undo()


def test_variance_of_the_first_shows_four_passed_weeks_with_ledger_receipts(saved):
    from training.cash.variance import VARIANCE_COLUMNS, variance

    v, company = saved["v"], saved["company"]
    rows = variance(company, v, saved["w"].as_of)
    assert list(rows.columns) == VARIANCE_COLUMNS and len(rows) == 4
    # The ledger's receipts straight from the files: each payment at the latest rate on or before its day.
    pay = pd.read_csv(saved["folder"] / "payments.csv", parse_dates=["date"]).sort_values("date")
    fx = pd.read_csv(saved["folder"] / "fx_rates.csv", parse_dates=["date"]).sort_values("date")
    pay = pd.merge_asof(pay, fx, on="date", by="currency")
    pay["base"] = pay["amount"] * pay["rate"].where(pay["currency"] != company.base_currency, 1.0)
    assert pay["base"].notna().all()
    for r in rows.itertuples():
        ledger = pay.loc[(pay["date"] >= r.week_start) & (pay["date"] <= r.week_end), "base"].sum()
        assert abs(r.inflow_actual - ledger) <= 0.005 * ledger
        assert r.inflow_inside == (r.inflow_p10 <= r.inflow_actual <= r.inflow_p90)
    print("variance of V:\n", rows[["week", "inflow_p10", "inflow_p50", "inflow_p90", "inflow_actual",
                                    "inflow_inside", "outflow_inside"]].to_string())


def test_accuracy_by_horizon_pools_the_saved_versions(saved):
    from training.cash.variance import ACCURACY_COLUMNS, accuracy

    later = saved["w"].as_of + pd.Timedelta(days=7)
    table = accuracy(saved["company"], [saved["v"], saved["w"]], later)
    assert list(table.columns) == ACCURACY_COLUMNS
    assert table.loc[table["horizon"] == 1, "weeks"].item() == 2  # week 1 of both versions has passed
    assert table["horizon"].tolist() == [1, 2, 3, 4, 5]
    assert table["coverage_inflow"].between(0, 1).all() and (table["wape_inflow"] >= 0).all()


def test_bridge_causes_add_up_to_every_weeks_change(saved):
    from training.cash.bridge import BRIDGE_COLUMNS, CAUSES, RESTATED, bridge

    v, w = saved["v"], saved["w"]
    rows = bridge(saved["company"], v, w, saved["models"], saved["models"])
    assert list(rows.columns) == BRIDGE_COLUMNS
    assert set(rows["cause"]) == {*CAUSES, RESTATED}
    total = rows.groupby("week_end")["amount"].sum()
    change = (w.table.set_index("week_end")["balance_p50"] - v.table.set_index("week_end")["balance_p50"]).dropna()
    assert len(change) == 9 and list(total.index) == list(change.index)
    assert np.allclose(total.to_numpy(), change.to_numpy(), rtol=0.005, atol=0.05)
    by = rows.set_index(["week_end", "cause"])["amount"]
    assert by.xs("model changes", level="cause").abs().max() == 0  # the same models: no model change
    assert by.xs(RESTATED, level="cause").abs().max() < 0.05  # remaking either version gives it back
    print("bridge, last common week:\n", rows[rows["week_end"] == rows["week_end"].max()].to_string())


def test_bridge_refuses_versions_without_common_weeks(saved):
    from training.cash.bridge import bridge

    with pytest.raises(ValueError, match="later version must start"):
        bridge(saved["company"], saved["w"], saved["v"], saved["models"], saved["models"])


def test_monthly_view_months_sum_the_weekly_flows(saved):
    from training.cash.monthly import MONTHLY_COLUMNS, monthly

    v = saved["v"]
    months, weekly = monthly(saved["company"], v.as_of, 12, models=saved["models"], paths=PATHS,
                             probabilities=(0.25, 0.5, 0.25))
    assert list(months.columns) == MONTHLY_COLUMNS and len(months) == 12
    assert months["weeks"].sum() == len(weekly)
    for name in ("inflow", "outflow", "net"):
        assert months[f"{name}_mean"].sum() == pytest.approx(weekly[f"{name}_mean"].sum(), rel=1e-6)
    last = weekly.groupby("month")["balance_mean"].last()
    opening = weekly["balance_mean"].iloc[0] - weekly["net_mean"].iloc[0]
    assert np.allclose(opening + months["net_mean"].cumsum().to_numpy(), last.loc[months["month"]].to_numpy(),
                       atol=0.05)
    assert (months["downside"] <= months["base"]).all() and (months["base"] <= months["upside"]).all()
    with pytest.raises(ValueError, match="probabilities"):
        monthly(saved["company"], v.as_of, 12, models=saved["models"], paths=PATHS, probabilities=(0.5, 0.6, 0.1))
