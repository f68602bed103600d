"""Early warnings as a credit controller meets them in ``customer_risk``: a customer made to deteriorate sharply is
warned within 60 days, the signals a controller reads are each tested, and later facts change nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from features.company import Company
from features.contract import TABLES, Act, Cust, Inv, Ord, Pay, dtype_of
from features.customers import early_warnings, lancaster
from training.customers import CustomerConfig, fit_customer_models, risk_change

END = pd.Timestamp("2025-06-30")
CHANGE = pd.Timestamp("2025-03-03")  # the day "BAD" starts to pay 25 days later and to order less


def _typed(rows: list[dict], table: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for col in TABLES[table].columns:
        values = frame[col.name] if col.name in frame else pd.Series(None, index=frame.index)
        frame[col.name] = values.astype(dtype_of(col))
    return frame[TABLES[table].names]


def _book(seed: int = 0, n_stable: int = 30, slip_days: int = 25,
          promises_broken_from: pd.Timestamp | None = None) -> Company:
    """Two years of weekly invoices (30 days' terms) for stable customers and "BAD", who from ``CHANGE`` pays
    everything it pays ``slip_days`` later than it would have, and drops 40 % of its orders. Every invoice still
    open three weeks past due gets a promise to pay a week later, kept unless the customer is "BAD" after
    ``promises_broken_from`` (the day its promises start to break: it pays ten days after the promised day)."""
    rng = np.random.default_rng(seed)
    issues = pd.date_range(end=END - pd.Timedelta(days=3), periods=104, freq="7D")
    customers, invoices, orders, payments, actions = [], [], [], [], []
    for c in [f"C{i:02d}" for i in range(n_stable)] + ["BAD"]:
        customers.append({Cust.ID: c, Cust.ONBOARDED: issues[0] - pd.Timedelta(days=30)})
        usual = rng.normal(-2, 4) if c != "BAD" else -2.0
        for j, issue in enumerate(issues):
            if c == "BAD" and issue >= CHANGE and rng.random() < 0.4:
                continue
            due = issue + pd.Timedelta(days=30)
            paid = due + pd.Timedelta(days=int(round(usual + rng.normal(0, 3))))
            if c == "BAD" and paid >= CHANGE:
                paid += pd.Timedelta(days=slip_days)
            call = due + pd.Timedelta(days=21)
            if paid > call and call <= END:
                breaks = c == "BAD" and promises_broken_from is not None and call >= promises_broken_from
                promised = call + pd.Timedelta(days=7)
                paid = max(paid, promised + pd.Timedelta(days=10)) if breaks else min(paid, promised)
                actions.append({Act.ID: f"A{c}-{j}", Act.DATE: call, Act.KIND: "promise", Act.INVOICE: f"{c}-{j}",
                                Act.PROMISED: promised, Act.PROMISED_AMOUNT: 100.0})
            invoices.append({Inv.ID: f"{c}-{j}", Inv.CUSTOMER: c, Inv.ISSUE: issue, Inv.DUE: due, Inv.AMOUNT: 100.0,
                             Inv.PAID: paid if paid <= END else pd.NaT, Inv.ORDER: f"O{c}-{j}"})
            if paid <= END:
                payments.append({Pay.ID: f"P{c}-{j}", Pay.INVOICE: f"{c}-{j}", Pay.DATE: paid, Pay.AMOUNT: 100.0})
            orders.append({Ord.ID: f"O{c}-{j}", Ord.CUSTOMER: c, Ord.DATE: issue - pd.Timedelta(days=2),
                           Ord.AMOUNT: 100.0, Ord.PROMISED: issue, Ord.CANCELLED: False})
    return Company({Cust.TABLE: _typed(customers, Cust.TABLE), Inv.TABLE: _typed(invoices, Inv.TABLE),
                    Ord.TABLE: _typed(orders, Ord.TABLE), Pay.TABLE: _typed(payments, Pay.TABLE),
                    Act.TABLE: _typed(actions, Act.TABLE)}, {})


@pytest.fixture(scope="module")
def book_and_models():
    company = _book()
    # The customer model as scoring uses it: fitted on what was known before the change began.
    models = fit_customer_models(company, CHANGE - pd.Timedelta(days=7), CustomerConfig(n_estimators=40))
    return company, models


def _warnings(company: Company, models, date: pd.Timestamp) -> pd.DataFrame:
    return early_warnings(company, date, models.warnings, promise_grace_days=3,
                          risk=risk_change(models, company, date))


def test_a_sharp_deterioration_is_warned_within_60_days(book_and_models):
    company, models = book_and_models
    before = _warnings(company, models, CHANGE - pd.Timedelta(days=1))
    assert before.loc["BAD", "warning"] == ""  # nothing to see yet
    days = (15, 30, 45, 60)
    warned = {d: _warnings(company, models, CHANGE + pd.Timedelta(days=d)) for d in days}
    first = next((d for d in days if warned[d].loc["BAD", "warning"] != ""), None)
    assert first is not None and first <= 60, "no warning within 60 days of a sharp deterioration"
    row = warned[first].loc["BAD"]
    assert row["trend"] == "worsening" and row["warning"].startswith("Payments slipped")
    # ... and it stays warned from then on, while stable customers mostly are not.
    assert all(warned[d].loc["BAD", "warning"] != "" for d in days if d >= first)
    stable = pd.concat([w.drop(index="BAD") for w in warned.values()])
    assert (stable["warning"] != "").mean() <= 0.1


def test_broken_promises_are_a_signal_of_their_own(book_and_models):
    company, models = book_and_models
    date = CHANGE + pd.Timedelta(days=60)
    kept = _warnings(_book(slip_days=35), models, date)
    broken = _warnings(_book(slip_days=35, promises_broken_from=CHANGE), models, date)
    assert kept.loc["BAD", "broken_promises_recent"] == 0  # every promise so far was kept
    assert broken.loc["BAD", "broken_promises_recent"] >= 2
    assert broken.loc["BAD", "p_broken_promises"] < 0.05
    assert broken.loc["BAD", "p_change"] <= kept.loc["BAD", "p_change"]
    assert "promises to pay broken" in broken.loc["BAD", "warning"]


def test_the_change_of_p_late_next_is_read_against_the_book(book_and_models):
    company, models = book_and_models
    w = _warnings(company, models, CHANGE + pd.Timedelta(days=90))
    assert w.loc["BAD", "p_late_next"] > w.loc["BAD", "p_late_before"]
    assert w.loc["BAD", "p_risk"] < w.drop(index="BAD")["p_risk"].median()
    assert early_warnings(company, CHANGE)["p_risk"].isna().all()  # no model's view given: not a test made


def test_later_facts_change_no_warning(book_and_models):
    company, models = book_and_models
    date = CHANGE + pd.Timedelta(days=45)
    later = date + pd.Timedelta(days=2)
    inv = company[Inv.TABLE].copy()
    inv.loc[inv[Inv.PAID] > date, Inv.PAID] += pd.Timedelta(days=40)
    extra = _typed([{Inv.ID: "FUT1", Inv.CUSTOMER: "BAD", Inv.ISSUE: later, Inv.DUE: later, Inv.AMOUNT: 100.0,
                     Inv.PAID: later, Inv.DISPUTE: later}], Inv.TABLE)
    pay = pd.concat([company[Pay.TABLE], _typed([{Pay.ID: "PFUT", Pay.INVOICE: "FUT1", Pay.DATE: later,
                                                  Pay.AMOUNT: 40.0}], Pay.TABLE)])
    acts = pd.concat([company[Act.TABLE], _typed([{Act.ID: "AFUT", Act.DATE: later, Act.KIND: "promise",
                                                   Act.CUSTOMER: "C01", Act.PROMISED: later,
                                                   Act.PROMISED_AMOUNT: 5.0}], Act.TABLE)])
    changed = company.replace(**{Inv.TABLE: pd.concat([inv, extra]), Pay.TABLE: pay, Act.TABLE: acts})
    pd.testing.assert_frame_equal(_warnings(company, models, date), _warnings(changed, models, date))


def test_lancaster_with_two_degrees_each_is_fisher_and_skips_tests_not_made():
    p = pd.DataFrame({"a": [0.01, 0.5, np.nan], "b": [0.2, np.nan, np.nan]})
    combined = lancaster(p, {"a": 2.0, "b": 2.0})
    fisher = stats.chi2.sf(-2 * (np.log(0.01) + np.log(0.2)), 4)
    assert combined[0] == pytest.approx(fisher)
    assert combined[1] == pytest.approx(0.5)  # one test made: its own p-value
    assert combined[2] == 1.0  # none made: nothing to report
    with pytest.raises(KeyError):
        lancaster(p, {"missing": 1.0})
