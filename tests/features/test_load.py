"""Loading and validation: every reject kind, every error, mapping, csv and parquet."""

from __future__ import annotations

import pandas as pd
import pytest

from features.load import ContractError, read_mapping, validate
from tests.conftest import TODAY, tiny_customers, tiny_invoices, tiny_orders, write_tables


def _invoice(**overrides) -> dict:
    row = {"invoice_id": "X1", "customer_id": "007", "issue_date": "2025-01-10", "due_date": "2025-02-09",
           "amount": "10", "paid_date": "", "delivery": "paper", "order_id": ""}
    return {**row, **overrides}


@pytest.mark.parametrize(
    ("bad", "column", "problem"),
    [
        (_invoice(invoice_id="I1"), "invoice_id", "duplicated invoice_id 'I1' (first in row 1)"),
        (_invoice(customer_id="999"), "customer_id", "unknown customer_id '999' (not in customers)"),
        (_invoice(due_date="2025-01-01"), "due_date", "due_date is before issue_date"),
        (_invoice(amount="-3"), "amount", "must be > 0"),
        (_invoice(amount="0"), "amount", "must be > 0"),
        (_invoice(amount="lots"), "amount", "not a number: 'lots'"),
        (_invoice(issue_date="2025-13-45"), "issue_date", "unparseable date '2025-13-45'"),
        (_invoice(issue_date="10/01/2025"), "issue_date", "unparseable date '10/01/2025'"),
        (_invoice(paid_date="2025-01-05"), "paid_date", "paid_date is before issue_date"),
        (_invoice(paid_date="2025-08-01"), "paid_date", "is after today (2025-07-01)"),
        (_invoice(dispute_date="2025-01-02"), "dispute_date", "dispute_date is before issue_date"),
        (_invoice(customer_id=""), "customer_id", "missing value"),
        (_invoice(delivery="fax"), "delivery", "must be one of electronic, paper"),
        (_invoice(order_id="O404"), "order_id", "unknown order_id 'O404' (not in orders)"),
        (_invoice(order_id="O1", customer_id="008"), "customer_id", "differs from orders O1's customer_id '007'"),
    ],
)
def test_each_invoice_reject_is_reported_and_good_rows_kept(tmp_path, bad, column, problem):
    data = write_tables(tmp_path, customers=tiny_customers(), invoices=tiny_invoices() + [bad],
                        orders=tiny_orders())
    result = validate(data, today=TODAY)
    rejects = result.rejects
    assert rejects["row"].tolist() == [4], rejects
    assert rejects["column"].tolist() == [column]
    assert problem in rejects["problem"].iloc[0]
    assert result.company["invoices"]["invoice_id"].tolist() == ["I1", "I2", "I3"]


def test_rejects_in_other_tables(tmp_path):
    data = write_tables(
        tmp_path,
        customers=tiny_customers() + [{"customer_id": "007", "name": "dup"}],
        invoices=tiny_invoices(),
        orders=tiny_orders() + [{"order_id": "O2", "customer_id": "404", "order_date": "2025-01-01",
                                 "amount": "5", "cancelled": "maybe"}],
        purchase_orders=[{"po_id": "P1", "supplier_id": "S1", "order_date": "2025-01-01", "amount": "9",
                          "delivered_date": "2024-12-01"}],
        bills=[
            {"bill_id": "B1", "supplier_id": "S1", "issue_date": "2025-01-05", "due_date": "2025-02-05",
             "amount": "9", "po_id": "P9"},
            {"bill_id": "B2", "supplier_id": "S2", "issue_date": "2025-01-05", "due_date": "2025-02-05",
             "amount": "9", "po_id": ""},
        ],
        inventory=[{"date": "2025-01-31", "sku": "A", "quantity": "-1", "unit_cost": "2"},
                   {"date": "2025-01-31", "sku": "B", "quantity": "3", "unit_cost": "2"}],
    )
    rejects = validate(data, today=TODAY).rejects.set_index(["table", "row"])
    assert "duplicated customer_id '007'" in rejects.loc[("customers", 3), "problem"]
    order_problems = set(rejects.loc[("orders", 2), "problem"])
    assert any("unknown customer_id '404'" in p for p in order_problems)
    assert any("not true/false" in p for p in order_problems)
    assert "delivered_date is before order_date" in rejects.loc[("purchase_orders", 1), "problem"]
    # P1 was rejected, so a bill naming P9 is an orphan; the supplier of B2 has no PO to check against.
    assert "unknown po_id 'P9'" in rejects.loc[("bills", 1), "problem"]
    assert ("bills", 2) not in rejects.index
    assert "negative inventory" in rejects.loc[("inventory", 1), "problem"]


