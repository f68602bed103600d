"""Weekly cash series, bank-line patterns, payment runs and the opening balance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import cash
from features.asof import as_of
from features.contract import Bill, Inv, Pay, Txn
from features.ledger import base_amounts
from features.load import validate
from tests.conftest import tiny_customers, tiny_invoices, write_tables


def test_weeks_follow_the_contract_boundaries():
    origin = pd.Timestamp("2025-06-30")
    bounds = cash.week_bounds(origin, 2)
    assert bounds["week_start"].tolist() == [pd.Timestamp("2025-07-01"), pd.Timestamp("2025-07-08")]
    assert bounds["week_end"].tolist() == [pd.Timestamp("2025-07-07"), pd.Timestamp("2025-07-14")]
    days = pd.to_datetime(["2025-06-24", "2025-06-30", "2025-07-01", "2025-07-07", "2025-07-08"])
    assert cash.week_of(days, origin).tolist() == [0, 0, 1, 1, 2]


def test_weekly_series_is_long_format_and_ignores_the_future(small_loaded):
    at = pd.Timestamp("2024-10-31")
    series = cash.weekly_series(small_loaded, at)
    assert list(series.columns) == ["unique_id", "ds", "y"]
    assert set(series["unique_id"]) == set(cash.SERIES)
    assert series["ds"].max() == at
    assert (series.groupby("unique_id").size().nunique()) == 1
    # the view as known at the date gives the same series: later rows change nothing
    pd.testing.assert_frame_equal(series, cash.weekly_series(as_of(small_loaded, at), at))
    # receipts are the week's payments (instalments included), in the base currency at each day's rate
    view = as_of(small_loaded, at)
    pay = view[Pay.TABLE]
    week = (pay[Pay.DATE] > at - pd.Timedelta(days=7)) & (pay[Pay.DATE] <= at)
    last = series[(series["unique_id"] == cash.RECEIPTS) & (series["ds"] == at)]["y"].iloc[0]
    assert np.isclose(last, base_amounts(view, Pay.TABLE)[week].sum())


def test_bill_payment_amount_takes_the_discount_only_inside_the_window():
    bills = pd.DataFrame({Bill.ISSUE: pd.to_datetime(["2025-01-01"] * 3), Bill.AMOUNT: [100.0, 100.0, 100.0],
                          Bill.PAID: pd.to_datetime(["2025-01-05", "2025-01-30", None]),
                          Bill.DISCOUNT_PCT: [2.0, 2.0, np.nan], Bill.DISCOUNT_DAYS: [10.0, 10.0, np.nan]})
    assert cash.bill_payment_amount(bills).tolist() == [98.0, 100.0, 100.0]


def _lines(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame({Txn.DATE: pd.to_datetime([r[0] for r in rows]), Txn.CATEGORY: [r[1] for r in rows],
                         Txn.AMOUNT: [r[2] for r in rows]})


def test_recurring_lines_find_monthly_quarterly_weekly_and_irregular_patterns():
    months = pd.period_range("2024-01", "2024-12", freq="M")
    rows = []
    for m in months:  # payroll on the 25th, or the Friday before when it falls at a weekend
        day = m.start_time + pd.Timedelta(days=24)
        day -= pd.Timedelta(days=max(0, day.day_of_week - 4))
        rows.append((str(day.date()), "payroll", -1000.0 - m.month))
    for d in ("2024-01-12", "2024-04-12", "2024-07-12", "2024-10-11"):
        rows.append((d, "tax", -500.0))
    for d in pd.date_range("2024-10-07", "2024-12-30", freq="7D"):
        rows.append((str(d.date()), "fees", -10.0))
    rows += [("2024-03-03", "misc", 70.0), ("2024-11-19", "misc", -20.0)]
    lines = cash.recurring_lines(_lines(rows), pd.Timestamp("2024-12-31")).set_index("category")
    assert lines.loc["payroll", "pattern"] == "monthly" and lines.loc["payroll", "day"] == 25
    assert lines.loc["payroll", "amount"] == -1012.0  # the latest amount
    assert lines.loc["tax", "pattern"] == "quarterly" and lines.loc["tax", "months"] == "1,4,7,10"
    assert lines.loc["fees", "pattern"] == "weekly" and lines.loc["fees", "day"] == 0
    assert lines.loc["misc", "pattern"] == "irregular"

    future = cash.project_lines(lines.reset_index(), pd.Timestamp("2024-12-31"), 6)
    payroll = future[future["category"] == "payroll"]
    assert payroll["week"].tolist() == [4]  # 2025-01-24 (a Friday; the 25th is a Saturday)
    assert future[future["category"] == "tax"]["week"].tolist() == [2]  # 2025-01-10, Friday before the 12th
    assert len(future[future["category"] == "fees"]) == 6
    assert len(future[future["category"] == "misc"]) == 6  # its weekly mean, every week


def test_payment_runs_and_snapping_to_the_nearest_run():
    paid = pd.to_datetime(["2025-01-07", "2025-01-14", "2025-01-21", "2025-01-28", "2025-02-04",  # Tuesdays
                           "2025-01-15", "2025-02-15", "2025-03-15", "2025-04-15", "2025-05-15",  # the 15th
                           "2025-01-02", "2025-01-09", "2025-01-20", "2025-02-05", "2025-02-28"])  # ad hoc
    payer = pd.Series(["W"] * 5 + ["M"] * 5 + ["A"] * 5)
    runs = cash.payment_runs(pd.Series(paid), payer)
    assert runs.loc["W", "kind"] == cash.RUN_WEEKLY and runs.loc["W", "weekday"] == 1
    assert runs.loc["M", "kind"] == cash.RUN_MONTHLY and runs.loc["M", "monthday"] == 15
    assert runs.loc["A", "kind"] == cash.RUN_NONE

    # equally frequent days: the one paid on first; rows without a payer or a date are left out
    tied = cash.payment_runs(pd.Series(pd.to_datetime(["2025-01-09", "2025-01-07", "2025-01-14", "2025-01-16",
                                                       "2025-01-10", None])),
                             pd.Series(["T", "T", "T", "T", None, "T"], dtype="string"))
    assert tied.index.tolist() == ["T"] and tied.loc["T", "weekday"] == 3 and tied.loc["T", "monthday"] == 9
    assert tied.loc["T", "kind"] == cash.RUN_NONE  # 4 payments: too few for a run

    origin = pd.Timestamp("2025-06-30")  # a Monday
    days = np.array([[3.0, 6.0, np.inf], [10.0, 25.0, 40.0], [4.0, 5.0, 6.0]])
    kind = np.array([cash.RUN_WEEKLY, cash.RUN_MONTHLY, cash.RUN_NONE])
    out = cash.snap_to_runs(days, origin, kind, np.array([1, 0, 0]), np.array([0, 15, 1]), np.ones(3))
    assert out[0].tolist() == [1.0, 8.0, np.inf]  # Thu 3 Jul -> Tue 1 Jul; Sun 6 Jul -> Tue 8 Jul
    assert out[1].tolist() == [15.0, 15.0, 46.0]  # 10 Jul, 25 Jul -> 15 Jul; 9 Aug -> 15 Aug
    assert out[2].tolist() == [4.0, 5.0, 6.0]
    # never before the floor: the run before is skipped when it would be too early
    assert cash.snap_to_runs(np.array([[3.0]]), origin, kind[:1], np.array([1]), np.array([0]),
                             np.array([2.0]))[0, 0] == 8.0


def test_opening_balance_carries_the_last_balance_with_later_flows(tmp_path):
    invoices = tiny_invoices()  # I1 (100) is paid on 2025-02-05
    folder = write_tables(tmp_path / "co", customers=tiny_customers(), invoices=invoices,
                          cash_balances=[{"date": "2025-01-31", "balance": "1000", "account_id": "main"}],
                          cash_transactions=[{"date": "2025-02-03", "amount": "-30", "category": "rent"},
                                             {"date": "2025-03-03", "amount": "-30", "category": "rent"}])
    company = validate(folder).company
    assert cash.opening_balance(company, pd.Timestamp("2025-02-10")) == (1070.0, pd.Timestamp("2025-01-31"))
    assert cash.opening_balance(company, pd.Timestamp("2025-01-31"))[0] == 1000.0
    no_balances = company.replace()
    no_balances.tables.pop("cash_balances")
    assert cash.opening_balance(no_balances, pd.Timestamp("2025-02-10")) == (0.0, None)


def test_actual_weeks_add_up_to_net(small_loaded):
    origin = pd.Timestamp("2024-09-30")
    actual = cash.actual_weeks(small_loaded, origin, 4, pd.Timestamp("2024-12-31"))
    assert np.allclose(actual["net"], actual["receipts"] - actual["payments"] + actual["other"])
    assert (actual["receipts"] > 0).all()


def test_open_items_are_those_open_at_the_date(small_loaded):
    at = pd.Timestamp("2024-10-31")
    orders = cash.open_orders(small_loaded, at)
    inv = as_of(small_loaded, at)[Inv.TABLE]
    assert not orders["order_id"].isin(set(inv[Inv.ORDER].dropna())).any()
    assert (orders["order_date"] <= at).all()
    bills = cash.open_bills(small_loaded, at)
    assert (bills[Bill.ISSUE] <= at).all() and bills[Bill.PAID].isna().all()
