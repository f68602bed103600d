"""Customer behaviour features and early warnings: definitions, as-of correctness, warnings that fire
for a customer made to deteriorate and stay silent for stable ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.asof import as_of
from features.contract import Cust, Inv, Ord
from features.customers import (
    CUSTOMER_FEATURES,
    WARNING_COLUMNS,
    _censored_to_expected,
    customer_features,
    cusum,
    decided_invoices,
    early_warnings,
    known_effects,
    late_share_next,
)
from features.load import Company, validate
from tests.conftest import tiny_customers, tiny_invoices, write_tables


def test_features_of_a_tiny_company(tiny):
    company = validate(tiny, today="2025-07-01").company
    x = customer_features(company, "2025-02-10")
    assert list(x.index) == ["007", "008"]
    assert set(CUSTOMER_FEATURES) <= set(x.columns)
    # 007: I1 due 01-31 paid 02-05 (late, 5 days); I3 issued 02-01, not yet due. 008: I2 due 02-02, open, overdue.
    assert x.loc["007", "n_decided"] == 1 and x.loc["008", "n_decided"] == 1
    assert x.loc["008", "overdue_amount"] == pytest.approx(50.5)
    assert x.loc["008", "max_days_overdue"] == 8
    assert x.loc["007", "open_amount"] == pytest.approx(75)
    assert x.loc["007", "overdue_amount"] == 0
    # DSO: open AR / invoiced in the last 90 days x 90.
    assert x.loc["007", "dso_days"] == pytest.approx(75 / 175 * 90)
    hist = decided_invoices(as_of(company, "2025-02-10"), pd.Timestamp("2025-02-10"))
    assert hist.set_index(Inv.ID).loc["I1", "delay"] == 5 and bool(hist.set_index(Inv.ID).loc["I2", "open"])


def test_late_share_next_reads_outcomes_as_known_later(tiny):
    company = validate(tiny, today="2025-07-01").company
    y = late_share_next(company, "2025-01-15", "2025-03-31")
    # Due in the quarter after 01-15: I1 (late), I2 (still open: late), I3 (paid before due).
    assert y.loc["007", "late_share_next"] == pytest.approx(0.5) and y.loc["007", "n"] == 2
    assert y.loc["008", "late_share_next"] == 1.0


def test_no_orders_table_uses_invoices_for_the_order_trend(tmp_path):
    folder = write_tables(tmp_path / "c", customers=tiny_customers(), invoices=tiny_invoices())
    company = validate(folder, today="2025-07-01").company
    x = customer_features(company, "2025-03-01")
    assert len(x) == 2 and "order_trend" in x


def _future_appended(company: Company, date: pd.Timestamp) -> Company:
    """The same history up to ``date``, plus invoices and orders after it and later payments pushed out."""
    inv = company[Inv.TABLE].copy()
    later = inv[Inv.PAID] > date
    inv.loc[later, Inv.PAID] = inv.loc[later, Inv.PAID] + pd.Timedelta(days=40)
    extra = inv.sample(50, random_state=0).copy()
    extra[Inv.ID] = "FUT" + extra[Inv.ID]
    extra[Inv.ISSUE] = date + pd.Timedelta(days=3)
    extra[Inv.DUE] = date + pd.Timedelta(days=33)
    extra[Inv.PAID] = date + pd.Timedelta(days=90)
    orders = company[Ord.TABLE].copy()
    more = orders.head(30).copy()
    more[Ord.ID] = "FUT" + more[Ord.ID]
    more[Ord.DATE] = date + pd.Timedelta(days=1)
    return company.replace(**{Inv.TABLE: pd.concat([inv, extra]), Ord.TABLE: pd.concat([orders, more])})


def test_future_rows_change_nothing(small_loaded):
    date = pd.Timestamp("2025-01-31")
    changed = _future_appended(small_loaded, date)
    pd.testing.assert_frame_equal(customer_features(small_loaded, date), customer_features(changed, date))
    pd.testing.assert_frame_equal(early_warnings(small_loaded, date), early_warnings(changed, date))


def test_cusum_stays_at_zero_for_noise_below_reference_and_crosses_after_a_step():
    up, down = cusum(np.array([0.3, -0.2, 0.4, 0.0]), k=0.5)
    assert up.max() == 0 and down.max() == 0
    up, _ = cusum(np.r_[np.zeros(5), np.full(5, 2.0)], k=0.5)
    assert up[4] == 0 and up[-1] == pytest.approx(7.5)


def _book(seed: int = 0, n_stable: int = 30, worsen_days: int = 150, end: str = "2025-06-30",
          dispute_share: float = 0.0, disputed_lately: int = 0, orders_only: bool = False,
          young_customers: bool = False) -> Company:
    """Weekly invoices over two years for stable customers and one ("BAD") who pays 20 days later and
    orders less from ``worsen_days`` before ``end`` (only orders less with ``orders_only``).

    A dispute adds 15 days to a payment; ``dispute_share`` of every customer's invoices are disputed,
    and stable customer "DIS" has its last ``disputed_lately`` settled invoices disputed as well."""
    rng = np.random.default_rng(seed)
    end_ts = pd.Timestamp(end)
    issues = pd.date_range(end=end_ts - pd.Timedelta(days=40), periods=100, freq="7D")
    change = end_ts - pd.Timedelta(days=worsen_days)
    customers, invoices, orders = [], [], []
    young = ["YNG", "YST"] if young_customers else []  # joined 330 days before end; YNG worsens like BAD
    for c in [f"C{i:02d}" for i in range(n_stable)] + ["BAD"] + (["DIS"] if disputed_lately else []) + young:
        joined = end_ts - pd.Timedelta(days=330) if c in young else issues[0] - pd.Timedelta(days=30)
        customers.append({Cust.ID: c, Cust.ONBOARDED: joined})
        usual = rng.normal(0, 4)
        for j, issue in enumerate(issues):
            if issue < joined:
                continue
            bad = c in ("BAD", "YNG") and issue >= change
            if bad and rng.random() < (0.6 if orders_only else 0.4):  # orders fall too
                continue
            due = issue + pd.Timedelta(days=30)
            disputed = rng.random() < dispute_share or (c == "DIS" and j >= len(issues) - 5 - disputed_lately)
            days = usual + rng.normal(0, 3) + (20 if bad and not orders_only else 0) + (15 if disputed else 0)
            paid = due + pd.Timedelta(days=int(round(days)))
            invoices.append({Inv.ID: f"{c}-{j}", Inv.CUSTOMER: c, Inv.ISSUE: issue, Inv.DUE: due, Inv.AMOUNT: 100.0,
                             Inv.PAID: paid if paid <= end_ts else pd.NaT,
                             Inv.DISPUTE: issue + pd.Timedelta(days=5) if disputed else pd.NaT,
                             Inv.ORDER: f"O{c}-{j}", Inv.PAID_AMOUNT: np.nan})
            orders.append({Ord.ID: f"O{c}-{j}", Ord.CUSTOMER: c, Ord.DATE: issue - pd.Timedelta(days=2),
                           Ord.AMOUNT: 100.0, Ord.PROMISED: issue, Ord.CANCELLED: False})
    return Company({Cust.TABLE: _typed(customers, Cust.TABLE), Inv.TABLE: _typed(invoices, Inv.TABLE),
                    Ord.TABLE: _typed(orders, Ord.TABLE)}, {})


def _typed(rows: list[dict], table: str) -> pd.DataFrame:
    from features.contract import TABLES, dtype_of

    frame = pd.DataFrame(rows)
    for col in TABLES[table].columns:
        frame[col.name] = (frame[col.name] if col.name in frame else pd.Series(None, index=frame.index)).astype(
            dtype_of(col))
    return frame[TABLES[table].names]


def test_warning_fires_for_a_deteriorating_customer_and_not_for_stable_ones():
    company = _book()
    w = early_warnings(company, "2025-06-30")
    assert list(w.columns[: len(WARNING_COLUMNS)]) == WARNING_COLUMNS
    bad = w.loc["BAD"]
    assert bad["trend"] == "worsening"
    assert bad["warning"].startswith("Payments slipped")
    assert f"since {pd.Timestamp(bad['change_since']):%Y-%m-%d}" in bad["warning"]
    since = pd.Timestamp(bad["change_since"])
    end = pd.Timestamp("2025-06-30")
    assert end - pd.Timedelta(days=200) <= since <= end - pd.Timedelta(days=60)
    stable = w.drop(index="BAD")
    assert (stable["warning"] == "").mean() >= 0.9  # the test's stable customers are pure noise
    assert w.loc["C00", "warning"] == "" and w.loc["C00", "trend"] in ("stable", "improving")


def test_a_change_before_the_watched_window_is_the_new_normal():
    w = early_warnings(_book(worsen_days=700), "2025-06-30")
    assert w.loc["BAD", "warning"] == ""


def test_disputes_are_not_a_change_of_habit():
    company = _book(dispute_share=0.08, disputed_lately=6)
    hist = decided_invoices(as_of(company, "2025-06-30"), pd.Timestamp("2025-06-30"))
    effects = known_effects(hist)
    assert effects[hist["disputed"]].mean() == pytest.approx(15, abs=2)  # learned within customers
    assert effects[~hist["disputed"]].abs().max() < 2
    w = early_warnings(company, "2025-06-30")
    assert w.loc["DIS", "warning"] == ""  # a run of disputes, each explained
    assert w.loc["BAD", "warning"].startswith("Payments slipped")


def test_orders_falling_alone_are_reported_as_such():
    w = early_warnings(_book(orders_only=True), "2025-06-30")
    assert w.loc["BAD", "trend"] == "worsening"
    assert w.loc["BAD", "warning"].startswith("Orders in the last 120 days ran")
    assert "Payments slipped" not in w.loc["BAD", "warning"]


def test_an_open_invoice_counts_as_what_the_customers_record_says_it_comes_to():
    base = pd.DataFrame({"delay": [8.0, 9, 10, 11, 12, 30], "open": [False] * 5 + [True]})
    recent = pd.DataFrame({"delay": [10.0, 5, 11, 40], "open": [False, True, True, True]})
    r = _censored_to_expected(recent["delay"].to_numpy(), recent["open"].to_numpy(), base["delay"].to_numpy(),
                              base["open"].to_numpy())
    assert r[0] == 10  # settled: as it is
    assert r[1] == pytest.approx(10)  # open 5 days: the customer's settled delays beyond 5 (8..12)
    assert r[2] == pytest.approx(12)  # open 11 days: beyond 11 only 12 (the open 30 is no settled delay)
    assert r[3] == 40  # beyond every settled delay: the bound itself


def test_a_young_customer_is_judged_against_its_first_invoices():
    w = early_warnings(_book(young_customers=True), "2025-06-30")
    assert w.loc["YNG", "warning"].startswith("Payments slipped")  # its record began after the baseline window
    assert w.loc["YST", "warning"] == ""