def test_bill_supplier_must_match_its_purchase_order(tmp_path):
    data = write_tables(
        tmp_path, customers=tiny_customers(), invoices=tiny_invoices(),
        purchase_orders=[{"po_id": "P1", "supplier_id": "S1", "order_date": "2025-01-01", "amount": "9"}],
        bills=[{"bill_id": "B1", "supplier_id": "S7", "issue_date": "2025-01-05", "due_date": "2025-02-05",
                "amount": "9", "po_id": "P1"}],
    )
    rejects = validate(data, today=TODAY).rejects
    assert rejects[["table", "row", "column"]].values.tolist() == [["bills", 1, "supplier_id"]]


def test_reference_to_a_rejected_row_says_so(tmp_path):
    customers = tiny_customers() + [{"customer_id": "009", "credit_limit": "-5"}]
    invoices = tiny_invoices() + [_invoice(customer_id="009")]
    data = write_tables(tmp_path, customers=customers, invoices=invoices, orders=tiny_orders())
    rejects = validate(data, today=TODAY).rejects
    assert "refers to a rejected row of customers" in rejects.query("table == 'invoices'")["problem"].iloc[0]


def test_used_plus_rejected_equals_read_for_every_table(small_company, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "likvid.yaml").write_bytes((small_company / "likvid.yaml").read_bytes())  # its base currency
    (broken / "likvid.yaml").write_text((small_company / "likvid.yaml").read_text())  # its base currency
    for f in small_company.glob("*.csv"):
        frame = pd.read_csv(f, dtype=str, keep_default_na=False)
        bad = frame.iloc[:3].copy()
        first = frame.columns[0]
        bad[first] = ["", frame[first].iloc[0], "2025-99-99"][: len(bad)]
        pd.concat([frame, bad]).to_csv(broken / f.name, index=False)
    result = validate(broken, today=TODAY)
    for row in result.summary.itertuples():
        assert row.rows_used + row.rows_rejected == row.rows_read, row
        assert row.rows_rejected == result.rejects.query("table == @row.table")["row"].nunique()
        assert row.rows_rejected >= 1, row


def test_six_broken_invoice_rows_on_a_generated_company(small_company, tmp_path):
    """The issue's acceptance case: each broken row reported with its number, no good row lost."""
    folder = tmp_path / "six"
    folder.mkdir()
    for f in [*small_company.glob("*.csv"), small_company / "likvid.yaml"]:
        (folder / f.name).write_bytes(f.read_bytes())
    invoices = pd.read_csv(folder / "invoices.csv", dtype=str, keep_default_na=False)
    n, good = len(invoices), invoices.iloc[-1].to_dict()
    broken = [
        {**good, "invoice_id": invoices["invoice_id"].iloc[0]},
        {**good, "invoice_id": "B2", "customer_id": "NOPE"},
        {**good, "invoice_id": "B3", "due_date": "2000-01-01"},
        {**good, "invoice_id": "B4", "amount": "-12.5"},
        {**good, "invoice_id": "B5", "issue_date": "2025-13-45"},
        {**good, "invoice_id": "B6", "paid_date": "2000-01-01"},
    ]
    pd.concat([invoices, pd.DataFrame(broken)]).to_csv(folder / "invoices.csv", index=False)
    result = validate(folder, today=TODAY)
    rejected = result.rejects.query("table == 'invoices'")
    assert sorted(rejected["row"].unique()) == list(range(n + 1, n + 7))
    assert len(result.company["invoices"]) == n


def test_missing_required_column_is_an_error_naming_it(tiny):
    frame = pd.read_csv(tiny / "invoices.csv").drop(columns=["due_date"])
    frame.to_csv(tiny / "invoices.csv", index=False)
    with pytest.raises(ContractError, match="due_date"):
        validate(tiny, today=TODAY)


def test_missing_required_table_is_an_error(tiny):
    (tiny / "customers.csv").unlink()
    with pytest.raises(ContractError, match="customers: required table missing"):
        validate(tiny, today=TODAY)


