"""Training examples built by forked workers, from one ledger pass, are the rows one process builds date by date."""

from __future__ import annotations

import pandas as pd

from features.asof import as_of, last_known_date
from features.customers import CustomerFeatureConfig, customer_features, decided_invoices, late_share_in
from features.invoices import FeatureConfig
from training.customers import CustomerConfig, customer_examples
from training.examples import ExampleConfig, examples

CFG = CustomerConfig(every_days=56)


def test_customer_examples_by_two_workers_equal_each_date_alone(small_loaded):
    at = last_known_date(small_loaded)
    two = customer_examples(small_loaded, at, CFG, workers=2)
    one = customer_examples(small_loaded, at, CFG, workers=1)
    pd.testing.assert_frame_equal(two, one, check_exact=True)
    # The same rows as each date's features computed alone, without the pass.
    view = as_of(small_loaded, at)
    hist = decided_invoices(view, at, CustomerFeatureConfig().grace_days)
    alone = pd.concat([customer_features(view, d).join(late_share_in(hist, d, CFG.horizon_days), how="inner")
                       .assign(snapshot=d).reset_index() for d in sorted(one["snapshot"].unique())],
                      ignore_index=True)
    assert one["snapshot"].nunique() > 3 and len(one) > 100
    pd.testing.assert_frame_equal(one[alone.columns], alone, check_exact=True)


def test_invoice_examples_by_two_workers_equal_one(small_loaded):
    at = last_known_date(small_loaded)
    cfg, features = ExampleConfig(every_days=42), FeatureConfig(grace_days=1)
    pd.testing.assert_frame_equal(examples(small_loaded, at, cfg, features, workers=2),
                                  examples(small_loaded, at, cfg, features, workers=1), check_exact=True)
