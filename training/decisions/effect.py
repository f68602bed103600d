"""Does chasing help? The chased and the control invoices compared, from the collections log and the payments,
and the collection KPIs a credit team is judged by, overall and by owner.

The comparison (``chasing_outcomes``, then ``chasing_effect``):

- **Which invoices.** Those that fell overdue (still open at the end of their due date) on or after the log's
  first action, whose due date lies at least ``cap_days`` before as-of (so every outcome is known), of customers
  the policy lets be chased (not on ``dunning.no_dunning``).
- **Two arms, by the policy's draw.** ``control`` are the invoices the worklist holds back
  (``features.control.in_control`` with ``dunning.control_share``: the same invoices every run); ``chased`` the
  rest. It is an intention-to-treat comparison: an invoice counts as chased when the policy meant to chase it,
  whether or not a contact was logged; ``contacted_within_30d`` says how far each arm really was contacted, and
  a control arm with contacts dilutes the effect rather than biasing it. The draw must have been in force over
  the invoices compared (from the log's first action on).
- **Outcomes per invoice**, counted from its due date: ``paid_within_30d`` (settled, its open amount at zero,
  within ``window_days`` days); ``days_to_pay`` (days until settled, capped at ``cap_days``, an invoice still
  open then counting as ``cap_days``: a restricted mean, so open invoices are not dropped); ``cash_collected_30d``
  (the payments received on it within ``window_days`` days, as a share of what was unpaid at due; cash only,
  credit notes are not collection).
- **Intervals.** Each arm's mean with a 95 % normal-approximation interval (mean ± 1.96 standard errors), and the
  effect, chased minus control, with the Welch interval: difference ± 1.96 × √(s²_chased/n_chased +
  s²_control/n_control). Normal, not bootstrap: the arms hold hundreds of invoices, the means are of bounded
  per-invoice values, and the figure is then the same on every run.

The KPIs (``collection_kpis``) look at the ``WINDOW_DAYS`` days to as-of (the ``kpis`` command's window), in the
base currency: collection rate, overdue rate, average days to collect and the collection effectiveness index,
each for all customers and for each owner when the customers carry an owner column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.asof import as_of as _view
from features.asof import last_known_date, to_date
from features.company import Company
from features.contract import Act, Cust, Fx, Inv, Pay
from features.control import in_control
from features.ledger import base_amounts, base_of, codes, open_amounts, to_base, unit
from features.policy import Policy
from features.working_capital import WINDOW_DAYS, days_overdue
from training.decisions.dunning import CONTACT_KINDS

REPORT_COLUMNS = ["section", "owner", "metric", "arm", "value", "low", "high", "n", "unit", "definition"]
OUTCOME_COLUMNS = [Inv.ID, Inv.CUSTOMER, Inv.DUE, "arm", "contacted", "paid_within", "days_to_pay", "cash_share"]
CHASED, CONTROL, DIFFERENCE = "chased", "control", "difference"
ALL = ""  # the owner of the rows about every customer
UNASSIGNED = "(no owner)"
OWNER = Cust.OWNER  # the customers' optional owner column (who is responsible for the account)
Z95 = 1.959964


@dataclass(frozen=True)
class EffectConfig:
    """The comparison's windows, in days after the due date."""

    window_days: int = 30  # "paid within" and "cash collected within"
    cap_days: int = 60  # days to pay is capped here; invoices must be due this long before as-of

    def __post_init__(self):
        if not 0 < self.window_days <= self.cap_days:
            raise ValueError(f"window_days must be positive and at most cap_days, got {self.window_days} and "
                             f"{self.cap_days}")


def _contacted(view: Company, inv: pd.DataFrame, window_days: int) -> np.ndarray:
    """Whether a contact was logged on each invoice, or on its customer without an invoice named, from its due
    date to ``window_days`` after it."""
    acts = view.get(Act.TABLE)
    acts = acts[acts[Act.KIND].isin(CONTACT_KINDS)]
    on_inv = acts[acts[Act.INVOICE].notna()][[Act.INVOICE, Act.DATE]].rename(columns={Act.INVOICE: Inv.ID})
    on_inv = on_inv.merge(inv[[Inv.ID, Inv.DUE]], on=Inv.ID)
    on_cust = acts[acts[Act.INVOICE].isna()][[Act.CUSTOMER, Act.DATE]].rename(columns={Act.CUSTOMER: Inv.CUSTOMER})
    on_cust = on_cust.merge(inv[[Inv.ID, Inv.CUSTOMER, Inv.DUE]], on=Inv.CUSTOMER)
    both = pd.concat([on_inv[[Inv.ID, Inv.DUE, Act.DATE]], on_cust[[Inv.ID, Inv.DUE, Act.DATE]]])
    after = (both[Act.DATE] - both[Inv.DUE]).dt.days
    hit = set(both.loc[(after >= 0) & (after <= window_days), Inv.ID])
    return inv[Inv.ID].isin(hit).to_numpy()


