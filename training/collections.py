"""Collections worklist on the dunning ladder, and early-payment discount decisions.

The worklist ranks open invoices by the expected cash that acting on them brings in within a horizon
(default 30 days), from the calibrated late-payment model and the payment-timing distribution.
The action-effect assumption, stated once: acting on an overdue invoice (the ladder's step) brings in
``action_effect`` (default 30 %) of the amount that would otherwise still be unpaid at the horizon;
a friendly reminder before due turns ``pre_due_effect`` (default 30 %) of would-be-late payments into
payments on the due date, which counts only for payments that would otherwise still be outstanding at
the horizon. With one share for every step, the rank is the expected amount still unpaid at the
horizon without action, which is what a controller's time should go to; invoices the customer will
pay anyway soon rank low, however old or large.

Discounts: taking "p % within n days" pays p / (100 − p) for paying (due − pay-by) days early; its
annualised return is that times 365 / (due − pay-by) (simple, not compounded). A bill's discount is
taken when that beats the cost of capital and the cash forecast's p10 balance, lowered by the early
payments chosen (best return first, this one included), stays above the cash floor from week 1 through
the payment week, and on through the week before the due date, since paying early keeps the balance
lower until the bill would have been paid anyway. A bill whose pay-by date lies beyond the forecast
horizon is not decided yet (``cash_ok`` empty, ``take`` false): nothing is lost by waiting, since it
can be paid any day up to pay-by, and a later run whose horizon covers that date decides it. A bill
whose discount window has closed is listed last, with ``take`` false and ``cash_ok`` empty. ``reason`` says
which of these it is, in words: window closed, below the cost of capital, cash floor, beyond the horizon, taken.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.asof import as_of as _view
from features.asof import last_known_date, to_date
from features.contract import Bill, Inv
from features.invoices import DAYS_OVERDUE, OPEN_AMOUNT, FeatureConfig, invoice_features
from features.load import Company
from features.policy import Policy
from training import tracking
from training.decisions.dunning import LOG_COLUMNS, NO_ACTION, honour_log, log_facts
from training.decisions.reasons import Reason
from training.late_payment import LatePaymentModel
from training.payment_timing import PaymentTimingModel
from training.scoring import score_features

RANKED_COLUMNS = ["rank", "invoice_id", "customer_id", "amount_open", "days_overdue", "aging_bucket", "action",
                  "p_late", "expected_gain", "why"]
WORKLIST_COLUMNS = [*RANKED_COLUMNS, *LOG_COLUMNS]  # the log's columns: training.decisions.dunning
DISCOUNT_COLUMNS = ["bill_id", "supplier_id", "amount", "discount_pct", "pay_by", "annualized_return",
                    "cost_of_capital", "take", "cash_ok", "reason"]
FORECAST_NEEDS = ["week", "week_start", "week_end", "balance_p10"]


@dataclass(frozen=True)
class CollectionsConfig:
    """The action-effect assumption and the worklist's horizon."""

    horizon_days: int = 30  # cash counts when it arrives within this many days of as-of
    action_effect: float = 0.30  # share of the cash still unpaid at the horizon that a ladder step brings in
    pre_due_effect: float = 0.30  # share of would-be-late payments a pre-due reminder makes punctual
    grid: int = 200  # points of each invoice's payment-timing distribution
    forecast_weeks: int = 13  # horizon of the cash forecast that discounts ask for

    @classmethod
    def from_policy(cls, policy: Policy) -> CollectionsConfig:
        """The policy's ``collections`` settings (likvid.yaml), with the default grid and forecast horizon."""
        c = policy.collections
        return cls(horizon_days=c.horizon_days, action_effect=c.action_effect, pre_due_effect=c.pre_due_effect)


def _models(models, company_key: str | None, policy: Policy) -> tuple[LatePaymentModel, PaymentTimingModel]:
    """The given pair, else the company's late-payment and payment-timing champions (checked against the policy)."""
    if models is None:
        if company_key is None:
            raise ValueError("the worklist needs the models or the company key of their champions")
        return (tracking.load_champion(tracking.LATE_PAYMENT, company_key, policy).model,
                tracking.load_champion(tracking.PAYMENT_TIMING, company_key, policy).model)
    late, timing = models
    return late, timing


