"""Evaluations on data nobody here made: score each week's new invoices with a model trained before.

``weekly_new_invoices`` trains as of one date, then walks forward week by week, scoring the
invoices issued in each week as of that week's end (only history known then), and compares the
scores with what happened. This is how a credit team would have used the model.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from features.asof import last_known_date
from features.contract import Inv
from features.invoices import FEATURES, FeatureConfig, invoice_features, label
from features.load import Company
from features.policy import Policy
from training import metrics
from training.baselines import build_logistic
from training.examples import ExampleConfig, examples, not_yet_due
from training.late_payment import LatePaymentConfig, build_late_payment, history_baseline, time_slices


def weekly_new_invoices(company: Company, train_as_of: str, start: str, end: str,
                        cfg: LatePaymentConfig = LatePaymentConfig(), ex: ExampleConfig = ExampleConfig(),
                        features: FeatureConfig = FeatureConfig()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metrics per model, scored rows) for invoices issued from ``start`` to ``end``, week by week."""
    at = pd.Timestamp(train_as_of)
    tr = not_yet_due(examples(company, at, ex, features))
    fit, cal = time_slices(tr, cfg.calibration_share)
    model = build_late_payment(cfg).fit(fit, fit["late"].to_numpy(), cal, cal["late"].to_numpy())
    logistic = build_logistic().fit(tr[FEATURES], tr["late"].to_numpy())
    inv = company[Inv.TABLE]
    frames = []
    for week_end in pd.date_range(pd.Timestamp(start) + pd.Timedelta(days=6), pd.Timestamp(end), freq="7D"):
        new = inv[(inv[Inv.ISSUE] > week_end - pd.Timedelta(days=7)) & (inv[Inv.ISSUE] <= week_end)]
        if len(new):
            frames.append(invoice_features(company, week_end, features, invoices=new))
    scored = pd.concat(frames, ignore_index=True)
    scored = pd.concat([scored, label(scored, company, last_known_date(company), features)], axis=1)
    scored = scored[scored["late"].notna()]
    scores = {"lightgbm": model.predict_proba(scored), "customer_late_share": history_baseline(scored),
              "logistic_regression": logistic.predict_proba(scored[FEATURES])[:, 1]}
    table = pd.DataFrame({k: metrics.classification(scored["late"].to_numpy(), v) for k, v in scores.items()}).T
    for k, v in scores.items():
        scored[f"p_{k}"] = np.asarray(v)
    return table, scored


def evaluate_champions(company: Company, data: str, as_of_date: str | pd.Timestamp | None = None,
                       ex: ExampleConfig = ExampleConfig(), features: FeatureConfig | None = None,
                       max_delay_days: float = 365.0, policy: Policy = Policy()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The company's champion models and the baselines on the holdout as of a date, logged as an MLflow run.

    The holdout is the one ``likvid train`` uses (snapshots in the 13 weeks before as-of); the
    logistic baseline is refitted on the training snapshots. The champions are the ones of
    ``policy.company_key(data)``, refused when they learned another definition of late than the policy's.
    Returns (late-payment, timing) tables.
    """
    import mlflow

    from training import tracking
    from training.examples import split
    from training.payment_timing import average_delay_baseline

    key = policy.company_key(data)
    features = features if features is not None else FeatureConfig.from_policy(policy)
    late_champion = tracking.load_champion(tracking.LATE_PAYMENT, key, policy)
    timing_champion = tracking.load_champion(tracking.PAYMENT_TIMING, key, policy)
    late, timing = late_champion.model, timing_champion.model
    at, origin, train, holdout = split(company, as_of_date, ex, features)
    tr, ho = not_yet_due(train), not_yet_due(holdout)
    if len(ho) == 0 or ho["late"].nunique() < 2:
        raise ValueError(f"the holdout as of {at:%Y-%m-%d} has {len(ho)} decided invoices: too few to evaluate")
    y = ho["late"].to_numpy()
    logistic = build_logistic().fit(tr[FEATURES], tr["late"].to_numpy())
    scores = {"champion": late.predict_proba(ho), "customer_late_share": history_baseline(ho),
              "logistic_regression": logistic.predict_proba(ho[FEATURES])[:, 1]}
    late_table = pd.DataFrame({k: metrics.classification(y, p) for k, p in scores.items()}).T
    settled = holdout[~holdout["censored"]]
    q = timing.quantiles(settled)
    q = np.where(np.isinf(q), max_delay_days, q)
    actual = settled["delay"].to_numpy()
    timing_table = pd.DataFrame({"champion": metrics.timing(actual, q[:, 0], q[:, 1], q[:, 2]),
                                 "due_plus_average_delay": metrics.timing(actual, *average_delay_baseline(settled))}).T
    # Under `mlflow run` the project's own run (MLFLOW_RUN_ID) is the record; otherwise a new run
    # in the late-payment experiment.
    under_project = bool(os.environ.get("MLFLOW_RUN_ID"))
    if not under_project:
        mlflow.set_experiment(tracking.LATE_PAYMENT)
    with mlflow.start_run(**({} if under_project else {"run_name": "evaluate-champion"})):
        mlflow.set_tags({"kind": "evaluation", tracking.COMPANY_TAG: key,
                         "late_payment_version": late_champion.version,
                         "payment_timing_version": timing_champion.version})
        mlflow.log_params({"data": data, "as_of": f"{at:%Y-%m-%d}", "origin": f"{origin:%Y-%m-%d}",
                           "rows.holdout": len(ho), "rows.holdout_settled": len(settled)})
        for table in (late_table, timing_table):
            for name, row in table.iterrows():
                mlflow.log_metrics({f"{k}_{name}": float(v) for k, v in row.items()})
    return late_table, timing_table


def _main(argv: list[str] | None = None) -> None:
    """``python -m training.evaluate DATA [--as-of D] [--mapping M] [--config C]``: the MLproject evaluate entry."""
    import argparse

    from features.load import ContractError, validate
    from features.policy import PolicyError, load_policy
    from training import tracking

    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=evaluate_champions.__doc__)
    parser.add_argument("data")
    parser.add_argument("--as-of", default="")
    parser.add_argument("--mapping", default=None)
    parser.add_argument("--config", default=None)
    args = parser.parse_args(argv)
    try:
        company = validate(args.data, args.mapping).company
        policy = load_policy(Path(args.data), Path(args.config) if args.config else None)
    except ContractError as e:
        raise SystemExit("The data cannot be used:\n" + "\n".join(f"  {p}" for p in e.problems)) from None
    except PolicyError as e:
        raise SystemExit(str(e)) from None
    tracking.connect()
    try:
        late_table, timing_table = evaluate_champions(company, args.data, args.as_of or None, policy=policy)
    except (LookupError, ValueError) as e:
        raise SystemExit(str(e)) from None
    with pd.option_context("display.width", 160, "display.precision", 4):
        print("Late payment, holdout\n", late_table, "\n\nPayment timing, holdout\n", timing_table)


if __name__ == "__main__":
    _main()
