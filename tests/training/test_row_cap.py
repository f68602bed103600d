"""Fits linear in rows are capped by a seeded sample, and the small-ledger tree shape is fitted only on
small ledgers."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from training.baselines import RowCap, build_logistic
from training.late_payment import LatePaymentConfig


def _rows(n: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    x = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    return x, (x["a"] + 0.3 * rng.normal(size=n) > 0).astype(int).to_numpy()


def test_the_cap_samples_the_rows_logs_it_and_repeats(caplog):
    x, y = _rows(2_000)
    with caplog.at_level(logging.INFO, logger="training.baselines"):
        capped = RowCap(LogisticRegression(), max_rows=500).fit(x, y)
    assert (capped.rows_seen_, capped.rows_used_) == (2_000, 500)
    assert "fitted on a random 500 of its 2,000 rows" in caplog.text
    again = RowCap(LogisticRegression(), max_rows=500).fit(x, y)
    np.testing.assert_array_equal(capped.predict_proba(x), again.predict_proba(x))
    full = LogisticRegression().fit(x, y)
    assert not np.array_equal(capped.predict_proba(x), full.predict_proba(x))
    assert np.abs(capped.predict_proba(x)[:, 1] - full.predict_proba(x)[:, 1]).mean() < 0.03  # the same answer


def test_under_the_cap_every_row_is_used():
    x, y = _rows(300)
    capped = RowCap(LogisticRegression(), max_rows=500).fit(x, y)
    assert capped.rows_used_ == 300
    np.testing.assert_array_equal(capped.predict_proba(x), LogisticRegression().fit(x, y).predict_proba(x))
    assert build_logistic().max_rows >= 100_000


def test_the_small_ledger_shape_only_on_small_ledgers():
    cfg = LatePaymentConfig()
    main = (cfg.n_estimators, cfg.learning_rate, cfg.num_leaves, cfg.min_child_samples)
    assert cfg.shapes(cfg.small_data_max_rows) == [main, cfg.small_data_shape]
    assert cfg.shapes(cfg.small_data_max_rows + 1) == [main]
    assert LatePaymentConfig(small_data_shape=None).shapes(10) == [main]
