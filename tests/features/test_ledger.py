"""The ledger's rules: paid dates from payments, agreement, credit notes, currencies and rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features import ledger
from features.contract import Fx, Inv, Pay
from features.load import ContractError, validate
from features.working_capital import kpis
from tests.conftest import TODAY, write_tables

CUSTOMERS = [{"customer_id": "C1"}, {"customer_id": "C2"}]


def _inv(i, c, issue, amount, currency="EUR", paid="", paid_amount="", due=None):
    return {"invoice_id": i, "customer_id": c, "issue_date": issue, "due_date": due or issue, "amount": amount,
            "currency": currency, "paid_date": paid, "paid_amount": paid_amount}


def _pay(p, i, date, amount, currency=""):
    return {"payment_id": p, "invoice_id": i, "date": date, "amount": amount, "currency": currency}


FX = [{"date": "2025-01-01", "currency": "SEK", "rate": 0.09}, {"date": "2025-02-01", "currency": "SEK", "rate": 0.1}]


def _validate(tmp_path, invoices, payments=None, credit_notes=None, fx=None, base="EUR"):
    tables = {"customers": CUSTOMERS, "invoices": invoices, "payments": payments, "credit_notes": credit_notes,
              "fx_rates": fx}
    folder = write_tables(tmp_path / "co", **{k: v for k, v in tables.items() if v is not None})
    if base:
        (folder / "likvid.yaml").write_text(f"base_currency: {base}\n")
    return validate(folder, today=TODAY)


def test_partial_payments_settle_on_the_day_they_reach_the_amount(tmp_path):
    result = _validate(tmp_path, [_inv("I1", "C1", "2025-01-01", 100, due="2025-01-31")],
                       [_pay("P1", "I1", "2025-01-20", 60), _pay("P2", "I1", "2025-02-10", 39.995)])
    assert result.rejects.empty, result.rejects
    inv = result.company[Inv.TABLE].set_index(Inv.ID)
    assert inv.loc["I1", Inv.PAID] == pd.Timestamp("2025-02-10")  # within 0.01
    assert inv.loc["I1", Inv.PAID_AMOUNT] == pytest.approx(99.995)
    partly = ledger.open_amounts(result.company, "2025-02-01").set_index(Inv.ID)
    assert partly.loc["I1", "amount_open"] == pytest.approx(40)  # still open, and late: due 2025-01-31
    assert ledger.open_amounts(result.company, "2025-02-10").empty


def test_given_paid_dates_and_amounts_must_agree_with_the_payments(tmp_path):
    invoices = [_inv("I1", "C1", "2025-01-01", 100, paid="2025-01-25"),  # payments settle it on 2025-02-10
                _inv("I2", "C1", "2025-01-01", 100, paid="2025-01-20", paid_amount=90),  # 60 received by then
                _inv("I3", "C1", "2025-01-01", 100, paid="2025-01-20", paid_amount=60),  # the rest written off
                _inv("I4", "C1", "2025-01-01", 100, paid="2025-02-10")]  # agrees
    payments = [_pay("P1", "I1", "2025-01-20", 60), _pay("P2", "I1", "2025-02-10", 40),
                _pay("P3", "I2", "2025-01-20", 60), _pay("P4", "I3", "2025-01-20", 60),
                _pay("P5", "I4", "2025-02-10", 100)]
    result = _validate(tmp_path, invoices, payments)
    rejects = result.rejects.set_index(["table", "row"])
    assert rejects.loc[("invoices", 1), "column"] == "paid_date"
    assert "2025-01-25" in rejects.loc[("invoices", 1), "problem"]
    assert "2025-02-10" in rejects.loc[("invoices", 1), "problem"]
    assert rejects.loc[("invoices", 2), "column"] == "paid_amount"
    assert "90.00" in rejects.loc[("invoices", 2), "problem"] and "60.00" in rejects.loc[("invoices", 2), "problem"]
    # a payment of a rejected invoice is reported with it, never silently dropped
    assert {1, 2, 3} <= set(result.rejects.loc[result.rejects["table"] == "payments", "row"])
    assert sorted(result.company[Inv.TABLE][Inv.ID]) == ["I3", "I4"]
    read = result.summary.set_index("table")
    assert (read["rows_used"] + read["rows_rejected"] == read["rows_read"]).all()


def test_credit_notes_applied_and_on_the_account(tmp_path):
    invoices = [_inv("I1", "C1", "2025-01-01", 100, due="2025-01-31"), _inv("I2", "C2", "2025-01-05", 50)]
    credits = [{"credit_note_id": "K1", "customer_id": "C1", "date": "2025-01-10", "amount": 30, "invoice_id": "I1"},
               {"credit_note_id": "K2", "customer_id": "C2", "date": "2025-01-12", "amount": 20, "invoice_id": ""}]
    result = _validate(tmp_path, invoices, [_pay("P1", "I1", "2025-02-01", 70)], credits)
    assert result.rejects.empty, result.rejects
    inv = result.company[Inv.TABLE].set_index(Inv.ID)
    assert inv.loc["I1", Inv.PAID] == pd.Timestamp("2025-02-01") and inv.loc["I1", Inv.PAID_AMOUNT] == 70
    at = ledger.open_amounts(result.company, "2025-01-15").set_index(Inv.ID)["amount_open"]
    assert at.to_dict() == {"I1": 70, "I2": 50}
    assert ledger.unapplied_credit(result.company, "2025-01-15").to_dict() == {"C2": 20}
    v = kpis(result.company, "2025-01-15").set_index("name")["value"]
    assert v["open_ar"] == 70 + 50 - 20 and v["unapplied_credit"] == 20
    assert v["aging_current"] + v["aging_1-30"] == 120  # buckets hold invoices; the credit is no invoice's


def test_money_is_converted_at_the_latest_rate_on_or_before_its_date(tmp_path):
    invoices = [_inv("I1", "C2", "2025-01-10", 1000, currency="SEK"), _inv("I2", "C1", "2025-01-10", 100)]
    result = _validate(tmp_path, invoices, [_pay("P1", "I1", "2025-02-15", 40, currency="EUR")], fx=FX)
    assert result.rejects.empty and result.company.base_currency == "EUR"
    # 40 EUR pays 400 SEK at 2025-02-15's rate (0.1): 600 SEK still open, 60 EUR at the later as-of
    early = ledger.open_amounts(result.company, "2025-01-20").set_index(Inv.ID)
    late = ledger.open_amounts(result.company, "2025-03-01").set_index(Inv.ID)
    assert early.loc["I1", "amount_open"] == pytest.approx(90) and early.loc["I1", "currency"] == "SEK"
    assert late.loc["I1", "amount_open_doc"] == pytest.approx(600)
    assert late.loc["I1", "amount_open"] == pytest.approx(60)
    v = kpis(result.company, "2025-03-01").set_index("name")
    assert v.loc["open_ar", "value"] == pytest.approx(160) and v.loc["open_ar", "unit"] == "EUR"
    fx = result.company[Fx.TABLE]
    rates = ledger.rates_on(pd.Series(["SEK", "SEK", "EUR", None]), pd.Series(pd.to_datetime(
        ["2024-12-31", "2025-01-31", "2020-01-01", "2020-01-01"])), fx, "EUR")
    assert pd.isna(rates[0]) and rates[1] == 0.09 and rates[2] == 1 and rates[3] == 1


@pytest.mark.parametrize("dtype", ["string", object])
def test_currency_codes_are_each_row_trimmed_and_upper_cased_however_spelled(dtype):
    # Each spelling is cleaned once (features.ledger.codes): the rows get what cleaning each of them gives.
    raw = pd.Series([" sek", "SEK", "eur ", None, "", "  ", "Sek", "usd"] * 3, dtype=dtype, name="currency",
                    index=range(30, 6, -1))
    expected = raw.astype("string").str.strip().str.upper()
    pd.testing.assert_series_equal(ledger.codes(raw), expected.mask(expected == ""))
    fx = pd.DataFrame({Fx.DATE: pd.to_datetime(["2025-01-01"] * 2), Fx.CURRENCY: ["sek ", "USD"],
                       Fx.RATE: [0.1, 0.9]})
    rates = ledger.rates_on(raw, pd.Timestamp("2025-02-01"), fx, "EUR")
    assert rates.tolist() == [0.1, 0.1, 1.0, 1.0, 1.0, 1.0, 0.1, 0.9] * 3


def test_a_row_without_a_rate_is_rejected_with_the_reason(tmp_path):
    invoices = [_inv("I1", "C2", "2024-12-20", 1000, currency="SEK"), _inv("I2", "C1", "2025-01-10", 100)]
    result = _validate(tmp_path, invoices, [_pay("P1", "I1", "2025-01-15", 100), _pay("P2", "I2", "2025-01-15", 100)],
                       fx=FX)
    rejects = result.rejects.set_index(["table", "row"])["problem"]
    assert "no fx_rates rate for SEK on or before 2024-12-20" in rejects[("invoices", 1)]
    assert "rejected row of invoices" in rejects[("payments", 1)]
    assert result.company[Inv.TABLE][Inv.ID].tolist() == ["I2"]


def test_payments_before_the_invoice_or_after_today_are_rejected(tmp_path):
    result = _validate(tmp_path, [_inv("I1", "C1", "2025-01-10", 100)],
                       [_pay("P1", "I1", "2025-01-05", 10), _pay("P2", "I1", "2099-01-01", 10)])
    problems = result.rejects.set_index("row")["problem"]
    assert "before invoice I1's issue_date" in problems[1] and "after today" in problems[2]
    assert result.company[Pay.TABLE].empty


def test_the_base_currency_rule(tmp_path):
    invoices = [_inv("I1", "C2", "2025-01-10", 1000, currency="SEK"), _inv("I2", "C1", "2025-01-10", 100)]
    with pytest.raises(ContractError, match=r"several currencies \(EUR, SEK\)"):
        _validate(tmp_path / "a", invoices, fx=FX, base=None)
    one = _validate(tmp_path / "b", [_inv("I2", "C1", "2025-01-10", 100, currency="NOK")], base=None)
    assert one.company.base_currency == "NOK" and ledger.unit(one.company) == "NOK"
    none = _validate(tmp_path / "c", [_inv("I2", "C1", "2025-01-10", 100, currency="")], base=None)
    assert none.company.base_currency is None and ledger.unit(none.company) == "money"


def test_without_payments_paid_dates_say_what_they_said(tmp_path):
    result = _validate(tmp_path, [_inv("I1", "C1", "2025-01-10", 100, paid="2025-02-01", paid_amount=80)])
    inv = result.company[Inv.TABLE]
    assert inv[Inv.PAID].iloc[0] == pd.Timestamp("2025-02-01") and inv[Inv.PAID_AMOUNT].iloc[0] == 80
    assert ledger.receipts(result.company).to_dict() == {pd.Timestamp("2025-02-01"): 80}


def test_positions_are_the_index_s_on_unique_repeated_missing_and_empty_keys():
    rng = np.random.default_rng(1)
    pool = [f"K{i}" for i in range(400)]
    for trial in range(200):
        keys = list(rng.choice(pool, int(rng.integers(0, 300)), replace=trial % 4 == 0))
        looked = [None, *rng.choice(pool, int(rng.integers(0, 300)))]
        for kind in ("string", object):
            k, lookups = pd.Series(keys, dtype=kind), pd.Series(looked, dtype=kind)
            try:
                expected = pd.Index(k.astype(object)).get_indexer(lookups.astype(object))
            except pd.errors.InvalidIndexError:  # repeated keys: the index says so
                with pytest.raises(pd.errors.InvalidIndexError):
                    ledger.positions(k, lookups)
                continue
            assert np.array_equal(ledger.positions(k, lookups), expected), (trial, kind)


def test_of_invoices_gives_each_named_invoice_s_value_on_the_lookups_index():
    invoices = pd.DataFrame({Inv.ID: pd.Series(["I1", "I2", "I3"], dtype="string"),
                             Inv.CUSTOMER: pd.Series(["C1", "C2", "C1"], dtype="string")})
    ids = pd.Series(["I3", None, "NOPE", "I1", "I3"], index=[10, 11, 12, 13, 14], dtype="string")
    got = ledger.of_invoices(invoices, ids, Inv.CUSTOMER)
    assert got.index.tolist() == [10, 11, 12, 13, 14]
    assert [None if pd.isna(v) else v for v in got] == ["C1", None, None, "C1", "C1"]
