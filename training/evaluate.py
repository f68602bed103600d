"""Evaluations on data nobody here made: score each week's new invoices with a model trained before.

``weekly_new_invoices`` trains as of one date, then walks forward week by week, scoring the
invoices issued in each week as of that week's end (only history known then), and compares the
scores with what happened. This is how a credit team would have used the model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.asof import last_known_date
from features.contract import Inv
from features.invoices import FEATURES, FeatureConfig, invoice_features, label
from features.load import Company
from training import metrics
from training.examples import ExampleConfig, examples, not_yet_due
from training.late_payment import LatePaymentConfig, build_late_payment, build_logistic, history_baseline, time_slices


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
