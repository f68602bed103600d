"""The ledger's money rules, in one place: open amounts, paid dates from payments, currencies.

CONTRACT.md "Open amount": an invoice's open amount at a date is its amount less the payments and
the credit notes applied to it dated on or before that date; with a ``payments`` table, the day it
first reaches zero (within ``TOLERANCE``) is its paid date. "Currencies": the tables keep document
amounts in their row's currency; money is given in the base currency at the latest ``fx_rates``
rate on or before the row's date (for items still open: on or before as-of). The functions here
give those base amounts; ``reconcile`` is the check ``features.load.validate`` runs last.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.asof import as_of
from features.company import REJECT_COLUMNS, Company, ContractError
from features.contract import TABLES, Bill, Credit, Fx, Inv, Pay, empty_frame
from features.policy import Policy, PolicyError, load_policy

TOLERANCE = 0.01  # an open amount within this of zero, in its currency, is settled
# The tables that carry money in a row currency, with the date their money is converted at.
DATED = {Inv.TABLE: (Inv.CURRENCY, Inv.ISSUE), Bill.TABLE: (Bill.CURRENCY, Bill.ISSUE),
         Pay.TABLE: (Pay.CURRENCY, Pay.DATE), Credit.TABLE: (Credit.CURRENCY, Credit.DATE)}
MONEY = "money"  # the unit of money when the data names no currency
_NO_RATE = "no fx_rates rate on or before the row's date"


def codes(currencies: pd.Series) -> pd.Series:
    """Currency codes as written, trimmed and upper-cased (NA stays NA: the row's default)."""
    place, spelled = _spellings(currencies)
    spelled = pd.concat([spelled, pd.Series([pd.NA], dtype=spelled.dtype)], ignore_index=True)  # place -1: NA
    return pd.Series(spelled.array.take(place), index=currencies.index, name=currencies.name)


def _spellings(currencies: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Each row's place among the distinct ways ``currencies`` are written (-1: NA), and the code of each way. Each
    is cleaned once, not each row: at 985,325 invoices, trimming and upper-casing every row was 0.18 s of the
    forecast."""
    text = currencies.astype("string")
    place, spelled = pd.factorize(text)
    clean = pd.Series(spelled, dtype=text.dtype).str.strip().str.upper()
    return place, clean.mask(clean == "")


def currencies_used(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """Every currency a money row names, sorted."""
    found: set[str] = set()
    for name, (column, _) in DATED.items():
        if name in tables:
            found |= set(codes(tables[name][column]).dropna())
    return sorted(found)


def resolve_base(tables: Mapping[str, pd.DataFrame], configured: str | None = None) -> str | None:
    """The base currency: ``configured`` (likvid.yaml ``base_currency``), else the one currency the data
    uses (``None`` when it names none); several without a setting is an error naming them."""
    if configured:
        return configured
    found = currencies_used(tables)
    if len(found) > 1:
        raise ContractError([f"the data uses several currencies ({', '.join(found)}) and likvid.yaml sets no "
                             f"base_currency: set it to the one to report in (fx_rates give the others in it)"])
    return found[0] if found else None


def base_of(company: Company) -> str | None:
    """The company's base currency (as validated, else by the rule from its data)."""
    return company.base_currency or resolve_base(company.tables)


def unit(company: Company) -> str:
    """The name of the base currency, for output columns; ``money`` when the data names none."""
    return base_of(company) or MONEY


def rates_on(currencies: pd.Series, dates: pd.Series | pd.Timestamp, fx: pd.DataFrame,
             base: str | None) -> np.ndarray:
    """Units of ``base`` for one unit of each row's currency at the latest rate on or before its date.

    A row with no currency is in the base (rate 1); NaN where no rate is known by that date.
    """
    spelling, spelled = _spellings(currencies)
    place, named = pd.factorize(spelled)
    cur = np.append(place, -1)[spelling]  # each row's place among the currencies named, -1: none
    n = len(cur)
    if isinstance(dates, pd.Timestamp):
        when = np.full(n, np.datetime64(dates.to_datetime64(), "ns"))
    else:
        when = pd.DatetimeIndex(dates).to_numpy("datetime64[ns]")
    out = np.full(n, np.nan)
    in_base = [i for i, code in enumerate(named) if code == base]
    is_base = (cur < 0) | (cur == in_base[0]) if in_base else cur < 0
    out[is_base] = 1.0
    if len(fx) and not is_base.all():
        fx_codes = codes(fx[Fx.CURRENCY]).to_numpy(dtype=object, na_value=None)
        for i, code in enumerate(named):
            if code == base:
                continue
            rows = np.flatnonzero(cur == i)
            g = fx[fx_codes == code].sort_values(Fx.DATE, kind="stable")
            if g.empty:
                continue
            pos = np.searchsorted(g[Fx.DATE].to_numpy("datetime64[ns]"), when[rows], side="right") - 1
            ok = (pos >= 0) & ~np.isnat(when[rows])
            out[rows[ok]] = g[Fx.RATE].to_numpy(float)[pos[ok]]
    return out


def to_base(amounts: pd.Series, currencies: pd.Series, dates: pd.Series | pd.Timestamp, fx_rates: pd.DataFrame,
            base: str | None) -> pd.Series:
    """Amounts in the base currency, each at the latest rate on or before its date (NaN: no rate)."""
    return pd.Series(amounts.to_numpy(float) * rates_on(currencies, dates, fx_rates, base), index=amounts.index)


def base_amounts(company: Company, table: str, column: str | None = None,
                 at: pd.Timestamp | None = None) -> pd.Series:
    """A money column of a table in the base currency, at each row's own date (``at``: one date for all)."""
    frame = company.get(table)
    cur, date = DATED[table]
    amounts = frame[column or (Inv.AMOUNT if table == Inv.TABLE else "amount")]
    return to_base(amounts, frame[cur], frame[date] if at is None else at, company.get(Fx.TABLE), base_of(company))


# --- open amounts --------------------------------------------------------------------------------

def positions(keys: pd.Series, lookups: pd.Series) -> np.ndarray:
    """Where each of ``lookups`` sits among ``keys`` (unique), -1 where it is not (NA too): what
    ``pd.Index(keys).get_indexer(lookups)`` gives, by one Arrow hash lookup of the keys and the lookups together
    (1M payments into 1M invoice ids: 0.30 s of CPU, against 0.48 s with a separate count of distinct keys). Repeated
    or missing keys go to the index, which says what is wrong."""
    key, look = (_arrow(s) for s in (keys, lookups))
    if not key.null_count and key.type == look.type:
        # The keys are looked up too, in the same hash table: each finds its own row exactly when none repeats.
        found = pc.index_in(pa.concat_arrays([key, look]), value_set=key).fill_null(-1).to_numpy(zero_copy_only=False)
        if np.array_equal(found[: len(key)], np.arange(len(key))):
            return found[len(key):].astype(np.intp)
    return pd.Index(keys.astype(object)).get_indexer(lookups.astype(object))


def of_invoices(invoices: pd.DataFrame, invoice_ids: pd.Series, column: str) -> pd.Series:
    """``column`` of the invoice each of ``invoice_ids`` names (NA where none), on their index: only the invoices
    named are indexed (one Arrow lookup over the invoices), not the million a ledger holds."""
    named = invoices[is_in(invoices[Inv.ID], invoice_ids)].set_index(Inv.ID)[column]
    return named.reindex(invoice_ids).set_axis(invoice_ids.index)


def is_in(ids: pd.Series, refs: pd.Series) -> pd.Series:
    """Which of ``ids`` some reference names (NA refs name none), by one Arrow hash lookup, as ``positions``
    finds them (``isin`` on plain objects was 1.6 s a call in a 1M-invoice forecast's profile)."""
    named, known = _arrow(ids), _arrow(refs.dropna())
    if named.type != known.type:
        return ids.astype(object).isin(refs.dropna().astype(object))
    found = pc.is_in(named, value_set=known, skip_nulls=True).fill_null(False)
    return pd.Series(found.to_numpy(zero_copy_only=False), index=ids.index, dtype=bool)


def _arrow(values: pd.Series) -> pa.Array:
    """``values`` as one Arrow array (strings as ``large_string``, the type pandas keeps them in)."""
    out = pa.array(values.array, from_pandas=True)
    out = out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out
    return out.cast(pa.large_string()) if pa.types.is_string(out.type) else out


def _invoice_currency(rows: pd.DataFrame, invoice_col: str, invoices: pd.DataFrame,
                      at: np.ndarray | None = None) -> pd.Series:
    """Each row's invoice's currency code (NA: an unknown invoice, or one naming none); ``at``: ``positions``
    of the rows' invoices in ``invoices`` when the caller has them."""
    at = positions(invoices[Inv.ID], rows[invoice_col]) if at is None else at
    cur = np.append(codes(invoices[Inv.CURRENCY]).to_numpy(dtype=object, na_value=pd.NA), pd.NA)
    return pd.Series(cur[at], index=rows.index, dtype="string")  # -1 takes the NA appended last


def _in_invoice_currency(rows: pd.DataFrame, invoice_col: str, date_col: str, amount_col: str, cur_col: str,
                         invoices: pd.DataFrame, fx: pd.DataFrame, base: str | None,
                         at: np.ndarray | None = None) -> pd.Series:
    """Payments or credits in their invoice's currency, converted through the base at their own date."""
    theirs = _invoice_currency(rows, invoice_col, invoices, at)
    own = codes(rows[cur_col]).fillna(theirs)
    same = (own.fillna("") == theirs.fillna("")).to_numpy(bool)
    factor = np.ones(len(rows))
    if not same.all():
        factor[~same] = (rates_on(own[~same], rows.loc[~same, date_col], fx, base)
                         / rates_on(theirs[~same], rows.loc[~same, date_col], fx, base))
    return pd.Series(rows[amount_col].to_numpy(float) * factor, index=rows.index)


def _reductions(invoices: pd.DataFrame, payments: pd.DataFrame, credits: pd.DataFrame, fx: pd.DataFrame,
                base: str | None, pay_at: np.ndarray | None = None,
                credit_at: np.ndarray | None = None) -> pd.DataFrame:
    """Every payment, then every applied credit note, in its invoice's currency: ``invoice_id``, ``at`` (the
    invoice's position in ``invoices``, -1: unknown; ``pay_at``, ``credit_at``: the payments' and the applied
    credit notes' when the caller has them), ``date``, ``cash``, ``credit``."""
    applied = credits[credits[Credit.INVOICE].notna()]
    pay_at = positions(invoices[Inv.ID], payments[Pay.INVOICE]) if pay_at is None else pay_at
    credit_at = positions(invoices[Inv.ID], applied[Credit.INVOICE]) if credit_at is None else credit_at
    parts = [
        pd.DataFrame({Inv.ID: payments[Pay.INVOICE].to_numpy(), "at": pay_at, "date": payments[Pay.DATE].to_numpy(),
                      "cash": _in_invoice_currency(payments, Pay.INVOICE, Pay.DATE, Pay.AMOUNT, Pay.CURRENCY,
                                                   invoices, fx, base, pay_at).to_numpy(), "credit": 0.0}),
        pd.DataFrame({Inv.ID: applied[Credit.INVOICE].to_numpy(), "at": credit_at,
                      "date": applied[Credit.DATE].to_numpy(),
                      "cash": 0.0, "credit": _in_invoice_currency(applied, Credit.INVOICE, Credit.DATE, Credit.AMOUNT,
                                                                  Credit.CURRENCY, invoices, fx, base,
                                                                  credit_at).to_numpy()}),
    ]
    events = pd.concat(parts, ignore_index=True)
    events["date"] = pd.to_datetime(events["date"]).astype("datetime64[ns]")
    return events


def _per_day(key: np.ndarray, events: pd.DataFrame) -> pd.DataFrame:
    """``events``' cash and credit summed per ``key`` (a non-negative code per event; -1: left out) and day,
    ordered by key then day: each sum runs over the events in their order, as a groupby on the ids does."""
    keep = key >= 0
    frame = pd.DataFrame({"key": key[keep], "date": events["date"].to_numpy()[keep],
                          "cash": events["cash"].to_numpy()[keep], "credit": events["credit"].to_numpy()[keep]})
    return frame.groupby(["key", "date"], as_index=False)[["cash", "credit"]].sum()


def payment_events(invoices: pd.DataFrame, payments: pd.DataFrame, credits: pd.DataFrame, fx: pd.DataFrame,
            base: str | None) -> pd.DataFrame:
    """What reduced each invoice, per invoice and day, in its currency: ``invoice_id, date, cash, credit``,
    ordered by invoice id and day."""
    events = _reductions(invoices, payments, credits, fx, base)
    code, ids = pd.factorize(events[Inv.ID].astype(object), sort=True)  # the order a groupby on the ids gives
    days = _per_day(code, events)
    days.insert(0, Inv.ID, np.asarray(ids, dtype=object)[days.pop("key").to_numpy()])
    return days


def invoice_events(invoices: pd.DataFrame, payments: pd.DataFrame, credits: pd.DataFrame, fx: pd.DataFrame,
                   base: str | None, pay_at: np.ndarray | None = None,
                   credit_at: np.ndarray | None = None) -> pd.DataFrame:
    """``payment_events`` of the known invoices by position in ``invoices`` (``at``), ordered by position and day:
    the same sums (``LedgerPass`` looks them up by date). ``pay_at``, ``credit_at``: as ``_reductions`` takes them."""
    events = _reductions(invoices, payments, credits, fx, base, pay_at, credit_at)
    return _per_day(events["at"].to_numpy(), events).rename(columns={"key": "at"})


def lost_amounts(invoices: pd.DataFrame, at: pd.Timestamp, write_off_days: int) -> np.ndarray:
    """Per invoice as known at ``at`` (rows of ``as_of(company, at)``), the document amount never collected: what
    its payment fell short of the amount (written off, short-paid), all of it when still open ``write_off_days``
    past due, NaN while it is open and younger (its outcome is not known). The one definition of "lost" for the
    provision's loss rates and the timing model's never-paid labels."""
    amount = invoices[Inv.AMOUNT].to_numpy(float)
    short = np.clip(amount - invoices[Inv.PAID_AMOUNT].fillna(invoices[Inv.AMOUNT]).to_numpy(float), 0.0, None)
    old = ((pd.Timestamp(at) - invoices[Inv.DUE]).dt.days >= write_off_days).to_numpy()
    return np.where(invoices[Inv.PAID].notna().to_numpy(), short, np.where(old, amount, np.nan))


def reduced(company: Company, invoices: pd.DataFrame | None = None) -> pd.Series:
    """Payments plus applied credit notes so far, in each invoice's currency (index: the invoices')."""
    known = company[Inv.TABLE]
    invoices = known if invoices is None else invoices
    days = invoice_events(known, company.get(Pay.TABLE), company.get(Credit.TABLE), company.get(Fx.TABLE),
                          base_of(company))
    sums = (days["cash"] + days["credit"]).groupby(days["at"]).sum()  # each invoice's days in date order
    total = np.zeros(len(known) + 1)  # the last: an invoice the company does not know, which nothing reduced
    total[sums.index.to_numpy()] = sums.to_numpy(float)
    at = np.arange(len(known)) if invoices is known else positions(known[Inv.ID], invoices[Inv.ID])
    return pd.Series(total[at], index=invoices.index)


OPEN_COLUMNS = [Inv.ID, Inv.CUSTOMER, Inv.DUE, "currency", "amount_open_doc", "amount_open"]


def open_amounts(company: Company, date: str | pd.Timestamp | None = None,
                 so_far: pd.Series | None = None) -> pd.DataFrame:
    """Every invoice open at the end of ``date``, with what is still owed in its currency
    (``amount_open_doc``) and in the base at the latest rate on or before ``date`` (``amount_open``).
    ``so_far`` is ``reduced`` of the view's invoices when the caller has it already (by row)."""
    view = as_of(company, date)
    base = base_of(view)
    inv = view[Inv.TABLE]
    open_ = inv[inv[Inv.PAID].isna()]
    owed = open_[Inv.AMOUNT] - (reduced(view, open_) if so_far is None else so_far[open_.index])
    open_, owed = open_[owed > TOLERANCE], owed[owed > TOLERANCE]
    currency = codes(open_[Inv.CURRENCY]).fillna(base or MONEY)
    rate = rates_on(open_[Inv.CURRENCY], view.date, view.get(Fx.TABLE), base)
    return pd.DataFrame({Inv.ID: open_[Inv.ID], Inv.CUSTOMER: open_[Inv.CUSTOMER], Inv.DUE: open_[Inv.DUE],
                         "currency": currency, "amount_open_doc": owed, "amount_open": owed * rate},
                        index=open_.index)[OPEN_COLUMNS]


def unapplied_credit(company: Company, date: str | pd.Timestamp | None = None) -> pd.Series:
    """Each customer's credit notes on the account (applied to no invoice) by ``date``, in the base at
    the latest rate on or before ``date``: they lower the balance and open AR, not any one invoice."""
    view = as_of(company, date)
    credits = view.get(Credit.TABLE)
    credits = credits[credits[Credit.INVOICE].isna()]
    amount = to_base(credits[Credit.AMOUNT], credits[Credit.CURRENCY], view.date, view.get(Fx.TABLE), base_of(view))
    return amount.groupby(credits[Credit.CUSTOMER].astype(object)).sum().rename("unapplied_credit")


def receipts(company: Company) -> pd.Series:
    """Customer cash received per day in the base currency at each day's rate: the payments when the data
    has them, else each paid invoice's ``paid_amount`` (by default its amount) on its paid date."""
    fx, base = company.get(Fx.TABLE), base_of(company)
    if company.has(Pay.TABLE):
        pay = company[Pay.TABLE]
        cur = codes(pay[Pay.CURRENCY])
        if cur.isna().any():  # a payment naming no currency is in its invoice's
            cur = cur.fillna(_invoice_currency(pay, Pay.INVOICE, company[Inv.TABLE]))
        amount = to_base(pay[Pay.AMOUNT], cur, pay[Pay.DATE], fx, base)
        return amount.groupby(pay[Pay.DATE]).sum()
    inv = company[Inv.TABLE]
    paid = inv[inv[Inv.PAID].notna()]
    amount = to_base(paid[Inv.PAID_AMOUNT].fillna(paid[Inv.AMOUNT]), paid[Inv.CURRENCY], paid[Inv.PAID], fx, base)
    return amount.groupby(paid[Inv.PAID]).sum()


# --- validation: the hook features.load.validate runs last ---------------------------------------

def asked_base(folder: str | Path | None, policy: Policy | None = None) -> str | None:
    """The base currency asked for: the ``policy``'s (``--config``) when it sets one, else the folder's
    ``likvid.yaml``'s; None: the data's one currency decides (``resolve_base``)."""
    if policy is not None and policy.base_currency:
        return policy.base_currency
    if folder is None:
        return None
    try:
        return load_policy(Path(folder)).base_currency
    except PolicyError as e:
        raise ContractError([str(e)]) from None


def _drop(used: dict[str, pd.DataFrame], name: str, problem: pd.Series, column: str, kind: str) -> pd.DataFrame:
    """Set aside the rows of ``name`` with a problem (NA: none). Returns their rejects: the report's
    columns (``row``: the row's number in its file, the frame's index), the kind of problem for the
    summary's counts, and the value in question."""
    problem = problem.dropna()
    value = used[name].loc[problem.index, column].astype(str).to_numpy()
    used[name] = used[name].drop(index=problem.index)
    return pd.DataFrame({"table": name, "row": problem.index.astype("int64"), "column": column,
                         "problem": problem.astype(str).to_numpy(), "kind": kind, "value": value},
                        columns=[*REJECT_COLUMNS, "kind", "value"])


def _cascade(used: dict[str, pd.DataFrame], rejected: set[str]) -> list[pd.DataFrame]:
    """Rows that refer to an invoice just set aside go with it (knock-on rejects)."""
    out = []
    if not rejected:
        return out
    for name, table in TABLES.items():
        for link in table.links:
            if link.table != Inv.TABLE or name not in used:
                continue
            values = used[name][link.column]
            hit = values.astype(object).isin(rejected)
            text = link.column + " '" + values[hit] + f"' refers to a rejected row of {Inv.TABLE}"
            out.append(_drop(used, name, text, link.column, f"{link.column} refers to a rejected row of {Inv.TABLE}"))
    return out


def _no_rate(frame: pd.DataFrame, name: str, fx: pd.DataFrame, base: str | None) -> pd.Series:
    cur, date = DATED[name]
    missing = np.isnan(rates_on(frame[cur], frame[date], fx, base))
    rows = frame[missing]
    return ("no fx_rates rate for " + codes(rows[cur]) + " on or before " + rows[date].dt.strftime("%Y-%m-%d")
            + f" ({date}), so it cannot be given in the base currency {base}").astype("string")


def _checked(used: dict[str, pd.DataFrame], name: str, invoice_col: str, date_col: str,
             today: pd.Timestamp) -> pd.Series:
    """A payment or applied credit note before its invoice was issued, or dated after today."""
    frame = used[name]
    invoices = used[Inv.TABLE]
    issued = np.append(invoices[Inv.ISSUE].to_numpy("datetime64[ns]"), np.datetime64("NaT"))
    issued = issued[positions(invoices[Inv.ID], frame[invoice_col])]  # an unknown invoice: the NaT last
    text = pd.Series(pd.NA, index=frame.index, dtype="string")
    early = frame[invoice_col].notna().to_numpy() & (frame[date_col].to_numpy() < issued)
    text[early] = (date_col + " " + frame.loc[early, date_col].dt.strftime("%Y-%m-%d") + " is before invoice "
                   + frame.loc[early, invoice_col] + "'s issue_date "
                   + pd.Series(issued[early], index=frame.index[early]).dt.strftime("%Y-%m-%d"))
    late = frame[date_col] > today
    text[late] = (date_col + " " + frame.loc[late, date_col].dt.strftime("%Y-%m-%d")
                  + f" is after today ({today:%Y-%m-%d})")
    return text


def _day(d: pd.Series) -> pd.Series:
    return d.dt.strftime("%Y-%m-%d").fillna("never").astype("string")


def _money(x: pd.Series) -> pd.Series:
    return x.map("{:.2f}".format).astype("string")


def settle(invoices: pd.DataFrame, payments: pd.DataFrame, credits: pd.DataFrame, fx: pd.DataFrame,
           base: str | None) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Invoices with ``paid_date``/``paid_amount`` derived from their payments and applied credit notes.

    The paid date is the day the open amount first reaches zero; ``paid_amount`` is the cash received by
    then. A given paid date must be that day, or, when the invoice is never settled, a day after which
    nothing more came (the rest written off); a given paid amount must lie between the cash received and
    the cash plus credits by the paid date. Returns the invoices and, per invoice row, the paid_date and
    the paid_amount disagreements (NA: none), each naming the given and the derived value.
    """
    # By the invoices' positions (their ids are unique here): each invoice's days in date order, as by id.
    events = invoice_events(invoices, payments, credits, fx, base)
    at, n = events["at"].to_numpy(), len(invoices)
    by_invoice = events.groupby("at", sort=False)
    events["cum"] = (events["cash"] + events["credit"]).groupby(at).cumsum()
    events["cum_cash"], events["cum_credit"] = by_invoice["cash"].cumsum(), by_invoice["credit"].cumsum()
    reached = events[events["cum"] >= invoices[Inv.AMOUNT].to_numpy(float)[at] - TOLERANCE]
    first = reached.groupby("at").first()
    where = first.index.to_numpy()

    def per_invoice(values: np.ndarray, fill, dtype=float) -> np.ndarray:
        out = np.full(n, fill, dtype=dtype)
        out[where] = values
        return out

    derived = pd.Series(per_invoice(first["date"].to_numpy("datetime64[ns]"), np.datetime64("NaT"),
                                    "datetime64[ns]"), index=invoices.index)
    derived_cash = pd.Series(per_invoice(first["cum_cash"].to_numpy(float), np.nan), index=invoices.index)
    derived_credit = pd.Series(per_invoice(first["cum_credit"].to_numpy(float), np.nan), index=invoices.index)
    given, given_amount = invoices[Inv.PAID], invoices[Inv.PAID_AMOUNT]

    # What had come by the given paid date, and whether anything came after it.
    given_at = given.to_numpy("datetime64[ns]")[at]
    before = events[events["date"].to_numpy() <= given_at].groupby("at")[["cash", "credit"]].sum()
    after = np.bincount(at[events["date"].to_numpy() > given_at], minlength=n)
    cash_by, credit_by = np.zeros(n), np.zeros(n)
    cash_by[before.index.to_numpy()] = before["cash"].to_numpy(float)
    credit_by[before.index.to_numpy()] = before["credit"].to_numpy(float)
    cash_by, credit_by = pd.Series(cash_by, index=invoices.index), pd.Series(credit_by, index=invoices.index)
    later = pd.Series(after > 0, index=invoices.index)

    has_given = given.notna()
    date_ok = ~has_given | (derived == given) | (derived.isna() & ~later)
    date_problem = pd.Series(pd.NA, index=invoices.index, dtype="string")
    bad = ~date_ok
    date_problem[bad] = ("paid_date " + _day(given[bad]) + " disagrees with the payments and credit notes, "
                         + np.where(derived[bad].notna(), "which settle the invoice on " + _day(derived[bad]),
                                    "which never settle it and go on after that date"))

    settled_on = given.where(has_given, derived)
    cash = cash_by.where(has_given, derived_cash)
    credit = credit_by.where(has_given, derived_credit)
    check = date_ok & settled_on.notna() & given_amount.notna()
    amount_ok = ~check | ((given_amount >= cash - TOLERANCE) & (given_amount <= cash + credit + TOLERANCE))
    amount_problem = pd.Series(pd.NA, index=invoices.index, dtype="string")
    bad = ~amount_ok.fillna(True).astype(bool)
    amount_problem[bad] = ("paid_amount " + _money(given_amount[bad]) + " disagrees with the payments: "
                           + _money(cash[bad]) + " received and " + _money(credit[bad])
                           + " credited by " + _day(settled_on[bad]))

    out = invoices.copy()
    fill = ~has_given & derived.notna()
    out.loc[fill, Inv.PAID] = derived[fill]
    out[Inv.PAID_AMOUNT] = given_amount.where(given_amount.notna() | ~fill, np.minimum(derived_cash, out[Inv.AMOUNT]))
    return out, date_problem, amount_problem


def reconcile(used: dict[str, pd.DataFrame], rejects: list[pd.DataFrame], today: pd.Timestamp,
              folder: str | Path | None = None, policy: Policy | None = None,
              ) -> tuple[dict[str, pd.DataFrame], list[pd.DataFrame], str | None]:
    """The checks across tables that validation runs last: rows with no rate, payments and credit notes
    against their invoices, paid dates derived from payments and agreement with given ones.

    Returns the used tables (rejected rows left out, payment and credit currencies defaulted to the
    invoice's, invoices settled), the rejects with the new ones appended, and the base currency: the
    ``policy``'s (``--config``) when it sets one, else the folder's ``likvid.yaml``'s, else the data's one currency.
    """
    used = dict(used)
    base = resolve_base(used, asked_base(folder, policy))
    fx = used.get(Fx.TABLE, empty_frame(TABLES[Fx.TABLE]))
    found: list[pd.DataFrame] = []
    if Bill.TABLE in used:
        found.append(_drop(used, Bill.TABLE, _no_rate(used[Bill.TABLE], Bill.TABLE, fx, base), Bill.CURRENCY,
                           _NO_RATE))
    problem = _no_rate(used[Inv.TABLE], Inv.TABLE, fx, base)
    rejected = set(used[Inv.TABLE].loc[problem.index, Inv.ID].astype(object))
    found.append(_drop(used, Inv.TABLE, problem, Inv.CURRENCY, _NO_RATE))
    found += _cascade(used, rejected)
    invoices = used[Inv.TABLE]
    for name, invoice_col in ((Pay.TABLE, Pay.INVOICE), (Credit.TABLE, Credit.INVOICE)):
        if name not in used:
            continue
        frame = used[name].copy()
        cur, date = DATED[name]
        frame[cur] = codes(frame[cur]).fillna(_invoice_currency(frame, invoice_col, invoices))
        used[name] = frame
        found.append(_drop(used, name, _checked(used, name, invoice_col, date, today), date,
                           "date before its invoice's issue_date or after today"))
        found.append(_drop(used, name, _no_rate(used[name], name, fx, base), cur, _NO_RATE))
    if Pay.TABLE in used:
        settled, date_problem, amount_problem = settle(invoices, used[Pay.TABLE], used.get(
            Credit.TABLE, empty_frame(TABLES[Credit.TABLE])), fx, base)
        used[Inv.TABLE] = settled
        bad = date_problem.notna() | amount_problem.notna()
        rejected = set(settled.loc[bad, Inv.ID].astype(object))
        found.append(_drop(used, Inv.TABLE, date_problem, Inv.PAID, "paid_date disagrees with the payments"))
        found.append(_drop(used, Inv.TABLE, amount_problem.where(date_problem.isna()), Inv.PAID_AMOUNT,
                           "paid_amount disagrees with the payments"))
        found += _cascade(used, rejected)
    return used, [*rejects, *found], base


__all__ = ["DATED", "MONEY", "OPEN_COLUMNS", "TOLERANCE", "base_amounts", "base_of", "codes", "currencies_used",
           "open_amounts", "rates_on", "receipts", "reconcile", "reduced", "resolve_base", "settle", "to_base",
           "unapplied_credit", "unit"]
