"""Invoice features over the ledger: open amounts net of payments and credit notes, in the base currency, and
what partial payments and credit notes say, all as of the date."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features import ledger
from features.contract import Credit, Fx, Inv, Pay
from features.invoices import BY_NAME, FEATURES, invoice_features
from features.load import Company, validate
from tests.conftest import TODAY, tiny_customers, write_tables

AT = pd.Timestamp("2025-03-31")


def test_open_amounts_are_the_ledgers_in_the_base(small_loaded):
    x = invoice_features(small_loaded, AT)
    owed = ledger.open_amounts(small_loaded, AT).set_index(Inv.ID)
    assert set(x[Inv.ID]) == set(owed.index)
    got = x.set_index(Inv.ID)["amount_open"]
    np.testing.assert_allclose(got.reindex(owed.index), owed["amount_open"], rtol=1e-12)
    assert (x["paid_share"] > 0).any() and (owed["currency"] != "EUR").any()


def _later_ledger_rows(company: Company, date: pd.Timestamp) -> Company:
    """Payments on every invoice open at ``date`` and credit notes (applied and unapplied) dated after it, and
    rates that would have moved every conversion."""
    open_ = ledger.open_amounts(company, date)
    later = date + pd.Timedelta(days=3)
    pay = company[Pay.TABLE]
    extra = pd.DataFrame({Pay.ID: "later-" + open_[Inv.ID].astype(str), Pay.INVOICE: open_[Inv.ID],
                          Pay.DATE: later, Pay.AMOUNT: open_["amount_open_doc"] / 2,
                          Pay.CURRENCY: open_["currency"]}).astype(pay.dtypes.to_dict())
    credits = company[Credit.TABLE]
    notes = pd.DataFrame({Credit.ID: "later-" + open_[Inv.ID].astype(str), Credit.CUSTOMER: open_[Inv.CUSTOMER],
                          Credit.DATE: later, Credit.AMOUNT: 1.0,
                          Credit.INVOICE: open_[Inv.ID].where(np.arange(len(open_)) % 2 == 0),
                          Credit.CURRENCY: open_["currency"], Credit.REASON: "later"})
    notes = notes.astype(credits.dtypes.to_dict())
    fx = company[Fx.TABLE]
    moved = fx.assign(**{Fx.DATE: fx[Fx.DATE] + pd.Timedelta(days=1), Fx.RATE: fx[Fx.RATE] * 3})
    moved = moved[moved[Fx.DATE] > fx[Fx.DATE].max()]
    tables = {**company.tables, Pay.TABLE: pd.concat([pay, extra], ignore_index=True),
              Credit.TABLE: pd.concat([credits, notes], ignore_index=True),
              Fx.TABLE: pd.concat([fx, moved, fx.assign(**{Fx.DATE: later, Fx.RATE: fx[Fx.RATE] * 2}).tail(1)],
                                  ignore_index=True)}
    return Company(tables, company.supplied, company.base_currency)


@pytest.mark.parametrize("day", ["2024-11-15", "2025-03-31"])
def test_later_payments_and_credit_notes_change_no_feature(small_loaded, day):
    date = pd.Timestamp(day)
    before = invoice_features(small_loaded, date)
    after = invoice_features(_later_ledger_rows(small_loaded, date), date)
    pd.testing.assert_frame_equal(before, after)


def _ledger_company(tmp_path, payments: list[dict], credits: list[dict]) -> Company:
    invoices = [
        {"invoice_id": "I1", "customer_id": "007", "issue_date": "2025-01-01", "due_date": "2025-01-31",
         "amount": "1000", "currency": "SEK"},
        {"invoice_id": "I2", "customer_id": "007", "issue_date": "2025-01-02", "due_date": "2025-03-01",
         "amount": "100", "currency": "EUR"},
        {"invoice_id": "I3", "customer_id": "008", "issue_date": "2025-01-02", "due_date": "2025-02-01",
         "amount": "50", "currency": "EUR"},
    ]
    fx = [{"date": "2025-01-01", "currency": "SEK", "rate": "0.09"},
          {"date": "2025-02-10", "currency": "SEK", "rate": "0.10"}]
    folder = write_tables(tmp_path / "co", customers=tiny_customers(), invoices=invoices, payments=payments,
                          credit_notes=credits, fx_rates=fx)
    (folder / "likvid.yaml").write_text("base_currency: EUR\n")
    return validate(folder, today=TODAY).company


def test_partial_payments_credits_and_rates_reach_the_features(tmp_path):
    payments = [{"payment_id": "P1", "invoice_id": "I1", "date": "2025-01-20", "amount": "400"},
                {"payment_id": "P2", "invoice_id": "I3", "date": "2025-01-25", "amount": "50"}]
    credits = [{"credit_note_id": "C1", "customer_id": "007", "date": "2025-01-28", "amount": "10",
                "invoice_id": "I2"},
               {"credit_note_id": "C2", "customer_id": "007", "date": "2025-01-29", "amount": "20"}]
    company = _ledger_company(tmp_path, payments, credits)
    x = invoice_features(company, "2025-02-15").set_index(Inv.ID)
    assert list(x.index) == ["I1", "I2"]  # I3 is settled by its payment
    # SEK at the as-of rate (0.10, from 2025-02-10), net of the instalment; EUR net of the applied credit
    assert x.loc["I1", "amount_open"] == pytest.approx(600 * 0.10)
    assert x.loc["I1", "amount"] == pytest.approx(1000 * 0.10)
    assert x.loc["I2", "amount_open"] == pytest.approx(90.0)
    assert x.loc["I1", "paid_share"] == pytest.approx(0.4) and x.loc["I2", "paid_share"] == pytest.approx(0.1)
    # the balance is less the unapplied credit; the overdue balance only counts what is past due and owed
    assert x.loc["I1", "open_amount"] == pytest.approx(60.0 + 90.0 - 20.0)
    assert x.loc["I1", "overdue_amount"] == pytest.approx(60.0)
    # one of its two credited invoices: customer 007 was credited on some, 008 on none
    assert x.loc["I1", "credited_share"] > 0
    before = invoice_features(company, "2025-01-26").set_index(Inv.ID)
    assert before.loc["I1", "amount_open"] == pytest.approx(600 * 0.09)  # the rate known then
    assert before.loc["I2", "paid_share"] == 0.0 and before.loc["I1", "open_amount"] == pytest.approx(54.0 + 100.0)


def test_the_ledger_habits_are_declared_once():
    for name, direction in (("instalment_share", 0), ("credited_share", 1), ("paid_share", 0)):
        assert name in FEATURES and BY_NAME[name].direction == direction
    words = BY_NAME["credited_share"].words({"credited_share": 0.25})
    assert words == "customer was credited on 25% of its invoices"


def test_the_base_currency_can_come_from_the_policy(tmp_path):
    from features.load import ContractError
    from features.policy import Policy

    payments = [{"payment_id": "P1", "invoice_id": "I3", "date": "2025-01-25", "amount": "50"}]
    credits = [{"credit_note_id": "C1", "customer_id": "008", "date": "2025-01-29", "amount": "5"}]
    company = _ledger_company(tmp_path, payments, credits)
    folder = tmp_path / "co"
    (folder / "likvid.yaml").unlink()
    with pytest.raises(ContractError, match="several currencies"):
        validate(folder, today=TODAY)
    given = validate(folder, today=TODAY, policy=Policy(base_currency="EUR")).company  # as `--config` gives it
    assert given.base_currency == company.base_currency == "EUR"
    assert ledger.open_amounts(given, "2025-02-15")["amount_open"].sum() == pytest.approx(1000 * 0.10 + 100)
