"""Credit check: approve, refer by the approval tiers, block, with reasons; headroom against the recommended limit."""

from __future__ import annotations

import pandas as pd
import pytest

from features.policy import Policy, PolicyError, parse_policy
from tests.training.test_dunning import AT, _company
from training.decisions.credit_check import (
    APPROVE,
    BLOCK,
    CREDIT_CHECK_COLUMNS,
    REFER,
    CreditFacts,
    broken_promises,
    credit_check,
    decide,
)


def _facts(**change) -> CreditFacts:
    base = dict(customer_id="C1", grade="AA", recommended_limit=200_000.0, open_amount=20_000.0,
                overdue_amount=0.0, warning="", broken_promises=0)
    return CreditFacts(**{**base, **change})


def test_a_small_amount_within_headroom_for_a_clean_customer_is_approved():
    row = decide(_facts(), 10_000, Policy())
    assert row["decision"] == APPROVE and row["approver"] == "" and row["headroom_after"] == 170_000
    assert "headroom after this amount 170,000" in row["reasons"] and "grade AA" in row["reasons"]


def test_a_grade_c_customer_has_no_headroom_and_is_blocked():
    row = decide(_facts(grade="C", recommended_limit=0.0, open_amount=5_000.0), 1_000, Policy())
    assert row["decision"] == BLOCK and row["headroom_after"] == -6_000 and row["headroom_after"] <= 0
    assert "prepayment" in row["reasons"]


@pytest.mark.parametrize("amount, approver", [(150_000, "sales director"), (99_999, "sales manager"),
                                              (100_000, "sales director"), (600_000, "CFO")])
def test_a_large_amount_is_referred_by_the_tiers(amount, approver):
    row = decide(_facts(recommended_limit=2_000_000.0), amount, Policy())
    assert row["decision"] == (REFER if amount >= 100_000 else APPROVE)
    assert row["approver"] == (approver if amount >= 100_000 else "")
    over = decide(_facts(recommended_limit=50_000.0), amount, Policy())  # beyond headroom: referred by size
    assert over["decision"] == REFER and over["approver"] == approver and over["headroom_after"] < 0


@pytest.mark.parametrize("change, words", [
    ({"warning": "paying 12 days later than its usual"}, "warning: paying 12 days later"),
    ({"overdue_amount": 10_000.0}, "50% of the open amount is overdue"),
    ({"broken_promises": 2}, "2 broken promises to pay"),
])
def test_warnings_overdue_and_broken_promises_refer(change, words):
    row = decide(_facts(**change), 1_000, Policy())
    assert row["decision"] == REFER and row["approver"] == "sales manager" and words in row["reasons"]


def test_a_broken_promise_beyond_headroom_blocks():
    assert decide(_facts(broken_promises=1, recommended_limit=20_500.0), 1_000, Policy())["decision"] == BLOCK


def test_configured_tiers_and_bad_ones():
    policy = parse_policy({"approval_tiers": [{"up_to": 5000, "approver": "team lead"}, {"approver": "board"}]})
    assert decide(_facts(), 6_000, policy)["approver"] == "board"
    assert decide(_facts(), 4_000, policy)["decision"] == APPROVE
    for bad in ([{"approver": "x"}, {"approver": "y"}], [{"up_to": 10, "approver": "x"}],
                [{"up_to": 10, "approver": "x"}, {"up_to": 5, "approver": "y"}, {"approver": "z"}], []):
        with pytest.raises(PolicyError, match="approval_tiers"):
            parse_policy({"approval_tiers": bad})
    with pytest.raises(ValueError, match="amount must be above 0"):
        decide(_facts(), 0, Policy())


def _customers() -> pd.DataFrame:
    return pd.DataFrame([
        {"customer_id": "C2", "credit_grade": "A", "recommended_credit_limit": 10_000.0, "open_amount": 2_800.0,
         "overdue_amount": 2_000.0, "warning": ""},
        {"customer_id": "C3", "credit_grade": "C", "recommended_credit_limit": 0.0, "open_amount": 3_000.0,
         "overdue_amount": 3_000.0, "warning": ""},
    ])


def test_the_log_s_broken_promises_count(tmp_path):
    company = _company(tmp_path)
    counts = broken_promises(company, AT, Policy())
    assert counts.get("C2", 0) == 1 and counts.get("C1", 0) == 0  # C1's promise is still open
    row = credit_check(company, "C2", 1_000, AT, _customers())
    assert list(row.columns) == CREDIT_CHECK_COLUMNS and len(row) == 1
    assert row.iloc[0]["decision"] == REFER and "1 broken promise to pay" in row.iloc[0]["reasons"]
    assert credit_check(company, "C3", 500, AT, _customers()).iloc[0]["decision"] == BLOCK


def test_an_unknown_customer_is_named(tmp_path):
    with pytest.raises(ValueError, match="customer_id 'NOPE' is not a customer known at 2025-06-30"):
        credit_check(_company(tmp_path), "NOPE", 1_000, AT, _customers())