def test_table_in_both_formats_is_an_error(tiny):
    pd.read_csv(tiny / "orders.csv").to_parquet(tiny / "orders.parquet")
    with pytest.raises(ContractError, match="both orders.csv and orders.parquet"):
        validate(tiny, today=TODAY)


def test_unreadable_file_is_an_error(tiny):
    (tiny / "orders.csv").unlink()
    (tiny / "orders.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ContractError, match="orders: unreadable file orders.parquet"):
        validate(tiny, today=TODAY)


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(ContractError, match="no such data folder"):
        validate(tmp_path / "nowhere")


def test_mapping_renames_their_columns_to_ours(tmp_path):
    theirs = pd.DataFrame(tiny_invoices()).rename(columns={"invoice_id": "Number", "due_date": "Due"})
    data = write_tables(tmp_path / "d", customers=tiny_customers(), invoices=theirs)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("invoices:\n  invoice_id: Number\n  due_date: Due\n")
    result = validate(data, mapping, today=TODAY)
    assert result.company["invoices"]["due_date"].notna().all()
    assert result.company["invoices"]["invoice_id"].tolist() == ["I1", "I2", "I3"]
    # The order link is unchecked because this folder has no orders table.
    assert result.rejects.empty


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus:\n  a: b\n", "unknown table 'bogus'"),
        ("invoices:\n  nonsense: b\n", "invoices has no column 'nonsense'"),
        ("invoices: [1, 2]\n", "must map our column names"),
    ],
)
def test_bad_mapping_is_an_error(tmp_path, text, message):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ContractError, match=message):
        read_mapping(path)


def test_mapping_naming_an_absent_column_is_an_error(tiny, tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("invoices:\n  due_date: DueDate\n")
    with pytest.raises(ContractError, match="names column 'DueDate' for due_date"):
        validate(tiny, mapping, today=TODAY)


def test_csv_and_parquet_load_the_same(tmp_path):
    csv = write_tables(tmp_path / "csv", customers=tiny_customers(), invoices=tiny_invoices())
    pq = write_tables(tmp_path / "pq", fmt="parquet", customers=tiny_customers(), invoices=tiny_invoices())
    a, b = validate(csv, today=TODAY).company, validate(pq, today=TODAY).company
    for name in ("customers", "invoices"):
        pd.testing.assert_frame_equal(a[name], b[name])


def test_parquet_with_native_types(tmp_path):
    invoices = pd.DataFrame(tiny_invoices())
    for col in ("issue_date", "due_date"):
        invoices[col] = pd.to_datetime(invoices[col])
    invoices["amount"] = invoices["amount"].astype(float)
    data = write_tables(tmp_path, fmt="parquet", customers=tiny_customers(), invoices=invoices)
    loaded = validate(data, today=TODAY).company["invoices"]
    assert loaded["amount"].tolist() == [100.0, 50.5, 75.0]
    assert str(loaded["issue_date"].dtype) == "datetime64[ns]"


def test_ids_keep_leading_zeros_and_extra_columns_are_ignored(tmp_path):
    invoices = [{**row, "notes": "x"} for row in tiny_invoices()]
    data = write_tables(tmp_path, customers=tiny_customers(), invoices=invoices)
    result = validate(data, today=TODAY)
    assert result.company["customers"]["customer_id"].tolist() == ["007", "008"]
    assert "notes" not in result.company["invoices"].columns
    assert result.ignored["invoices"] == ["notes"]


def test_paid_amount_defaults_to_amount_when_paid(tiny):
    invoices = validate(tiny, today=TODAY).company["invoices"].set_index("invoice_id")
    assert invoices.loc["I1", "paid_amount"] == 100.0
    assert pd.isna(invoices.loc["I2", "paid_amount"])
    assert invoices.loc["I3", "delivery"] is pd.NA or pd.isna(invoices.loc["I3", "delivery"])


def test_the_shipped_example_mapping_works(tmp_path):
    mapping = read_mapping("examples/mapping.yaml")
    customers = pd.DataFrame(tiny_customers()).rename(columns=mapping["customers"])
    invoices = pd.DataFrame(tiny_invoices()).rename(columns=mapping["invoices"])
    data = write_tables(tmp_path, customers=customers, invoices=invoices)
    result = validate(data, "examples/mapping.yaml", today=TODAY)
    assert result.rejects.empty
    assert len(result.company["invoices"]) == 3