def _cash(view: Company) -> pd.DataFrame:
    """Customer cash per invoice and day in the base currency at the day's rate: the payments, or without a
    payments table each paid invoice's ``paid_amount`` on its paid date."""
    inv, fx, base = view[Inv.TABLE], view.get(Fx.TABLE), base_of(view)
    if view.has(Pay.TABLE):
        pay = view[Pay.TABLE]
        theirs = codes(inv.set_index(Inv.ID)[Inv.CURRENCY]).reindex(pay[Pay.INVOICE]).to_numpy()
        cur = codes(pay[Pay.CURRENCY]).fillna(pd.Series(theirs, index=pay.index, dtype="string"))
        return pd.DataFrame({Inv.ID: pay[Pay.INVOICE].to_numpy(), "date": pay[Pay.DATE].to_numpy(),
                             "cash": to_base(pay[Pay.AMOUNT], cur, pay[Pay.DATE], fx, base).to_numpy()})
    paid = inv[inv[Inv.PAID].notna()]
    cash = to_base(paid[Inv.PAID_AMOUNT].fillna(paid[Inv.AMOUNT]), paid[Inv.CURRENCY], paid[Inv.PAID], fx, base)
    return pd.DataFrame({Inv.ID: paid[Inv.ID].to_numpy(), "date": paid[Inv.PAID].to_numpy(), "cash": cash.to_numpy()})


def chasing_outcomes(company: Company, as_of: str | pd.Timestamp | None = None, policy: Policy = Policy(),
                     config: EffectConfig = EffectConfig()) -> pd.DataFrame:
    """One row per invoice compared (``OUTCOME_COLUMNS``): its arm, whether it was contacted, and its outcomes
    (see the module docstring), from the company as known at the end of as-of."""
    at = to_date(as_of) if as_of is not None else last_known_date(company)
    view = _view(company, at)
    acts = view.get(Act.TABLE)
    if acts.empty:
        raise ValueError(f"the data has no collections log (actions) by {at:%Y-%m-%d}, so nothing says which "
                         "invoices were chased")
    start = acts[Act.DATE].min()
    inv = view[Inv.TABLE]
    last_due = at - pd.Timedelta(days=config.cap_days)
    fell_overdue = inv[Inv.PAID].isna() | (inv[Inv.PAID] > inv[Inv.DUE])
    chosen = (fell_overdue & (inv[Inv.DUE] + pd.Timedelta(days=1) >= start) & (inv[Inv.DUE] <= last_due)
              & ~inv[Inv.CUSTOMER].isin(policy.dunning.no_dunning))
    inv = inv[chosen]
    if inv.empty:
        raise ValueError(f"no invoice fell overdue between the log's first action ({start:%Y-%m-%d}) and "
                         f"{last_due:%Y-%m-%d} ({config.cap_days} days before as-of), so there is nothing to compare")

    settled = (inv[Inv.PAID] - inv[Inv.DUE]).dt.days  # NaN: still open at as-of
    days_to_pay = settled.fillna(config.cap_days).clip(upper=config.cap_days)
    cash = _cash(view)
    cash = cash.merge(inv[[Inv.ID, Inv.DUE]], on=Inv.ID)
    after = (cash["date"] - cash[Inv.DUE]).dt.days
    before_due = cash[after <= 0].groupby(Inv.ID)["cash"].sum()
    within = cash[(after > 0) & (after <= config.window_days)].groupby(Inv.ID)["cash"].sum()
    amount = base_amounts(view, Inv.TABLE)[chosen]
    unpaid_at_due = (amount.to_numpy() - before_due.reindex(inv[Inv.ID]).fillna(0.0).to_numpy()).clip(min=0)
    got = within.reindex(inv[Inv.ID]).fillna(0.0).to_numpy()
    share = np.where(unpaid_at_due > 0, np.clip(got / np.where(unpaid_at_due > 0, unpaid_at_due, 1.0), 0, 1), 0.0)
    return pd.DataFrame({
        Inv.ID: inv[Inv.ID].to_numpy(), Inv.CUSTOMER: inv[Inv.CUSTOMER].to_numpy(), Inv.DUE: inv[Inv.DUE].to_numpy(),
        "arm": np.where(in_control(inv[Inv.ID], policy.dunning.control_share), CONTROL, CHASED),
        "contacted": _contacted(view, inv, config.window_days),
        "paid_within": (settled <= config.window_days).to_numpy(),
        "days_to_pay": days_to_pay.to_numpy(float), "cash_share": share,
    })[OUTCOME_COLUMNS]


