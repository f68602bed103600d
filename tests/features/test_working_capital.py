"""Working-capital figures against a hand-computed example; absent tables; as-of; aging boundaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.load import validate
from features.policy import Policy, PolicyError, parse_policy
from features.working_capital import KPI_COLUMNS, aging, kpis, kpis_over_time
from tests.conftest import write_tables

AT = "2025-03-31"


def _invoice(i, c, issue, due, amount, paid="", paid_amount="", delivery="electronic"):
    return {"invoice_id": i, "customer_id": c, "issue_date": issue, "due_date": due, "amount": amount,
            "paid_date": paid, "paid_amount": paid_amount, "delivery": delivery, "currency": "EUR"}


INVOICES = [
    _invoice("I1", "C1", "2025-01-10", "2025-02-09", 1000),  # open, 50 days overdue
    _invoice("I2", "C1", "2025-03-01", "2025-03-31", 500, delivery="paper"),  # open, due today: current
    _invoice("I3", "C2", "2025-02-15", "2025-03-17", 300, paid="2025-03-20"),  # paid in full
    _invoice("I4", "C2", "2024-10-01", "2024-10-31", 200, paid="2025-02-01", paid_amount=50, delivery=""),  # 150 lost
    _invoice("I5", "C2", "2025-03-15", "2025-04-14", 400, paid="2025-04-10"),  # paid after as-of: open
    _invoice("I6", "C1", "2024-11-15", "2024-12-15", 100, delivery="paper"),  # open, 106 days overdue
]
BILLS = [
    {"bill_id": "B1", "supplier_id": "S1", "issue_date": "2025-02-01", "due_date": "2025-03-03", "amount": 600,
     "paid_date": "2025-03-01"},
    {"bill_id": "B2", "supplier_id": "S1", "issue_date": "2025-03-10", "due_date": "2025-04-09", "amount": 900,
     "paid_date": ""},
    {"bill_id": "B3", "supplier_id": "S2", "issue_date": "2024-12-01", "due_date": "2024-12-31", "amount": 1000,
     "paid_date": "2024-12-30"},  # outside the 90-day window
]


def _stock(date, rows):
    return [{"date": date, "sku": s, "quantity": q, "unit_cost": c} for s, q, c in rows]


INVENTORY = (_stock("2025-01-31", [("S1", 10, 50), ("S2", 100, 1), ("S3", 5, 20), ("S4", 1, 10)])
             + _stock("2025-02-28", [("S1", 20, 50), ("S2", 100, 1), ("S3", 4, 20), ("S4", 1, 10)]))
CUSTOMERS = [{"customer_id": "C1"}, {"customer_id": "C2"}]


def _company(tmp_path, name="co", **tables):
    tables = {"customers": CUSTOMERS, "invoices": INVOICES, **tables}
    folder = write_tables(tmp_path / name, **{k: v for k, v in tables.items() if v is not None})
    result = validate(folder, today="2025-07-01")
    assert result.rejects.empty, result.rejects
    return result.company


def _values(frame: pd.DataFrame) -> dict[str, float]:
    return frame.set_index("name")["value"].to_dict()


def test_every_figure_against_a_hand_computed_example(tmp_path):
    frame = kpis(_company(tmp_path, bills=BILLS, inventory=INVENTORY), AT)
    assert list(frame.columns) == KPI_COLUMNS and frame["name"].is_unique
    v = _values(frame)
    # open AR: I1 1000 + I2 500 + I5 400 (paid after as-of) + I6 100; invoiced since 2025-01-01: I1, I2, I3, I5
    assert v["open_ar"] == 2000
    assert v["dso"] == pytest.approx(2000 / 2200 * 90)
    assert v["open_ap"] == 900 and v["dpo"] == pytest.approx(900 / 1500 * 90)
    assert v["inventory_value"] == 1190 and v["dio"] == pytest.approx(1190 / 1500 * 90)
    assert v["ccc"] == pytest.approx(2000 / 2200 * 90 + 1190 / 1500 * 90 - 54)
    assert [v[f"aging_{b}"] for b in ("current", "1-30", "31-60", "61-90", "90+")] == [900, 0, 1000, 0, 100]
    assert v["overdue_share"] == pytest.approx(1100 / 2000)
    assert v["bad_debt_share"] == pytest.approx(150 / 2500)
    assert v["digitalisation_rate"] == pytest.approx(3 / 5)  # I4's delivery is unknown
    # ABC: S1 1000 (A), S2 100 and S3 80 (B: value before them is 84 % and 92 %), S4 10 (C)
    assert [v[f"abc_{c}_skus"] for c in "ABC"] == [1, 2, 1]
    assert [v[f"abc_{c}_value_share"] for c in "ABC"] == pytest.approx([1000 / 1190, 180 / 1190, 10 / 1190])
    # S2 and S4 did not move; S1 doubled; S3 moved 1 on an average of 4.5
    assert v["slow_moving_skus"] == 2 and v["slow_moving_share"] == pytest.approx(110 / 1190)
    assert v["alert_overdue_share"] == 1 and v["alert_bad_debt_share"] == 1
    units = frame.set_index("name")["unit"]
    assert units["dso"] == "days" and units["open_ar"] == "EUR" and units["overdue_share"] == "share"
    assert frame["definition"].str.len().gt(10).all()


def test_alerts_follow_the_configured_thresholds(tmp_path):
    company = _company(tmp_path)
    policy = parse_policy({"alerts": {"overdue_share": 0.6, "bad_debt_share": 0.07}})
    v = _values(kpis(company, AT, policy))
    assert v["alert_overdue_share"] == 0 and v["alert_bad_debt_share"] == 0


def test_grace_days_narrow_what_counts_as_overdue(tmp_path):
    company = _company(tmp_path)
    v = _values(kpis(company, AT, parse_policy({"grace_days": 60})))
    assert v["overdue_share"] == pytest.approx(100 / 2000)  # only I6 (106 days) is past due + 60
    assert v["aging_31-60"] == 1000  # aging still counts days past the due date


def test_missing_tables_are_reported_absent_not_zero(tmp_path):
    frame = kpis(_company(tmp_path), AT).set_index("name")
    for name in ("dpo", "open_ap"):
        assert np.isnan(frame.loc[name, "value"])
        assert frame.loc[name, "definition"].startswith("Not reported: the data has no bills table")
    for name in ("dio", "inventory_value", "abc_A_skus", "slow_moving_share"):
        assert np.isnan(frame.loc[name, "value"])
        assert "no inventory table" in frame.loc[name, "definition"]
    assert np.isnan(frame.loc["ccc", "value"]) and "DIO and DPO are missing" in frame.loc["ccc", "definition"]
    assert frame.loc["dso", "value"] == pytest.approx(2000 / 2200 * 90)


def test_inventory_without_bills_and_invoices_without_delivery(tmp_path):
    invoices = [{k: v for k, v in row.items() if k != "delivery"} for row in INVOICES]
    frame = kpis(_company(tmp_path, invoices=invoices, inventory=INVENTORY), AT).set_index("name")
    assert frame.loc["inventory_value", "value"] == 1190
    assert np.isnan(frame.loc["dio", "value"]) and "no bills table" in frame.loc["dio", "definition"]
    assert np.isnan(frame.loc["digitalisation_rate", "value"])
    assert "no delivery column" in frame.loc["digitalisation_rate", "definition"]


def test_empty_windows_are_reported_absent(tmp_path):
    frame = kpis(_company(tmp_path, bills=BILLS, inventory=INVENTORY), "2025-12-31").set_index("name")
    assert np.isnan(frame.loc["dso", "value"]) and "no invoice was issued" in frame.loc["dso", "definition"]
    assert np.isnan(frame.loc["dpo", "value"]) and "no bill was received" in frame.loc["dpo", "definition"]
    one_snapshot = kpis(_company(tmp_path, "one", bills=BILLS, inventory=INVENTORY[4:]), AT).set_index("name")
    assert np.isnan(one_snapshot.loc["slow_moving_share", "value"])
    assert "fewer than two inventory snapshots" in one_snapshot.loc["slow_moving_share", "definition"]


def test_future_rows_change_nothing(tmp_path):
    before = kpis(_company(tmp_path, bills=BILLS, inventory=INVENTORY), AT)
    later_invoices = [*INVOICES, _invoice("I9", "C1", "2025-04-02", "2025-05-02", 5000, paid="2025-04-20")]
    later_bills = [*BILLS, {"bill_id": "B9", "supplier_id": "S1", "issue_date": "2025-04-01",
                            "due_date": "2025-05-01", "amount": 700, "paid_date": ""}]
    later_stock = [*INVENTORY, *_stock("2025-04-30", [("S2", 1, 1), ("S9", 9, 9)])]
    after = kpis(_company(tmp_path, "later", invoices=later_invoices, bills=later_bills, inventory=later_stock), AT)
    pd.testing.assert_frame_equal(before, after)


def test_aging_buckets_at_their_boundaries(tmp_path):
    at = pd.Timestamp(AT)
    rows = [_invoice(f"X{d}", "C1", "2024-06-01", f"{at - pd.Timedelta(days=d):%Y-%m-%d}", 10)
            for d in (-5, 0, 1, 30, 31, 60, 61, 90, 91)]
    frame = aging(_company(tmp_path, invoices=rows), AT).set_index("invoice_id")
    assert frame["days_overdue"].tolist() == [-5, 0, 1, 30, 31, 60, 61, 90, 91]
    assert frame["aging_bucket"].tolist() == ["current", "current", "1-30", "1-30", "31-60", "31-60",
                                              "61-90", "61-90", "90+"]


def test_bad_inventory_settings_name_the_setting():
    with pytest.raises(PolicyError, match=r"inventory\.abc_shares"):
        parse_policy({"inventory": {"abc_shares": [0.9, 0.8]}})
    with pytest.raises(PolicyError, match=r"inventory\.slow_lookback_days"):
        parse_policy({"inventory": {"slow_lookback_days": 0}})
    assert Policy().inventory.abc_shares == (0.8, 0.95)


def test_generated_company_figures_and_history(small_loaded):
    dates = pd.date_range("2024-09-30", periods=3, freq="ME")
    history = kpis_over_time(small_loaded, dates)
    assert list(history.index) == list(dates)
    assert {"dso", "dpo", "dio", "ccc", "overdue_share"} <= set(history.columns)
    assert history[["dso", "dpo", "dio"]].notna().all().all()
    assert ((history["dso"] > 10) & (history["dso"] < 120)).all()
    assert np.allclose(history["ccc"], history["dso"] + history["dio"] - history["dpo"])
