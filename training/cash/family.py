"""The cash forecast's model family (``likvid-cash-forecast``) for ``tracking.run_recipe``, its champion
loader, and a backtest logged as a run.

The registered artifact is a ``ForecastModels`` pair: the ``CashModel`` and the payment-timing model it
was evaluated with in the same ``likvid train`` (fitted at the origin for the holdout figures, refitted
on everything known at as-of for the registered pair), so a forecast always draws from the pair whose
figures the run reports, and the pyfunc needs no registry look-up.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from features.asof import last_known_date, to_date
from features.invoices import FeatureConfig
from features.load import Company
from training import tracking
from training.cash.backtest import (
    BacktestConfig,
    BacktestResult,
    band_rows,
    error_by_horizon_plot,
    evaluate_origin,
    fan_chart,
)
from training.cash.evaluate import summary, wape
from training.cash.forecast import forecast
from training.cash.model import CashForecastConfig, ForecastModels, build_cash_model
from training.cash.shocks import SHOCK_FIELDS, Shocks
from training.payment_timing import PaymentTimingModel

CASH_FORECAST = tracking.CASH_FORECAST
HOLDOUT_WEEKS = 13


def cash_output(models: ForecastModels, requests: pd.DataFrame) -> pd.DataFrame:
    """The cash-forecast pyfunc: each input row asks for one forecast (``data`` folder, ``as_of`` (empty:
    the last date in the data), ``weeks``, ``paths`` and the shocks); the answer is the forecast rows with
    a ``request`` column naming the input row."""
    from features.load import validate

    frames = []
    for i, row in enumerate(requests.to_dict("records")):
        company = validate(row["data"]).company
        shocks = Shocks(**{k: float(row.get(k) or 0) for k in SHOCK_FIELDS})
        rows = forecast(company, row.get("as_of") or None, int(row.get("weeks") or HOLDOUT_WEEKS), shocks,
                        models=models, paths=int(row.get("paths") or 1000))
        frames.append(rows.assign(request=i))
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class CashExamples:
    """The cash model learns from the ledgers as known at ``date``, beside a payment-timing model."""

    company: Company
    date: pd.Timestamp
    timing: PaymentTimingModel


@dataclass(frozen=True)
class CashForecastFamily:
    """The cash forecast: receipts, payments and net over the 13 holdout weeks against four naive
    baselines; the gate's figure is the receipts WAPE of the p50. ``timing_origin`` and ``timing`` are the
    payment-timing fits of the same training (at the origin, and on everything known)."""

    config: CashForecastConfig = field(default_factory=CashForecastConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    paths: int = 500
    data: str = ""
    timing_origin: PaymentTimingModel | None = None
    timing: PaymentTimingModel | None = None
    timing_version: str = ""
    fitted_as_of: pd.Timestamp | None = None  # the as-of of the training: ``timing`` is fitted at it
    name: str = CASH_FORECAST
    rule: tracking.GateRule = tracking.GateRule("wape_receipts", lower_is_better=True, tolerance=0.005)
    holdout_days: int = 7 * HOLDOUT_WEEKS
    output = staticmethod(cash_output)

    def settings(self) -> dict:
        return {"cash": asdict(self.config), "paths": self.paths}

    def definition(self) -> dict:
        return {k: v for k, v in asdict(self.features).items() if k in tracking.DEFINITION}

    def with_settings(self, settings: dict) -> CashForecastFamily:
        return replace(self, config=tracking.rebuild(CashForecastConfig, settings["cash"]),
                       paths=int(settings["paths"]))

    def examples(self, company: Company, date: pd.Timestamp) -> CashExamples:
        if self.timing is None or self.timing_origin is None or self.fitted_as_of is None:
            raise ValueError("the cash forecast trains after payment timing, with its fits")
        return CashExamples(company, date, self.timing if date >= self.fitted_as_of else self.timing_origin)

    def fit(self, examples: CashExamples) -> ForecastModels:
        cash = build_cash_model(self.config).fit(examples.company, examples.date)
        # the band widening, learned once here from earlier origins refitted as the backtest refits them
        cash.fit_bands(band_rows(examples.company, examples.date, BacktestConfig(cash=self.config,
                                                                                 features=self.features)))
        return ForecastModels(examples.timing, cash, {tracking.PAYMENT_TIMING: self.timing_version}, self.features)

    def holdout(self, company: Company, origin: pd.Timestamp, at: pd.Timestamp) -> tuple[Company, pd.Timestamp,
                                                                                           pd.Timestamp]:
        return company, origin, at

    def _weeks(self, models: ForecastModels, holdout: tuple) -> pd.DataFrame:
        company, origin, at = holdout
        return evaluate_origin(company, origin, at, models, HOLDOUT_WEEKS, self.paths)

    def measure(self, models: ForecastModels, holdout: tuple) -> float:
        weeks = self._weeks(models, holdout)
        return float(wape(weeks["receipts"], weeks["receipts_p50"]))

    def evaluate(self, models: ForecastModels, examples: CashExamples, holdout: tuple,
                 out: Path) -> tracking.Evaluation:
        weekly = self._weeks(models, holdout)
        long = summary(weekly)
        long = long[np.isfinite(long["value"])]
        table = long.assign(figure=long["metric"] + "_" + long["target"]).pivot_table(
            index="method", columns="figure", values="value", sort=False)
        table = table.loc[["likvid"] + [m for m in table.index if m != "likvid"]]
        weekly.to_csv(out / "holdout_weeks.csv", index=False)
        fan_chart(weekly, str(out / "fan_chart.png"), f"Holdout from {holdout[1]:%Y-%m-%d}")
        figures = {f"{r.metric}_{r.target}_{r.method}": float(r.value) for r in long.itertuples()}
        params = {**{f"cash.{k}": v for k, v in self.config.params().items()},
                  "series.invoicing_method": models.cash.invoicing_.method_, "paths": self.paths,
                  **models.cash.bands().params()}
        return tracking.Evaluation(table, figures["wape_receipts_likvid"], params,
                                   [out / "holdout_weeks.csv", out / "fan_chart.png"], figures)

    def input_example(self, models: ForecastModels, company: Company, at: pd.Timestamp) -> pd.DataFrame:
        return pd.DataFrame([{"data": str(self.data), "as_of": f"{at:%Y-%m-%d}", "weeks": 2, "paths": 50,
                              **{k: 0.0 for k in SHOCK_FIELDS}}])


def train_cash_forecast(company: Company, data: str, as_of: str | pd.Timestamp | None = None,
                        progress=lambda _: None, config: CashForecastConfig = CashForecastConfig(),
                        paths: int = 500, policy=None) -> tuple[tracking.GateDecision, str]:
    """The cash family alone through ``tracking.run_recipe`` for the company of ``data``, under its training
    lock, with payment-timing fits of its own (at the origin and on everything known): (decision, version)."""
    from features.policy import Policy
    from training.invoice_families import PaymentTimingFamily

    policy = policy or Policy()
    at = to_date(as_of) if as_of is not None else last_known_date(company)
    features = FeatureConfig.from_policy(policy)
    timing = PaymentTimingFamily(features=features)
    origin = at - pd.Timedelta(days=7 * HOLDOUT_WEEKS)
    key = policy.company_key(data)
    progress("Fitting the payment-timing model the cash forecast draws from")
    family = CashForecastFamily(config, features, paths, str(data), timing.fit(timing.examples(company, origin)),
                                timing.fit(timing.examples(company, at)), "fitted with the cash model", at)
    with tracking.company_lock(key, say=progress):
        result = tracking.run_recipe(family, company, key, data, at, progress)
    return result.decision, result.version


def log_backtest(result: BacktestResult, data: str, cfg: BacktestConfig) -> str:
    """Log the backtest's figures, tables and plots as one run of ``likvid-cash-forecast``; its run id."""
    tracking.connect()
    mlflow.set_experiment(CASH_FORECAST)
    with mlflow.start_run(run_name="backtest") as run, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        mlflow.log_params({**cfg.params(), "data": data, "as_of": f"{result.as_of:%Y-%m-%d}",
                           "n_origins": len(result.origins), "first_origin": f"{result.origins[0]:%Y-%m-%d}",
                           "last_origin": f"{result.origins[-1]:%Y-%m-%d}"})
        mlflow.log_metrics({f"{r.metric}_{r.target}_{r.method}": float(r.value)
                            for r in result.summary.itertuples() if np.isfinite(r.value)})
        result.weekly.to_csv(out / "backtest_weeks.csv", index=False)
        result.summary.to_csv(out / "backtest_summary.csv", index=False)
        result.by_horizon.to_csv(out / "backtest_by_horizon.csv", index=False)
        fan_chart(result.weekly, str(out / "fan_chart.png"))
        error_by_horizon_plot(result.by_horizon, str(out / "error_by_horizon.png"))
        for f in ("backtest_weeks.csv", "backtest_summary.csv", "backtest_by_horizon.csv", "fan_chart.png",
                  "error_by_horizon.png"):
            mlflow.log_artifact(str(out / f))
        return run.info.run_id