def _mean_ci(x: np.ndarray) -> tuple[float, float, float]:
    n = len(x)
    if n == 0:
        return np.nan, np.nan, np.nan
    m = float(np.mean(x))
    se = float(np.std(x, ddof=1) / np.sqrt(n)) if n > 1 else np.nan
    return m, m - Z95 * se, m + Z95 * se


def welch_interval(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """mean(a) − mean(b) with its 95 % normal-approximation interval (Welch's standard error)."""
    if len(a) < 2 or len(b) < 2:
        return (float(np.mean(a) - np.mean(b)) if len(a) and len(b) else np.nan), np.nan, np.nan
    d = float(np.mean(a) - np.mean(b))
    se = float(np.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b)))
    return d, d - Z95 * se, d + Z95 * se


def _metrics(config: EffectConfig) -> list[tuple[str, str, str, str]]:
    """(metric, outcome column, unit, definition) of the comparison."""
    w, cap = config.window_days, config.cap_days
    return [
        (f"paid_within_{w}d", "paid_within", "share",
         f"Share of the invoices settled (open amount at zero) within {w} days after their due date."),
        ("days_to_pay", "days_to_pay", "days",
         f"Mean days from the due date until settled, capped at {cap} (an invoice still open then counts as {cap})."),
        (f"cash_collected_{w}d", "cash_share", "share",
         f"Payments received within {w} days after the due date, as a share of what was unpaid at due "
         "(mean over invoices; credit notes are not cash)."),
        (f"contacted_within_{w}d", "contacted", "share",
         f"Share of the invoices with a contact logged (on the invoice or its customer) within {w} days after due."),
    ]


def chasing_effect(outcomes: pd.DataFrame, policy: Policy = Policy(), config: EffectConfig = EffectConfig()
                   ) -> pd.DataFrame:
    """The chased and control arms' means and their difference, per outcome (``REPORT_COLUMNS``, section
    ``effect``), with 95 % normal-approximation intervals; empty values with the reason when an arm is empty."""
    arm = outcomes["arm"].to_numpy()
    share = policy.dunning.control_share
    why = ("" if (arm == CONTROL).sum() >= 2 and (arm == CHASED).sum() >= 2 else
           f"Not measurable: dunning.control_share is {share:.0%}, so no invoice was held back unchased. "
           if share == 0 else "Not measurable: an arm has fewer than two invoices. ")
    rows = []
    for metric, column, unit_, definition in _metrics(config):
        x = outcomes[column].to_numpy(float)
        chased, control = x[arm == CHASED], x[arm == CONTROL]
        for name, values in ((CHASED, chased), (CONTROL, control)):
            m, lo, hi = _mean_ci(values)
            rows.append({"arm": name, "value": m, "low": lo, "high": hi, "n": len(values)})
        d, lo, hi = welch_interval(chased, control) if not why else (np.nan, np.nan, np.nan)
        rows.append({"arm": DIFFERENCE, "value": d, "low": lo, "high": hi, "n": len(x)})
        for r in rows[-3:]:
            r.update(section="effect", owner=ALL, metric=metric, unit=unit_, definition=why + definition + (
                " Difference = chased − control, 95 % Welch normal-approximation interval." if r["arm"] == DIFFERENCE
                else " 95 % normal-approximation interval of the mean."))
    return pd.DataFrame(rows)[REPORT_COLUMNS]


def _owners(view: Company) -> pd.Series | None:
    cust = view[Cust.TABLE]
    if OWNER not in cust.columns:
        return None
    names = cust[OWNER].astype("string").str.strip()
    if not (names.fillna("") != "").any():  # a loaded company always has the column; owners only when one is named
        return None
    return pd.Series(names.where(names.fillna("") != "", UNASSIGNED).to_numpy(), index=cust[Cust.ID].to_numpy())


