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

Once the log can measure it, the assumption gives way to the measurement: with a control group
(``dunning.control_share``) whose comparison with the chased invoices shows an effect (the paid-within-30-days
difference's 95 % interval excludes zero; ``training.decisions.effect``), an overdue invoice's share is its
customer's measured uplift (the share of what would still be unpaid 30 days after due that chasing collected,
shrunk towards the overall one), so the rank is the expected uplift: cash brought in by acting, not cash that
would come anyway, and customers who pay when reminded rank above those who pay when they pay.

A collector calls a customer, not an invoice: ``calls`` groups the worklist into one row per proposed contact
(``CALL_COLUMNS``), with the invoices it raises, their totals, the most advanced step among them and one draft
covering them. ``owner`` (the customers' optional owner column) narrows the worklist to one person's accounts.

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
from features.contract import Bill, Cust, Inv
from features.invoices import DAYS_OVERDUE, OPEN_AMOUNT, FeatureConfig, History, history, invoice_features
from features.load import Company
from features.policy import Policy
from training import tracking
from training.decisions.dunning import (
    DISPUTE,
    LOG_COLUMNS,
    NO_ACTION,
    SAME_CONTACT,
    honour_log,
    is_actionable,
    log_facts,
)
from training.decisions.effect import Uplift, chasing_outcomes, measured_uplift
from training.decisions.reasons import Reason, Rows
from training.late_payment import LatePaymentModel
from training.payment_timing import PaymentTimingModel
from training.scoring import score_features

RANKED_COLUMNS = ["rank", "invoice_id", "customer_id", "amount_open", "days_overdue", "aging_bucket", "action",
                  "p_late", "expected_gain", "why"]
OWNER = Cust.OWNER
WORKLIST_COLUMNS = [*RANKED_COLUMNS, *LOG_COLUMNS, OWNER]  # the log's columns: training.decisions.dunning
# One row per call: the customer's invoices that the worklist raises in one contact.
CALL_COLUMNS = ["rank", "customer_id", "customer_name", OWNER, "action", "invoices", "n_invoices", "amount_open",
                "amount_overdue", "earliest_due", "best_rank", "expected_gain", "last_contact", "message"]
# The sentence a call's draft adds for the invoices beyond the one it leads with, per message language.
_ALSO = {"en": ("This also concerns invoice {}.", "This also concerns invoices {}."),
         "sv": ("Detta gäller även faktura {}.", "Detta gäller även fakturorna {}.")}
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
    return _unpaid(x, timing.quantiles(x, qs=_levels(grid)), horizon_days)


def _levels(grid: int) -> np.ndarray:
    """The ``grid`` levels of the timing distribution that ``unpaid_chances`` reads."""
    return (np.arange(grid) + 0.5) / grid


def _unpaid(x: pd.DataFrame, delays: np.ndarray, horizon_days: int) -> tuple[np.ndarray, np.ndarray]:
    """``unpaid_chances`` from the delays at ``_levels`` (days after due; inf = never paid)."""
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
        measured = (f"; chasing this customer collects {row['effect']:.0%} of what would stay unpaid, measured "
                    "against the control group" if row["measured"] else "")
        return (f"{_days(row['days_overdue'])} overdue and {row['unpaid']:.0%} likely still unpaid in {h} without "
                f"action{reason}, so a {row['action']} is worth about {gain} of the {amount} open{measured}")
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
             config: CollectionsConfig | None = None, company_key: str | None = None, owner: str | None = None,
             by_customer: bool = False) -> pd.DataFrame:
    """Open invoices at as-of, best first by the expected cash that acting brings in, with the collections
    log's rules applied (``WORKLIST_COLUMNS``; the first ``top`` rows when given). With ``by_customer``, one row
    per call instead (``CALL_COLUMNS``, the first ``top`` calls; see ``calls``).

    ``models`` is the pair (late payment, payment timing); by default ``company_key``'s champions. ``config``
    defaults to the policy's collections settings; the features follow the policy's definition of late.
    ``owner`` keeps the customers of that owner only (``owner_names`` says who there is).
    """
    if top is not None and top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    at = to_date(as_of) if as_of is not None else last_known_date(company)
    owners = customer_owners(company)
    mine = None if owner is None else _owned_by(owners, owner)
    known = history(company, at, FeatureConfig.from_policy(policy))  # for the features and the log's facts
    ranked = ranked_invoices(company, at, policy, models, config, company_key, uplift=log_uplift(company, at, policy),
                             known=known)
    if mine is not None:
        ranked = ranked[ranked["customer_id"].isin(mine)].reset_index(drop=True)
    if ranked.empty:
        return pd.DataFrame(columns=CALL_COLUMNS if by_customer else WORKLIST_COLUMNS)
    facts = log_facts(company, at, known.reduced)
    rows = honour_log(ranked, facts, policy, None if by_customer else top)
    rows[OWNER] = owners.reindex(rows["customer_id"]).fillna("").to_numpy()
    if not by_customer:
        return rows[WORKLIST_COLUMNS]
    # Each invoice's own step and draft: every rule but the one-contact-per-customer rule, which calls replace.
    d = policy.dunning.model_copy(update={"min_days_between_contacts": 0})
    alone = honour_log(ranked, facts, policy.model_copy(update={"dunning": d}))
    out = calls(rows[WORKLIST_COLUMNS], alone, at, policy)
    return out.head(top) if top is not None else out


