"""A synthetic company in the contract's format, deterministic per seed.

The company is built so that the facts of the field hold in it and the models have
something true to learn:

- customers pay in payment runs (weekly on a fixed weekday, monthly on a fixed day) or ad hoc
  on business days, so whether a due date falls just before or after a run decides lateness;
- each customer has a latent risk that sets the delay it intends, a spread, and a slow drift,
  so a recent record says more than an old one;
- disputes, paper delivery, large invoices and quarter- or month-end due dates slow payment;
- a share of customers start paying worse from a date (and order less), for early warnings;
- very late invoices of the riskiest customers are written off, some disputes are short-paid; a credit
  note closes what was not paid, and a few invoices get a price-correction credit before they are paid;
- a share of customers pay some invoices in instalments (partial payments) before the final receipt;
  the invoice's paid date is the day its payments and credits first reach its amount;
- customers in Sweden are invoiced in SEK (daily ``fx_rates`` against the EUR base); a few of their
  instalments are paid in EUR; some customers get bonus credit notes left on the account (unapplied);
- sales have yearly seasonality and growth; orders become invoices after per-customer lead
  times and some are cancelled; suppliers deliver purchase orders after lead times and bill
  with terms, some offering 1 % within 10 days; the bank has payroll, rent, tax and loan lines.

- a credit team keeps the ``actions`` log: a reminder a week past due, a call at three weeks with promises
  to pay (seven in ten kept), disputes logged; the reminder really brings some payments forward (more for
  low-risk customers, hardly for a disputed invoice), and a ``control_share`` of the invoices, drawn by
  invoice id as the worklist draws its control group, is never chased, so the effect can be measured;
  each customer's account has an ``owner`` in the team (one of ``owners``).

Payment delays are Gumbel distributed around each invoice's intended delay, so the generator
knows every invoice's true probability of being late; it writes that, and each customer's
latent facts, to ``truth/`` beside the tables (``load`` never reads it). ``truth/invoices`` also holds both
outcomes of chasing (``pay_date_unchased``, ``pay_date_chased``), so the true effect of a reminder is known
per invoice; ``truth/team`` the team's rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from features.contract import PO, Act, Bal, Bill, Credit, Cust, Fx, Inv, Ord, Pay, Stock, Txn
from features.control import in_control
from features.policy import POLICY_FILE

_EPOCH = np.datetime64("1970-01-01", "D")
_COUNTRIES = np.array(["SE", "NO", "DK", "FI", "DE", "NL", "GB", "FR", "IT", "ES"])
_COUNTRY_DELAY = np.array([-1.5, -1.5, -1.0, -1.0, -0.5, 0.0, 1.0, 3.0, 5.0, 4.0])
_INDUSTRIES = np.array(["retail", "wholesale", "manufacturing", "construction", "services",
                        "public sector", "hospitality"])
_INDUSTRY_DELAY = np.array([0.0, 0.5, -0.5, 4.0, -0.5, 3.0, 2.0])
_INDUSTRY_SPREAD = np.array([1.0, 1.0, 0.9, 1.3, 1.0, 0.6, 1.6])
_TERMS = np.array([14, 30, 45, 60])
_TERMS_P = np.array([0.15, 0.55, 0.15, 0.15])
_SYLLABLES = np.array(["nor", "vik", "sol", "berg", "lund", "ström", "dal", "mark", "holm", "fjord",
                       "kraft", "tek", "bygg", "hav", "skog", "lin", "gran", "ek", "ber", "sand"])
_SUFFIXES = np.array(["AB", "AS", "ApS", "Oy", "GmbH", "BV", "Ltd", "SA", "SpA", "SL"])
REMINDER_AFTER_DAYS = 7  # the credit team reminds a week past due (the next business day)...
CALL_AFTER_DAYS = 21  # ...and calls at three weeks


@dataclass(frozen=True)
class SyntheticConfig:
    """Settings of the synthetic company; the defaults give a mid-sized wholesaler."""

    customers: int = 200
    years: float = 3.0
    seed: int = 0
    end: str = "2025-06-30"  # the company's "today": nothing after it is known
    orders_per_month: float = 5.5  # median per customer (lognormal across customers)
    growth: float = 0.08  # yearly sales growth
    seasonality: float = 0.2  # amplitude of the yearly cycle
    deteriorating_share: float = 0.15
    cancel_share: float = 0.04
    direct_invoice_share: float = 0.08  # invoices not raised from an order
    purchase_ratio: float = 0.6  # purchases as a share of sales
    discount_supplier_share: float = 0.3
    slow_sku_share: float = 0.15
    base_currency: str = "EUR"
    foreign_currency: str = "SEK"  # the currency of the customers in ``foreign_country``
    foreign_country: str = "SE"
    partial_payer_share: float = 0.15  # customers who pay some invoices in instalments
    correction_share: float = 0.03  # invoices that get a price-correction credit note
    bonus_credits_per_year: float = 0.3  # unapplied credit notes per customer and year
    reminder_response: float = 0.6  # chance that a reminded customer of average risk pays sooner for it
    control_share: float = 0.0  # invoices the credit team holds back unchased (the policy's dunning.control_share)
    owners: tuple[str, ...] = ("Anna Berg", "Björn Lind", "Carla Holm")  # the team; () leaves accounts unowned


def _wd(days: np.ndarray) -> np.ndarray:
    """Weekday (Monday 0) of integer days since 1970-01-01 (a Thursday)."""
    return (days + 3) % 7


def _next_business_day(days: np.ndarray) -> np.ndarray:
    wd = _wd(days)
    return days + np.where(wd == 5, 2, np.where(wd == 6, 1, 0))


def _last_business_day(days: np.ndarray) -> np.ndarray:
    wd = _wd(days)
    return days - np.where(wd == 5, 1, np.where(wd == 6, 2, 0))


def _month_day(days: np.ndarray, day_of_month: np.ndarray, months_ahead: np.ndarray) -> np.ndarray:
    month = (_EPOCH + days.astype("timedelta64[D]")).astype("datetime64[M]") + months_ahead.astype("timedelta64[M]")
    return (month.astype("datetime64[D]") - _EPOCH).astype(np.int64) + day_of_month - 1


def _day_of_month(days: np.ndarray) -> np.ndarray:
    d = _EPOCH + days.astype("timedelta64[D]")
    return (d - d.astype("datetime64[M]")).astype(np.int64) + 1


def next_run(days: np.ndarray, kind: np.ndarray, weekday: np.ndarray, monthday: np.ndarray) -> np.ndarray:
    """The first day on or after ``days`` on which a customer pays (kind 0 ad hoc, 1 weekly, 2 monthly)."""
    weekly = days + (weekday - _wd(days)) % 7
    dom = _day_of_month(days)
    monthly = _month_day(days, monthday, (dom > monthday).astype(np.int64))
    return np.select([kind == 1, kind == 2], [weekly, monthly], _next_business_day(days))


def last_run(days: np.ndarray, kind: np.ndarray, weekday: np.ndarray, monthday: np.ndarray) -> np.ndarray:
    """The last day on or before ``days`` on which a customer pays."""
    weekly = days - (_wd(days) - weekday) % 7
    dom = _day_of_month(days)
    monthly = _month_day(days, monthday, -(dom < monthday).astype(np.int64))
    return np.select([kind == 1, kind == 2], [weekly, monthly], _last_business_day(days))


def _gumbel_cdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.exp(-x))


def _dates(days: np.ndarray) -> pd.Series:
    return pd.Series((_EPOCH + days.astype("timedelta64[D]")).astype("datetime64[ns]"))


def _masked_dates(days: np.ndarray, known: np.ndarray) -> pd.Series:
    out = _dates(np.where(known, days, 0))
    out[~known] = pd.NaT
    return out


def response_chance(reminder_response: float, risk: np.ndarray, disputed: np.ndarray) -> np.ndarray:
    """The chance that a reminded customer pays sooner for it: ``reminder_response`` for average risk, higher for
    low-risk customers, a fifth of it on an invoice disputed by the reminder day."""
    return np.clip(reminder_response - 0.1 * risk, 0.05, 0.95) * np.where(disputed, 0.2, 1.0)


def reminder_day(due: np.ndarray) -> np.ndarray:
    """The day the credit team reminds (integer days since 1970-01-01): the business day a week past due."""
    return _next_business_day(due + REMINDER_AFTER_DAYS)


def _chasing(rng, config, due, unchased, risk, disputed, runs, invoice_ids) -> dict[str, np.ndarray]:
    """The true effect of the credit team's reminder, per invoice.

    Every invoice still open on its reminder day gets the reminder, unless it is in the control group
    (``config.control_share``, drawn by invoice id as the worklist draws it). A reminded customer responds
    with a chance of ``reminder_response``, higher for low-risk customers and a fifth of it on an invoice it
    disputes; one that responds pays at its first payment run up to three days after the reminder, when
    that is sooner than it would have paid. Both outcomes are drawn for every invoice, the control group's too,
    so ``chased`` (the paid day had it been reminded) and ``unchased`` give the effect exactly.
    """
    n = len(due)
    remind = reminder_day(due)
    p = response_chance(config.reminder_response, risk, disputed)
    responds = rng.random(n) < p
    lag = rng.integers(0, 4, n)
    sooner = next_run(remind + lag, *runs)
    chased = np.where(responds & (unchased > remind), np.minimum(unchased, sooner), unchased)
    control = in_control(invoice_ids, config.control_share)
    reminded = (unchased > remind) & ~control
    return {"pay_day": np.where(reminded, chased, unchased), "chased": chased, "control": control,
            "reminded": reminded}


def _owners(config: SyntheticConfig, n: int) -> np.ndarray:
    """Each account's owner, drawn from a generator of its own (seeded by the seed), so that adding owners
    leaves every other table of a seed as it was."""
    if not config.owners:
        return np.full(n, None, dtype=object)
    return np.random.default_rng([config.seed, 2]).choice(np.array(config.owners, dtype=object), n)


def _names(rng: np.random.Generator, n: int, country_idx: np.ndarray) -> np.ndarray:
    a = rng.choice(_SYLLABLES, n)
    b = rng.choice(_SYLLABLES, n)
    return np.char.add(np.char.add(np.char.capitalize(np.char.add(a, b)), " "), _SUFFIXES[country_idx])


def generate(config: SyntheticConfig = SyntheticConfig()) -> dict[str, pd.DataFrame]:
    """All contract tables of a synthetic company, plus ``truth/invoices`` and ``truth/customers``."""
    rng = np.random.default_rng(config.seed)
    end = int((np.datetime64(config.end, "D") - _EPOCH).astype(np.int64))
    start = end - int(round(config.years * 365)) + 1
    days = np.arange(start, end + 1)
    n_days, n = len(days), config.customers

    # --- customers: latent facts -------------------------------------------------------------
    country = rng.choice(len(_COUNTRIES), n, p=np.array([18, 12, 10, 8, 14, 10, 10, 7, 6, 5]) / 100)
    industry = rng.choice(len(_INDUSTRIES), n, p=np.array([22, 18, 18, 12, 14, 8, 8]) / 100)
    risk = rng.standard_normal(n)
    base_delay = -12.0 + 6.5 * risk + _COUNTRY_DELAY[country] + _INDUSTRY_DELAY[industry]
    erratic = rng.random(n) < 0.12
    spread = (1.5 + 2.5 * np.exp(0.3 * risk)) * _INDUSTRY_SPREAD[industry] * np.where(erratic, 2.5, 1.0)
    size = np.exp(rng.normal(np.log(2500), 0.9, n))
    rate = np.exp(rng.normal(np.log(config.orders_per_month), 0.8, n)) / 21.7  # per business day
    terms = rng.choice(_TERMS, n, p=_TERMS_P)
    run_kind = rng.choice(3, n, p=[0.4, 0.4, 0.2])
    run_weekday = rng.choice([1, 3, 4, 2, 0], n, p=[0.25, 0.3, 0.25, 0.15, 0.05])
    run_monthday = rng.choice([1, 5, 10, 15, 20, 25, 28], n)
    lead = rng.integers(1, 15, n)
    dispute_rate = np.clip(0.03 + 0.05 * (risk + 1) + rng.normal(0, 0.02, n), 0.005, 0.35)
    onboard = np.where(rng.random(n) < 0.7,
                       start - rng.integers(30, 8 * 365, n),
                       rng.integers(start, max(end - 60, start + 1), n))
    paper_customer = rng.random(n) < 0.55
    switches = paper_customer & (rng.random(n) < 0.6)
    paper_until = np.where(~paper_customer, -10**9,
                           np.where(switches, rng.integers(start, end, n), 10**9))
    writes_off = risk > np.quantile(risk, 0.92)

    deteriorates = (rng.random(n) < config.deteriorating_share) & (onboard < end - 400)
    det_from = start + min(240, (end - start) // 3)
    det_start = np.where(deteriorates, rng.integers(det_from, max(end - 20, det_from + 1), n), 10**9)
    det_delay = np.where(deteriorates, rng.uniform(10, 25, n), 0.0)
    det_order_drop = np.where(deteriorates, rng.uniform(0.25, 0.5, n), 0.0)

    # Slow drift of each customer's delay (mean-reverting, monthly steps).
    months = n_days // 30 + 2
    drift = np.zeros((n, months))
    shocks = rng.normal(0, 1.6, (n, months))
    for m in range(1, months):
        drift[:, m] = 0.85 * drift[:, m - 1] + shocks[:, m]

    # --- sales: orders from a Poisson intensity with seasonality and growth --------------------
    season = 1 + config.seasonality * np.cos(2 * np.pi * (((days % 365.25) / 365.25) - 0.8))
    trend = (1 + config.growth) ** ((days - start) / 365.25)
    business = _wd(days) < 5
    intensity = rate[:, None] * (season * trend * business)[None, :]
    intensity = intensity * (days[None, :] >= onboard[:, None])
    dropped = days[None, :] >= (det_start + 30)[:, None]
    intensity = intensity * np.where(dropped, 1 - det_order_drop[:, None], 1.0)
    counts = rng.poisson(intensity)
    cust_idx, day_idx = np.nonzero(counts)
    reps = counts[cust_idx, day_idx]
    o_cust = np.repeat(cust_idx, reps)
    o_day = np.repeat(days[day_idx], reps)
    n_orders = len(o_cust)
    o_amount = np.round(size[o_cust] * np.exp(rng.normal(-0.18, 0.6, n_orders)), 2).clip(5)
    o_cancel = rng.random(n_orders) < config.cancel_share
    o_direct = (~o_cancel) & (rng.random(n_orders) < config.direct_invoice_share)
    o_promised = o_day + lead[o_cust]
    issue = _next_business_day(o_promised + rng.poisson(1.0, n_orders))
    invoiced = ~o_cancel & (issue <= end)
    order_id = np.array([f"SO{i:07d}" for i in range(1, n_orders + 1)])

    # --- invoices ---------------------------------------------------------------------------
    i_idx = np.nonzero(invoiced)[0]
    c = o_cust[i_idx]
    i_issue = issue[i_idx]
    i_amount = o_amount[i_idx]
    i_due = i_issue + terms[c]
    n_inv = len(i_idx)
    paper = i_issue < paper_until[c]
    disputed = rng.random(n_inv) < dispute_rate[c] * np.where(paper, 1.5, 1.0)
    dispute_day = i_issue + rng.integers(3, 25, n_inv)

    due_dom = _day_of_month(i_due)
    due_month = ((_EPOCH + i_due.astype("timedelta64[D]")).astype("datetime64[M]").astype(np.int64) % 12) + 1
    month_end = due_dom >= 26
    quarter_end = month_end & np.isin(due_month, [3, 6, 9, 12])
    month_idx = np.clip((i_issue - start) // 30, 0, months - 1)
    habit = (base_delay[c] + drift[c, month_idx]
             + 14.0 * disputed + 3.0 * paper + 1.5 * month_end + 3.5 * quarter_end
             + 1.2 * np.log(i_amount / size[c]).clip(-2, 3))
    # A customer in trouble pays later from the day the trouble starts, whichever invoice it is paying:
    # the added delay ramps in over the 60 days after that day, judged by when it would have paid.
    ramp = np.clip((i_due + habit - det_start[c]) / 60.0, 0, 1)
    mu = habit + ramp * det_delay[c]
    scale = spread[c] * np.where(disputed, 1.5, 1.0)
    intended = i_due + np.round(mu + scale * rng.gumbel(0, 1, n_inv)).astype(np.int64)
    intended = np.maximum(intended, i_issue + 1)
    unchased = next_run(intended, run_kind[c], run_weekday[c], run_monthday[c])
    # True probability of lateness: late iff the intended day falls after the last run <= due.
    last_ok = last_run(i_due, run_kind[c], run_weekday[c], run_monthday[c])
    p_true = np.where(last_ok < i_issue + 1, 1.0,
                      1 - _gumbel_cdf((last_ok - i_due + 0.5 - mu) / scale))
    order_order = np.argsort(i_issue, kind="stable")
    rank = np.empty(n_inv, dtype=np.int64)
    rank[order_order] = np.arange(n_inv)
    invoice_ids = np.array([f"INV{i:08d}" for i in range(1, n_inv + 1)])[rank]  # numbered by issue date
    # The credit team's reminder brings some payments forward (its own stream: the draws above stay as they were);
    # the reminder is a week past due, so it never changes whether an invoice is late, and ``p_true`` stays true.
    chase = _chasing(np.random.default_rng([config.seed, 13]), config, i_due, unchased, risk[c],
                     disputed & (dispute_day <= reminder_day(i_due)), (run_kind[c], run_weekday[c], run_monthday[c]),
                     invoice_ids)
    pay_day = chase["pay_day"]
    late_days = pay_day - i_due
    written_off = writes_off[c] & (late_days > 90) & (rng.random(n_inv) < 0.6)
    paid_amount = i_amount.copy()
    short = disputed & (rng.random(n_inv) < 0.3)
    paid_amount[short] = np.round(i_amount[short] * rng.uniform(0.85, 0.99, short.sum()), 2)
    paid_amount[written_off] = np.round(i_amount[written_off] * rng.uniform(0, 0.3, written_off.sum()), 2)
    is_paid = pay_day <= end
    dispute_known = disputed & (dispute_day <= end)

    customer_ids = np.array([f"{i:06d}" for i in range(1, n + 1)])
    # The ledger's own random stream, so the tables above stay what they were before it existed.
    ledger = _ledger(np.random.default_rng([config.seed, 7]), config, start, end, c, _COUNTRIES[country], onboard,
                     size, (run_kind, run_weekday, run_monthday), invoice_ids, customer_ids,
                     i_issue, i_amount, pay_day, is_paid, paid_amount, disputed, dispute_day, written_off)
    invoices = pd.DataFrame({
        Inv.ID: invoice_ids,
        Inv.CUSTOMER: customer_ids[c],
        Inv.ISSUE: _dates(i_issue),
        Inv.DUE: _dates(i_due),
        Inv.AMOUNT: ledger["amount_doc"],
        Inv.CURRENCY: ledger["currency"],
        Inv.PAID: _masked_dates(pay_day, is_paid),
        Inv.PAID_AMOUNT: np.where(is_paid, ledger["paid_doc"], np.nan),
        Inv.DISPUTE: _masked_dates(dispute_day, dispute_known),
        Inv.DELIVERY: np.where(paper, "paper", "electronic"),
        Inv.ORDER: np.where(o_direct[i_idx], None, order_id[i_idx]),
    })
    invoices = invoices.iloc[order_order].reset_index(drop=True)
    in_base = invoices.assign(**{Inv.AMOUNT: i_amount[order_order]})  # what the bank and suppliers scale with
    # The credit team's log, from its own stream so that every table above stays what it was.
    actions, truth_actions = _actions(np.random.default_rng([config.seed, 11]), end, i_due, pay_day, is_paid,
                                      disputed, dispute_day, invoice_ids, ledger["amount_doc"], chase["control"],
                                      unchased)

    keep = ~o_direct
    orders = pd.DataFrame({
        Ord.ID: order_id[keep],
        Ord.CUSTOMER: customer_ids[o_cust[keep]],
        Ord.DATE: _dates(o_day[keep]),
        Ord.AMOUNT: o_amount[keep],
        Ord.PROMISED: _dates(o_promised[keep]),
        Ord.CANCELLED: o_cancel[keep],
    })

    monthly_volume = rate * 21.7 * size  # order amounts average ``size``: lognormal(-0.18, 0.6)
    has_limit = rng.random(n) < 0.8
    customers = pd.DataFrame({
        Cust.ID: customer_ids,
        Cust.NAME: _names(rng, n, country),
        Cust.COUNTRY: _COUNTRIES[country],
        Cust.INDUSTRY: _INDUSTRIES[industry],
        Cust.CREDIT_LIMIT: np.where(has_limit, np.round(2.5 * monthly_volume, -3).clip(1000), np.nan),
        Cust.ONBOARDED: _dates(onboard),
        Cust.OWNER: _owners(config, n),
    })

    suppliers = _suppliers(rng, config, days, season * trend, start, end, in_base[Inv.AMOUNT].sum())
    cash_tx = _bank_lines(rng, days, in_base, start, end)
    balances = _balances(ledger["receipts"], suppliers["bills"], cash_tx, start, end)
    inventory = _inventory(rng, config, days, suppliers["bills"], end)

    truth_invoices = pd.DataFrame({
        Inv.ID: invoices[Inv.ID].to_numpy(),
        "p_late_true": p_true[order_order],
        "mu_days": mu[order_order],
        "scale_days": scale[order_order],
        "pay_date_true": _dates(pay_day[order_order]),
        "written_off": written_off[order_order],
        # The effect of chasing, as both outcomes of every invoice: paid when left alone, paid when reminded.
        "control": chase["control"][order_order],
        "reminded": chase["reminded"][order_order],
        "pay_date_unchased": _dates(unchased[order_order]),
        "pay_date_chased": _dates(chase["chased"][order_order]),
    })
    truth_team = pd.DataFrame([{"reminder_after_days": REMINDER_AFTER_DAYS, "call_after_days": CALL_AFTER_DAYS,
                                "reminder_response": config.reminder_response,
                                "control_share": config.control_share}])
    truth_customers = pd.DataFrame({
        Cust.ID: customer_ids,
        "risk": risk,
        "base_delay_days": base_delay,
        "spread_days": spread,
        "erratic": erratic,
        "payment_run": np.array(["ad hoc", "weekly", "monthly"])[run_kind],
        "run_weekday": np.where(run_kind == 1, run_weekday, -1),
        "run_monthday": np.where(run_kind == 2, run_monthday, -1),
        "terms_days": terms,
        "deteriorates_from": _masked_dates(det_start, deteriorates),
        "added_delay_days": det_delay,
        "order_drop": det_order_drop,
        "invoice_currency": ledger["customer_currency"],
        "partial_payer": ledger["partial_payer"],
    })
    return {
        Cust.TABLE: customers,
        Inv.TABLE: invoices,
        Ord.TABLE: orders,
        Bill.TABLE: suppliers["bills"],
        PO.TABLE: suppliers["purchase_orders"],
        Txn.TABLE: cash_tx,
        Bal.TABLE: balances,
        Stock.TABLE: inventory,
        Pay.TABLE: ledger["payments"],
        Credit.TABLE: ledger["credit_notes"],
        Fx.TABLE: ledger["fx_rates"],
        Act.TABLE: actions,
        "truth/invoices": truth_invoices,
        "truth/actions": truth_actions,
        "truth/team": truth_team,
        "truth/customers": truth_customers,
    }


def _ledger(rng, config, start, end, c, countries, onboard, size, runs, invoice_ids, customer_ids,
            issue, amount, pay_day, is_paid, paid_amount, disputed, dispute_day, written_off) -> dict:
    """Currencies, payments (instalments included) and credit notes of the invoices, with daily rates.

    Arrays are per invoice (amounts in the base currency). Every paid invoice's payments and credits
    first reach its amount on its paid day; instalments and credits dated by ``end`` of invoices paid
    later leave them partly open.
    """
    n_inv, n = len(issue), len(customer_ids)
    fx_start = start - 60
    fx_days = np.arange(fx_start, end + 1)
    path = np.arange(fx_start, max(end, int(pay_day.max(initial=end))) + 1)  # later days: planned, never written
    rate = np.round(np.exp(np.log(0.09) + np.cumsum(rng.normal(0, 0.004, len(path)))), 6)  # EUR per SEK

    def rate_on(d):
        return rate[np.asarray(d) - fx_start]

    foreign_customer = countries == config.foreign_country
    foreign = foreign_customer[c]
    per_base = np.where(foreign, 1 / rate_on(issue), 1.0)  # document units per base unit at issue
    amount_doc = np.round(amount * per_base, 2)
    cash = np.where(paid_amount >= amount, amount_doc, np.round(paid_amount * per_base, 2))
    currency = np.where(foreign, config.foreign_currency, config.base_currency)

    # Credits: what a write-off or a short-paid dispute left unpaid, and price corrections.
    corrected = ~disputed & ~written_off & (rng.random(n_inv) < config.correction_share)
    correction = np.where(corrected, np.round(amount_doc * rng.uniform(0.05, 0.2, n_inv), 2), 0.0)
    cash = np.round(cash - correction, 2)
    credit = np.round(amount_doc - cash, 2)
    later = np.where(disputed, dispute_day + rng.integers(3, 20, n_inv), issue + rng.integers(1, 15, n_inv))
    credit_day = np.where(written_off, pay_day, later)
    credit_day = np.minimum(credit_day, pay_day)
    reason = np.where(written_off, "write-off", np.where(disputed, "dispute", "price correction"))
    has_credit = (credit >= 0.01) & (credit_day <= end)

    # Payments: the final one on the paid day; a partial payer's instalments before it.
    partial_payer = rng.random(n) < config.partial_payer_share
    split = partial_payer[c] & (rng.random(n_inv) < 0.6) & (pay_day - issue >= 3) & (cash >= 1.0)
    k = np.where(split, rng.integers(2, 4, n_inv), 1)  # payments per invoice
    rows = []  # (invoice index, day, amount, in base currency)
    share = rng.uniform(0.2, 0.8, n_inv)
    first_part = rng.uniform(0.3, 0.7, n_inv)
    kind, weekday, monthday = runs
    for j in np.flatnonzero(split):
        early = np.sort(rng.integers(issue[j] + 1, pay_day[j], k[j] - 1))
        early = np.minimum(next_run(early, np.full(len(early), kind[c[j]]), np.full(len(early), weekday[c[j]]),
                                    np.full(len(early), monthday[c[j]])), pay_day[j])
        parts = [share[j]] if k[j] == 2 else [share[j] * first_part[j], share[j] * (1 - first_part[j])]
        paid_so_far = 0.0
        for m, (day, part) in enumerate(zip(early, parts)):
            doc = round(cash[j] * part, 2)
            if foreign[j] and m == 0 and rng.random() < 0.25:  # paid in the base currency instead
                in_base = np.floor(doc * rate_on(day) * 100) / 100
                rows.append((j, day, in_base, True))
                paid_so_far += in_base / rate_on(day)
            else:
                rows.append((j, day, doc, False))
                paid_so_far += doc
        rows.append((j, pay_day[j], np.ceil((cash[j] - paid_so_far) * 100 - 1e-6) / 100, False))
    single = np.flatnonzero(~split & (cash >= 0.01))
    pay = pd.DataFrame(rows, columns=["j", "day", "amount", "base"])
    pay = pd.concat([pay, pd.DataFrame({"j": single, "day": pay_day[single], "amount": cash[single], "base": False})],
                    ignore_index=True)
    pay = pay[(pay["day"] <= end) & (pay["amount"] >= 0.01)].sort_values(["day", "j"], kind="stable")
    j = pay["j"].to_numpy()
    payments = pd.DataFrame({
        Pay.ID: [f"PAY{i:08d}" for i in range(1, len(pay) + 1)],
        Pay.INVOICE: invoice_ids[j],
        Pay.DATE: _dates(pay["day"].to_numpy()),
        Pay.AMOUNT: pay["amount"].to_numpy(),
        Pay.CURRENCY: np.where(pay["base"].to_numpy(), config.base_currency, currency[j]),
    })
    receipts = pd.Series(np.where(pay["base"], 1.0, np.where(foreign[j], rate_on(pay["day"].to_numpy()), 1.0))
                         * pay["amount"].to_numpy(), index=payments[Pay.DATE]).groupby(level=0).sum()

    # Bonus credits left on the account, in the customer's currency.
    years = (end - start + 1) / 365.0
    count = rng.poisson(config.bonus_credits_per_year * years, n)
    who = np.repeat(np.arange(n), count)
    first = np.maximum(onboard[who], start)
    day = first + (rng.random(len(who)) * np.maximum(end - first, 1)).astype(np.int64)
    bonus = np.round(size[who] * rng.uniform(0.05, 0.3, len(who))
                     * np.where(foreign_customer[who], 1 / rate_on(day), 1.0), 2)
    applied = np.flatnonzero(has_credit)
    notes = pd.DataFrame({
        Credit.CUSTOMER: np.concatenate([customer_ids[c[applied]], customer_ids[who]]),
        Credit.DATE: _dates(np.concatenate([credit_day[applied], day])),
        Credit.AMOUNT: np.concatenate([credit[applied], bonus]),
        Credit.INVOICE: np.concatenate([invoice_ids[applied], np.full(len(who), None)]),
        Credit.CURRENCY: np.concatenate([currency[applied], np.where(foreign_customer[who], config.foreign_currency,
                                                                      config.base_currency)]),
        Credit.REASON: np.concatenate([reason[applied], np.full(len(who), "bonus")]),
    }).sort_values(Credit.DATE, kind="stable").reset_index(drop=True)
    notes.insert(0, Credit.ID, [f"CN{i:07d}" for i in range(1, len(notes) + 1)])
    fx_rates = pd.DataFrame({Fx.DATE: _dates(fx_days), Fx.CURRENCY: config.foreign_currency,
                             Fx.RATE: rate[:len(fx_days)]})
    return {"amount_doc": amount_doc, "paid_doc": cash, "currency": currency, "payments": payments,
            "credit_notes": notes, "fx_rates": fx_rates, "receipts": receipts,
            "customer_currency": np.where(foreign_customer, config.foreign_currency, config.base_currency),
            "partial_payer": partial_payer}


def _actions(rng, end, due, pay_day, is_paid, disputed, dispute_day, invoice_ids, amount_doc, control,
             unchased) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The collections log: a reminder a week past due to every invoice still open then, a call at three weeks
    with a promise to pay on half of them (seven in ten kept: promised for the day it is paid; the rest promised
    a week after the call and paid later), the disputes logged when raised and resolved the day before payment.
    The control group gets neither reminder nor call (its disputes are still logged: the customer raises them).

    ``truth/actions`` states per promise whether it was ``kept``, and per reminder ``effect_days``: how many days
    sooner the invoice was paid for it (``_chasing``; 0 when the customer did not respond).
    """
    rows = []  # (day, kind, invoice index, promised day or -1)
    open_on = np.where(is_paid, pay_day, np.iinfo(np.int64).max)
    remind = reminder_day(due)
    for j in np.flatnonzero((open_on > remind) & (remind <= end) & ~control):
        rows.append((remind[j], "reminder", j, -1))
    call = _next_business_day(due + CALL_AFTER_DAYS)
    called = np.flatnonzero((open_on > call) & (call <= end) & ~control)
    promises = called[rng.random(len(called)) < 0.5]
    kept = rng.random(len(promises)) < 0.7
    kept &= open_on[promises] < np.iinfo(np.int64).max  # a promise can only be kept by a payment
    for j in called:
        rows.append((call[j], "call", j, -1))
    for j, k in zip(promises, kept):
        rows.append((call[j], "promise", j, pay_day[j] if k else call[j] + 7))
    raised = np.flatnonzero(disputed & (dispute_day <= end))
    for j in raised:
        rows.append((dispute_day[j], "dispute", j, -1))
        if open_on[j] - 1 <= end and open_on[j] - 1 > dispute_day[j]:
            rows.append((open_on[j] - 1, "resolved", j, -1))
    log = pd.DataFrame(rows, columns=["day", "kind", "j", "promised"]).sort_values(["day", "j", "kind"],
                                                                                   kind="stable")
    j = log["j"].to_numpy()
    promised = log["promised"].to_numpy()
    is_promise = promised >= 0
    actions = pd.DataFrame({
        Act.ID: [f"ACT{i:08d}" for i in range(1, len(log) + 1)],
        Act.DATE: _dates(log["day"].to_numpy()),
        Act.KIND: log["kind"].to_numpy(),
        Act.INVOICE: invoice_ids[j],
        Act.CUSTOMER: None,
        Act.PROMISED: _masked_dates(promised, is_promise),
        Act.PROMISED_AMOUNT: np.where(is_promise, amount_doc[j], np.nan),
        Act.BY: np.where(log["kind"].isin(["dispute", "resolved"]), "sales", "credit team"),
    })
    truth = pd.DataFrame({Act.ID: actions[Act.ID], Act.KIND: actions[Act.KIND],
                          "kept": np.where(is_promise, promised == pay_day[j], False),
                          "effect_days": np.where(log["kind"].to_numpy() == "reminder",
                                                  (unchased[j] - pay_day[j]).astype(float), 0.0)})
    return actions, truth


