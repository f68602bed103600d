"""Surplus and gaps: where the cash forecast's downside (p10) balance leaves cash to place, and what closes a gap.

Two tables for the treasurer. ``weeks`` (``WEEK_COLUMNS``), one row a forecast week:

- ``buffer`` is ``liquidity.buffer_share_of_monthly_outflows`` of a month's operating outflows, and a month's
  operating outflows are the forecast's own: the mean weekly ``outflow_p50`` (supplier payments plus other net
  bank outflows) times 52 / 12 weeks. From the forecast rather than history, so a shock that raises spending
  raises the buffer with it. ``headroom`` = balance_p10 − floor − buffer; ``gap`` = floor − balance_p10 where
  that is positive (the buffer is not part of the gap: it is what a week inside it spends first).
- ``surplus_placeable``: where headroom stays positive for at least ``placement_min_weeks`` weeks in a row from
  this week on, the least headroom over those weeks (all of them, to the end of the run), placeable for
  ``placeable_weeks`` weeks and earning ``placement_earns`` at ``placement_rate`` (simple interest). A run that
  reaches the forecast's last week may go on beyond it; the count stops at the horizon.
- ``opening_needed``: the opening balance at which the week's p10 would just hold floor plus buffer. It needs no
  bank balance, so it is the one figure given when there is none.

``options`` (``OPTION_COLUMNS``), one row a way of closing the gap, cheapest first by ``cost_per_unit_week``
(the cost of closing one unit of gap for one week: cost / the weekly gaps it closes, summed):

- ``credit line``: drawn in each gap week, up to ``credit_line_limit``, at once; interest ``credit_line_rate``
  for each week drawn (repaid as the balance recovers), so its cost per unit-week is the rate / 52.14.
- ``factoring``: an open invoice the late-payment model rates safe (p_late below ``factoring_max_p_late``); the
  factor advances ``factoring_advance_rate`` of its open amount the week after the request (week 2), and the cash
  stays until the week before its predicted pay date (the pay-date model's median), when the customer pays the
  factor instead; the fee ``factoring_fee`` of the open amount is its cost.
- ``skip discount``: a bill whose early-payment window is still open; paid at its due date instead of by its
  pay-by date, its discounted amount stays from the pay-by week to the week before the due week. The forecast pays
  bills as the company has (inside the window where it used to take the discount), so this is at most what it
  keeps; the cost is the discount foregone. ``note`` says whether ``training.collections.discounts`` plans it: a
  planned discount never falls in a gap week, since ``discounts`` refuses those that would breach the floor.
- ``delay bill``: a bill of a ``discretionary_suppliers`` supplier due in the horizon, paid
  ``bill_delay_days`` late: its amount stays from its due week to the week before the delayed payment; cost
  ``bill_delay_fee`` of it.

``gap_left`` is the largest weekly gap still open once this option and all ranked above it are used (a plan
built cheapest first; each option then closes only what those above it left).

Without a bank balance (no ``cash_balances``) the balances are the cumulative net flow from 0, not cash held: the
floor, the buffer and ``opening_needed`` are given, but headroom, gap and the placeable surplus are withheld
(empty, with ``opening_note``) and there are no options, since comparing a cumulative flow with a floor in cash
would present 0 as the opening balance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.asof import last_known_date, to_date
from features.cash import NO_OPENING_BALANCE, open_bills, week_of
from features.contract import Bill
from features.invoices import FeatureConfig, invoice_features
from features.ledger import base_amounts
from features.limits import PATHS, WEEKS
from features.load import Company
from features.policy import Policy
from training.cash.forecast import forecast as cash_forecast
from training.cash.model import ForecastModels
from training.cash.shocks import Shocks
from training.late_payment import LatePaymentModel

WEEKS_A_MONTH = 52 / 12
DAYS_A_YEAR = 365.0
FACTORING_ARRIVES = 2  # the factor pays the week after the request, made in week 1
CREDIT_LINE, FACTORING, SKIP_DISCOUNT, DELAY_BILL = "credit line", "factoring", "skip discount", "delay bill"
OPTIONS = (CREDIT_LINE, FACTORING, SKIP_DISCOUNT, DELAY_BILL)
SURPLUS, BUFFER, GAP, UNKNOWN = "surplus", "inside buffer", "gap", "no opening balance"

WEEK_COLUMNS = ["week", "week_start", "week_end", "balance_p10", "floor", "buffer", "headroom", "status",
                "surplus_placeable", "placeable_weeks", "placement_earns", "gap", "opening_needed", "opening_note"]
OPTION_COLUMNS = ["rank", "option", "item", "amount", "arrives_week", "until_week", "closes", "gap_weeks", "cost",
                  "cost_per_unit_week", "gap_left", "note"]
FORECAST_NEEDS = ["week", "week_start", "week_end", "balance_p10", "outflow_p50", "opening_note"]
RECEIVABLE_NEEDS = ["invoice_id", "amount_open", "p_late", "predicted_pay_date"]
DISCOUNT_NEEDS = ["bill_id", "amount", "discount_pct", "pay_by", "take", "cash_ok", "reason"]
BILL_NEEDS = [Bill.ID, Bill.SUPPLIER, Bill.DUE, Bill.AMOUNT]


@dataclass(frozen=True)
class CashPlan:
    """The weeks and the options (see the module), whether the opening balance is known, and why an option kind
    offers nothing (``notes``)."""

    weeks: pd.DataFrame
    options: pd.DataFrame
    opening_known: bool
    monthly_outflows: float
    notes: tuple[str, ...] = ()


def _need(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the {what} lacks column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")


def _runs(positive: np.ndarray) -> np.ndarray:
    """For each week, how many weeks in a row from it on ``positive`` holds (0 where it does not)."""
    out = np.zeros(len(positive), dtype=int)
    for i in range(len(positive) - 1, -1, -1):
        out[i] = (out[i + 1] + 1 if i + 1 < len(positive) else 1) if positive[i] else 0
    return out


def _placements(headroom: np.ndarray, min_weeks: int) -> tuple[np.ndarray, np.ndarray]:
    """From each week on: the least headroom over the rest of its positive run, and the run's length from it, where
    that length is at least ``min_weeks`` (else 0 and 0)."""
    length = _runs(headroom > 0)
    amount = np.zeros(len(headroom))
    for i, n in enumerate(length):
        if n >= min_weeks:
            amount[i] = headroom[i:i + n].min()
    return amount, np.where(length >= min_weeks, length, 0)


def _weeks(fc: pd.DataFrame, policy: Policy, known: bool, opening: float) -> tuple[pd.DataFrame, float]:
    liq = policy.liquidity
    monthly = max(float(fc["outflow_p50"].mean()), 0.0) * WEEKS_A_MONTH
    buffer = round(liq.buffer_share_of_monthly_outflows * monthly, 2)
    p10 = fc["balance_p10"].to_numpy(float)
    floor = policy.cash_floor
    out = fc[["week", "week_start", "week_end", "balance_p10"]].copy()
    out["floor"], out["buffer"] = floor, buffer
    out["opening_needed"] = np.round(floor + buffer - (p10 - opening), 2)
    out["opening_note"] = "" if known else NO_OPENING_BALANCE
    if not known:
        for col in ("headroom", "surplus_placeable", "placeable_weeks", "placement_earns", "gap"):
            out[col] = np.nan
        out["status"] = UNKNOWN
        return out[WEEK_COLUMNS], monthly
    headroom = p10 - floor - buffer
    amount, length = _placements(headroom, liq.placement_min_weeks)
    out["headroom"] = np.round(headroom, 2)
    out["status"] = np.select([p10 < floor, headroom <= 0], [GAP, BUFFER], SURPLUS)
    out["surplus_placeable"] = np.round(amount, 2)
    out["placeable_weeks"] = length
    out["placement_earns"] = np.round(amount * liq.placement_rate * 7 * length / DAYS_A_YEAR, 2)
    out["gap"] = np.round(np.maximum(floor - p10, 0.0), 2)
    return out[WEEK_COLUMNS], monthly


def _window(n: int, first: int, last: int, amount: float) -> np.ndarray:
    """``amount`` in weeks ``first``..``last`` (1-based, clipped to the horizon), 0 elsewhere."""
    relief = np.zeros(n)
    lo, hi = max(first, 1), min(last, n)
    if hi >= lo:
        relief[lo - 1:hi] = amount
    return relief


def _option(kind: str, item: str, relief: np.ndarray, cost: float, note: str) -> dict:
    weeks = np.flatnonzero(relief > 0) + 1
    return {"option": kind, "item": item, "relief": relief, "amount": float(relief.max()),
            "arrives_week": int(weeks[0]), "until_week": int(weeks[-1]), "cost": float(cost), "note": note}


def _credit_line(gap: np.ndarray, policy: Policy) -> tuple[list[dict], list[str]]:
    liq = policy.liquidity
    if liq.credit_line_limit <= 0:
        return [], ["no credit line: liquidity.credit_line_limit is 0"]
    draw = np.minimum(gap, liq.credit_line_limit)
    cost = float(draw.sum() * liq.credit_line_rate * 7 / DAYS_A_YEAR)
    note = (f"drawn in each gap week, up to the limit {liq.credit_line_limit:,.0f}, at {liq.credit_line_rate:.1%} a "
            "year for each week drawn")
    if gap.max() > liq.credit_line_limit:
        note += f"; the limit leaves {gap.max() - liq.credit_line_limit:,.0f} of the largest gap open"
    return [_option(CREDIT_LINE, "", draw, cost, note)], []


def _factoring(receivables: pd.DataFrame | None, origin: pd.Timestamp, n: int,
               policy: Policy) -> tuple[list[dict], list[str]]:
    liq = policy.liquidity
    if receivables is None:
        return [], ["factoring not considered: no scored receivables given"]
    _need(receivables, RECEIVABLE_NEEDS, "receivables")
    safe = receivables[(receivables["p_late"] < liq.factoring_max_p_late) & receivables["predicted_pay_date"].notna()
                       & (receivables["amount_open"] > 0)]
    if safe.empty:
        return [], [f"no open invoice to factor: none has a p_late below liquidity.factoring_max_p_late "
                    f"{liq.factoring_max_p_late:.0%} and a predicted pay date"]
    pays = week_of(pd.to_datetime(safe["predicted_pay_date"]), origin).astype(int)
    items = []
    for r, pay in zip(safe.itertuples(index=False), pays):
        advance = liq.factoring_advance_rate * r.amount_open
        relief = _window(n, FACTORING_ARRIVES, pay - 1, advance)
        if relief.any():
            items.append(_option(FACTORING, str(r.invoice_id), relief, liq.factoring_fee * r.amount_open,
                                 f"advance {liq.factoring_advance_rate:.0%} of {r.amount_open:,.0f} open (p_late "
                                 f"{r.p_late:.0%}), fee {liq.factoring_fee:.1%}; the customer's payment, expected "
                                 f"in week {pay}, goes to the factor"))
    return items, [] if items else ["factoring brings nothing before the safe invoices would be paid anyway"]


def _skip_discounts(discounts: pd.DataFrame | None, bills: pd.DataFrame | None, origin: pd.Timestamp,
                    n: int) -> tuple[list[dict], list[str]]:
    if discounts is None or bills is None:
        return [], ["skipping discounts not considered: no discount decisions or bills given"]
    _need(discounts, DISCOUNT_NEEDS, "discount decisions")
    _need(bills, BILL_NEEDS, "bills")
    open_ = discounts[discounts["cash_ok"].notna()]  # a window still open within the horizon
    if open_.empty:
        return [], ["no early-payment discount window is open within the horizon"]
    due = open_["bill_id"].map(bills.set_index(Bill.ID)[Bill.DUE])
    items = []
    for r, pay, end in zip(open_.itertuples(index=False), week_of(pd.to_datetime(open_["pay_by"]), origin),
                           week_of(pd.to_datetime(due), origin)):
        kept = r.amount * (1 - r.discount_pct / 100.0)
        relief = _window(n, int(pay), int(end) - 1, kept) if np.isfinite(end) else np.zeros(n)
        if relief.any():
            planned = ("planned by discounts" if bool(r.take) else f"not planned by discounts ({r.reason}); keeps cash "
                       "only where the company would have taken it, as the forecast assumes from its habit")
            items.append(_option(SKIP_DISCOUNT, str(r.bill_id), relief, r.amount * r.discount_pct / 100.0,
                                 f"pay {r.amount:,.0f} at its due date, not by {r.pay_by:%Y-%m-%d} with "
                                 f"{r.discount_pct:g} % off; {planned}"))
    return items, [] if items else ["no open discount window pays early within a gap"]


def _delay_bills(bills: pd.DataFrame | None, origin: pd.Timestamp, n: int,
                 policy: Policy) -> tuple[list[dict], list[str]]:
    liq = policy.liquidity
    if not liq.discretionary_suppliers:
        return [], ["no bill may be delayed: liquidity.discretionary_suppliers is empty"]
    if bills is None:
        return [], ["delaying bills not considered: no open bills given"]
    _need(bills, BILL_NEEDS, "bills")
    mine = bills[bills[Bill.SUPPLIER].astype(str).isin(liq.discretionary_suppliers) & (bills[Bill.DUE] > origin)
                 & np.isfinite(bills[Bill.AMOUNT].to_numpy(float))]  # NaN: no fx rate to give it in the base
    items = []
    later = mine[Bill.DUE] + pd.Timedelta(days=liq.bill_delay_days)
    for r, due, paid, when in zip(mine.itertuples(index=False), week_of(mine[Bill.DUE], origin),
                                  week_of(later, origin), later):
        amount = float(getattr(r, Bill.AMOUNT))
        relief = _window(n, int(due), int(paid) - 1, amount)
        if relief.any():
            items.append(_option(DELAY_BILL, str(getattr(r, Bill.ID)), relief, liq.bill_delay_fee * amount,
                                 f"pay supplier {getattr(r, Bill.SUPPLIER)}'s {amount:,.0f} on {when:%Y-%m-%d}, "
                                 f"{liq.bill_delay_days} days after its due date {getattr(r, Bill.DUE):%Y-%m-%d}"
                                 + (f", late fee {liq.bill_delay_fee:.1%}" if liq.bill_delay_fee else "")))
    return items, [] if items else ["no discretionary supplier's bill falls due within the horizon"]


def _rank(items: list[dict], gap: np.ndarray) -> pd.DataFrame:
    """Options that close some gap, cheapest per unit-week first, with the gap left by each prefix of the plan."""
    rows = []
    for it in items:
        closed = np.minimum(it["relief"], gap)
        if closed.sum() > 0:
            rows.append({**it, "closes": float(closed.max()), "gap_weeks": int((closed > 0).sum()),
                         "cost_per_unit_week": it["cost"] / float(closed.sum())})
    if not rows:
        return pd.DataFrame(columns=OPTION_COLUMNS)
    rows.sort(key=lambda r: (r["cost_per_unit_week"], -r["closes"], OPTIONS.index(r["option"]), r["item"]))
    left = gap.copy()
    for r in rows:
        left = left - np.minimum(left, r["relief"])
        r["gap_left"] = float(left.max())
    out = pd.DataFrame(rows)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    for col in ("amount", "closes", "cost", "gap_left"):
        out[col] = out[col].round(2)
    return out[OPTION_COLUMNS]


def liquidity(forecast: pd.DataFrame, policy: Policy = Policy(), *, receivables: pd.DataFrame | None = None,
              discounts: pd.DataFrame | None = None, bills: pd.DataFrame | None = None) -> CashPlan:
    """Surplus and gaps of a forecast (the contract's ``forecast`` rows): the weeks, and the options closing any gap.

    ``receivables``: scored open invoices (``score`` rows: invoice_id, amount_open, p_late, predicted_pay_date);
    ``discounts``: ``training.collections.discounts`` rows; ``bills``: the bills open at as-of, in the base currency.
    Each is needed only for its option; left out, the option is not considered and ``notes`` says so.
    """
    _need(forecast, FORECAST_NEEDS, "cash forecast")
    if forecast.empty:
        raise ValueError("the cash forecast has no weeks")
    fc = forecast.sort_values("week", kind="stable").reset_index(drop=True)
    fc = fc.assign(week_start=pd.to_datetime(fc["week_start"]), week_end=pd.to_datetime(fc["week_end"]))
    note = fc["opening_note"].iloc[0]
    known = pd.isna(note) or not str(note)  # read back from a CSV, an empty note is NaN
    opening = float(fc["opening_balance"].iloc[0]) if known and "opening_balance" in fc else 0.0
    weeks, monthly = _weeks(fc, policy, known, opening if np.isfinite(opening) else 0.0)
    if not known:
        return CashPlan(weeks, pd.DataFrame(columns=OPTION_COLUMNS), False, monthly,
                        ("gap and surplus withheld: " + NO_OPENING_BALANCE,))
    gap = weeks["gap"].to_numpy(float)
    if not (gap > 0).any():
        return CashPlan(weeks, pd.DataFrame(columns=OPTION_COLUMNS), True, monthly)
    origin = fc["week_start"].iloc[0] - pd.Timedelta(days=1)
    n = len(fc)
    items, notes = [], []
    for found, why in (_credit_line(gap, policy), _factoring(receivables, origin, n, policy),
                       _skip_discounts(discounts, bills, origin, n), _delay_bills(bills, origin, n, policy)):
        items += found
        notes += why
    return CashPlan(weeks, _rank(items, gap), True, monthly, tuple(notes))


def summary(plan: CashPlan, policy: Policy = Policy()) -> str:
    """One line for the treasurer: the first placement, or the gap and its cheapest cover, or why neither."""
    w, liq = plan.weeks, policy.liquidity
    if not plan.opening_known:
        return (f"No opening balance (no cash_balances): gap and surplus withheld; an opening balance of at least "
                f"{w['opening_needed'].max():,.0f} keeps the p10 above the floor {policy.cash_floor:,.0f} plus buffer "
                f"{w['buffer'].iloc[0]:,.0f} in every week")
    parts = []
    gaps = w[w["gap"] > 0]
    if len(gaps):
        peak = gaps.loc[gaps["gap"].idxmax()]
        parts.append(f"p10 below the floor {policy.cash_floor:,.0f} in {len(gaps)} week(s), largest gap "
                     f"{peak['gap']:,.0f} in week {peak['week']}")
        if len(plan.options):
            best = plan.options.iloc[0]
            parts.append(f"cheapest cover: {best['option']}{' ' + best['item'] if best['item'] else ''} "
                         f"({best['cost']:,.0f}); all {len(plan.options)} options leave "
                         f"{plan.options['gap_left'].iloc[-1]:,.0f} open")
        else:
            parts.append("nothing closes it (" + "; ".join(plan.notes) + ")")
    placeable = w[w["surplus_placeable"] > 0]
    if len(placeable):
        first = placeable.iloc[0]
        parts.append(f"from week {first['week']} {first['surplus_placeable']:,.0f} can be placed for "
                     f"{first['placeable_weeks']} weeks (earns {first['placement_earns']:,.0f} at "
                     f"{liq.placement_rate:.1%})")
    elif not len(gaps):
        parts.append(f"no surplus to place: p10 stays above floor plus buffer {w['buffer'].iloc[0]:,.0f} for "
                     f"{liq.placement_min_weeks} weeks in a row nowhere")
    return "; ".join(parts)


def plan_liquidity(company: Company, as_of: str | pd.Timestamp | None = None, weeks: int = WEEKS.default,
                   shocks: Shocks = Shocks(), *, models: ForecastModels, late: LatePaymentModel,
                   policy: Policy = Policy(), paths: int = PATHS.default,
                   seed: int = 0) -> tuple[pd.DataFrame, CashPlan]:
    """The forecast and its surplus and gaps, from the company's data: the receivables are scored with ``late``
    (the late-payment model) and the forecast's pay-date model, as the worklist scores them; bills and discount
    decisions are read as of the same date. Returns the forecast rows and the plan."""
    from training.collections import discounts as decide_discounts
    from training.scoring import score_features

    at = to_date(as_of) if as_of is not None else last_known_date(company)
    fc = cash_forecast(company, at, weeks, shocks, models=models, policy=policy, paths=paths, seed=seed)
    if fc["opening_note"].iloc[0] or not fc["below_floor"].any():  # no options needed: skip the scoring
        return fc, liquidity(fc, policy)
    x = invoice_features(company, at, FeatureConfig.from_policy(policy))
    receivables = score_features(x.reset_index(drop=True), late, models.timing, policy=policy)
    bills = open_bills(company, at)
    bills = bills.assign(**{Bill.AMOUNT: base_amounts(company, Bill.TABLE, at=at).reindex(bills.index).to_numpy()})
    return fc, liquidity(fc, policy, receivables=receivables, discounts=decide_discounts(company, at, policy, fc),
                         bills=bills[BILL_NEEDS])