def _kpi(owner: str, metric: str, value: float, n: float, unit_: str, definition: str) -> dict:
    """One KPI row; ``n`` counts the invoices behind it."""
    return {"section": "kpi", "owner": owner, "metric": metric, "arm": "", "value": value, "low": np.nan,
            "high": np.nan, "n": int(n), "unit": unit_, "definition": definition}


def collection_kpis(company: Company, as_of: str | pd.Timestamp | None = None, policy: Policy = Policy()
                    ) -> pd.DataFrame:
    """Collection rate, overdue rate, average days to collect and CEI over the ``WINDOW_DAYS`` days to as-of
    (``REPORT_COLUMNS``, section ``kpi``): for every customer (owner empty), then per owner when there is one."""
    at = to_date(as_of) if as_of is not None else last_known_date(company)
    view = _view(company, at)
    begin = at - pd.Timedelta(days=WINDOW_DAYS)
    inv = view[Inv.TABLE]
    fx, base, cur = view.get(Fx.TABLE), base_of(view), unit(view)
    owners = _owners(view)

    def owner_of(customers: pd.Series) -> np.ndarray:
        return (owners.reindex(customers.to_numpy()).fillna(UNASSIGNED).to_numpy() if owners is not None
                else np.full(len(customers), ALL, dtype=object))

    now, then = open_amounts(view, at), open_amounts(view, begin)
    amount_at = to_base(inv[Inv.AMOUNT], inv[Inv.CURRENCY], at, fx, base)
    open_now = now.set_index(Inv.ID)["amount_open"].reindex(inv[Inv.ID]).fillna(0.0).to_numpy()
    due_in = ((inv[Inv.DUE] > begin) & (inv[Inv.DUE] <= at)).to_numpy()
    issued_in = ((inv[Inv.ISSUE] > begin) & (inv[Inv.ISSUE] <= at)).to_numpy()
    settled_in = ((inv[Inv.PAID] > begin) & (inv[Inv.PAID] <= at)).to_numpy()
    late = days_overdue(now[Inv.DUE], at) > policy.grace_days
    frame = pd.DataFrame({
        "owner": owner_of(inv[Inv.CUSTOMER]),
        "due_amount": np.where(due_in, amount_at, 0.0), "due_open": np.where(due_in, open_now, 0.0),
        "invoiced": np.where(issued_in, base_amounts(view, Inv.TABLE).to_numpy(), 0.0),
        "settled_amount": np.where(settled_in, base_amounts(view, Inv.TABLE).to_numpy(), 0.0),
        "settled_days": np.where(settled_in, (inv[Inv.PAID] - inv[Inv.ISSUE]).dt.days.to_numpy(float), 0.0),
        "n_settled": settled_in.astype(int), "n_due": due_in.astype(int), "n_issued": issued_in.astype(int),
    })
    frame["settled_weighted"] = frame["settled_amount"] * frame["settled_days"]
    per = frame.groupby("owner")[["due_amount", "due_open", "invoiced", "settled_amount", "settled_weighted",
                                  "n_settled", "n_due", "n_issued"]].sum()
    ar = pd.DataFrame({"open_end": now["amount_open"].groupby(owner_of(now[Inv.CUSTOMER])).sum(),
                       "overdue_end": now.loc[late, "amount_open"].groupby(owner_of(now.loc[late, Inv.CUSTOMER]))
                       .sum(),
                       "current_end": now.loc[~late, "amount_open"].groupby(owner_of(now.loc[~late, Inv.CUSTOMER]))
                       .sum(),
                       "open_begin": then["amount_open"].groupby(owner_of(then[Inv.CUSTOMER])).sum(),
                       "n_open": now.groupby(owner_of(now[Inv.CUSTOMER])).size(),
                       "n_open_begin": then.groupby(owner_of(then[Inv.CUSTOMER])).size()})
    per = per.join(ar, how="outer").fillna(0.0)
    if owners is not None:
        per = pd.concat([per.sum().to_frame(ALL).T, per])

    w, grace = WINDOW_DAYS, f" + {policy.grace_days} grace days" if policy.grace_days else ""
    rows = []
    def ratio(a: float, b: float) -> float:
        return float(a / b) if b > 0 else np.nan

    for owner, r in per.iterrows():
        collectible = r["open_begin"] + r["invoiced"]
        rows += [
            _kpi(owner, "collection_rate", ratio(r["due_amount"] - r["due_open"], r["due_amount"]), r["n_due"], "share",
                 f"Of the amount of the invoices due in the {w} days to as-of, the share paid or credited by as-of."),
            _kpi(owner, "overdue_rate", ratio(r["overdue_end"], r["open_end"]), r["n_open"], "share",
                 f"Open amount past its due date{grace} / open amount at as-of (invoices' open amounts; credit "
                 "notes on the account are not netted, unlike the kpis command's overdue_share)."),
            _kpi(owner, "average_days_to_collect", ratio(r["settled_weighted"], r["settled_amount"]),
                 r["n_settled"], "days",
                 f"Days from issue to settlement of the invoices settled in the {w} days to as-of, weighted by "
                 "amount."),
            _kpi(owner, "collection_effectiveness_index",
                 100 * ratio(collectible - r["open_end"], collectible - r["current_end"]),
                 r["n_open_begin"] + r["n_issued"], "percent",
                 f"CEI = (open AR {w} days before as-of + invoiced since − open AR at as-of) / (open AR {w} days "
                 f"before as-of + invoiced since − open AR not yet overdue at as-of) × 100; in {cur}."),
        ]
    return pd.DataFrame(rows)[REPORT_COLUMNS]


