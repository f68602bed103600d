"""The late-payment model's logistic-regression baseline, which scikit-learn fits: log amounts, imputed, scaled,
on at most a row cap of rows. Apart from ``training.late_payment``, so that predicting with the LightGBM model
imports no scikit-learn."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

log = logging.getLogger(__name__)
_LOG_COLUMNS = ["amount", "open_amount", "overdue_amount", "days_since_last_late", "n_settled"]


def _logs(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for col in _LOG_COLUMNS:
        frame[col] = np.log1p(frame[col].clip(lower=0))
    return frame


LOGISTIC_MAX_ROWS = 200_000  # the logistic baseline's row cap (its fit is linear in rows)


class RowCap(BaseEstimator, ClassifierMixin):
    """A classifier fitted on at most ``max_rows`` rows drawn at random (seeded, so refits agree): for a fit
    whose cost grows with the rows and whose answer does not need them all, such as the logistic baseline,
    whose coefficients settle long before a million rows. The cap, when it bites, is logged and kept in
    ``rows_seen_`` / ``rows_used_``."""

    def __init__(self, estimator, max_rows: int = LOGISTIC_MAX_ROWS, seed: int = 0):
        self.estimator = estimator
        self.max_rows = max_rows
        self.seed = seed

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> RowCap:
        y = np.asarray(y)
        self.rows_seen_ = len(x)
        if len(x) > self.max_rows:
            keep = np.sort(np.random.default_rng(self.seed).choice(len(x), self.max_rows, replace=False))
            if len(np.unique(y[keep])) == len(np.unique(y)):  # a sample that lost a class is no sample
                x, y = x.iloc[keep], y[keep]
                log.info("%s fitted on a random %s of its %s rows (row cap %s)", type(self.estimator).__name__,
                         f"{len(x):,}", f"{self.rows_seen_:,}", f"{self.max_rows:,}")
        self.rows_used_ = len(x)
        self.estimator_ = clone(self.estimator).fit(x, y)
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        return self.estimator_.predict_proba(x)

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return self.estimator_.predict(x)


def build_logistic(max_rows: int = LOGISTIC_MAX_ROWS) -> RowCap:
    """The logistic-regression baseline: log amounts, impute, scale; fitted on at most ``max_rows`` rows."""
    return RowCap(make_pipeline(FunctionTransformer(_logs), SimpleImputer(strategy="median"), StandardScaler(),
                                LogisticRegression(max_iter=2000, C=1.0)), max_rows=max_rows)