def customer_owners(company: Company) -> pd.Series:
    """Each customer's owner (index ``customer_id``), as written without surrounding blanks; empty when none."""
    cust = company[Cust.TABLE]
    names = cust[Cust.OWNER].astype("string").str.strip().fillna("").to_numpy(object) if Cust.OWNER in cust else ""
    return pd.Series(names, index=cust[Cust.ID].to_numpy(), dtype=object)


def owner_names(company: Company) -> list[str]:
    """The owners the customers name, sorted."""
    return sorted(set(customer_owners(company)) - {""})


def _owned_by(owners: pd.Series, owner: str) -> pd.Index:
    """The customers of ``owner`` (matched without regard to case or surrounding blanks); a ValueError that
    says who there is when nobody has that name."""
    known = sorted(set(owners) - {""})
    if not known:
        raise ValueError(f"no customer has an owner, so the worklist cannot be filtered by owner {owner!r}: give "
                         f"the customers table an '{Cust.OWNER}' column (or map one in mapping.yaml)")
    mine = owners.index[owners.str.casefold() == owner.strip().casefold()]
    if mine.empty:
        raise ValueError(f"no customer has owner {owner!r}; the owners are {', '.join(known)}")
    return mine


def _money(x: float) -> str:
    return f"{x:,.2f}"


def _also(invoices: pd.DataFrame, language: str) -> str:
    """The draft's sentence naming the call's further invoices (amount in their currency), or nothing."""
    if invoices.empty:
        return ""
    listed = ", ".join(f"{r.invoice_id} ({_money(r.amount_open_doc)} {r.currency})"
                       for r in invoices.itertuples(index=False))
    one, many = _ALSO[language]
    return " " + (one if len(invoices) == 1 else many).format(listed)


def calls(worklist_frame: pd.DataFrame, alone: pd.DataFrame, at: pd.Timestamp, policy: Policy = Policy()
          ) -> pd.DataFrame:
    """One row per call (``CALL_COLUMNS``), in the worklist's order: for each customer the worklist proposes to
    contact, the invoices that contact raises (its proposed row and those ``in the same contact``).

    ``worklist_frame`` is the worklist (``WORKLIST_COLUMNS``) at ``at``; ``alone`` the same ranking with every
    log rule but the one contact per customer, which gives each invoice of a call its own step and its own
    draft (an invoice raised in the same contact may be disputed, or escalated for a broken promise). A call's
    ``action`` is the most advanced step among its invoices (the pre-due reminder below the ladder's steps;
    dispute resolution only when all its invoices are disputed). Its ``message`` is the draft of the invoice it
    leads with (that step, best ranked), naming the other invoices chased; a call that also raises disputed
    invoices adds the dispute draft of the first of them, naming the others. Totals are in the base currency;
    ``amount_overdue`` counts the invoices past due; ``expected_gain`` is what the worklist expects the contact
    to bring in.
    """
    rows = worklist_frame
    proposed = rows.loc[is_actionable(rows["action"]), "customer_id"]
    raised = rows[rows["customer_id"].isin(proposed) & (is_actionable(rows["action"])
                                                        | (rows["action"] == SAME_CONTACT))]
    if raised.empty:
        return pd.DataFrame(columns=CALL_COLUMNS)
    own = alone.set_index("invoice_id")
    raised = raised.assign(step=own["action"].reindex(raised["invoice_id"]).to_numpy(),
                           draft=own["message"].reindex(raised["invoice_id"]).to_numpy())
    d = policy.dunning
    order = {d.pre_due_action: 0, **{s.action: i + 1 for i, s in enumerate(d.steps)}}
    raised = raised.assign(level=raised["step"].map(order).fillna(-1).astype(int))  # dispute resolution: -1
    language = d.language
    out = []
    for customer, group in raised.sort_values("rank", kind="stable").groupby("customer_id", sort=False):
        chased, disputed = group[group["step"] != DISPUTE], group[group["step"] == DISPUTE]
        lead = (chased.sort_values(["level", "rank"], ascending=[False, True], kind="stable").iloc[0]
                if len(chased) else disputed.iloc[0])
        message = str(lead["draft"]) + _also(chased.drop(lead.name) if len(chased) else disputed.drop(lead.name),
                                             language)
        if len(chased) and len(disputed):
            first = disputed.iloc[0]
            message += " " + str(first["draft"]) + _also(disputed.drop(first.name), language)
        first_row = group.iloc[0]
        out.append({
            "customer_id": customer, "customer_name": first_row["customer_name"], OWNER: first_row[OWNER],
            "action": lead["step"], "invoices": ", ".join(group["invoice_id"].astype(str)),
            "n_invoices": len(group), "amount_open": round(float(group["amount_open"].sum()), 2),
            "amount_overdue": round(float(group.loc[group["days_overdue"] > 0, "amount_open"].sum()), 2),
            "earliest_due": at - pd.Timedelta(days=int(group["days_overdue"].max())),
            "best_rank": int(group["rank"].min()), "expected_gain": round(float(group["expected_gain"].sum()), 2),
            "last_contact": first_row["last_contact"], "message": message,
        })
    frame = pd.DataFrame(out).sort_values("best_rank", kind="stable").reset_index(drop=True)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return frame[CALL_COLUMNS]