def collections_report(company: Company, as_of: str | pd.Timestamp | None = None, policy: Policy = Policy(),
                       config: EffectConfig = EffectConfig()) -> pd.DataFrame:
    """The effect of chasing (chased against control, with intervals) and the collection KPIs, one table."""
    at = to_date(as_of) if as_of is not None else last_known_date(company)
    effect = chasing_effect(chasing_outcomes(company, at, policy, config), policy, config)
    return pd.concat([effect, collection_kpis(company, at, policy)], ignore_index=True)


@dataclass(frozen=True)
class Uplift:
    """What acting on an overdue invoice brings in, measured against the control group: the share of what
    would still be unpaid ``window_days`` after due that chasing collects, overall and per customer."""

    overall: float  # 1 − unpaid share (chased) / unpaid share (control)
    low: float  # the overall share at the ends of the paid-within difference's 95 % interval
    high: float
    customers: pd.Series  # per customer id, shrunk towards ``overall`` (see ``measured_uplift``)


PRIOR_INVOICES = 20  # the weight, in invoices per arm, of the overall rates in a customer's shrunk rates


def measured_uplift(outcomes: pd.DataFrame, prior_invoices: int = PRIOR_INVOICES) -> Uplift | None:
    """The uplift of chasing from the compared invoices (``chasing_outcomes``), or None while it cannot be
    estimated: no control group, or a paid-within difference whose 95 % interval does not exclude zero.

    Per customer, each arm's unpaid share is shrunk towards the overall one with the weight of
    ``prior_invoices`` invoices ((unpaid + k × overall) / (n + k)), so that a customer with few invoices in the
    control group gets about the overall uplift and one with many gets its own; uplifts are kept within [0, 1].
    """
    unpaid = ~outcomes["paid_within"].to_numpy(bool)
    chased, control = (outcomes["arm"] == CHASED).to_numpy(), (outcomes["arm"] == CONTROL).to_numpy()
    if chased.sum() < 2 or control.sum() < 2:
        return None
    d, lo, hi = welch_interval(unpaid[control].astype(float), unpaid[chased].astype(float))
    base = unpaid[control].mean()
    if not lo > 0 or base <= 0:
        return None
    overall_chased = unpaid[chased].mean()
    k = float(prior_invoices)
    frame = pd.DataFrame({"customer": outcomes[Inv.CUSTOMER].to_numpy(), "unpaid": unpaid, "chased": chased,
                          "control": control})
    per = frame.groupby("customer").apply(lambda g: pd.Series({
        "chased": (g.loc[g["chased"], "unpaid"].sum() + k * overall_chased) / (g["chased"].sum() + k),
        "control": (g.loc[g["control"], "unpaid"].sum() + k * base) / (g["control"].sum() + k)}),
        include_groups=False)
    share = (1 - per["chased"] / per["control"]).clip(0, 1)
    return Uplift(overall=float(d / base), low=float(lo / base), high=float(min(hi / base, 1.0)), customers=share)
