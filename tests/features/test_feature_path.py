"""One feature path: a single request invoice gets exactly its row of the batch, and the settings the policy
fixes reach the features."""

from __future__ import annotations

import pandas as pd
import pytest

from features.contract import Inv
from features.invoices import FeatureConfig, history, invoice_features
from features.policy import Policy


@pytest.mark.parametrize("orders", ["as recorded", "none"])
def test_a_single_invoice_gets_its_batch_row(small_loaded, orders):
    at = pd.Timestamp("2025-03-31")
    cfg = FeatureConfig()
    known = history(small_loaded, at, cfg)
    inv = known.view[Inv.TABLE]
    open_ = inv[inv[Inv.PAID].isna()]
    if orders == "none":
        open_ = open_.assign(**{Inv.ORDER: pd.Series(pd.NA, index=open_.index, dtype=open_[Inv.ORDER].dtype)})
    else:
        assert open_[Inv.ORDER].notna().mean() > 0.5  # the case that matters: real invoices carry order ids
    batch = invoice_features(small_loaded, at, cfg, invoices=open_, known=known)
    assert len(batch) > 100
    for i in range(len(open_)):
        one = invoice_features(small_loaded, at, cfg, invoices=open_.iloc[[i]], known=known)
        pd.testing.assert_frame_equal(one, batch.iloc[[i]], check_exact=True)


def test_the_batch_of_open_invoices_is_what_a_prebuilt_history_gives(small_loaded):
    at = pd.Timestamp("2025-03-31")
    direct = invoice_features(small_loaded, at)
    known = history(small_loaded, at, FeatureConfig())
    pd.testing.assert_frame_equal(direct, invoice_features(small_loaded, at, FeatureConfig(), known=known))


def test_a_customer_the_history_never_saw_reads_as_its_peers(small_loaded):
    at = pd.Timestamp("2025-03-31")
    known = history(small_loaded, at, FeatureConfig())
    inv = known.view[Inv.TABLE]
    stranger = inv[inv[Inv.PAID].isna()].head(1).assign(**{Inv.CUSTOMER: "nobody-knows-me"})
    row = invoice_features(small_loaded, at, FeatureConfig(), invoices=stranger, known=known).iloc[0]
    assert row["n_settled"] == 0 and row["open_amount"] == 0 and row["amount_vs_typical"] == 1.0
    assert row["late_share"] == pytest.approx(known.hist["late"].mean())


def test_the_policy_fixes_grace_and_month_end():
    cfg = FeatureConfig.from_policy(Policy(grace_days=5, month_end_days=3), last_n=7)
    assert (cfg.grace_days, cfg.month_end_days, cfg.last_n) == (5, 3, 7)
    assert FeatureConfig.from_policy(Policy()) == FeatureConfig()


def test_month_end_follows_its_setting(small_loaded):
    at = pd.Timestamp("2025-03-31")
    rows = small_loaded[Inv.TABLE].head(40).copy()
    rows[Inv.DUE] = pd.to_datetime("2025-06-27") + pd.to_timedelta(range(40), unit="D") % 4  # 27th to 30th June
    left = (rows[Inv.DUE].dt.days_in_month - rows[Inv.DUE].dt.day).to_numpy()
    for days in (1, 3, 5):
        x = invoice_features(small_loaded, at, FeatureConfig(month_end_days=days), invoices=rows)
        assert (x["due_month_end"].to_numpy() == (left < days)).all()
        assert (x["due_quarter_end"] == x["due_month_end"]).all()  # June ends a quarter
