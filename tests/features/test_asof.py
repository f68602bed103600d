"""The as-of rule: the future changes nothing in the view of the past."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import ledger
from features.asof import as_of, last_known_date
from features.contract import TABLES, Credit, Fx, Inv, Ord, Pay
from features.load import Company, validate
from features.synthetic import SyntheticConfig, generate, write
from tests.conftest import TODAY, tiny_customers, tiny_invoices, write_tables


@pytest.fixture(scope="module")
def company(tmp_path_factory) -> Company:
    out = tmp_path_factory.mktemp("asof")
    return validate(write(generate(SyntheticConfig(customers=15, years=1.0, seed=5)), out)).company


def _future_version(company: Company, date: pd.Timestamp, seed: int, extra: int, shift: int) -> Company:
    """Append ``extra`` rows per table born after ``date`` and push every later-learned fact ``shift`` days out."""
    rng = np.random.default_rng(seed)
    tables = {}
    for name, frame in company.tables.items():
        table = TABLES[name]
        frame = frame.copy()
        for column in table.learned:
            frame.loc[frame[column] > date, column] += pd.Timedelta(days=shift)
        if table.born and len(frame) and extra:
            new = frame.sample(extra, replace=True, random_state=int(rng.integers(1 << 31))).copy()
            born = date + pd.Series(pd.to_timedelta(rng.integers(1, 400, extra), unit="D"), index=new.index)
            delta = born - new[table.born].fillna(date)
            for column in [*table.learned, *table.planned]:
                new[column] = new[column] + delta
            new[table.born] = born
            for key in table.key[:1] if len(table.key) == 1 else ():  # a rate keeps its currency: (date, currency)
                if new[key].dtype == "string":
                    new[key] = "future-" + pd.Series(range(extra), index=new.index).astype(str)
            new.index = pd.RangeIndex(frame.index.max() + 1, frame.index.max() + 1 + extra, name=frame.index.name)
            frame = pd.concat([frame, new])
        tables[name] = frame
    return Company(tables, company.supplied, company.base_currency)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(day=st.integers(0, 364), seed=st.integers(0, 10_000), extra=st.integers(0, 40), shift=st.integers(1, 500))
def test_future_rows_and_later_dates_change_nothing(company, day, seed, extra, shift):
    date = pd.Timestamp("2024-07-01") + pd.Timedelta(days=day)
    before = as_of(company, date)
    after = as_of(_future_version(company, date, seed, extra, shift), date)
    assert before.tables.keys() == after.tables.keys()
    for name in before.tables:
        pd.testing.assert_frame_equal(before[name], after[name], check_like=False, obj=name)
    # and so what the ledger derives: open amounts net of payments and credits, in the base currency
    pd.testing.assert_frame_equal(ledger.open_amounts(before, date), ledger.open_amounts(after, date))
    pd.testing.assert_series_equal(ledger.unapplied_credit(before, date), ledger.unapplied_credit(after, date))
    pd.testing.assert_series_equal(ledger.receipts(before), ledger.receipts(after))


def test_the_fixture_has_the_ledger_tables(company):
    assert {Pay.TABLE, Credit.TABLE, Fx.TABLE} <= set(company.tables) and company.base_currency == "EUR"
    assert (company[Pay.TABLE].groupby(Pay.INVOICE).size() > 1).any()


def test_later_facts_read_as_not_yet_happened(tiny):
    company = validate(tiny, today=TODAY).company
    view = as_of(company, "2025-02-03")
    invoices = view[Inv.TABLE].set_index(Inv.ID)
    assert list(invoices.index) == ["I1", "I2", "I3"]
    assert pd.isna(invoices.loc["I3", Inv.PAID])
    assert pd.isna(invoices.loc["I1", Inv.PAID]) and pd.isna(invoices.loc["I1", Inv.PAID_AMOUNT])


def test_rows_not_yet_born_are_dropped(tiny):
    view = as_of(validate(tiny, today=TODAY).company, "2025-01-31")
    assert view[Inv.TABLE][Inv.ID].tolist() == ["I1", "I2"]
    assert as_of(validate(tiny, today=TODAY).company, "2024-12-19")[Ord.TABLE].empty


def test_disputes_deliveries_and_cancellations_are_known_only_when_dated(tmp_path):
    invoices = tiny_invoices()
    invoices[0]["dispute_date"] = "2025-01-20"
    orders = [{"order_id": "O1", "customer_id": "007", "order_date": "2024-12-20", "amount": "100",
               "promised_date": "2025-01-10", "cancelled": "true"}]
    pos = [{"po_id": "P1", "supplier_id": "S", "order_date": "2025-01-01", "amount": "1",
            "delivered_date": "2025-01-15"}]
    company = validate(write_tables(tmp_path, customers=tiny_customers(), invoices=invoices,
                                    orders=orders, purchase_orders=pos), today=TODAY).company
    early, late = as_of(company, "2025-01-09"), as_of(company, "2025-01-25")
    assert pd.isna(early[Inv.TABLE].set_index(Inv.ID).loc["I1", Inv.DISPUTE])
    assert late[Inv.TABLE].set_index(Inv.ID).loc["I1", Inv.DISPUTE] == pd.Timestamp("2025-01-20")
    assert not early[Ord.TABLE][Ord.CANCELLED].iloc[0]
    assert late[Ord.TABLE][Ord.CANCELLED].iloc[0]
    assert pd.isna(early["purchase_orders"]["delivered_date"].iloc[0])
    assert late["purchase_orders"]["delivered_date"].iloc[0] == pd.Timestamp("2025-01-15")


def test_default_as_of_is_the_last_event_not_a_due_date(tiny):
    company = validate(tiny, today=TODAY).company
    # Latest event: I3 paid 2025-02-20; due dates (up to 2025-03-01) are plans, not events.
    assert last_known_date(company) == pd.Timestamp("2025-02-20")
    pd.testing.assert_frame_equal(as_of(company)[Inv.TABLE], as_of(company, "2025-02-20")[Inv.TABLE])


def test_a_view_is_reused_at_its_date_and_filtered_at_an_earlier_one(tiny):
    company = validate(tiny, today=TODAY).company
    view = as_of(company, "2025-02-03")
    again = as_of(view, "2025-02-03")
    pd.testing.assert_frame_equal(again[Inv.TABLE], view[Inv.TABLE])
    again[Inv.TABLE].loc[again[Inv.TABLE].index[0], Inv.AMOUNT] = -1.0  # the caller's copy only
    assert (view[Inv.TABLE][Inv.AMOUNT] > 0).all()
    pd.testing.assert_frame_equal(as_of(view, "2025-01-31")[Inv.TABLE], as_of(company, "2025-01-31")[Inv.TABLE])
    # a plain company built from a view's tables is not taken for a view: the rule applies again
    rebuilt = Company(dict(view.tables), view.supplied)
    pd.testing.assert_frame_equal(as_of(rebuilt, "2025-01-31")[Inv.TABLE], as_of(company, "2025-01-31")[Inv.TABLE])


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(day=st.integers(60, 364), seed=st.integers(0, 10_000), extra=st.integers(1, 40), shift=st.integers(1, 500))
def test_future_rows_change_no_invoice_issued_after_a_snapshot(company, day, seed, extra, shift):
    """The payment-timing model's rows of invoices issued after a snapshot date (``training.examples.issued_later``),
    labelled as known at a date: rows born after it, and facts learned after it, change none of them."""
    from training.examples import issued_later

    at = pd.Timestamp("2024-07-01") + pd.Timedelta(days=day)
    dates = [at - pd.Timedelta(days=d) for d in (50, 30, 10)]
    before = issued_later(company, at, dates, 21)
    after = issued_later(_future_version(company, at, seed, extra, shift), at, dates, 21)
    assert len(before) and before[Inv.ISSUE].le(at).all()
    pd.testing.assert_frame_equal(before, after)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(day=st.integers(120, 364), seed=st.integers(0, 10_000), extra=st.integers(1, 40), shift=st.integers(1, 500))
def test_future_rows_change_no_training_snapshot(company, day, seed, extra, shift):
    """Training's snapshots as of a date (``training.examples.examples``: which dates, their features and their
    labels known then): rows born after the date, and facts learned after it, change none of them, whichever
    weekday the company's data now ends on."""
    from training.examples import ExampleConfig, examples

    at = pd.Timestamp("2024-07-01") + pd.Timedelta(days=day)
    cfg = ExampleConfig(every_days=14, warmup_days=60)
    later = _future_version(company, at, seed, extra, shift)
    assert last_known_date(later) > at
    before, after = examples(company, at, cfg, workers=1), examples(later, at, cfg, workers=1)
    assert len(before)
    pd.testing.assert_frame_equal(before, after)
