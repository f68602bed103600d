"""Working-capital figures as of a date: DSO, DPO, DIO, CCC, aging, overdue and bad-debt shares, and more.

``kpis(company, as_of)`` gives one row per figure (``KPI_COLUMNS``), each with its definition, computed
from ``as_of(company, date)`` only. A figure that needs a table the data does not have is reported
with an empty value and the reason in its definition, never as zero.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from features.asof import as_of as _view
from features.asof import last_known_date, to_date
from features.company import Company
from features.contract import Bill, Credit, Fx, Inv, Stock
from features.ledger import base_amounts, base_of, open_amounts, to_base, unapplied_credit, unit
from features.policy import Policy

KPI_COLUMNS = ["name", "value", "unit", "definition"]
WINDOW_DAYS = 90  # DSO, DPO and DIO look at the 90 days to as-of
BAD_DEBT_DAYS = 365
ABC_CLASSES = ("A", "B", "C")
DAYS, SHARE, COUNT, FLAG = "days", "share", "count", "flag"


def _row(name: str, value: float | None, unit: str, definition: str) -> dict:
    return {"name": name, "value": np.nan if value is None else float(value), "unit": unit, "definition": definition}


def _absent(name: str, unit: str, definition: str, reason: str) -> dict:
    return _row(name, None, unit, f"Not reported: {reason}. {definition}")


def _in_window(dates: pd.Series, at: pd.Timestamp, days: int) -> pd.Series:
    """Dates in the ``days`` days that end with ``at`` (``at - days`` excluded, ``at`` included)."""
    return (dates > at - pd.Timedelta(days=days)) & (dates <= at)


def days_overdue(due: pd.Series, at: pd.Timestamp) -> pd.Series:
    """Whole days past the due date at the end of ``at`` (negative: days still to run)."""
    return (at - due).dt.days


def aging(company: Company, as_of: str | pd.Timestamp | None = None, policy: Policy = Policy()) -> pd.DataFrame:
    """Open receivables at as-of with their days overdue and aging bucket (one row per open invoice).

    ``amount_open`` is what is still owed net of payments and applied credit notes, in the base currency at
    the as-of rate; ``currency`` and ``amount_open_doc`` give it in the invoice's own currency.
    """
    at = to_date(as_of) if as_of is not None else last_known_date(company)
    open_ = open_amounts(company, at)
    late = days_overdue(open_[Inv.DUE], at)
    return pd.DataFrame({Inv.ID: open_[Inv.ID], Inv.CUSTOMER: open_[Inv.CUSTOMER], Inv.DUE: open_[Inv.DUE],
                         "amount_open": open_["amount_open"], "days_overdue": late,
                         "aging_bucket": late.map(policy.bucket).astype("string"), "currency": open_["currency"],
                         "amount_open_doc": open_["amount_open_doc"]}, index=open_.index)


def _receivables(view: Company, at: pd.Timestamp, policy: Policy) -> list[dict]:
    inv = view[Inv.TABLE]
    cur = unit(view)
    open_ = open_amounts(view, at)
    credit = float(unapplied_credit(view, at).sum())
    open_ar = float(open_["amount_open"].sum()) - credit
    invoiced = float(base_amounts(view, Inv.TABLE)[_in_window(inv[Inv.ISSUE], at, WINDOW_DAYS)].sum())
    late = days_overdue(open_[Inv.DUE], at)
    rows = [_row("open_ar", open_ar, cur, "Open receivables: what is still owed at as-of on invoices issued by it "
                 "(amount less payments and applied credit notes dated by as-of), less credit notes on the accounts "
                 "applied to no invoice; in the base currency at the latest rate on or before as-of.")]
    if view.has(Credit.TABLE):
        rows.append(_row("unapplied_credit", credit, cur, "Credit notes issued by as-of and applied to no invoice "
                         "(they lower open AR, not any one invoice)."))

    dso = f"DSO = open AR / amount invoiced in the {WINDOW_DAYS} days to as-of × {WINDOW_DAYS}."
    rows.append(_row("dso", open_ar / invoiced * WINDOW_DAYS, DAYS, dso) if invoiced > 0 else
                _absent("dso", DAYS, dso, f"no invoice was issued in the {WINDOW_DAYS} days to as-of"))

    buckets = late.map(policy.bucket)
    for name in policy.bucket_names():
        span = "not yet due" if name == "current" else f"{name} days past due"
        rows.append(_row(f"aging_{name}", open_["amount_open"][buckets == name].sum(), cur,
                         f"Open AR {span} at as-of (invoices' open amounts)."))

    overdue = float(open_.loc[late > policy.grace_days, "amount_open"].sum())
    grace = f" + {policy.grace_days} grace days" if policy.grace_days else ""
    share = (f"Overdue share = open AR past its due date{grace} / open AR; alert above "
             f"{policy.alerts.overdue_share:.1%}.")
    rows.append(_row("overdue_share", overdue / open_ar, SHARE, share) if open_ar > 0 else
                _absent("overdue_share", SHARE, share, "no receivable is open at as-of"))

    year = base_amounts(view, Inv.TABLE)[_in_window(inv[Inv.ISSUE], at, BAD_DEBT_DAYS)].sum()
    closed = inv[_in_window(inv[Inv.PAID], at, BAD_DEBT_DAYS)]
    short = (closed[Inv.AMOUNT] - closed[Inv.PAID_AMOUNT].fillna(closed[Inv.AMOUNT])).clip(lower=0)
    lost = float(to_base(short, closed[Inv.CURRENCY], closed[Inv.PAID], view.get(Fx.TABLE), base_of(view)).sum())
    bad = (f"Bad-debt share = amount not collected on invoices closed in the {BAD_DEBT_DAYS} days to as-of "
           f"(amount − paid_amount: write-offs and short payments) / amount invoiced in those days; alert above "
           f"{policy.alerts.bad_debt_share:.1%}.")
    rows.append(_row("bad_debt_share", lost / year, SHARE, bad) if year > 0 else
                _absent("bad_debt_share", SHARE, bad, f"no invoice was issued in the {BAD_DEBT_DAYS} days to as-of"))
    rows.append(_digitalisation(view, inv, at))
    return rows


def _digitalisation(view: Company, inv: pd.DataFrame, at: pd.Timestamp) -> dict:
    definition = (f"Digitalisation rate = invoices delivered electronically / invoices whose delivery is known, "
                  f"issued in the {BAD_DEBT_DAYS} days to as-of (by count).")
    if Inv.TABLE in view.supplied and Inv.DELIVERY not in view.supplied[Inv.TABLE]:
        return _absent("digitalisation_rate", SHARE, definition, "the invoices table has no delivery column")
    known = inv.loc[_in_window(inv[Inv.ISSUE], at, BAD_DEBT_DAYS), Inv.DELIVERY].dropna()
    if known.empty:
        return _absent("digitalisation_rate", SHARE, definition,
                       f"no invoice issued in the {BAD_DEBT_DAYS} days to as-of says how it was delivered")
    return _row("digitalisation_rate", (known == "electronic").mean(), SHARE, definition)


def _payables(view: Company, company: Company, at: pd.Timestamp) -> tuple[list[dict], float | None]:
    """Open AP and DPO, and the purchases of the window (DIO's denominator) when bills exist."""
    dpo = f"DPO = open AP / amount billed in the {WINDOW_DAYS} days to as-of × {WINDOW_DAYS}."
    open_ap = "Open payables: amount of bills received by as-of and not paid by it."
    if not company.has(Bill.TABLE):
        return [_absent("open_ap", "money", open_ap, "the data has no bills table"),
                _absent("dpo", DAYS, dpo, "the data has no bills table")], None
    bills = view[Bill.TABLE]
    cur = unit(view)
    ap = float(base_amounts(view, Bill.TABLE, at=at)[bills[Bill.PAID].isna()].sum())
    billed = float(base_amounts(view, Bill.TABLE)[_in_window(bills[Bill.ISSUE], at, WINDOW_DAYS)].sum())
    rows = [_row("open_ap", ap, cur, open_ap),
            _row("dpo", ap / billed * WINDOW_DAYS, DAYS, dpo) if billed > 0 else
            _absent("dpo", DAYS, dpo, f"no bill was received in the {WINDOW_DAYS} days to as-of")]
    return rows, billed


def _latest_stock(view: Company) -> pd.DataFrame:
    stock = view[Stock.TABLE]
    latest = stock[stock[Stock.DATE] == stock[Stock.DATE].max()]
    return latest.assign(value=latest[Stock.QUANTITY] * latest[Stock.UNIT_COST])


def abc_classes(stock: pd.DataFrame, policy: Policy = Policy()) -> pd.Series:
    """ABC class of each SKU of one snapshot (with a ``value`` column), by its share of stock value.

    SKUs sorted by value, largest first, are A until the value before them reaches the A share, then B
    until the B share, then C; an SKU holding no value is C.
    """
    a, b = policy.inventory.abc_shares
    value = stock.set_index(Stock.SKU)["value"].sort_values(ascending=False, kind="stable")
    total = value.sum()
    before = (value.cumsum() - value) / total if total > 0 else pd.Series(1.0, index=value.index)
    classes = np.select([before < a, before < b], ["A", "B"], "C")
    return pd.Series(np.where(value > 0, classes, "C"), index=value.index, name="abc_class")


def slow_movers(view: Company, policy: Policy = Policy()) -> pd.Series | None:
    """True for each SKU in stock at the latest snapshot that barely moved over the lookback window.

    Movement is the sum of absolute quantity changes between consecutive snapshots of the window,
    relative to the average quantity; ``None`` when the window holds fewer than two snapshots.
    """
    stock = view[Stock.TABLE]
    last = stock[Stock.DATE].max()
    window = stock[stock[Stock.DATE] > last - pd.Timedelta(days=policy.inventory.slow_lookback_days)]
    if window[Stock.DATE].nunique() < 2:
        return None
    qty = window.pivot_table(index=Stock.DATE, columns=Stock.SKU, values=Stock.QUANTITY, aggfunc="sum")
    qty = qty.sort_index().fillna(0.0)
    moved = qty.diff().abs().sum()
    average = qty.mean()
    now = qty.iloc[-1]
    in_stock = now > 0
    return (in_stock & (moved < policy.inventory.slow_max_movement * average))[in_stock]


def _inventory(view: Company, company: Company, billed: float | None, policy: Policy) -> list[dict]:
    dio = (f"DIO = inventory value at the latest snapshot on or before as-of / amount billed in the "
           f"{WINDOW_DAYS} days to as-of × {WINDOW_DAYS} (purchases stand in for cost of goods sold).")
    value_def = "Inventory value: quantity × unit cost summed over the latest snapshot on or before as-of."
    abc_def = ("ABC class {c} of stock by value (SKUs sorted by value, largest first; A up to {a:.0%} of value, "
               "B up to {b:.0%}, C the rest): {what}.")
    slow_def = (f"Slow-moving stock share = value of SKUs in stock whose quantity moved (rises and falls together) "
                f"by less than {policy.inventory.slow_max_movement:.0%} of their average quantity over the "
                f"inventory snapshots of the last {policy.inventory.slow_lookback_days} days / inventory value.")
    a, b = policy.inventory.abc_shares
    abc = [(f"abc_{c}_skus", COUNT, abc_def.format(c=c, a=a, b=b, what="number of SKUs")) for c in ABC_CLASSES]
    abc += [(f"abc_{c}_value_share", SHARE, abc_def.format(c=c, a=a, b=b, what="share of inventory value"))
            for c in ABC_CLASSES]
    figures = [("inventory_value", "money", value_def), ("dio", DAYS, dio), *abc,
               ("slow_moving_skus", COUNT, "Number of slow-moving SKUs (see slow_moving_share)."),
               ("slow_moving_share", SHARE, slow_def)]
    reason = ("the data has no inventory table" if not company.has(Stock.TABLE) else
              "the inventory table has no snapshot on or before as-of" if view[Stock.TABLE].empty else None)
    if reason:
        return [_absent(n, u, d, reason) for n, u, d in figures]

    latest = _latest_stock(view)
    snapshot = f" (snapshot of {latest[Stock.DATE].iloc[0]:%Y-%m-%d})"
    total = float(latest["value"].sum())
    rows = [_row("inventory_value", total, "money", value_def + snapshot)]
    if billed is None:
        rows.append(_absent("dio", DAYS, dio, "the data has no bills table, so purchases are unknown"))
    elif billed <= 0:
        rows.append(_absent("dio", DAYS, dio, f"no bill was received in the {WINDOW_DAYS} days to as-of"))
    else:
        rows.append(_row("dio", total / billed * WINDOW_DAYS, DAYS, dio + snapshot))

    classes = abc_classes(latest, policy)
    value = latest.groupby(Stock.SKU)["value"].sum()
    for c in ABC_CLASSES:
        rows.append(_row(f"abc_{c}_skus", (classes == c).sum(), COUNT, abc[ABC_CLASSES.index(c)][2] + snapshot))
    for c in ABC_CLASSES:
        share = value[classes[classes == c].index].sum() / total if total > 0 else None
        name, unit, definition = abc[3 + ABC_CLASSES.index(c)]
        rows.append(_row(name, share, unit, definition + snapshot) if share is not None else
                    _absent(name, unit, definition, "the latest snapshot holds no stock value"))

    slow = slow_movers(view, policy)
    if slow is None:
        why = f"fewer than two inventory snapshots in the {policy.inventory.slow_lookback_days} days to the latest"
        rows += [_absent(n, u, d, why) for n, u, d in figures[-2:]]
    else:
        slow_value = value.reindex(slow[slow].index).sum()
        rows.append(_row("slow_moving_skus", int(slow.sum()), COUNT, figures[-2][2] + snapshot))
        rows.append(_row("slow_moving_share", slow_value / total, SHARE, slow_def + snapshot) if total > 0 else
                    _absent("slow_moving_share", SHARE, slow_def, "the latest snapshot holds no stock value"))
    return rows


def _alerts(figures: dict[str, float], policy: Policy) -> list[dict]:
    rows = []
    for name, limit in (("overdue_share", policy.alerts.overdue_share),
                        ("bad_debt_share", policy.alerts.bad_debt_share)):
        value = figures.get(name, np.nan)
        definition = f"1 when {name} is above {limit:.1%}, else 0"
        if np.isnan(value):
            rows.append(_absent(f"alert_{name}", FLAG, definition + ".", f"{name} is not reported"))
        else:
            verdict = "above" if value > limit else "not above"
            rows.append(_row(f"alert_{name}", float(value > limit), FLAG,
                             f"{definition}; it is {value:.1%}, {verdict} the threshold."))
    return rows


def kpis(company: Company, as_of: str | pd.Timestamp | None = None, policy: Policy = Policy()) -> pd.DataFrame:
    """Every working-capital figure at as-of, one row each: ``name, value, unit, definition``."""
    at = to_date(as_of) if as_of is not None else last_known_date(company)
    view = _view(company, at)
    rows = _receivables(view, at, policy)
    ap_rows, billed = _payables(view, company, at)
    stock_rows = _inventory(view, company, billed, policy)
    rows += ap_rows + stock_rows
    figures = {r["name"]: r["value"] for r in rows}
    parts = {"dso": figures["dso"], "dio": figures["dio"], "dpo": figures["dpo"]}
    ccc = "CCC = DSO + DIO − DPO."
    missing = [k.upper() for k, v in parts.items() if np.isnan(v)]
    verb = "is" if len(missing) == 1 else "are"
    rows.append(_absent("ccc", DAYS, ccc, f"{' and '.join(missing)} {verb} missing") if missing else
                _row("ccc", parts["dso"] + parts["dio"] - parts["dpo"], DAYS, ccc))
    rows += _alerts(figures, policy)
    order = ["dso", "dpo", "dio", "ccc"]
    frame = pd.DataFrame(rows, columns=KPI_COLUMNS)
    first = frame[frame["name"].isin(order)].set_index("name").loc[order].reset_index()
    return pd.concat([first, frame[~frame["name"].isin(order)]], ignore_index=True)[KPI_COLUMNS]


def kpis_over_time(company: Company, dates: Iterable[str | pd.Timestamp], policy: Policy = Policy()) -> pd.DataFrame:
    """The figures at several as-of dates: one row per date, one column per figure name."""
    rows = {to_date(d): kpis(company, d, policy).set_index("name")["value"] for d in dates}
    out = pd.DataFrame(rows).T
    out.index.name = "as_of"
    return out