def log_uplift(company: Company, at: pd.Timestamp, policy: Policy) -> Uplift | None:
    """The uplift of chasing measured from the log against the control group, or None while it cannot be."""
    if policy.dunning.control_share <= 0 or company.get("actions").empty:
        return None
    try:
        return measured_uplift(chasing_outcomes(company, at, policy))
    except ValueError:  # nothing to compare yet
        return None


def ranked_invoices(company: Company, as_of: str | pd.Timestamp | None = None, policy: Policy = Policy(),
                    models: tuple[LatePaymentModel, PaymentTimingModel] | None = None,
                    config: CollectionsConfig | None = None, company_key: str | None = None,
                    uplift: Uplift | None = None, known: History | None = None) -> pd.DataFrame:
    """Every open invoice at as-of with its ladder step and expected gain, best first (``RANKED_COLUMNS``):
    the worklist before the collections log's rules. ``uplift`` (measured from the log) replaces the assumed
    ``action_effect`` of overdue invoices by their customer's measured one. ``known`` is the history at as-of
    (``features.invoices.history``) when the caller has it."""
    config = config or CollectionsConfig.from_policy(policy)
    at = to_date(as_of) if as_of is not None else last_known_date(company)
    late, timing = _models(models, company_key, policy)
    x = invoice_features(company, at, FeatureConfig.from_policy(policy), known=known)
    if x.empty:
        return pd.DataFrame(columns=RANKED_COLUMNS)
    x = x.reset_index(drop=True)
    # One set-up of the timing distribution for the pay dates and the chances unpaid (``unpaid_chances``).
    *pay, delays = timing.pay_summary(x, qs=_levels(config.grid))
    scored, facts = score_features(x, late, timing, policy=policy, facts=True, pay=tuple(pay))
    unpaid, after_due = _unpaid(x, delays, config.horizon_days)
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
    customer = x[Inv.CUSTOMER].to_numpy()
    effect = (np.full(len(x), config.action_effect) if uplift is None else
              uplift.customers.reindex(customer).fillna(uplift.overall).to_numpy(float))
    gain = np.select([overdue, pre_due],
                     [effect * amount * unpaid,
                      config.pre_due_effect * amount * p_late * late_and_unpaid], 0.0)
    # The ladder's step and the aging bucket depend on the days overdue alone: worded once per distinct day.
    distinct, of_day = np.unique(days, return_inverse=True)
    step = np.array([d.action(int(n)) for n in distinct.tolist()], dtype=object)[of_day]
    bucket = np.array([policy.bucket(int(n)) for n in distinct.tolist()], dtype=object)[of_day]
    action = np.select([overdue, pre_due], [step.astype(str), d.pre_due_action], NO_ACTION)

    out = pd.DataFrame({
        "invoice_id": x[Inv.ID].to_numpy(), "customer_id": x[Inv.CUSTOMER].to_numpy(), "amount_open": amount,
        "days_overdue": days, "aging_bucket": bucket.tolist(), "action": action,
        "p_late": np.round(p_late, 4), "expected_gain": np.round(gain, 2),
        # for ordering and the sentence only
        "_unpaid_amount": amount * unpaid, "unpaid": unpaid, "good_standing": good, "due_date": x[Inv.DUE],
        "late_share": x["late_share_recent_weighted"].to_numpy(), "reason": [_risk_reason(f) for f in facts],
        "effect": effect, "measured": uplift is not None,
    })
    out = out.sort_values(["expected_gain", "_unpaid_amount", "invoice_id"], ascending=[False, False, True],
                          kind="stable").reset_index(drop=True)
    rows = Rows(out)  # each row as the mapping ``_why`` reads, without a dict per row
    out["why"] = [_why(rows[i], policy, config) for i in range(len(out))]
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
        from training.cash.forecast import forecast as cash_forecast
        from training.cash.model import load_forecast_models

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