def unpaid_chances(x: pd.DataFrame, timing: PaymentTimingModel, horizon_days: int,
                   grid: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """For invoices open at their snapshot: the chance each is still unpaid ``horizon_days`` later, and the
    chance it is paid after its due date, both from the timing distribution given unpaid so far."""
    u = (np.arange(grid) + 0.5) / grid
    delays = timing.quantiles(x, qs=u)  # days after due; inf = never paid
    at_horizon = x[DAYS_OVERDUE].to_numpy(float) + horizon_days  # the horizon, in days after due
    return (delays > at_horizon[:, None]).mean(axis=1), (delays > 0).mean(axis=1)


def _risk_reason(facts: list[Reason]) -> str:
    """The strongest model reason that raises risk, other than when the invoice is due."""
    for fact in facts:
        if fact.raises and fact.feature != "days_to_due":
            return fact.sentence(direction=False)
    return ""


def _days(n: int) -> str:
    return f"{n} day" if abs(n) == 1 else f"{n} days"


def _why(row: dict, policy: Policy, cfg: CollectionsConfig) -> str:
    reason = f" ({row['reason']})" if row["reason"] else ""
    amount, gain, h = f"{row['amount_open']:,.0f}", f"{row['expected_gain']:,.0f}", _days(cfg.horizon_days)
    d = policy.dunning
    if row["days_overdue"] > 0:
        return (f"{_days(row['days_overdue'])} overdue and {row['unpaid']:.0%} likely still unpaid in {h} without "
                f"action{reason}, so a {row['action']} is worth about {gain} of the {amount} open")
    due_in = -row["days_overdue"]
    when = "due today" if due_in == 0 else f"due in {_days(due_in)}"
    if row["action"] != NO_ACTION:
        return (f"{when.capitalize()} with a {row['p_late']:.0%} chance of late payment{reason}, so a "
                f"{row['action']} is worth about {gain} of the {amount} open within {h}")
    if row["good_standing"]:
        return (f"Not yet due ({when}) and the customer is in good standing (paid {row['late_share']:.0%} of "
                "recent invoices late, nothing overdue): not chased before due")
    if row["p_late"] < d.pre_due_min_p_late:
        return (f"Not yet due ({when}); its {row['p_late']:.0%} chance of late payment is below the "
                f"{d.pre_due_min_p_late:.0%} reminder threshold")
    start = row["due_date"] - pd.Timedelta(days=d.pre_due_days)
    return (f"{when.capitalize()} with a {row['p_late']:.0%} chance of late payment{reason}: a {d.pre_due_action} "
            f"goes {_days(d.pre_due_days)} before due, from {start:%Y-%m-%d}")


def worklist(company: Company, as_of: str | pd.Timestamp | None = None, top: int | None = None,
             policy: Policy = Policy(), models: tuple[LatePaymentModel, PaymentTimingModel] | None = None,
             config: CollectionsConfig | None = None, company_key: str | None = None) -> pd.DataFrame:
    """Open invoices at as-of, best first by the expected cash that acting brings in, with the collections
    log's rules applied (``WORKLIST_COLUMNS``; the first ``top`` rows when given).

    ``models`` is the pair (late payment, payment timing); by default ``company_key``'s champions. ``config``
    defaults to the policy's collections settings; the features follow the policy's definition of late.
    """
    if top is not None and top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    at = to_date(as_of) if as_of is not None else last_known_date(company)
    ranked = ranked_invoices(company, at, policy, models, config, company_key)
    if ranked.empty:
        return pd.DataFrame(columns=WORKLIST_COLUMNS)
    return honour_log(ranked, log_facts(company, at), policy, top)


def ranked_invoices(company: Company, as_of: str | pd.Timestamp | None = None, policy: Policy = Policy(),
                    models: tuple[LatePaymentModel, PaymentTimingModel] | None = None,
                    config: CollectionsConfig | None = None, company_key: str | None = None) -> pd.DataFrame:
    """Every open invoice at as-of with its ladder step and expected gain, best first (``RANKED_COLUMNS``):
    the worklist before the collections log's rules."""
    config = config or CollectionsConfig.from_policy(policy)
    at = to_date(as_of) if as_of is not None else last_known_date(company)
    late, timing = _models(models, company_key, policy)
    x = invoice_features(company, at, FeatureConfig.from_policy(policy))
    if x.empty:
        return pd.DataFrame(columns=RANKED_COLUMNS)
    x = x.reset_index(drop=True)
    scored, facts = score_features(x, late, timing, policy=policy, facts=True)
    unpaid, after_due = unpaid_chances(x, timing, config.horizon_days, config.grid)
    days = x[DAYS_OVERDUE].astype(int).to_numpy()
    amount = x[OPEN_AMOUNT].to_numpy(float)
    p_late = scored["p_late"].to_numpy(float)
    d = policy.dunning

    good = ((x["n_overdue_open"] == 0) & (x["late_share_recent_weighted"] <= d.good_standing_max_p_late)).to_numpy()
    overdue = days > 0
    pre_due = ~overdue & ~good & (p_late >= d.pre_due_min_p_late) & (-days <= d.pre_due_days)
    # Among would-be-late payments, the share still outstanding at the horizon (0 when due after it).
    late_and_unpaid = np.where((days + config.horizon_days > 0) & (after_due > 0),
                               unpaid / np.maximum(after_due, 1e-12), 0.0)
    gain = np.select([overdue, pre_due],
                     [config.action_effect * amount * unpaid,
                      config.pre_due_effect * amount * p_late * late_and_unpaid], 0.0)
    action = np.select([overdue, pre_due], [[d.action(int(n)) for n in days], d.pre_due_action], NO_ACTION)

    out = pd.DataFrame({
        "invoice_id": x[Inv.ID].to_numpy(), "customer_id": x[Inv.CUSTOMER].to_numpy(), "amount_open": amount,
        "days_overdue": days, "aging_bucket": [policy.bucket(int(n)) for n in days], "action": action,
        "p_late": np.round(p_late, 4), "expected_gain": np.round(gain, 2),
        # for ordering and the sentence only
        "_unpaid_amount": amount * unpaid, "unpaid": unpaid, "good_standing": good, "due_date": x[Inv.DUE],
        "late_share": x["late_share_recent_weighted"].to_numpy(), "reason": [_risk_reason(f) for f in facts],
    })
    out = out.sort_values(["expected_gain", "_unpaid_amount", "invoice_id"], ascending=[False, False, True],
                          kind="stable").reset_index(drop=True)
    out["why"] = [_why(r, policy, config) for r in out.to_dict("records")]
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out[RANKED_COLUMNS]


def evaluate_worklist(company: Company, as_of: str | pd.Timestamp, ranked: pd.DataFrame, top: int = 50,
                      horizon_days: int = 30) -> dict[str, float]:
    """What the top ``top`` of a ranking holds of the cash really still unpaid ``horizon_days`` after as-of,
    against the top ``top`` by days overdue × amount. Needs data that runs past as-of + horizon."""
    at = to_date(as_of)
    later = at + pd.Timedelta(days=horizon_days)
    if last_known_date(company) < later:
        raise ValueError(f"the data ends {last_known_date(company):%Y-%m-%d}, before as-of + {horizon_days} days "
                         f"({later:%Y-%m-%d}), so what was still unpaid then is unknown")
    now = _view(company, at)[Inv.TABLE]
    open_ = now[now[Inv.PAID].isna()].set_index(Inv.ID)
    then = _view(company, later)[Inv.TABLE].set_index(Inv.ID)[Inv.PAID].reindex(open_.index)
    still = open_[Inv.AMOUNT].where(then.isna(), 0.0)
    baseline = ((at - open_[Inv.DUE]).dt.days * open_[Inv.AMOUNT]).sort_values(ascending=False, kind="stable")
    ours = still.reindex(ranked["invoice_id"].head(top)).sum()
    base = still.reindex(baseline.index[:top]).sum()
    return {"open_invoices": float(len(open_)), "still_unpaid_total": float(still.sum()),
            "worklist_top": float(ours), "days_x_amount_top": float(base),
            "ratio": float(ours / base) if base > 0 else float("inf")}


def _check_forecast(forecast: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in FORECAST_NEEDS if c not in forecast.columns]
    if missing:
        raise ValueError(f"the cash forecast lacks column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if forecast.empty:
        raise ValueError("the cash forecast has no weeks")
    fc = forecast.sort_values("week").reset_index(drop=True)
    return fc.assign(week_start=pd.to_datetime(fc["week_start"]), week_end=pd.to_datetime(fc["week_end"]))


def annualized_return(discount_pct: pd.Series | float, days_early: pd.Series | float) -> pd.Series | float:
    """Simple annual return of paying ``days_early`` days early for ``discount_pct`` % off."""
    pct = np.asarray(discount_pct, float) / 100.0
    early = np.asarray(days_early, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(early > 0, pct / (1.0 - pct) * 365.0 / early, np.where(early <= 0, np.inf, np.nan))
    return out if out.ndim else float(out)


def discounts(company: Company, as_of: str | pd.Timestamp | None = None, policy: Policy = Policy(),
              forecast: pd.DataFrame | None = None, config: CollectionsConfig | None = None,
              company_key: str | None = None) -> pd.DataFrame:
    """Each bill open at as-of with early-payment terms: its annualised return and whether to take it."""
    config = config or CollectionsConfig.from_policy(policy)
    at = to_date(as_of) if as_of is not None else last_known_date(company)
    bills = _view(company, at).get(Bill.TABLE)
    terms = bills[bills[Bill.PAID].isna() & (bills[Bill.DISCOUNT_PCT].fillna(0) > 0)]
    if terms.empty:
        return pd.DataFrame(columns=DISCOUNT_COLUMNS)
    if forecast is None:
        if company_key is None:
            raise ValueError("discounts need the cash forecast or the company key of its champion")
        from training.cash.family import load_forecast_models
        from training.cash.forecast import forecast as cash_forecast

        models = load_forecast_models(company_key, policy)
        forecast = cash_forecast(company, at, weeks=config.forecast_weeks, models=models, policy=policy)
    fc = _check_forecast(forecast)

    pay_by = terms[Bill.ISSUE] + pd.to_timedelta(terms[Bill.DISCOUNT_DAYS], unit="D")
    out = pd.DataFrame({
        "bill_id": terms[Bill.ID], "supplier_id": terms[Bill.SUPPLIER], "amount": terms[Bill.AMOUNT],
        "discount_pct": terms[Bill.DISCOUNT_PCT], "pay_by": pay_by,
        "annualized_return": annualized_return(terms[Bill.DISCOUNT_PCT], (terms[Bill.DUE] - pay_by).dt.days),
        "cost_of_capital": policy.cost_of_capital, "take": False, "cash_ok": pd.NA, "reason": "",
    }).astype({"cash_ok": "boolean"})
    horizon_end = fc["week_end"].iloc[-1]
    due = terms[Bill.DUE]
    balance = fc["balance_p10"].to_numpy(float)
    ends = fc["week_end"].to_numpy()
    shift = np.zeros(len(fc))
    # Decide in order of return, so the best discounts get the cash first.
    for i in out.sort_values("annualized_return", ascending=False, kind="stable").index:
        when, ret = out.at[i, "pay_by"], out.at[i, "annualized_return"]
        if pd.isna(when) or when <= at or when > horizon_end:  # no usable terms, window closed, or beyond the horizon
            out.at[i, "reason"] = ("no discount days given" if pd.isna(when) else
                                   f"window closed on {when:%Y-%m-%d}" if when <= at else
                                   f"beyond the horizon: pay by {when:%Y-%m-%d} is after the forecast's last week "
                                   f"(ends {horizon_end:%Y-%m-%d}); a later run decides it")
            continue
        pay_week = int(np.searchsorted(ends, np.datetime64(when), side="left"))
        due_week = int(np.searchsorted(ends, np.datetime64(due[i]), side="left"))
        trial = shift.copy()
        trial[pay_week:due_week] += out.at[i, "amount"] * (1 - out.at[i, "discount_pct"] / 100.0)
        until = max(pay_week, min(due_week, len(fc)) - 1) + 1  # through the payment week, and on while it bites
        ok = bool((balance[:until] - trial[:until] > policy.cash_floor).all())
        out.at[i, "cash_ok"] = ok
        if ret <= policy.cost_of_capital:
            out.at[i, "reason"] = f"return {ret:.1%} a year is below the cost of capital {policy.cost_of_capital:.1%}"
        elif not ok:
            out.at[i, "reason"] = f"cash would fall below the floor of {policy.cash_floor:,.0f} (p10 forecast)"
        else:
            out.at[i, "take"] = True
            out.at[i, "reason"] = f"taken: {ret:.1%} a year beats the cost of capital {policy.cost_of_capital:.1%}"
            shift = trial
    out["annualized_return"] = out["annualized_return"].round(4)
    out["_closed"] = out["pay_by"].isna() | (out["pay_by"] <= at)  # closed windows last: nothing to decide there
    return out.sort_values(["_closed", "pay_by", "bill_id"], kind="stable").reset_index(drop=True)[DISCOUNT_COLUMNS]
