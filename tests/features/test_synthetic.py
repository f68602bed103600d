"""The synthetic company: deterministic, valid, and realistic where the models will look."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract import TABLES, Act, Credit, Fx, Inv, Pay
from features.load import validate
from features.synthetic import SyntheticConfig, _wd, generate, last_run, next_run, write

END = pd.Timestamp(SyntheticConfig.end)


@pytest.fixture(scope="module")
def default_company() -> dict[str, pd.DataFrame]:
    return generate(SyntheticConfig())


def test_same_seed_same_company_other_seed_other_company():
    config = SyntheticConfig(customers=20, years=1, seed=3)
    a, b = generate(config), generate(config)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    c = generate(SyntheticConfig(customers=20, years=1, seed=4))
    assert not a["invoices"][Inv.AMOUNT].equals(c["invoices"][Inv.AMOUNT])


def test_every_contract_table_is_written_and_validates_cleanly(tmp_path):
    folder = write(generate(SyntheticConfig(customers=25, years=1, seed=2)), tmp_path)
    result = validate(folder, today="2025-07-01")
    assert set(result.company.tables) == set(TABLES)
    assert result.rejects.empty, result.rejects.head()
    assert result.company.base_currency == "EUR"
    assert (folder / "truth" / "invoices.csv").exists()


def test_parquet_output_validates(tmp_path):
    folder = write(generate(SyntheticConfig(customers=10, years=0.5, seed=2)), tmp_path, fmt="parquet")
    assert validate(folder, today="2025-07-01").rejects.empty


def _eur(amounts: pd.Series, currency: pd.Series, dates: pd.Series | pd.Timestamp, fx: pd.DataFrame) -> pd.Series:
    """By hand: SEK at the day's rate (the generator writes one every day), EUR as it is."""
    rate = fx.set_index(Fx.DATE)[Fx.RATE]
    days = pd.Series(dates, index=amounts.index) if isinstance(dates, pd.Timestamp) else dates
    return amounts * np.where(currency.to_numpy() == "SEK", rate.reindex(days).to_numpy(), 1.0)


def test_late_share_and_dso_are_realistic(default_company):
    inv, pay, notes, fx = (default_company[t] for t in (Inv.TABLE, Pay.TABLE, Credit.TABLE, Fx.TABLE))
    due = inv[inv[Inv.DUE] < END]
    late = (due[Inv.PAID] > due[Inv.DUE]) | due[Inv.PAID].isna()
    assert 0.25 <= late.mean() <= 0.55
    # DSO in EUR, net of the instalments and credit notes open invoices have already had.
    open_ = inv[inv[Inv.PAID].isna()].set_index(Inv.ID)
    cur = open_[Inv.CURRENCY]
    pay = pay[pay[Pay.INVOICE].isin(open_.index)]
    theirs = pay[Pay.INVOICE].map(cur)
    in_eur = _eur(pay[Pay.AMOUNT], pay[Pay.CURRENCY], pay[Pay.DATE], fx)
    in_doc = np.where(pay[Pay.CURRENCY] == theirs, pay[Pay.AMOUNT], in_eur / _eur(pd.Series(1.0, index=pay.index),
                                                                                  theirs, pay[Pay.DATE], fx))
    paid = pd.Series(in_doc, index=pay.index).groupby(pay[Pay.INVOICE]).sum().reindex(open_.index, fill_value=0)
    assert (paid > 0).sum() > 10  # some open invoices are partly paid
    credited = notes[notes[Credit.INVOICE].isin(open_.index)].groupby(Credit.INVOICE)[Credit.AMOUNT].sum()
    owed = open_[Inv.AMOUNT] - paid - credited.reindex(open_.index, fill_value=0)
    on_account = notes[notes[Credit.INVOICE].isna()]
    on_account = _eur(on_account[Credit.AMOUNT], on_account[Credit.CURRENCY], END, fx)
    open_ar = _eur(owed, cur, END, fx).sum() - on_account.sum()
    recent = inv[inv[Inv.ISSUE] > END - pd.Timedelta(days=90)]
    invoiced_90 = _eur(recent[Inv.AMOUNT], recent[Inv.CURRENCY], recent[Inv.ISSUE], fx).sum()
    assert 30 <= open_ar / invoiced_90 * 90 <= 70


def test_partial_payers_credit_notes_and_a_second_currency(default_company):
    inv, pay, notes = default_company[Inv.TABLE], default_company[Pay.TABLE], default_company[Credit.TABLE]
    per_invoice = pay.groupby(Pay.INVOICE).size()
    assert 0.03 < (per_invoice > 1).mean() < 0.3
    assert notes[Credit.INVOICE].notna().any() and notes[Credit.INVOICE].isna().any()
    assert 0.05 < (inv[Inv.CURRENCY] == "SEK").mean() < 0.4
    assert (pay[Pay.CURRENCY] != pay[Pay.INVOICE].map(inv.set_index(Inv.ID)[Inv.CURRENCY])).any()
    fx = default_company[Fx.TABLE]
    assert fx[Fx.DATE].diff().dropna().dt.days.eq(1).all() and fx[Fx.DATE].min() <= inv[Inv.ISSUE].min()


def test_true_probabilities_match_observed_lateness(default_company):
    inv, truth = default_company["invoices"], default_company["truth/invoices"]
    settled = inv[Inv.PAID].notna().to_numpy()
    late = (inv[Inv.PAID] > inv[Inv.DUE]).to_numpy()[settled]
    p = truth["p_late_true"].to_numpy()[settled]
    assert abs(late.mean() - p.mean()) < 0.02
    high, low = p > 0.8, p < 0.2
    assert late[high].mean() > 0.75 and late[low].mean() < 0.25


