"""Training snapshots read the ledger sorted once (``ledger_pass``) instead of recomputing it per date:
the values are the very ones the per-date computation gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features import ledger
from features.asof import as_of
from features.contract import Credit, Inv, Ord, Pay
from features.invoices import (
    FeatureConfig,
    _payment_runs,
    history,
    invoice_features,
    ledger_pass,
    snapshot_dates,
    snapshots,
)

CFG = FeatureConfig(grace_days=2)


@pytest.fixture(scope="module")
def company(small_loaded):
    assert len(small_loaded[Pay.TABLE]) and small_loaded[Credit.TABLE][Credit.INVOICE].notna().any()
    assert len(ledger.currencies_used(small_loaded.tables)) > 1, "payments in other currencies are covered"
    return small_loaded


@pytest.fixture(scope="module")
def dates(company):
    view = as_of(company)
    first = view[Inv.TABLE][Inv.ISSUE].min() + pd.Timedelta(days=120)
    return snapshot_dates(view, first, view.date, 45)


def _old_ledger_habits(view, inv, cfg):
    """The per-date computation the pass replaced: counts and sets over the view's payments and credit notes."""
    k, out = cfg.prior_strength, {}
    pay, credits = view.get(Pay.TABLE), view.get(Credit.TABLE)
    owner = inv.set_index(Inv.ID)[Inv.CUSTOMER]
    n = pay.groupby(pay[Pay.INVOICE].astype(object)).size()
    many = (n > 1).astype(float).groupby(owner.reindex(n.index).to_numpy()).agg(["sum", "size"])
    out["instalment_share"] = (many["sum"] + k * float((n > 1).mean())) / (many["size"] + k)
    credited = inv[Inv.ID].astype(object).isin(set(credits[Credit.INVOICE].dropna().astype(object)))
    per = credited.astype(float).groupby(inv[Inv.CUSTOMER]).agg(["sum", "size"])
    out["credited_share"] = (per["sum"] + k * float(credited.mean())) / (per["size"] + k)
    return out


def _old_order_lead(view, inv):
    linked = inv.dropna(subset=[Inv.ORDER]).merge(view[Ord.TABLE][[Ord.ID, Ord.DATE]], left_on=Inv.ORDER,
                                                  right_on=Ord.ID, how="inner")
    return (linked[Inv.ISSUE] - linked[Ord.DATE]).dt.days.groupby(linked[Inv.CUSTOMER]).median()


def _same_where_given(new: pd.Series, old: pd.Series) -> None:
    """``new`` (over every customer) equals ``old`` on old's customers and is empty elsewhere."""
    np.testing.assert_array_equal(new.reindex(old.index).to_numpy(float), old.to_numpy(float))
    assert new.drop(index=old.index, errors="ignore").isna().all()


def test_one_pass_gives_the_per_date_values(company, dates):
    passed = ledger_pass(company)
    for date in dates:
        known = history(company, date, CFG, passed)
        view = as_of(company, date)
        inv = view[Inv.TABLE]
        old_reduced = ledger.reduced(view, inv)
        np.testing.assert_array_equal(known.reduced.to_numpy(), old_reduced.to_numpy())  # bit for bit
        assert (known.reduced.index == inv[Inv.ID].astype(object)).all()
        habits = _old_ledger_habits(view, inv, CFG)
        for col in ("instalment_share", "credited_share"):
            _same_where_given(known.per_customer[col], habits[col])
        _same_where_given(known.per_customer["order_lead_days"], _old_order_lead(view, inv))
        runs = _payment_runs(view)  # the per-date computation of the usual payment days
        assert len(runs) > 20
        for col in runs.columns:
            _same_where_given(known.per_customer[col], runs[col])
        issued = ledger.to_base(inv[Inv.AMOUNT], inv[Inv.CURRENCY], inv[Inv.ISSUE], view.get("fx_rates"),
                                ledger.base_of(view))
        pd.testing.assert_series_equal(known.typical.dropna(), issued.groupby(inv[Inv.CUSTOMER]).median(),
                                       check_exact=True, check_names=False)


def test_snapshots_from_one_pass_equal_each_date_computed_alone(company, dates):
    """Every feature of every snapshot row, against ``history`` at each date alone (its pass built from the
    view at that date: only what was known then)."""
    stacked = snapshots(company, dates, CFG)
    alone = pd.concat([invoice_features(company, d, CFG) for d in dates], ignore_index=True)  # a pass per date
    assert len(stacked) > 1000 and stacked[Inv.ID].nunique() > 300
    assert (stacked["paid_share"] > 0).any(), "partly paid invoices are among the rows"
    pd.testing.assert_frame_equal(stacked, alone, check_exact=True)


def test_a_pass_of_other_invoices_is_refused(company):
    inv = company[Inv.TABLE]
    at = inv[Inv.ISSUE].max()
    for other in (company.replace(**{Inv.TABLE: inv.iloc[::2]}),
                  company.replace(**{Inv.TABLE: inv.assign(**{Inv.ID: inv[Inv.ID] + "x"})})):
        with pytest.raises(ValueError, match="another company"):
            history(company, at, CFG, ledger_pass(other))


def test_snapshots_built_by_two_processes_equal_one(company, dates):
    """Forked workers build each date's rows as this process would; they come back in date order."""
    pd.testing.assert_frame_equal(snapshots(company, dates, CFG, workers=2), snapshots(company, dates, CFG),
                                  check_exact=True)


def test_customer_features_from_one_pass_equal_each_date_computed_alone(company, dates):
    """Customer snapshots read the ledger's sums from the pass of the latest view: the per-date values."""
    from features.customers import customer_features

    view = as_of(company)
    passed = ledger_pass(view)
    for date in dates:
        pd.testing.assert_frame_equal(customer_features(view, date, passed=passed), customer_features(view, date),
                                      check_exact=True)
