"""The cash forecast: quantile order, shocks, as-of, components, alert, registry and backtest."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.asof import as_of
from features.policy import Policy
from training.cash.backtest import BacktestConfig, backtest
from training.cash.evaluate import wape
from training.cash.family import log_backtest, train_cash_forecast
from training.cash.forecast import FORECAST_COLUMNS, forecast
from training.cash.model import ForecastModels, build_cash_model, load_forecast_models
from training.cash.series import SeriesConfig, build_weekly_series
from training.cash.shocks import Shocks
from training.examples import ExampleConfig
from training.payment_timing import PaymentTimingConfig

PATHS = 300


@pytest.fixture(scope="module")
def models(small_loaded, fitted):
    return ForecastModels(fitted["timing"], build_cash_model().fit(small_loaded, fitted["at"]))


@pytest.fixture(scope="module")
def base(small_loaded, fitted, models):
    return forecast(small_loaded, fitted["at"], 13, models=models, paths=PATHS)


def test_contract_columns_weeks_and_quantile_order(base, fitted):
    assert list(base.columns) == FORECAST_COLUMNS
    assert base["week"].tolist() == list(range(1, 14))
    assert base["week_start"].iloc[0] == fitted["at"] + pd.Timedelta(days=1)
    assert (base["week_end"] - base["week_start"]).dt.days.eq(6).all()
    for name in ("inflow", "outflow", "net", "balance"):
        assert (base[f"{name}_p10"] <= base[f"{name}_p50"]).all()
        assert (base[f"{name}_p50"] <= base[f"{name}_p90"]).all()
    assert (base["balance_p90"] > base["balance_p10"]).all()  # uncertainty is there
    assert (base["inflow_p50"] > 0).all()


def test_components_sum_to_the_p50_totals(base):
    assert np.allclose(base["ar_open"] + base["ar_future"], base["inflow_p50"], atol=0.05)
    assert np.allclose(base["ap_open"] + base["ap_future"] - base["other"], base["outflow_p50"], atol=0.05)
    # open invoices dominate the first weeks, future sales the last ones
    assert base["ar_open"].iloc[0] > base["ar_future"].iloc[0]
    assert base["ar_future"].iloc[-1] > base["ar_open"].iloc[-1]


def _run(company, fitted, models, **shocks):
    return forecast(company, fitted["at"], 13, Shocks(**shocks), models=models, paths=PATHS)


def test_each_shock_moves_the_forecast_the_right_way(small_loaded, fitted, models, base):
    slow = _run(small_loaded, fitted, models, customer_delay_days=21)
    assert slow["inflow_p50"].iloc[:4].sum() < base["inflow_p50"].iloc[:4].sum()
    assert slow["balance_p50"].iloc[-1] < base["balance_p50"].iloc[-1]
    fast = _run(small_loaded, fitted, models, customer_delay_days=-10)
    assert fast["inflow_p50"].iloc[:4].sum() > base["inflow_p50"].iloc[:4].sum()

    less = _run(small_loaded, fitted, models, sales_change_pct=-50)
    more = _run(small_loaded, fitted, models, sales_change_pct=30)
    assert less["ar_future"].iloc[6:].sum() < base["ar_future"].iloc[6:].sum() < more["ar_future"].iloc[6:].sum()
    assert np.allclose(less["ar_open"].iloc[:2], base["ar_open"].iloc[:2], rtol=0.1)  # open invoices untouched

    late_supply = _run(small_loaded, fitted, models, supplier_lead_time_days=28)
    assert late_supply["ap_future"].iloc[:8].sum() < base["ap_future"].iloc[:8].sum()


def test_future_rows_change_nothing(small_loaded, fitted, models, base):
    known = as_of(small_loaded, fitted["at"])  # the data as known then: later rows and facts removed
    pd.testing.assert_frame_equal(forecast(known, fitted["at"], 13, models=models, paths=PATHS), base)
    earlier = fitted["at"] - pd.Timedelta(days=30)
    pd.testing.assert_frame_equal(forecast(small_loaded, earlier, 4, models=models, paths=PATHS),
                                  forecast(as_of(small_loaded, earlier), earlier, 4, models=models, paths=PATHS))


def test_alert_flags_weeks_whose_p10_balance_is_below_the_floor(small_loaded, fitted, models, base):
    floor = float(base["balance_p10"].median())
    flagged = forecast(small_loaded, fitted["at"], 13, models=models, paths=PATHS, policy=Policy(cash_floor=floor))
    assert flagged["below_floor"].tolist() == (flagged["balance_p10"] < floor).tolist()
    assert flagged["below_floor"].any() and not flagged["below_floor"].all()
    assert not base["below_floor"].any()  # default floor 0, balance in the millions


def test_bad_arguments_are_named(small_loaded, fitted, models):
    for weeks in (0, 53, 2.5):
        with pytest.raises(ValueError, match="weeks"):
            forecast(small_loaded, fitted["at"], weeks, models=models)
    with pytest.raises(ValueError, match="customer_delay_days"):
        Shocks(customer_delay_days=float("nan"))
    with pytest.raises(ValueError, match="sales_change_pct"):
        Shocks(sales_change_pct=-150)
    with pytest.raises(ValueError, match="supplier_lead_time_days"):
        Shocks(supplier_lead_time_days="soon")


def test_a_shock_is_one_registry_entry_and_everything_derives_from_it():
    import json

    from pydantic import BaseModel, ValidationError
    from typer.testing import CliRunner

    from serving.cli import app
    from serving.schemas import ShocksIn
    from training.cash.shocks import SHOCKS, Draw

    assert [f.name for f in dataclasses.fields(Shocks)] == list(SHOCKS)
    with pytest.raises(TypeError):
        Shocks(1.0, 2.0, 3.0)  # keyword only: no positional order to keep in step
    days = np.array([[3.0, 10.0]])
    shocked = Shocks(customer_delay_days=7, supplier_lead_time_days=-2)
    assert np.array_equal(shocked.apply(Draw.CUSTOMER_PAY_DAY, days), days + 7)
    assert np.array_equal(shocked.apply(Draw.DELIVERY_DAY, days), days - 2)
    assert np.array_equal(Shocks(sales_change_pct=-20).apply(Draw.UNORDERED_SALES, days), days * 0.8)

    schema = ShocksIn.model_json_schema()
    assert set(schema["properties"]) == set(SHOCKS) and schema["additionalProperties"] is False
    for s in SHOCKS.values():
        assert (schema["properties"][s.name]["minimum"], schema["properties"][s.name]["maximum"]) == (s.low, s.high)

    class Request(BaseModel):
        shocks: ShocksIn = ShocksIn()

    name = next(iter(SHOCKS))
    for bad in ({"bogus": 1}, {name: True}, {name: "5"}, {name: SHOCKS[name].high + 1}):
        with pytest.raises(ValidationError):
            Request.model_validate_json(json.dumps({"shocks": bad}))
    assert Request.model_validate_json(json.dumps({"shocks": {name: 5}})).shocks.model_dump()[name] == 5.0

    help_text = CliRunner().invoke(app, ["forecast", "--help"], env={"COLUMNS": "200"}).output
    for s in SHOCKS.values():
        assert f"--{s.name.replace('_', '-')}" in help_text


def test_weeks_limits_are_the_request_models(small_loaded, fitted, models):
    import json

    from pydantic import BaseModel, ValidationError

    from features.limits import WEEKS
    from serving.schemas import Weeks

    class Request(BaseModel):
        weeks: Weeks = WEEKS.default

    for weeks in (0, 53, 60, 104, 105, True, 13.5, "13"):
        with pytest.raises(ValidationError):
            Request.model_validate_json(json.dumps({"weeks": weeks}))
    assert Request.model_validate_json('{"weeks": 52}').weeks == WEEKS.high
    assert len(forecast(small_loaded, fitted["at"], np.int64(WEEKS.high), models=models, paths=20)) == WEEKS.high


def test_stratified_draws_match_the_timing_models_sampling(small_loaded, fitted):
    from features.invoices import invoice_features

    x = invoice_features(small_loaded, fitted["at"]).head(200)
    timing = fitted["timing"]
    levels = (np.arange(100) + 0.5) / 100
    grid = timing.quantiles(x, levels)
    draws = timing.sample(x, 400, np.random.default_rng(0))
    finite = np.isfinite(grid).all(axis=1) & np.isfinite(draws).all(axis=1)
    assert finite.mean() > 0.5
    assert np.abs(np.median(grid[finite], axis=1) - np.median(draws[finite], axis=1)).mean() < 2.0


def test_weekly_series_model_learns_seasonality_and_growth():
    weeks = pd.date_range("2021-01-03", periods=160, freq="7D")
    t = np.arange(160)
    rng = np.random.default_rng(0)
    y = 1000 * (1.08 ** (t / 52)) * (1 + 0.3 * np.cos(2 * np.pi * t / 52)) * rng.lognormal(0, 0.03, 160)
    series = pd.Series(y, index=weeks)
    model = build_weekly_series(SeriesConfig()).fit(series.iloc[:-13])
    pred = model.predict(series.iloc[:-13], 13)
    mean8 = np.full(13, series.iloc[-21:-13].mean())
    assert wape(y[-13:], pred) < 0.5 * wape(y[-13:], mean8)
    assert model.method_ != "mean8"
    with pytest.raises(ValueError, match="at least"):
        build_weekly_series().fit(series.iloc[:10])


def test_missing_champions_say_to_train_first(store):
    with pytest.raises(LookupError, match="likvid train"):
        load_forecast_models("nobody-trained-this")


def test_registered_forecast_is_the_champion_and_forecasts(store, small_company, small_loaded, fitted):
    import mlflow

    decision, version = train_cash_forecast(small_loaded, str(small_company), fitted["at"], paths=100)
    assert decision.promote and version == "1"
    loaded = load_forecast_models(small_company.resolve().name)
    assert loaded.versions["likvid-cash-forecast"] == "1"
    rows = forecast(small_loaded, fitted["at"], 3, models=loaded, paths=50)  # the champions
    assert list(rows.columns) == FORECAST_COLUMNS and len(rows) == 3
    run = mlflow.search_runs(experiment_names=["likvid-cash-forecast"])
    assert {"metrics.wape_receipts_likvid", "metrics.wape_receipts_mean8"} <= set(run.columns)

    from typer.testing import CliRunner

    from serving.cli import app

    out = Path(store.removeprefix("sqlite:///")).parent / "forecast.csv"
    result = CliRunner().invoke(app, ["forecast", str(small_company), "--as-of", f"{fitted['at']:%Y-%m-%d}",
                                      "--weeks", "3", "--paths", "50", "--customer-delay-days", "7", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert list(pd.read_csv(out).columns) == FORECAST_COLUMNS
    bad = CliRunner().invoke(app, ["forecast", str(small_company), "--sales-change-pct", "-150", "--out", str(out)])
    assert bad.exit_code == 2 and "--sales-change-pct" in bad.output


def test_backtest_refits_at_each_origin_and_logs(store, small_loaded):
    cfg = BacktestConfig(every_weeks=4, span_weeks=4, weeks=6, paths=100,
                         examples=ExampleConfig(every_days=42, max_snapshots=6),
                         timing=PaymentTimingConfig(n_estimators=40, num_leaves=7))
    told = []
    result = backtest(small_loaded, None, cfg, progress=lambda done, total, what: told.append((done, total, what)))
    assert [(d, t) for d, t, _ in told] == [(0, 2), (0, 2), (1, 2), (1, 2), (2, 2)]  # before each step, then done
    assert "Origin 2/2" in told[2][2]
    assert len(result.origins) == 2 and result.origins[1] - result.origins[0] == pd.Timedelta(weeks=4)
    assert len(result.weekly) == 12
    table = result.summary.set_index(["metric", "target", "method"])["value"]
    for target in ("receipts", "payments", "net"):
        for method in ("likvid", "mean8", "last_year", "due_date", "due_plus_delay"):
            assert ("wape", target, method) in table.index
        assert 0 <= table[("coverage", target, "likvid")] <= 1
    assert set(result.by_horizon["horizon"]) == set(range(1, 7))
    run_id = log_backtest(result, "small", cfg)
    import mlflow

    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}
    assert {"fan_chart.png", "error_by_horizon.png", "backtest_by_horizon.csv"} <= artifacts


def test_block_wise_draws_and_sums_are_the_whole_array_ones():
    from training.cash.engine import _Paths, _Uniforms

    for make in (np.random.default_rng, lambda seed: np.random.Generator(np.random.MT19937(seed))):
        whole, blocks = make(4), make(4)
        whole.integers(0, 9, 3), blocks.integers(0, 9, 3)  # a half word kept for 32-bit draws must survive
        expected = (whole.random((7, 5)), whole.integers(0, 40, (7, 5)), whole.random(4))
        lazy = _Uniforms(blocks, 7, 5)
        ints = blocks.integers(0, 40, (7, 5))
        got = np.concatenate([lazy.rows(slice(0, 3)), lazy.rows(slice(3, 7))])
        assert np.array_equal(got, expected[0]) and np.array_equal(ints, expected[1])
        assert np.array_equal(blocks.random(4), expected[2])

    rng = np.random.default_rng(0)
    week, amount = rng.integers(0, 6, (3000, 50)), rng.normal(size=(3000, 50))  # several blocks of paths
    sim = _Paths(weeks=4, paths=50)
    sim.add("ar_open", week, amount)
    flat = (week + np.arange(50) * 6).ravel()
    assert np.array_equal(sim.sums["ar_open"], np.bincount(flat, weights=amount.ravel(), minlength=300).reshape(50, 6))


def test_issue_weekdays_are_the_ledgers_shares_and_place_the_weeks_sales():
    from training.cash.engine import _issue_spread
    from training.cash.model import _issue_weekdays

    at = pd.Timestamp("2024-06-02")  # a Sunday: its week's days run Monday to Sunday
    issue = pd.Series(pd.to_datetime(["2024-05-27", "2024-05-29", "2024-05-29", "2023-01-02"]))  # Mon, Wed, Wed, old
    shares = _issue_weekdays(issue, pd.Series([100.0, 50.0, 250.0, 1e6]), at)
    assert np.allclose(shares, [0.25, 0, 0.75, 0, 0, 0, 0])  # by amount, the last year only
    model = build_cash_model()
    model.issue_weekdays_ = shares
    shifts, weights = _issue_spread(model, at)
    assert shifts.tolist() == [-3, -1] and np.allclose(weights, [0.25, 0.75])  # days 1 and 3 of the week, not 4
    del model.issue_weekdays_  # a model pickled before the shares: every week's sales on its fourth day
    assert _issue_spread(model, at)[0].tolist() == [0]


def test_sales_issued_earlier_in_the_week_are_received_sooner(small_loaded, fitted, models):
    import copy

    early, late = copy.copy(models.cash), copy.copy(models.cash)
    weekday = (fitted["at"] + pd.Timedelta(days=1)).weekday()  # the first day of each forecast week
    early.issue_weekdays_ = np.eye(7)[weekday]
    late.issue_weekdays_ = np.eye(7)[(weekday + 6) % 7]  # its last day
    got = {name: forecast(small_loaded, fitted["at"], 13, models=ForecastModels(models.timing, m), paths=PATHS)
           for name, m in (("early", early), ("late", late))}
    assert got["early"]["ar_future"].sum() > got["late"]["ar_future"].sum()


def test_chunks_pipelined_over_the_cores_give_the_one_chunk_forecast(small_loaded, fitted, models, monkeypatch):
    # The next chunk's quantiles are found on another thread while this chunk's receipts are added
    # (engine._invoice_receipts): with chunks of 25 invoices every chunk but the first is found that way, and the
    # forecast is the one a single chunk of every invoice gives, to the last bit.
    from training import cores

    small = copy.copy(models.cash)
    small.config = dataclasses.replace(models.cash.config, chunk=25)
    monkeypatch.setattr(cores, "count", lambda: 2)
    chunks, quantiles = [], models.timing.quantiles
    monkeypatch.setattr(models.timing, "quantiles", lambda x, *a: chunks.append(len(x)) or quantiles(x, *a))
    pipelined = forecast(small_loaded, fitted["at"], 13, models=ForecastModels(models.timing, small), paths=PATHS)
    assert len(chunks) >= 8 and max(chunks) == small.config.chunk  # open and future invoices, both in chunks
    monkeypatch.undo()
    pd.testing.assert_frame_equal(pipelined, forecast(small_loaded, fitted["at"], 13, models=models, paths=PATHS))


def test_the_forecast_command_predicts_without_scikit_learn_to_the_same_numbers(small_loaded, fitted, models, base,
                                                                              tmp_path):
    # `likvid forecast` imports LightGBM without scikit-learn (training.cores.lightgbm_without_sklearn): the models
    # trained and pickled with it load and forecast the same rows in such a process, which never imports it.
    import pickle
    import subprocess
    import sys

    (tmp_path / "in.pkl").write_bytes(pickle.dumps((small_loaded, fitted["at"], models)))
    code = ("import pickle, sys; from training import cores; cores.lightgbm_without_sklearn(); "
            "import training.cash.forecast as f, training.cash.model; "
            f"company, at, models = pickle.loads(open({str(tmp_path / 'in.pkl')!r}, 'rb').read()); "
            f"rows = f.forecast(company, at, 13, models=models, paths={PATHS}); "
            "assert 'sklearn' not in sys.modules, 'scikit-learn imported'; "
            f"open({str(tmp_path / 'out.pkl')!r}, 'wb').write(pickle.dumps(rows))")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2], timeout=300)
    pd.testing.assert_frame_equal(pickle.loads((tmp_path / "out.pkl").read_bytes()), base)