def _suppliers(rng, config, days, shape, start, end, sales_total) -> dict[str, pd.DataFrame]:
    n_sup = max(10, config.customers // 10)
    lead = rng.integers(3, 35, n_sup)
    terms = rng.choice([30, 45, 60], n_sup, p=[0.5, 0.3, 0.2])
    offers = rng.random(n_sup) < config.discount_supplier_share
    share = rng.dirichlet(np.full(n_sup, 0.8))
    weekly_pos = np.maximum(share * max(20.0, config.customers * 0.4), 0.3)  # POs per week per supplier
    business = _wd(days) < 5
    intensity = (weekly_pos / 5)[:, None] * (shape * business)[None, :]
    counts = rng.poisson(intensity)
    s_idx, d_idx = np.nonzero(counts)
    reps = counts[s_idx, d_idx]
    s = np.repeat(s_idx, reps)
    order_day = np.repeat(days[d_idx], reps)
    n_po = len(s)
    raw = np.exp(rng.normal(0, 0.5, n_po)) * share[s] / np.maximum(weekly_pos[s], 1e-9)
    amount = np.round(raw / raw.sum() * sales_total * config.purchase_ratio, 2).clip(5)
    expected = order_day + lead[s]
    delivered = expected + rng.integers(-2, 10, n_po)
    bill_day = _next_business_day(delivered + rng.integers(0, 3, n_po))
    po_ids = np.array([f"PO{i:07d}" for i in range(1, n_po + 1)])
    supplier_ids = np.array([f"S{i:04d}" for i in range(1, n_sup + 1)])
    direct = rng.random(n_po) < 0.12  # service bills with no purchase order

    billed = bill_day <= end
    b = np.nonzero(billed)[0]
    due = bill_day[b] + terms[s[b]]
    has_discount = offers[s[b]]
    takes = has_discount & (rng.random(len(b)) < 0.85)
    # The company's weekly payment run is on Thursdays (weekday 3): it pays on the last run
    # before the due date, or inside the discount window when it takes the discount.
    thursday = lambda d: d - (_wd(d) - 3) % 7  # noqa: E731
    on_due = np.maximum(thursday(due), bill_day[b])
    in_window = np.maximum(bill_day[b] + rng.integers(5, 10, len(b)), bill_day[b])
    paid = np.where(takes, in_window, on_due)
    slipped = ~takes & (rng.random(len(b)) < 0.1)
    paid = np.where(slipped, paid + rng.integers(1, 12, len(b)), paid)
    bills = pd.DataFrame({
        Bill.ID: np.array([f"B{i:07d}" for i in range(1, len(b) + 1)]),
        Bill.SUPPLIER: supplier_ids[s[b]],
        Bill.ISSUE: _dates(bill_day[b]),
        Bill.DUE: _dates(due),
        Bill.AMOUNT: amount[b],
        Bill.CURRENCY: "EUR",
        Bill.PAID: _masked_dates(paid, paid <= end),
        Bill.DISCOUNT_PCT: np.where(has_discount, 1.0, np.nan),
        Bill.DISCOUNT_DAYS: np.where(has_discount, 10.0, np.nan),
        Bill.PO: np.where(direct[b], None, po_ids[b]),
    }).sort_values(Bill.ISSUE, kind="stable").reset_index(drop=True)
    bills["_taken"] = takes[np.argsort(bill_day[b], kind="stable")]
    keep = ~direct
    purchase_orders = pd.DataFrame({
        PO.ID: po_ids[keep],
        PO.SUPPLIER: supplier_ids[s[keep]],
        PO.DATE: _dates(order_day[keep]),
        PO.AMOUNT: amount[keep],
        PO.EXPECTED: _dates(expected[keep]),
        PO.DELIVERED: _masked_dates(delivered[keep], delivered[keep] <= end),
        PO.TERMS: terms[s[keep]].astype(float),
    })
    return {"bills": bills, "purchase_orders": purchase_orders}


def _bank_lines(rng, days, invoices, start, end) -> pd.DataFrame:
    monthly_sales = invoices.groupby(invoices[Inv.ISSUE].dt.to_period("M"))[Inv.AMOUNT].sum()
    level = float(monthly_sales.median()) if len(monthly_sales) else 10_000.0
    months = pd.period_range(_dates(np.array([start]))[0], _dates(np.array([end]))[0], freq="M")
    rows = []
    growth = np.linspace(1.0, 1.0 + 0.06 * len(months) / 12, len(months))
    for k, month in enumerate(months):
        first = month.start_time.normalize()
        for category, day, amount in (
            ("payroll", 25, -0.16 * level * growth[k] * rng.uniform(0.98, 1.03)),
            ("rent", 1, -0.03 * level),
            ("loan", 15, -0.02 * level),
        ):
            rows.append((first + pd.Timedelta(days=day - 1), category, amount))
        if month.month in (1, 4, 7, 10):
            quarter = sum(monthly_sales.get(month - k, level) for k in (1, 2, 3))
            rows.append((first + pd.Timedelta(days=11), "tax", -0.06 * float(quarter)))
    for d in days[_wd(days) == 0]:  # weekly bank fees and sundries
        rows.append((_dates(np.array([d]))[0], "fees", -abs(rng.normal(0.002, 0.001)) * level))
    tx = pd.DataFrame(rows, columns=[Txn.DATE, Txn.CATEGORY, Txn.AMOUNT])
    # Pay on the last business day on or before the nominal day.
    day_num = ((tx[Txn.DATE].to_numpy().astype("datetime64[D]") - _EPOCH).astype(np.int64))
    tx[Txn.DATE] = _dates(_last_business_day(day_num))
    tx = tx[(tx[Txn.DATE] >= _dates(np.array([start]))[0]) & (tx[Txn.DATE] <= _dates(np.array([end]))[0])]
    tx[Txn.AMOUNT] = tx[Txn.AMOUNT].round(2)
    tx[Txn.ACCOUNT] = "main"
    tx = tx.sort_values(Txn.DATE, kind="stable").reset_index(drop=True)
    return tx[[Txn.DATE, Txn.AMOUNT, Txn.CATEGORY, Txn.ACCOUNT]]


def _balances(receipts, bills, cash_tx, start, end) -> pd.DataFrame:
    """Month-end balances (and the last day) consistent with every receipt, payment and bank line."""
    first, last = _dates(np.array([start]))[0], _dates(np.array([end]))[0]
    paid = bills.dropna(subset=[Bill.PAID])
    cost = paid[Bill.AMOUNT] * (1 - np.where(paid["_taken"], paid[Bill.DISCOUNT_PCT].fillna(0) / 100, 0))
    payments = cost.groupby(paid[Bill.PAID]).sum()
    other = cash_tx.groupby(Txn.DATE)[Txn.AMOUNT].sum()
    idx = pd.date_range(first, last)
    flow = (receipts.reindex(idx, fill_value=0) - payments.reindex(idx, fill_value=0)
            + other.reindex(idx, fill_value=0))
    opening = max(2.0 * float(receipts.sum()) / max(len(idx) / 30.4, 1), 10_000.0)
    balance = opening + flow.cumsum()
    points = sorted(set(idx[idx.is_month_end]) | {last})
    out = pd.DataFrame({Bal.DATE: points, Bal.BALANCE: balance.reindex(points).round(2).to_numpy()})
    out[Bal.ACCOUNT] = "main"
    return out


def _inventory(rng, config, days, bills, end) -> pd.DataFrame:
    n_sku = max(50, config.customers // 4)
    month_ends = pd.DatetimeIndex(_dates(days)).to_series()
    month_ends = month_ends[month_ends.dt.is_month_end].to_numpy()
    purchases_per_day = float(bills[Bill.AMOUNT].sum()) / max(len(days), 1)
    unit_cost = np.round(np.exp(rng.normal(np.log(40), 1.0, n_sku)), 2)
    weight = rng.dirichlet(np.full(n_sku, 0.5))  # ABC: a few SKUs hold most of the value
    target_value = purchases_per_day * 45  # about 45 days of purchases in stock
    base_qty = np.maximum(target_value * weight / unit_cost, 1)
    slow = rng.random(n_sku) < config.slow_sku_share
    rows = []
    qty = base_qty.copy()
    for date in month_ends:
        moving = np.exp(rng.normal(0, 0.25, n_sku))
        qty = np.where(slow, qty * rng.uniform(0.98, 1.0, n_sku), base_qty * moving)
        rows.append(pd.DataFrame({Stock.DATE: date, Stock.SKU: [f"SKU{i:05d}" for i in range(1, n_sku + 1)],
                                  Stock.QUANTITY: np.round(qty), Stock.UNIT_COST: unit_cost}))
    return pd.concat(rows, ignore_index=True)


def write(tables: dict[str, pd.DataFrame], out: str | Path, fmt: str = "csv",
          base_currency: str = SyntheticConfig.base_currency) -> Path:
    """Write the tables (and ``truth/``) to a folder, as csv or parquet, with the ``base_currency`` its two
    currencies report in set in the folder's likvid.yaml, and the credit team's control share (``truth/team``)
    as its ``dunning.control_share`` when it holds invoices back (other settings there are kept)."""
    out = Path(out)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    settings = out / POLICY_FILE
    values = (yaml.safe_load(settings.read_text()) or {}) if settings.exists() else {}
    if isinstance(values, dict):
        changed = dict(values)
        if not values.get("base_currency"):
            changed["base_currency"] = base_currency
        team = tables.get("truth/team")
        share = float(team["control_share"].iloc[0]) if team is not None and len(team) else 0.0
        dunning = values.get("dunning") if isinstance(values.get("dunning"), dict) else {}
        if share > 0:  # the share the team held back, so that the worklist and the report draw the same invoices
            changed["dunning"] = {**dunning, "control_share": share}
        if changed != values:
            settings.write_text(yaml.safe_dump(changed, sort_keys=False))
    for name, frame in tables.items():
        frame = frame.drop(columns=[c for c in frame.columns if c.startswith("_")])
        path = out / f"{name}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False, date_format="%Y-%m-%d")
        else:
            frame.to_parquet(path, index=False)
    return out
