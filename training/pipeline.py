"""``train``, which runs every model family's recipe for one company under its training lock; ``score``, the open
invoices' risk from the company's champions, lives in ``training.scoring`` (which the read commands import
without the training machinery) and is imported here too."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from features.asof import last_known_date
from features.contract import Cust, Inv
from features.customers import CustomerFeatureConfig, WarningConfig
from features.invoices import FeatureConfig
from features.load import Company
from features.policy import Policy
from training import tracking
from training.cash.family import CashForecastConfig, CashForecastFamily
from training.customers import CustomerConfig, CustomerFamily
from training.customers import features_for as customer_features_for
from training.examples import ExampleConfig
from training.invoice_families import LatePaymentFamily, PaymentTimingFamily
from training.late_payment import LatePaymentConfig, LatePaymentModel
from training.payment_timing import PaymentTimingConfig, PaymentTimingModel
from training.scoring import champion_pair, in_score_order, score, score_inputs  # noqa: F401 - re-exported

Progress = Callable[[int, int, str], None]  # (families done, families in all, what is being done)


@dataclass(frozen=True)
class TrainConfig:
    examples: ExampleConfig = field(default_factory=ExampleConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    late: LatePaymentConfig = field(default_factory=LatePaymentConfig)
    timing: PaymentTimingConfig = field(default_factory=PaymentTimingConfig)
    customers: CustomerConfig = field(default_factory=CustomerConfig)
    customer_features: CustomerFeatureConfig = field(default_factory=CustomerFeatureConfig)
    warnings: WarningConfig = field(default_factory=WarningConfig)
    cash: CashForecastConfig = field(default_factory=CashForecastConfig)
    cash_paths: int = 500  # Monte Carlo paths of the cash forecast's holdout evaluation

    @classmethod
    def from_policy(cls, policy: Policy, **settings) -> TrainConfig:
        """The settings with the policy's definition of late (grace, month end) in both feature configs, and its
        definition of lost (``provision.write_off_days``) in the timing model's never-paid labels."""
        return cls(**{"features": FeatureConfig.from_policy(policy), "customer_features": customer_features_for(policy),
                      "timing": PaymentTimingConfig(write_off_days=policy.provision.write_off_days), **settings})


@dataclass
class TrainResult:
    company: str
    as_of: pd.Timestamp  # the registered models are fitted on everything known at this date
    origin: pd.Timestamp  # the holdout figures are of models fitted at this date
    late_metrics: pd.DataFrame  # rows: model, columns: metric
    timing_metrics: pd.DataFrame
    decisions: dict[str, tracking.GateDecision]
    versions: dict[str, str]
    late_model: LatePaymentModel  # the registered (refit) models
    timing_model: PaymentTimingModel
    recipes: dict[str, tracking.RecipeResult]
    holdout: pd.DataFrame  # the invoice snapshots after the origin the late-payment and timing figures are on


def families(cfg: TrainConfig = TrainConfig()) -> list[tracking.Family]:
    """The four model families in training order (the cash forecast last: it draws from the timing model)."""
    memo: dict = {}
    return [LatePaymentFamily(cfg.examples, cfg.features, memo, cfg.late),
            PaymentTimingFamily(cfg.examples, cfg.features, memo, cfg.timing),
            CustomerFamily(cfg.customers, cfg.customer_features, cfg.warnings),
            CashForecastFamily(cfg.cash, cfg.features, paths=cfg.cash_paths)]


def train(company: Company, data: str, as_of_date: str | pd.Timestamp | None = None,
          cfg: TrainConfig = TrainConfig(), progress: Progress = lambda *_: None,
          policy: Policy = Policy(), lock_wait: float | None = None) -> TrainResult:
    """Train every family for the company of ``data`` (``policy.company_key``) with ``tracking.run_recipe``:
    evaluate at the origin, register the refit on everything known at as-of, promote through the gate.
    The company's training lock is held throughout, so two trainings never interleave promotions."""
    client = tracking.connect()
    key = policy.company_key(data)
    # Under `mlflow run`, the project run lives in its own experiment; each model family logs to
    # its own experiment instead, tagged with the project run, whose headline metrics we fill in.
    project_run = os.environ.pop("MLFLOW_RUN_ID", None)
    at = pd.Timestamp(as_of_date).normalize() if as_of_date is not None else last_known_date(company)
    common = {**({"project_run_id": project_run} if project_run else {}),
              "rows.invoices": len(company[Inv.TABLE]), "rows.customers": len(company[Cust.TABLE])}
    todo = families(cfg)
    recipes: dict[str, tracking.RecipeResult] = {}
    with tracking.company_lock(key, lock_wait, lambda m: progress(0, len(todo), m)):
        for done, family in enumerate(todo):
            if isinstance(family, CashForecastFamily):  # it draws from this run's timing fits
                timing = recipes[tracking.PAYMENT_TIMING]
                family = dataclasses.replace(family, data=data, timing_origin=timing.origin_model, timing=timing.model,
                                             timing_version=timing.version, fitted_as_of=at)
            progress(done, len(todo), family.name)
            recipes[family.name] = tracking.run_recipe(family, company, key, data, at,
                                                       lambda m, d=done: progress(d, len(todo), m), common)
        progress(len(todo), len(todo), f"Trained every family for company {key}")
    late, timing = recipes[tracking.LATE_PAYMENT], recipes[tracking.PAYMENT_TIMING]
    if project_run:
        for name, value in {"auc": late.evaluation.table.loc["lightgbm", "auc"],
                            "ece": late.evaluation.table.loc["lightgbm", "ece"],
                            "brier": late.evaluation.table.loc["lightgbm", "brier"],
                            "mae_days": timing.evaluation.table.loc["payment_timing", "mae_days"]}.items():
            client.log_metric(project_run, name, float(value))
    return TrainResult(key, at, late.origin, late.evaluation.table, timing.evaluation.table,
                       {n: r.decision for n, r in recipes.items()}, {n: r.version for n, r in recipes.items()},
                       late.model, timing.model, recipes, todo[0].holdout(company, late.origin, at))
