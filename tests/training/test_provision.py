"""Expected credit loss: the loss-rate matrix from the company's own history, and the model's expected loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.asof import as_of
from features.load import validate
from features.policy import Policy, parse_policy
from tests.conftest import write_tables
from training.decisions.provision import MATRIX, MODEL, PROVISION_COLUMNS, TOTAL, loss_rates, provision

AT = pd.Timestamp("2025-06-30")


def _hand(tmp_path):
    """History due 2024: I1 paid in full late (40 days), I2 paid 60 days late but only 50 of 100, I3 never paid
    (still open); I4 paid on time. Also open now: I5 current, I6 10 days overdue, I7 100 days overdue."""
    rows = [("I1", "2024-01-01", "2024-02-10", 100, 100), ("I2", "2024-01-01", "2024-03-01", 100, 50),
            ("I3", "2024-01-01", "", 200, ""), ("I4", "2024-01-01", "2024-01-01", 400, 400),
            ("I5", "2025-07-15", "", 1000, ""), ("I6", "2025-06-20", "", 500, ""), ("I7", "2025-03-22", "", 300, "")]
    invoices = [{"invoice_id": i, "customer_id": "C1", "issue_date": "2023-12-01" if due < "2025" else "2025-01-01",
                 "due_date": due, "amount": amount, "paid_date": paid, "paid_amount": paid_amount}
                for i, due, paid, amount, paid_amount in rows]
    folder = write_tables(tmp_path / "hand", customers=[{"customer_id": "C1"}], invoices=invoices)
    result = validate(folder, today="2025-07-01")
    assert result.rejects.empty, result.rejects
    return result.company


def test_loss_rates_from_the_history_of_what_reached_each_bucket(tmp_path):
    rates = loss_rates(_hand(tmp_path), AT).set_index("bucket")
    # current: everything (800), 50 + 200 lost; 1-30 and 31-60: I1, I2, I3 (400), 250 lost;
    # 61-90 and 90+: only I3 reached them (I2 was paid at 60 days): 200 of 200.
    assert rates.loc["current", "history_amount"] == 800 and rates.loc["current", "loss_rate"] == 250 / 800
    assert rates.loc["1-30", "loss_rate"] == rates.loc["31-60", "loss_rate"] == 250 / 400
    assert rates.loc["61-90", "loss_rate"] == rates.loc["90+", "loss_rate"] == 1.0
    assert rates["loss_rate"].is_monotonic_increasing


def test_an_invoice_not_yet_old_enough_is_not_history(tmp_path):
    company = _hand(tmp_path)
    policy = parse_policy({"provision": {"write_off_days": 600}})  # I1-I4 were due less than 600 days ago
    rates = loss_rates(company, AT, policy)
    assert (rates["history_amount"] == 0).all() and (rates["loss_rate"] == 0).all()


class _Never:
    """A timing model stand-in: a fixed never-paid chance for every open invoice."""

    def never_paid(self, x):
        return np.full(len(x), 0.1)


def test_the_provision_per_bucket_and_the_model_side_by_side(tmp_path):
    out = provision(_hand(tmp_path), AT, timing=_Never())
    assert list(out.columns) == PROVISION_COLUMNS
    matrix = out[(out["method"] == MATRIX) & (out["level"] == "bucket")].set_index("bucket")
    assert matrix.loc["current", "amount_open"] == 1000 and matrix.loc["1-30", "amount_open"] == 500
    # I3, never paid, is still open: in the 90+ bucket with I7, at the rate of what reached 90+ before.
    assert matrix.loc["90+", "amount_open"] == 500 and matrix.loc["90+", "provision"] == 500
    assert matrix.loc["1-30", "provision"] == pytest.approx(500 * 250 / 400, abs=0.01)
    for method in (MATRIX, MODEL):
        rows = out[out["method"] == method]
        total = rows[rows["level"] == TOTAL].iloc[0]
        buckets = rows[rows["level"] == "bucket"]
        assert total["provision"] == pytest.approx(buckets["provision"].sum(), abs=0.005)
        assert total["amount_open"] == pytest.approx(2000)
    invoices = out[out["level"] == "invoice"]
    assert set(invoices["invoice_id"]) == {"I3", "I5", "I6", "I7"} and (invoices["loss_rate"] == 0.1).all()
    assert invoices["provision"].sum() == pytest.approx(200)


def test_the_champion_is_needed_when_no_model_is_given(tmp_path):
    with pytest.raises(ValueError, match="payment-timing model or the company key"):
        provision(_hand(tmp_path), AT)


def test_provision_on_a_generated_company(small_loaded, fitted):
    at = fitted["at"]
    out = provision(small_loaded, at, Policy(), timing=fitted["timing"])
    for method in (MATRIX, MODEL):
        rows = out[out["method"] == method]
        total = rows.loc[rows["level"] == TOTAL, "provision"].iloc[0]
        assert total == pytest.approx(rows.loc[rows["level"] == "bucket", "provision"].sum(), abs=0.01)
        assert total > 0 if method == MATRIX else total >= 0
    matrix = out[(out["method"] == MATRIX) & (out["level"] == "bucket")]
    assert matrix["loss_rate"].is_monotonic_increasing and (matrix["loss_rate"] <= 1).all()
    # the two methods provide for the same open receivables
    totals = out[out["level"] == TOTAL].set_index("method")["amount_open"]
    assert totals[MATRIX] == pytest.approx(totals[MODEL], rel=1e-6)
    # and later facts change nothing
    again = provision(as_of(small_loaded, at), at, Policy(), timing=fitted["timing"])
    pd.testing.assert_frame_equal(out, again)