def test_payments_fall_on_the_customers_payment_runs(default_company):
    inv, cust = default_company["invoices"], default_company["truth/customers"].set_index("customer_id")
    paid = inv.dropna(subset=[Inv.PAID]).join(cust, on=Inv.CUSTOMER)
    weekly = paid[paid["payment_run"] == "weekly"]
    assert (weekly[Inv.PAID].dt.day_of_week == weekly["run_weekday"]).all()
    monthly = paid[paid["payment_run"] == "monthly"]
    assert (monthly[Inv.PAID].dt.day == monthly["run_monthday"]).all()
    assert (paid.loc[paid["payment_run"] == "ad hoc", Inv.PAID].dt.day_of_week < 5).all()


def test_run_arithmetic():
    days = np.arange(20000, 20060)
    kind = np.array([0, 1, 2])
    for k in kind:
        k_ = np.full(len(days), k)
        nxt = next_run(days, k_, np.full(len(days), 2), np.full(len(days), 15))
        prv = last_run(days, k_, np.full(len(days), 2), np.full(len(days), 15))
        assert (nxt >= days).all() and (prv <= days).all()
        assert (next_run(nxt, k_, np.full(len(days), 2), np.full(len(days), 15)) == nxt).all()
        if k == 1:
            assert (_wd(nxt) == 2).all() and (nxt - days < 7).all()


def test_disputes_paper_and_deterioration_slow_payment(default_company):
    inv, truth = default_company["invoices"], default_company["truth/invoices"]
    delay = (inv[Inv.PAID] - inv[Inv.DUE]).dt.days
    disputed = inv[Inv.DISPUTE].notna()
    assert delay[disputed].mean() > delay[~disputed].mean() + 5
    paper = inv[Inv.DELIVERY] == "paper"
    assert truth.loc[paper, "mu_days"].mean() > truth.loc[~paper, "mu_days"].mean()
    cust = default_company["truth/customers"]
    worse = cust.dropna(subset=["deteriorates_from"])
    assert 0.05 < len(worse) / len(cust) < 0.3
    joined = inv.join(truth.set_index(Inv.ID)["mu_days"], on=Inv.ID).merge(worse, on=Inv.CUSTOMER)
    before = joined[Inv.DUE] < joined["deteriorates_from"] - pd.Timedelta(days=30)
    after = joined[Inv.DUE] > joined["deteriorates_from"] + pd.Timedelta(days=60)
    assert joined.loc[after, "mu_days"].mean() > joined.loc[before, "mu_days"].mean() + 8
    # Payments planned after the start are slower whichever invoice they pay, older ones included.
    older = (joined[Inv.ISSUE] < joined["deteriorates_from"]) & (joined[Inv.DUE] > joined["deteriorates_from"]
                                                                 + pd.Timedelta(days=30))
    assert older.sum() >= 10 and joined.loc[older, "mu_days"].mean() > joined.loc[before, "mu_days"].mean() + 4


def test_sales_grow_and_have_a_season(default_company):
    inv = default_company["invoices"]
    monthly = inv.groupby(inv[Inv.ISSUE].dt.to_period("M"))[Inv.AMOUNT].sum().iloc[1:-1]
    first, last = monthly.iloc[:12].sum(), monthly.iloc[-12:].sum()
    assert last > first * 1.05
    by_month = monthly.groupby(monthly.index.month).mean()
    assert by_month.max() > 1.2 * by_month.min()


def test_suppliers_offer_discounts_and_stock_has_snapshots(default_company):
    bills = default_company["bills"]
    offered = bills["discount_pct"].notna()
    assert 0.1 < offered.mean() < 0.6
    taken = bills[offered].dropna(subset=["paid_date"])
    assert ((taken["paid_date"] - taken["issue_date"]).dt.days <= 10).mean() > 0.6
    inventory = default_company["inventory"]
    assert inventory["date"].nunique() >= 30 and (inventory["quantity"] >= 0).all()
    assert set(default_company["cash_transactions"]["category"]) >= {"payroll", "rent", "tax"}


def test_the_collections_log_reminds_calls_and_records_promises(tmp_path):
    tables = generate(SyntheticConfig(customers=40, years=1, seed=5))
    log, truth, inv = tables[Act.TABLE], tables["truth/actions"], tables[Inv.TABLE].set_index(Inv.ID)
    assert set(log[Act.KIND]) == {"reminder", "call", "promise", "dispute", "resolved"}
    promises = log[log[Act.KIND] == "promise"]
    assert promises[Act.PROMISED].notna().all() and (promises[Act.PROMISED] >= promises[Act.DATE]).all()
    kept = truth.set_index(Act.ID).loc[promises[Act.ID], "kept"]
    assert 0.5 < kept.mean() < 0.85  # seven in ten are kept
    paid = inv[Inv.PAID].reindex(promises[Act.INVOICE]).to_numpy()
    assert (paid[kept.to_numpy()] == promises.loc[kept.to_numpy(), Act.PROMISED].to_numpy()).all()
    reminded = log[log[Act.KIND] == "reminder"]
    due = inv[Inv.DUE].reindex(reminded[Act.INVOICE]).to_numpy()
    assert ((reminded[Act.DATE].to_numpy() - due) >= np.timedelta64(7, "D")).all()
    assert tables[Act.TABLE].equals(generate(SyntheticConfig(customers=40, years=1, seed=5))[Act.TABLE])
