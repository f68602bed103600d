"""Weekly cash series and the cash facts a forecast starts from, as of a date.

Weeks are anchored on the as-of date: week k covers the days ``as_of + 7(k-1) + 1`` to
``as_of + 7k`` (CONTRACT.md), so week 0 is the week ending on the as-of date and negative weeks
lie in the past. Series come in mlforecast's long format ``unique_id, ds, y`` (``ds`` is the last
day of the week). Everything here reads the company through ``as_of``; nothing is fitted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features import cache as validation_cache
from features.asof import as_of
from features.company import Company
from features.contract import PO, Bal, Bill, Fx, Inv, Ord, Txn
from features.ledger import base_amounts, base_of, is_in, receipts, to_base

UID, DS, Y = "unique_id", "ds", "y"
INVOICED, RECEIPTS, BILLED, PAYMENTS, OTHER = "invoiced", "receipts", "billed", "payments", "other"
SERIES = (INVOICED, RECEIPTS, BILLED, PAYMENTS, OTHER)
_DAY = pd.Timedelta(days=1)


def week_of(dates: pd.Series | pd.DatetimeIndex, origin: pd.Timestamp) -> np.ndarray:
    """Week number of each date counted from ``origin`` (1 = the 7 days after it; 0 ends on it)."""
    days = (pd.DatetimeIndex(dates) - origin).days.to_numpy(dtype=float)
    return np.ceil(days / 7.0)


def week_bounds(origin: pd.Timestamp, weeks: int) -> pd.DataFrame:
    """``week, week_start, week_end`` for weeks 1..``weeks`` after ``origin``."""
    k = np.arange(1, weeks + 1)
    return pd.DataFrame({"week": k, "week_start": origin + pd.to_timedelta(7 * (k - 1) + 1, unit="D"),
                         "week_end": origin + pd.to_timedelta(7 * k, unit="D")})


def bill_payment_amount(bills: pd.DataFrame) -> pd.Series:
    """What paying each bill costs: less the early-payment discount when paid inside its window."""
    pct = bills[Bill.DISCOUNT_PCT].fillna(0.0)
    window = bills[Bill.ISSUE] + pd.to_timedelta(bills[Bill.DISCOUNT_DAYS].fillna(-1), unit="D")
    taken = bills[Bill.PAID].notna() & (pct > 0) & (bills[Bill.PAID] <= window)
    return bills[Bill.AMOUNT] * (1 - np.where(taken, pct / 100.0, 0.0))


def received_amount(invoices: pd.DataFrame) -> pd.Series:
    """Cash received for each paid invoice (``paid_amount``, by default the amount)."""
    return invoices[Inv.PAID_AMOUNT].fillna(invoices[Inv.AMOUNT])


def _flows(view: Company, invoiced: pd.Series | None = None) -> dict[str, pd.Series]:
    """Each series' daily amounts (index: date) in a company view, in the base currency at each day's rate.
    Receipts are the payments when the data has them (partial payments on their own days). ``invoiced``: the
    view's invoice amounts in the base (``base_amounts(view, Inv.TABLE)``), when the caller has them."""
    inv, bills, txn = view[Inv.TABLE], view.get(Bill.TABLE), view.get(Txn.TABLE)
    if invoiced is None:
        invoiced = base_amounts(view, Inv.TABLE)
    elif not invoiced.index.equals(inv.index):
        raise ValueError("the invoice amounts are not those of the view's invoices")
    paid_bills = bills[bills[Bill.PAID].notna()]
    paying = to_base(bill_payment_amount(paid_bills), paid_bills[Bill.CURRENCY], paid_bills[Bill.PAID],
                     view.get(Fx.TABLE), base_of(view))
    return {
        INVOICED: invoiced.groupby(inv[Inv.ISSUE]).sum(),
        RECEIPTS: receipts(view),
        BILLED: base_amounts(view, Bill.TABLE).groupby(bills[Bill.ISSUE]).sum(),
        PAYMENTS: paying.groupby(paid_bills[Bill.PAID]).sum(),
        OTHER: txn.groupby(Txn.DATE)[Txn.AMOUNT].sum(),
    }


