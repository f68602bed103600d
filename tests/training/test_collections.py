"""Collections worklist (ladder, pre-due rule, ranking, as-of) and discount decisions (arithmetic, cash floor)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.asof import as_of
from features.invoices import invoice_features
from features.load import Company, validate
from features.policy import Policy, parse_policy
from tests.conftest import write_tables
from training.collections import (
    DISCOUNT_COLUMNS,
    NO_ACTION,
    RANKED_COLUMNS,
    WORKLIST_COLUMNS,
    CollectionsConfig,
    annualized_return,
    discounts,
    evaluate_worklist,
    ranked_invoices,
    unpaid_chances,
    worklist,
)


@pytest.fixture(scope="module")
def unlogged(small_loaded):
    """The small company without its collections log: the plain ladder (the log's rules: test_dunning.py)."""
    return Company({k: v for k, v in small_loaded.tables.items() if k != "actions"}, small_loaded.supplied,
                   small_loaded.base_currency)


@pytest.fixture(scope="module")
def listed(unlogged, fitted):
    at = fitted["at"] - pd.Timedelta(days=45)
    return at, ranked_invoices(unlogged, at, models=(fitted["late"], fitted["timing"]))


def test_worklist_rows_ranks_and_actions(unlogged, listed):
    at, w = listed
    inv = as_of(unlogged, at)["invoices"]
    open_ids = inv.loc[inv["paid_date"].isna(), "invoice_id"]
    assert list(w.columns) == RANKED_COLUMNS
    assert sorted(w["invoice_id"]) == sorted(open_ids) and w["rank"].tolist() == list(range(1, len(w) + 1))
    assert w["expected_gain"].is_monotonic_decreasing and (w["expected_gain"] >= 0).all()
    overdue = w[w["days_overdue"] > 0]
    assert len(overdue) > 0 and (overdue["action"] != NO_ACTION).all()
    ladder = Policy().dunning
    assert (overdue["action"] == overdue["days_overdue"].map(ladder.action)).all()
    assert (w["aging_bucket"] == w["days_overdue"].map(Policy().bucket)).all()
    assert w["why"].str.len().gt(30).all()
    assert (w.loc[w["action"] == NO_ACTION, "expected_gain"] == 0).all()


def test_good_payers_are_not_chased_before_due_and_risky_ones_are(unlogged, fitted, listed):
    at, w = listed
    x = invoice_features(unlogged, at).set_index("invoice_id")
    rows = w.set_index("invoice_id").join(x[["n_overdue_open", "late_share_recent_weighted"]])
    d = Policy().dunning
    not_due = rows[rows["days_overdue"] <= 0]
    good = (not_due["n_overdue_open"] == 0) & (not_due["late_share_recent_weighted"] <= d.good_standing_max_p_late)
    assert good.any() and (not_due.loc[good, "action"] == NO_ACTION).all()
    assert not_due.loc[good, "why"].str.contains("good standing").all()
    reminded = not_due["action"] == d.pre_due_action
    assert reminded.any()
    assert (not_due.loc[reminded, "p_late"] >= d.pre_due_min_p_late).all()
    assert (-not_due.loc[reminded, "days_overdue"] <= d.pre_due_days).all() and not (reminded & good).any()


def test_expected_gain_follows_the_stated_action_effect(unlogged, fitted, listed):
    at, w = listed
    x = invoice_features(unlogged, at).reset_index(drop=True)
    unpaid, after_due = unpaid_chances(x, fitted["timing"], 30)
    chance = pd.Series(unpaid, index=x["invoice_id"])
    overdue = w[w["days_overdue"] > 0].set_index("invoice_id")
    expected = 0.3 * overdue["amount_open"] * chance.reindex(overdue.index)
    assert np.allclose(overdue["expected_gain"], expected, atol=0.01)
    assert ((unpaid >= 0) & (unpaid <= 1)).all()
    reachable = (x["days_overdue"] + 30 >= 0).to_numpy()  # due by the horizon: unpaid then means late
    assert (unpaid[reachable] <= after_due[reachable] + 1e-12).all()
    doubled = ranked_invoices(unlogged, at, models=(fitted["late"], fitted["timing"]),
                              config=CollectionsConfig(action_effect=0.6, pre_due_effect=0.6)).head(5)
    assert np.allclose(doubled["expected_gain"], 2 * w["expected_gain"].head(5), atol=0.02)


def test_configured_ladder_and_top(unlogged, fitted, listed):
    at, _ = listed
    policy = parse_policy({"dunning": {"steps": [{"from_days_overdue": 1, "action": "call"},
                                                 {"from_days_overdue": 8, "action": "letter"}]}})
    top = worklist(unlogged, at, top=40, policy=policy, models=(fitted["late"], fitted["timing"]))
    assert len(top) == 40 and list(top.columns) == WORKLIST_COLUMNS
    w = ranked_invoices(unlogged, at, policy=policy, models=(fitted["late"], fitted["timing"]))
    overdue = w[w["days_overdue"] > 0]
    assert set(overdue["action"]) <= {"call", "letter"}
    assert (overdue["action"] == np.where(overdue["days_overdue"] >= 8, "letter", "call")).all()
    with pytest.raises(ValueError, match="top must be at least 1"):
        worklist(unlogged, at, top=0, models=(fitted["late"], fitted["timing"]))


def test_worklist_sees_nothing_after_as_of(unlogged, fitted, listed):
    at, w = listed
    known = ranked_invoices(as_of(unlogged, at), at, models=(fitted["late"], fitted["timing"]))
    pd.testing.assert_frame_equal(w, known)


def test_worklist_beats_days_overdue_times_amount(unlogged, fitted, listed):
    at, w = listed
    result = evaluate_worklist(unlogged, at, w, top=50)
    assert result["worklist_top"] >= result["days_x_amount_top"] > 0


def test_champions_are_required_when_no_models_given(small_loaded, store):
    with pytest.raises(LookupError, match="likvid train"):
        worklist(small_loaded, company_key="nobody-trained-this")
    with pytest.raises(ValueError, match="company key"):
        worklist(small_loaded)


# --- evaluation and discounts on hand-made companies --------------------------------------------------

AT = pd.Timestamp("2025-03-31")


def _hand_company(tmp_path, bills=None, invoices=None):
    customers = [{"customer_id": "C1"}]
    invoices = invoices or [
        {"invoice_id": "I1", "customer_id": "C1", "issue_date": "2025-01-01", "due_date": "2025-01-31",
         "amount": 200, "paid_date": "2025-04-10"},  # 59 days overdue, paid within 30 days
        {"invoice_id": "I2", "customer_id": "C1", "issue_date": "2025-03-01", "due_date": "2025-03-21",
         "amount": 1000, "paid_date": ""},  # 10 days overdue, never paid
        {"invoice_id": "I3", "customer_id": "C1", "issue_date": "2025-03-20", "due_date": "2025-04-20",
         "amount": 500, "paid_date": "2025-06-01"},  # not yet due, unpaid 30 days later
    ]
    tables = {"customers": customers, "invoices": invoices}
    if bills is not None:
        tables["bills"] = bills
    folder = write_tables(tmp_path / "hand", **tables)
    result = validate(folder, today="2025-07-01")
    assert result.rejects.empty, result.rejects
    return result.company


def test_evaluation_counts_cash_really_unpaid_30_days_later(tmp_path):
    company = _hand_company(tmp_path)
    ranked = pd.DataFrame({"invoice_id": ["I3", "I2", "I1"]})
    result = evaluate_worklist(company, AT, ranked, top=1)
    # baseline: I1 (59 × 200 = 11,800) before I2 (10 × 1,000); I1 was paid by 2025-04-30
    assert result["worklist_top"] == 500 and result["days_x_amount_top"] == 0
    assert result["still_unpaid_total"] == 1500
    assert evaluate_worklist(company, AT, ranked, top=2)["days_x_amount_top"] == 1000
    with pytest.raises(ValueError, match="before as-of"):
        evaluate_worklist(company, "2025-06-15", ranked)


def _bill(i, issue, due, amount, pct=1.0, days=10.0, paid=""):
    return {"bill_id": i, "supplier_id": "S1", "issue_date": issue, "due_date": due, "amount": amount,
            "paid_date": paid, "discount_pct": pct, "discount_days": days}


def _forecast(balances, start=AT):
    weeks = np.arange(1, len(balances) + 1)
    return pd.DataFrame({"week": weeks, "week_start": start + pd.to_timedelta(7 * (weeks - 1) + 1, unit="D"),
                         "week_end": start + pd.to_timedelta(7 * weeks, unit="D"),
                         "balance_p10": balances, "balance_p50": np.asarray(balances) + 1000.0})


def test_discount_arithmetic():
    assert annualized_return(1.0, 20) == pytest.approx(0.01 / 0.99 * 365 / 20)  # 1/10 net 30: 18.4 %
    assert annualized_return(2.0, 20) == pytest.approx(0.02 / 0.98 * 365 / 20)  # 2/10 net 30: 37.2 %
    assert annualized_return(1.0, 355) == pytest.approx(0.0104, abs=1e-4)  # 1/10 net 365: below 8 %
    assert np.isinf(annualized_return(1.0, 0))  # due inside the window: free money
    assert np.isnan(annualized_return(1.0, np.nan))


def test_discount_decisions_and_the_cash_floor(tmp_path):
    bills = [
        _bill("B1", "2025-03-28", "2025-04-27", 10_000),  # pay by 04-07 (week 2), 18.4 %
        _bill("B2", "2025-03-29", "2025-04-28", 30_000, pct=2.0),  # pay by 04-08 (week 2), 37.2 %
        _bill("B3", "2025-03-30", "2026-03-25", 5_000),  # 1/10 net 360: about 1 %, below the cost of capital
        _bill("B4", "2025-03-15", "2025-04-14", 5_000),  # window closed 03-25
        _bill("B5", "2025-03-30", "2025-12-30", 5_000, days=120),  # pay by 07-28: beyond 13 weeks
        _bill("B6", "2025-03-30", "2025-04-29", 5_000, pct=None, days=None),  # no terms: not listed
        _bill("B7", "2025-03-02", "2025-04-01", 5_000, paid="2025-03-10"),  # paid: not listed
        _bill("B8", "2025-04-02", "2025-05-02", 5_000),  # received after as-of: not listed
    ]
    company = _hand_company(tmp_path, bills=bills)
    policy = parse_policy({"cash_floor": 50_000})
    # p10 balance 100k in weeks 1-2: B2 (best return) costs 29.4k -> 70.6k > 50k, then B1 9.9k -> 60.7k still ok
    out = discounts(company, AT, policy, forecast=_forecast([100_000.0] * 13)).set_index("bill_id")
    assert list(out.reset_index().columns) == DISCOUNT_COLUMNS
    assert sorted(out.index) == ["B1", "B2", "B3", "B4", "B5"]
    assert out.loc["B1", "pay_by"] == pd.Timestamp("2025-04-07")
    assert out.loc["B1", "annualized_return"] == pytest.approx(0.1843, abs=1e-4)
    assert (out["cost_of_capital"] == 0.08).all()
    assert out.loc["B1", "take"] and out.loc["B2", "take"] and out.loc["B1", "cash_ok"]
    assert out.loc["B3", "cash_ok"] and not out.loc["B3", "take"]  # cash fine, return too low
    for bill in ("B4", "B5"):  # closed window; beyond the horizon: not decided
        assert pd.isna(out.loc[bill, "cash_ok"]) and not out.loc[bill, "take"]

    # p10 of 85k in week 2: B2 alone leaves 55.6k (ok); B1, paid in week 1 and due in week 4, would also
    # keep its 9.9k out in week 2 and leave 45.7k < 50k
    tight = discounts(company, AT, policy, forecast=_forecast([100_000.0, 85_000.0] + [100_000.0] * 11))
    tight = tight.set_index("bill_id")
    assert tight.loc["B2", "take"] and tight.loc["B2", "cash_ok"]
    assert not tight.loc["B1", "take"] and not tight.loc["B1", "cash_ok"]

    # a dip below the floor in week 1 blocks every discount paid in or after it
    low = discounts(company, AT, policy, forecast=_forecast([40_000.0] + [200_000.0] * 12)).set_index("bill_id")
    assert not low[["take"]].any().any() and not low.loc["B1", "cash_ok"]


def test_discount_inputs(tmp_path):
    company = _hand_company(tmp_path, bills=[_bill("B1", "2025-03-28", "2025-04-27", 10_000)])
    with pytest.raises(ValueError, match="lacks column balance_p10"):
        discounts(company, AT, forecast=_forecast([1.0] * 13).drop(columns="balance_p10"))
    with pytest.raises(ValueError, match="no weeks"):
        discounts(company, AT, forecast=_forecast([1.0] * 13).iloc[:0])
    no_bills = _hand_company(tmp_path / "nb")
    assert discounts(no_bills, AT, forecast=_forecast([1.0] * 13)).columns.tolist() == DISCOUNT_COLUMNS