@dataclass(frozen=True)
class DailyFlows:
    """Each series' daily amounts as known at the end of ``date`` (``daily_flows``): summing the ledger's
    receipts is most of a forecast's set-up, so ``weekly_series`` and ``opening_balance`` can share one."""

    date: pd.Timestamp
    series: dict[str, pd.Series]


def daily_flows(company: Company, date: pd.Timestamp, invoiced: pd.Series | None = None) -> DailyFlows:
    """The daily flows of every series known at the end of ``date``. ``invoiced``: the invoice amounts in the base
    at their issue dates' rates of the company as of ``date`` (``base_amounts``), when the caller has them."""
    date = pd.Timestamp(date).normalize()
    return DailyFlows(date, _flows(as_of(company, date), invoiced))


def _flows_at(view: Company, date: pd.Timestamp, flows: DailyFlows | None) -> dict[str, pd.Series]:
    """``flows``'s series when given (they must be as of ``date``), else the view's."""
    if flows is None:
        return _flows(view)
    if flows.date != date:
        raise ValueError(f"the daily flows are as of {flows.date:%Y-%m-%d}, not {date:%Y-%m-%d}")
    return flows.series


def weekly_series(company: Company, date: pd.Timestamp, start: pd.Timestamp | None = None,
                  flows: DailyFlows | None = None) -> pd.DataFrame:
    """Weekly totals of every series known at ``date``, in long format ``unique_id, ds, y``.

    Weeks end on ``date`` and run back to the first whole week after ``start`` (by default the
    first invoice); a week with no flow is a 0, not a gap. ``flows``: ``daily_flows(company, date)``, when the
    caller has them already.
    """
    date = pd.Timestamp(date).normalize()
    view = as_of(company, date)
    first = view[Inv.TABLE][Inv.ISSUE].min() if start is None else pd.Timestamp(start)
    if pd.isna(first):
        return pd.DataFrame({UID: pd.Series(dtype="string"), DS: pd.Series(dtype="datetime64[ns]"),
                             Y: pd.Series(dtype=float)})
    n_weeks = int((date - first).days // 7)
    ends = pd.DatetimeIndex([date - pd.Timedelta(days=7 * j) for j in range(n_weeks - 1, -1, -1)])
    frames = []
    for name, daily in _flows_at(view, date, flows).items():
        week = week_of(daily.index, date) if len(daily) else np.array([])
        totals = pd.Series(daily.to_numpy(float), index=week).groupby(level=0).sum()
        y = totals.reindex(np.arange(-(n_weeks - 1), 1, dtype=float), fill_value=0.0).to_numpy()
        frames.append(pd.DataFrame({UID: name, DS: ends, Y: y}))
    out = pd.concat(frames, ignore_index=True)
    out[UID] = out[UID].astype("string")
    return out


def actual_weeks(company: Company, origin: pd.Timestamp, weeks: int, known_at: pd.Timestamp) -> pd.DataFrame:
    """What really happened in weeks 1..``weeks`` after ``origin``, as known at ``known_at``: one row a
    week with ``receipts, payments, other`` (signed) and the contract's ``inflow, outflow, net``."""
    view = as_of(company, known_at)
    flows = _flows(view)
    out = week_bounds(origin, weeks)
    for name in (RECEIPTS, PAYMENTS, OTHER):
        daily = flows[name]
        week = week_of(daily.index, origin) if len(daily) else np.array([])
        out[name] = pd.Series(daily.to_numpy(float), index=week).groupby(level=0).sum().reindex(
            out["week"].astype(float), fill_value=0.0).to_numpy()
    out["inflow"] = out[RECEIPTS]
    out["outflow"] = out[PAYMENTS] - out[OTHER]
    out["net"] = out["inflow"] - out["outflow"]
    return out


NO_OPENING_BALANCE = ("no opening balance: the data has no cash_balances up to as-of, so the balances are the "
                      "cumulative net flow from as-of (starting at 0), not cash held")


def has_opening_balance(company: Company, date: pd.Timestamp) -> bool:
    """Whether ``opening_balance`` starts from balances (the data has ``cash_balances`` up to ``date``), without
    summing the flows after them, and without the other tables' as-of."""
    balances = Company({Bal.TABLE: company.get(Bal.TABLE)}, company.supplied, company.base_currency)
    return not as_of(balances, date).get(Bal.TABLE).empty


def opening_balance(company: Company, date: pd.Timestamp,
                    flows: DailyFlows | None = None) -> tuple[float, pd.Timestamp | None]:
    """Cash at the end of ``date``: each account's latest balance, carried to ``date`` with the
    receipts, supplier payments and bank lines dated after it. ``(0.0, None)`` without balances.
    ``flows``: ``daily_flows(company, date)``, when the caller has them already."""
    date = pd.Timestamp(date).normalize()
    view = as_of(company, date)
    bal = view.get(Bal.TABLE)
    if bal.empty:
        return 0.0, None
    latest = bal.sort_values(Bal.DATE, kind="stable").groupby(bal[Bal.ACCOUNT].fillna("")).tail(1)
    since = latest[Bal.DATE].min()
    flows = _flows_at(view, date, flows)
    after = sum(float(flows[s][flows[s].index > since].sum()) * sign
                for s, sign in ((RECEIPTS, 1), (PAYMENTS, -1), (OTHER, 1)))
    # Balances of accounts reported on different days: each carries flows only after its own date;
    # flows are not split by account in the contract, so the earliest date is the common start.
    return float(latest[Bal.BALANCE].sum()) + after, since


def open_orders(company: Company, date: pd.Timestamp, view: Company | None = None) -> pd.DataFrame:
    """Orders placed by ``date``, not known cancelled and not yet invoiced: future invoices (``view``: the company
    as of ``date``, when the caller has it). A validated company's, at its last known date, are kept beside its
    validation (``features.cache``): finding them takes one Arrow lookup of every order's id among the invoices'
    (0.6 s of a 1M-invoice forecast)."""
    return validation_cache.kept(validation_cache.derived_path(company, "open-orders", {}, date), pd.DataFrame,
                                 lambda: _open_orders(as_of(company if view is None else view, date)))


def _open_orders(view: Company) -> pd.DataFrame:
    orders, inv = view.get(Ord.TABLE), view[Inv.TABLE]
    invoiced = is_in(orders[Ord.ID], inv[Inv.ORDER])
    live = ~orders[Ord.CANCELLED].fillna(False).astype(bool) & ~invoiced
    return orders[live]


def open_purchase_orders(company: Company, date: pd.Timestamp) -> pd.DataFrame:
    """Purchase orders placed by ``date`` that no bill carries yet: future bills."""
    view = as_of(company, date)
    pos, bills = view.get(PO.TABLE), view.get(Bill.TABLE)
    return pos[~is_in(pos[PO.ID], bills[Bill.PO])]




def open_bills(company: Company, date: pd.Timestamp) -> pd.DataFrame:
    """Bills received by ``date`` and not paid by then."""
    bills = as_of(company, date).get(Bill.TABLE)
    return bills[bills[Bill.PAID].isna()]


def customer_terms(invoices: pd.DataFrame) -> pd.Series:
    """Each customer's usual payment terms in days (median of due - issue)."""
    return (invoices[Inv.DUE] - invoices[Inv.ISSUE]).dt.days.groupby(invoices[Inv.CUSTOMER]).median()


# --- recurring bank lines ---------------------------------------------------------------------

LINE_COLUMNS = ["category", "pattern", "day", "months", "amount", "amount_cv", "weekly_mean", "n"]


def _business_day_before(days: pd.DatetimeIndex) -> pd.DatetimeIndex:
    wd = days.day_of_week
    return days - pd.to_timedelta(np.where(wd == 5, 1, np.where(wd == 6, 2, 0)), unit="D")


def recurring_lines(transactions: pd.DataFrame, date: pd.Timestamp, lookback_days: int = 400) -> pd.DataFrame:
    """Calendar patterns of the bank lines of the last ``lookback_days`` (one row per category).

    A category is ``weekly`` when it falls on one weekday each week, ``monthly`` on one day of the
    month (moved to the business day before at weekends), ``quarterly`` when it does so in every
    third month only, else ``irregular`` (carried as its trailing weekly mean). ``amount`` is the
    latest amount (payroll grows; the latest is the best guess), ``amount_cv`` the spread of the
    recent amounts around it. Lines without a category form one group, ``(none)``.
    """
    date = pd.Timestamp(date).normalize()
    tx = transactions[(transactions[Txn.DATE] <= date)
                      & (transactions[Txn.DATE] > date - pd.Timedelta(days=lookback_days))]
    rows = []
    for category, g in tx.groupby(tx[Txn.CATEGORY].astype("string").fillna("(none)"), sort=True):
        g = g.sort_values(Txn.DATE, kind="stable")
        dates = pd.DatetimeIndex(g[Txn.DATE])
        amounts = g[Txn.AMOUNT].to_numpy(float)
        recent = amounts[-6:]
        cv = float(np.std(recent) / abs(np.mean(recent))) if len(recent) > 1 and np.mean(recent) else 0.0
        weeks_seen = max((date - dates.min()).days / 7.0, 1.0)
        row = {"category": str(category), "pattern": "irregular", "day": -1, "months": "",
               "amount": float(amounts[-1]), "amount_cv": cv,
               "weekly_mean": float(amounts.sum() / max(weeks_seen, 13.0)), "n": len(g)}
        nominal = _nominal_day(dates)
        gaps = np.diff(dates.values).astype("timedelta64[D]").astype(int)
        if len(g) >= 3:
            if dates.day_of_week.nunique() == 1 and (gaps == 7).mean() > 0.8:
                row.update(pattern="weekly", day=int(dates.day_of_week[0]),
                           amount=float(np.mean(amounts[-8:])))
            elif nominal is not None and ((gaps >= 26) & (gaps <= 35)).mean() > 0.8:
                row.update(pattern="monthly", day=nominal)
            elif nominal is not None and ((gaps >= 85) & (gaps <= 97)).all():
                months = sorted({_nominal_month(d, nominal) for d in dates})
                row.update(pattern="quarterly", day=nominal, months=",".join(str(m) for m in months))
        rows.append(row)
    return pd.DataFrame(rows, columns=LINE_COLUMNS)


def _targets(d: pd.Timestamp, day: int) -> list[pd.Timestamp]:
    """The nominal dates in ``d``'s month and the next that a line paid on ``d`` may stand for."""
    nxt = (d + pd.offsets.MonthBegin(1)).normalize()
    return [d.replace(day=min(day, d.days_in_month)), nxt.replace(day=min(day, nxt.days_in_month))]


def _nominal_day(dates: pd.DatetimeIndex) -> int | None:
    """The day of month a line is due on, if every date is that day or the business day before it
    (a line due on the 1st that falls on a Sunday is paid on the Friday before, in the month before)."""
    for day in range(31, 0, -1):
        if all(any(_business_day_before(pd.DatetimeIndex([t]))[0] == d for t in _targets(d, day)) for d in dates):
            return day
    return None


def _nominal_month(d: pd.Timestamp, day: int) -> int:
    for t in _targets(d, day):
        if _business_day_before(pd.DatetimeIndex([t]))[0] == d:
            return int(t.month)
    return int(d.month)


def project_lines(lines: pd.DataFrame, origin: pd.Timestamp, weeks: int) -> pd.DataFrame:
    """Dated future occurrences of recurring lines in weeks 1..``weeks`` after ``origin``:
    ``category, week, amount, amount_cv``; irregular categories give their weekly mean every week."""
    origin = pd.Timestamp(origin).normalize()
    end = origin + pd.Timedelta(days=7 * weeks)
    rows = []
    for line in lines.itertuples(index=False):
        if line.pattern == "irregular":
            for k in range(1, weeks + 1):
                rows.append((line.category, k, line.weekly_mean, line.amount_cv))
            continue
        if line.pattern == "weekly":
            days = pd.date_range(origin + _DAY, end)
            dates = days[days.day_of_week == line.day]
        else:
            months = pd.period_range(origin.to_period("M"), end.to_period("M"), freq="M")
            if line.pattern == "quarterly":
                keep = {int(m) for m in str(line.months).split(",") if m}
                months = [m for m in months if m.month in keep]
            nominal = pd.DatetimeIndex([m.start_time + pd.Timedelta(days=min(line.day, m.days_in_month) - 1)
                                        for m in months])
            dates = _business_day_before(nominal)
        dates = dates[(dates > origin) & (dates <= end)]
        for k in week_of(dates, origin):
            rows.append((line.category, int(k), line.amount, line.amount_cv))
    return pd.DataFrame(rows, columns=["category", "week", "amount", "amount_cv"])


# --- payment runs ------------------------------------------------------------------------------

RUN_NONE, RUN_WEEKLY, RUN_MONTHLY = 0, 1, 2
RUN_MIN_PAYMENTS, RUN_WEEKLY_SHARE, RUN_MONTHLY_SHARE = 5, 0.8, 0.6  # who pays in runs: the rule's one home


def run_kinds(payments: np.ndarray, weekday_share: np.ndarray, monthday_share: np.ndarray) -> np.ndarray:
    """``payment_runs``'s rule on counts and shares already gathered (a feature row's ``n_settled``,
    ``run_weekday_share`` and ``run_monthday_share``): RUN_MONTHLY, RUN_WEEKLY or RUN_NONE per row."""
    enough = np.nan_to_num(np.asarray(payments, float)) >= RUN_MIN_PAYMENTS
    monthly = enough & (np.nan_to_num(np.asarray(monthday_share, float)) >= RUN_MONTHLY_SHARE)
    weekly = enough & (np.nan_to_num(np.asarray(weekday_share, float)) >= RUN_WEEKLY_SHARE)
    return np.select([monthly, weekly], [RUN_MONTHLY, RUN_WEEKLY], RUN_NONE)


def payment_runs(paid: pd.Series, payer: pd.Series, min_payments: int = RUN_MIN_PAYMENTS,
                 weekly_share: float = RUN_WEEKLY_SHARE, monthly_share: float = RUN_MONTHLY_SHARE) -> pd.DataFrame:
    """Each payer's payment run, from its payment dates: ``kind`` (0 none, 1 weekly, 2 monthly),
    ``weekday`` and ``monthday``. A payer pays in a weekly run when at least ``weekly_share`` of its
    payments fall on one weekday, in a monthly run when ``monthly_share`` fall on one day of month
    (of equally frequent days, the one it paid on first)."""
    dates = pd.DatetimeIndex(paid)
    keep = ~(dates.isna() | payer.isna().to_numpy())
    if not keep.any():
        return pd.DataFrame({"kind": pd.Series(dtype=int), "weekday": pd.Series(dtype=int),
                             "monthday": pd.Series(dtype=int)})
    dates = dates[keep]
    codes, payers = pd.factorize(payer[keep], sort=True)
    n = np.bincount(codes, minlength=len(payers))
    runs = pd.DataFrame(index=pd.Index(np.asarray(payers, dtype=object), name="payer"))
    for key, values, lowest, span in (("weekday", dates.day_of_week, 0, 7), ("monthday", dates.day, 1, 31)):
        top, count = most_frequent(codes, values.to_numpy() - lowest, len(payers), span)
        runs[key], runs[f"{key}_share"] = top + lowest, count / n
    enough = n >= min_payments
    runs["kind"] = np.select([enough & (runs["monthday_share"] >= monthly_share),
                              enough & (runs["weekday_share"] >= weekly_share)], [RUN_MONTHLY, RUN_WEEKLY], RUN_NONE)
    return runs[["kind", "weekday", "monthday"]].astype(int)


def most_frequent(group: np.ndarray, value: np.ndarray, groups: int, values: int) -> tuple[np.ndarray, np.ndarray]:
    """Each group's most frequent value (ties: the one seen first) and its count; values in [0, values)."""
    cell = group.astype(np.int64) * values + value
    counts = np.bincount(cell, minlength=groups * values).reshape(groups, values)
    first = np.full(groups * values, len(cell), dtype=np.int64)
    np.minimum.at(first, cell, np.arange(len(cell)))
    best = counts.max(axis=1)
    seen = np.where(counts == best[:, None], first.reshape(groups, values), len(cell))
    return seen.argmin(axis=1), best


def snap_to_runs(days: np.ndarray, origin: pd.Timestamp, kind: np.ndarray, weekday: np.ndarray,
                 monthday: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """Move day offsets from ``origin`` (rows: a payer's items; inf stays inf) to the nearest day of
    the payer's run: the run weekday, or the run day of month (the month's last day when shorter).
    The run before is taken only when it is nearer and not before ``floor`` (per row, or per item)."""
    out = np.ceil(days)  # rows without a run keep their (whole) day
    kind, floor = np.asarray(kind), np.asarray(floor)
    for run_kind, run_of in ((RUN_WEEKLY, np.asarray(weekday)), (RUN_MONTHLY, np.clip(monthday, 1, 31) - 1)):
        rows = np.flatnonzero(kind == run_kind)
        if not len(rows):
            continue
        every = len(rows) == len(kind)  # all rows alike (a company's bills): no gathers of rows
        part = out if every else out[rows]
        finite = np.isfinite(part)
        all_finite = bool(finite.all())
        d = (part if all_finite else np.where(finite, part, 0.0)).astype(np.int32)
        lo, hi = int(min(d.min(initial=0), 0)) - 1, int(d.max(initial=0)) + 1
        after, before = run_days(origin, lo, hi, run_kind)
        run = run_of if every else run_of[rows]
        if (run == run[0]).all():  # one run day: a 1-d lookup
            at = d - lo
            after, before = after[run[0]], before[run[0]]
        else:
            at = (run.astype(np.int32) * after.shape[1] - lo)[:, None] + d
            after, before = after.ravel(), before.ravel()
        row_floor = floor if every else floor[rows]
        back = before[at]  # NaN where the run before is not nearer: never taken
        snapped = np.where(back >= (row_floor if row_floor.ndim == 2 else row_floor[:, None]), back, after[at])
        if not all_finite:
            snapped[~finite] = np.inf
        if every:
            out = snapped
        else:
            out[rows] = snapped
    return out


def run_days(origin: pd.Timestamp, lo: int, hi: int, kind: int) -> tuple[np.ndarray, np.ndarray]:
    """For every day offset in [lo, hi] from ``origin`` (columns) and every run (rows, as in
    ``_run_tables``): the run day on or after it, and the run day before it where that one is
    nearer (NaN where it is not)."""
    ahead, back = _run_tables(pd.Timestamp(origin), lo, hi, kind)
    day = np.arange(lo, hi + 1, dtype=float)
    return day + ahead, np.where(back < ahead, day - back, np.nan)


def _run_tables(origin: pd.Timestamp, lo: int, hi: int, kind: int) -> tuple[np.ndarray, np.ndarray]:
    """Days to the next and since the last run day, for every day offset in [lo, hi] (columns) and
    every run (rows: weekdays 0-6 for weekly runs; days of month 1-31, the month's last day when it
    is shorter, for monthly runs)."""
    if kind == RUN_WEEKLY:
        wd = (pd.Timestamp(origin).day_of_week + np.arange(lo, hi + 1)) % 7
        w = np.arange(7)[:, None]
        return ((w - wd) % 7).astype(np.int32), ((wd - w) % 7).astype(np.int32)
    dates = np.datetime64(pd.Timestamp(origin).date(), "D") + np.arange(lo, hi + 1)
    month = dates.astype("datetime64[M]")
    m = np.arange(1, 32)[:, None]

    def run_day(months: np.ndarray) -> np.ndarray:
        start = months.astype("datetime64[D]")
        length = ((months + 1).astype("datetime64[D]") - start).astype(np.int64)
        return start + (np.minimum(m, length) - 1)

    this, nxt, prv = run_day(month), run_day(month + 1), run_day(month - 1)
    ahead = np.where(this >= dates, this - dates, nxt - dates).astype(np.int32)
    back = np.where(this <= dates, dates - this, dates - prv).astype(np.int32)
    return ahead, back
