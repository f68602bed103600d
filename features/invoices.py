"""Point-in-time invoice features: what a credit analyst would look at, as of a date.

``invoice_features(company, date)`` describes every invoice open at the end of ``date`` using only
what ``as_of(company, date)`` shows. ``snapshots`` stacks such views at several dates to make
training examples, each labelled later by ``label``.

A feature is declared once, in ``CATALOG``: its name, the words of its reason, its monotone direction and
what its value is compared with. ``FEATURES`` (the model's inputs) and the model's monotone constraints
derive from it. Its computation has one home too: a customer-only value is resolved once per customer in
``history`` (``History.customers``), an invoice's own value in ``_invoice_part``, which a batch and a single
request invoice share.

Customer history counts a still-open overdue invoice as late: it is the strongest fact about
lateness there is, and dropping it would make a customer who stopped paying look punctual.
Customers with little history fall back on the late share and delays of their industry and
country (shrinkage), not on zeros that read as "never late".

Money follows ``features.ledger``: an invoice's open amount is net of the payments and applied credit notes
dated by the date, in the base currency at the date's rate (``amount`` too: it is still to be paid); history
(typical and usual amounts) is in the base at each invoice's issue-date rate. A customer's ``open_amount`` is
less its unapplied credit (CONTRACT "Open amount"); its overdue amount is not (no invoice is credited).
"""

from __future__ import annotations

import calendar
import functools
import multiprocessing
import weakref
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

from features import cache as validation_cache
from features import cash, ledger, parallel
from features.asof import as_of, last_known_date
from features.company import Company
from features.contract import Bill, Credit, Cust, Fx, Inv, Ord, Pay
from features.policy import Policy, month_end, quarter_end

DAY = pd.Timedelta(days=1)
OPEN_AMOUNT = "amount_open"  # in the base currency; the document's currency and amount beside it:
CURRENCY, OPEN_AMOUNT_DOC, CUSTOMER_NAME = "currency", "amount_open_doc", "customer_name"
SNAPSHOT = "as_of"
DAYS_OVERDUE = "days_overdue"
USUAL_WINDOW_DAYS = 365  # "its usual" overdue balance is the daily average over this many days


@dataclass(frozen=True)
class FeatureConfig:
    """Settings of the invoice features."""

    grace_days: int = 0
    month_end_days: int = 5  # a due date in the last this-many days of its month falls at a month-end
    half_life_days: float = 90.0  # recency weighting of the late share and of the recent delay and its spread
    recent_days: int = 90  # "recent" window for trends and momentum
    prior_strength: float = 5.0  # pseudo-invoices of the industry/country prior
    last_n: int = 10  # "paid k of its last n invoices late"

    @classmethod
    def from_policy(cls, policy: Policy, **settings) -> FeatureConfig:
        """The feature settings a ``likvid.yaml`` fixes (grace, month end); the rest as given or default."""
        return cls(grace_days=policy.grace_days, month_end_days=policy.month_end_days, **settings)


# --- Words of the reasons -----------------------------------------------------------------------------------

def money(v: float) -> str:
    return f"{v:,.0f}"


def days(v: float) -> str:
    v = int(round(v))
    return f"{v} day" if abs(v) == 1 else f"{v} days"


def share(v: float) -> str:
    return f"{v:.0%}"


def count(v: float) -> str:
    return f"{v:.1f}".removesuffix(".0")


def _invoices(n: float) -> str:
    n = int(round(n))
    return f"{n} invoice" if n == 1 else f"{n} invoices"


def _yes(flag: float, yes: str, no: str) -> str:
    return yes if flag >= 0.5 else no


def _due(d: float) -> str:
    d = int(round(d))
    if d == 0:
        return "invoice is due today"
    if d == 1:
        return "invoice is due tomorrow"
    return f"invoice is due in {days(d)}" if d > 0 else f"invoice is {days(-d)} past due"


def _after(v: float, after: str, before: str, same: str) -> str:
    """``N days after`` / ``N days before`` / ``same`` for a signed number of days."""
    if int(round(v)) == 0:
        return same
    return f"{days(abs(v))} {after if v > 0 else before}"


def _run_day(v: float, run: str) -> str:
    if int(round(v)) == 0:
        return f"due date is on the customer's usual {run} payment day"
    return f"due date is {days(v)} after the customer's usual {run} payment day"


def _run_slack(r: Mapping[str, float]) -> str:
    v = int(round(r["run_slack"]))
    if v == 0:
        return "the customer can pay this invoice on time on its due date"
    return f"the customer's last payment run in time for the due date is {days(v)} before it"


def _run_margin(r: Mapping[str, float]) -> str:
    v = round(r["run_margin"], 1)
    when = "the due date" if int(round(r["run_slack"])) == 0 else "its last payment run in time for the due date"
    if v == 0:
        return f"the customer usually pays an invoice like this at {when}"
    side = "after" if v > 0 else "before"
    return f"the customer usually pays an invoice like this {abs(v):.1f} spreads {side} {when}"


@dataclass(frozen=True)
class Compare:
    """What a feature's value is compared with in its reason: a column of the feature rows and its name."""

    column: str
    what: str  # e.g. "its usual", "similar customers'"


@dataclass(frozen=True)
class Feature:
    """One model input, declared once.

    ``fact`` is the reason's words: a template whose ``{}`` takes the value shown by ``shown``, or a function of
    the feature row. ``direction`` is the monotone constraint: +1 more never lowers risk, -1 more never raises
    it, 0 either. ``reading`` is how a credit controller reads more of it (+1 worse, -1 better, 0 neither) where
    that differs from ``direction`` (unconstrained, yet any of it sounds bad). A reason that goes against its
    reading is shown only with ``compare``, the value it sits below or above."""

    name: str
    fact: str | Callable[[Mapping[str, float]], str]
    direction: int = 0
    compare: Compare | None = None
    shown: Callable[[float], str] = count
    reading: int | None = None

    @property
    def sense(self) -> int:
        return self.direction if self.reading is None else self.reading

    def words(self, row: Mapping[str, float]) -> str:
        """The fact, without its direction or comparison."""
        value = row.get(self.name)
        if value is None or (value != value and self.name != "paper"):
            return f"{self.name.replace('_', ' ')} is unknown"
        return self.fact.format(self.shown(value)) if isinstance(self.fact, str) else self.fact(row)


_USUAL, _PEERS, _LONG_RUN = "its usual", "similar customers'", "its long-run"

# Model inputs, in order. Names and order are stable: reasons, plots and fitted models refer to them.
CATALOG = (
    Feature("amount", "invoice amount is {}", shown=money),
    Feature("amount_vs_typical", lambda r: f"invoice is {r['amount_vs_typical']:.1f}x the customer's typical amount"),
    Feature("terms_days", "payment terms are {}", shown=days),
    Feature("days_to_due", lambda r: _due(r["days_to_due"]), direction=-1, shown=days),
    Feature("age_days", lambda r: ("invoice was issued today" if int(r["age_days"]) == 0
                                   else f"invoice was issued {days(r['age_days'])} ago")),
    Feature("paper", lambda r: ("delivery channel is unknown" if pd.isna(r["paper"])
                                else _yes(r["paper"], "invoice was sent on paper", "invoice was sent electronically"))),
    Feature("disputed", lambda r: _yes(r["disputed"], "invoice is disputed", "invoice is not disputed"), direction=1),
    Feature("due_month_end", lambda r: _yes(r["due_month_end"], "invoice falls due at a month-end",
                                            "invoice does not fall due at a month-end")),
    Feature("due_quarter_end", lambda r: _yes(r["due_quarter_end"], "invoice falls due at a quarter-end",
                                              "invoice does not fall due at a quarter-end")),
    Feature("due_month", lambda r: f"invoice falls due in {calendar.month_name[int(r['due_month'])]}"),
    Feature("n_settled", lambda r: (f"customer has only {_invoices(r['n_settled'])} of history" if r["n_settled"] < 10
                                    else f"customer has {_invoices(r['n_settled'])} of history")),
    Feature("late_share", "customer paid {} of its invoices late", direction=1, shown=share,
            compare=Compare("prior_late_share", _PEERS)),
    Feature("late_last_n", lambda r: f"customer paid {int(r['late_last_n'])} of its last {_invoices(r['n_last_n'])} "
            "late", direction=1, compare=Compare("usual_late_last_n", _USUAL)),
    Feature("n_last_n", lambda r: f"customer's recent record covers {_invoices(r['n_last_n'])}"),
    Feature("late_share_recent_weighted", "customer paid {} of its recent invoices late", direction=1, shown=share,
            compare=Compare("late_share", _LONG_RUN)),
    Feature("mean_delay", lambda r: "customer pays on average " + _after(r["mean_delay"], "after", "before", "on")
            + " the due date", reading=1, shown=days, compare=Compare("prior_mean_delay", _PEERS)),
    Feature("mean_delay_undisputed", lambda r: "on undisputed invoices the customer pays on average "
            + _after(r["mean_delay_undisputed"], "after due", "before due", "on the due date"),
            reading=1, shown=days, compare=Compare("prior_mean_delay", _PEERS)),
    Feature("delay_margin", lambda r: ("the customer's usual payment day is the due date"
                                       if round(r["delay_margin"], 1) == 0 else
                                       f"the customer's usual payment day is {abs(r['delay_margin']):.1f} spreads "
                                       + ("after" if r["delay_margin"] > 0 else "before") + " the due date"),
            reading=1),
    Feature("expected_delay", lambda r: "for an invoice like this the customer usually pays "
            + _after(r["expected_delay"], "after", "before", "on") + " the due date", direction=1, shown=days,
            compare=Compare("prior_mean_delay", _PEERS)),
    Feature("mean_days_late", "customer's payments average {} late", reading=1, shown=days,
            compare=Compare("prior_mean_delay", _PEERS)),
    Feature("p75_delay", "a quarter of the customer's payments come {} or more after due", reading=1, shown=days),
    Feature("p90_delay", "the customer's slowest tenth of payments come {} or more after due", reading=1, shown=days),
    Feature("delay_std", "customer's payment days vary by about {}", shown=days),
    Feature("delay_trend", lambda r: ("customer has paid as late in the last 90 days as before"
                                      if int(round(r["delay_trend"])) == 0 else
                                      f"customer has paid {days(abs(r['delay_trend']))} "
                                      + ("later" if r["delay_trend"] > 0 else "earlier")
                                      + " in the last 90 days than before"), reading=1, shown=days),
    Feature("days_since_last_late", "customer's last late payment was {} ago", shown=days),
    Feature("dispute_rate", "customer disputed {} of its invoices", reading=1, shown=share),
    # Ledger habits (payments, credit notes): instalments read as strain; credits follow disputes and write-offs.
    Feature("instalment_share", "customer paid {} of its invoices in instalments", reading=1, shown=share),
    Feature("credited_share", "customer was credited on {} of its invoices", direction=1, shown=share),
    Feature("paid_share", "{} of this invoice is already paid or credited", reading=-1, shown=share),
    Feature("open_amount", "customer owes {} in open invoices", shown=money),
    Feature("overdue_amount", "customer has {} overdue", reading=1, shown=money,
            compare=Compare("usual_overdue_amount", _USUAL)),
    Feature("n_overdue_open", lambda r: f"customer has {_invoices(r['n_overdue_open'])} overdue and unpaid",
            direction=1, compare=Compare("usual_n_overdue_open", _USUAL)),
    Feature("max_days_overdue_open", lambda r: (f"customer's oldest unpaid invoice is "
                                                f"{days(r['max_days_overdue_open'])} past due"
                                                if r["max_days_overdue_open"] > 0
                                                else "customer has no unpaid invoice past due"),
            direction=1, shown=days),
    Feature("prior_late_share", "similar customers (industry, country) pay {} late", reading=1, shown=share),
    Feature("prior_mean_delay", lambda r: "similar customers pay on average "
            + _after(r["prior_mean_delay"], "after due", "before due", "on the due date"), reading=1, shown=days),
    Feature("run_weekday_share", "{} of the customer's payments fall on one weekday", shown=share),
    Feature("days_after_run_weekday", lambda r: _run_day(r["days_after_run_weekday"], "weekly"), shown=days),
    Feature("run_monthday_share", "{} of the customer's payments fall on one day of the month", shown=share),
    Feature("days_after_run_monthday", lambda r: _run_day(r["days_after_run_monthday"], "monthly"), shown=days),
    Feature("run_slack", lambda r: _run_slack(r), direction=1, shown=days),
    Feature("run_margin", lambda r: _run_margin(r), direction=1),
    Feature("order_momentum", lambda r: ("customer's orders held steady over the last 90 days"
                                         if round(np.expm1(r["order_momentum"]), 2) == 0 else
                                         f"customer's orders changed {np.expm1(r['order_momentum']):+.0%} over the "
                                         "last 90 days")),
    Feature("order_lead_days", lambda r: ("order was invoiced the day it was placed" if int(r["order_lead_days"]) == 0
                                          else f"order took {days(r['order_lead_days'])} to invoice"), shown=days),
    # The customer's recent record (payments weighted by recency): the habit drifts, so it says more than the
    # mean over all history.
    Feature("expected_delay_recent", lambda r: "going by its recent payments the customer would pay this invoice "
            + _after(r["expected_delay_recent"], "after", "before", "on") + " the due date", direction=1,
            shown=days, compare=Compare("expected_delay", _LONG_RUN)),
    Feature("recent_delay_spread", "customer's recent payment days vary by about {}", shown=days),
)
FEATURES = [f.name for f in CATALOG]
BY_NAME = {f.name: f for f in CATALOG}
# What reasons compare values with: customer state carried in the feature rows, not model inputs.
COMPARISONS = ["usual_late_last_n", "usual_overdue_amount", "usual_n_overdue_open"]


def columns(names: list[str]) -> pd.Index:
    """``names`` as the Index that selects them (``x[columns(names)]``), made once per list: on a one-row frame,
    building it from the strings was half of the selection's cost (0.30 against 0.16 ms for the 45 features)."""
    return _columns(tuple(names))


@functools.lru_cache(maxsize=64)
def _columns(names: tuple[str, ...]) -> pd.Index:
    return pd.Index(names)


def is_late(paid: pd.Series, due: pd.Series, grace_days: int = 0) -> pd.Series:
    """Paid after the due date plus grace (NaT paid is not decided here)."""
    return paid > due + pd.to_timedelta(grace_days, unit="D")


def open_mask(inv: pd.DataFrame, reduced: pd.Series) -> pd.Series:
    """Invoices still open: no paid date yet and more than ``ledger.TOLERANCE`` left after payments and credits."""
    return inv[Inv.PAID].isna() & (inv[Inv.AMOUNT] - reduced > ledger.TOLERANCE)


def _settled_history(inv: pd.DataFrame, code: np.ndarray, is_open: np.ndarray, date: pd.Timestamp,
                     cfg: FeatureConfig) -> pd.DataFrame:
    """One row per invoice whose outcome is known at ``date``: settled, or open (``is_open``) and already late;
    its customer (``customer_id``) as its code ``code`` (the invoices' customers as ``LedgerPass`` codes them),
    so that the groupings over it are over integers."""
    paid, due = inv[Inv.PAID].to_numpy("datetime64[ns]"), inv[Inv.DUE].to_numpy("datetime64[ns]")
    disputed, paper = ~np.isnat(inv[Inv.DISPUTE].to_numpy("datetime64[ns]")), _paper(inv).to_numpy(bool)
    now, grace = date.to_datetime64(), np.timedelta64(cfg.grace_days, "D")
    settled = np.flatnonzero(~np.isnat(paid))
    # An open overdue invoice is late now; its delay is at least its days overdue.
    overdue = np.flatnonzero(is_open & (due + grace < now))
    rows = np.concatenate([settled, overdue])
    event = np.concatenate([paid[settled], np.full(len(overdue), now, dtype="datetime64[ns]")])
    delay = pd.TimedeltaIndex(event - due[rows]).days.to_numpy(float)
    late = np.concatenate([is_late(pd.Series(paid[settled]), pd.Series(due[settled]), cfg.grace_days).to_numpy(bool),
                           np.ones(len(overdue), bool)])
    return pd.DataFrame({Inv.CUSTOMER: code[rows], "event": event, "delay": delay, "late": late,
                         "open": np.arange(len(rows)) >= len(settled), "disputed": disputed[rows],
                         "paper": paper[rows]}, index=inv.index[rows])


def _on_ids(frame: pd.DataFrame | pd.Series, ids: pd.Index) -> pd.DataFrame | pd.Series:
    """``frame``, indexed by customer codes, indexed by the customers' ids instead (``ids[code]``)."""
    frame.index = ids.take(frame.index.to_numpy(np.int64)).rename(Inv.CUSTOMER)
    return frame


def _paper(inv: pd.DataFrame) -> pd.Series:
    return (inv[Inv.DELIVERY].astype("string") == "paper").fillna(False)


def within_customer_effects(settled: pd.DataFrame, flags: pd.DataFrame) -> np.ndarray:
    """Days each flag (a dispute, paper delivery, ...) adds to a payment's delay, learned by pooled
    least squares within customers over ``settled`` invoices (``customer_id``, ``delay``), so that the
    effects do not blur into customers' habits; never below 0 (none of them speeds payment up)."""
    if len(settled) < 20:
        return np.zeros(flags.shape[1])
    g = settled[Inv.CUSTOMER]
    x = (flags - flags.groupby(g).transform("mean")).to_numpy()
    y = (settled["delay"] - settled["delay"].groupby(g).transform("mean")).to_numpy()
    beta = np.linalg.lstsq(x, y, rcond=None)[0] if np.abs(x).sum() > 0 else np.zeros(flags.shape[1])
    return np.clip(beta, 0.0, None)


def _delay_effects(hist: pd.DataFrame) -> tuple[np.ndarray, pd.Series]:
    """Days a dispute and a paper invoice add to a customer's own delay, and each customer's delay
    with those effects taken out."""
    settled = hist[~hist["open"]]
    flags = settled[["disputed", "paper"]].astype(float)
    if len(settled) < 20:
        return np.zeros(2), pd.Series(dtype=float)
    beta = within_customer_effects(settled, flags)
    base = (settled["delay"] - flags.to_numpy() @ beta).groupby(settled[Inv.CUSTOMER]).mean()
    return beta, base


def _recent_delay(hist: pd.DataFrame, date: pd.Timestamp, cfg: FeatureConfig, beta: np.ndarray) -> pd.DataFrame:
    """Per customer, the recency-weighted mean and variance of its settled delays with the dispute and paper
    effects ``beta`` taken out (as ``expected_delay_base`` does), and the weight behind them: a payment
    ``half_life_days`` before ``date`` counts half."""
    settled = hist[~hist["open"]]
    if settled.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in ("recent_mean", "recent_var", "recent_weight")})
    adjusted = settled["delay"] - settled[["disputed", "paper"]].astype(float).to_numpy() @ beta
    w = 0.5 ** ((date - settled["event"]).dt.days.astype(float) / cfg.half_life_days)
    g = settled[Inv.CUSTOMER]
    weight = w.groupby(g).sum()
    mean = (w * adjusted).groupby(g).sum() / weight
    var = (w * (adjusted - g.map(mean)) ** 2).groupby(g).sum() / weight
    return pd.DataFrame({"recent_mean": mean, "recent_var": var, "recent_weight": weight})


def _customer_history(hist: pd.DataFrame, date: pd.Timestamp, cfg: FeatureConfig) -> pd.DataFrame:
    if hist.empty:
        columns = ["n_settled", "late_share", "mean_delay", "mean_delay_undisputed", "mean_days_late", "p75_delay",
                   "p90_delay", "delay_std",
                   "late_share_recent_weighted", "late_last_n", "n_last_n", "delay_trend", "days_since_last_late"]
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns}).rename_axis(Inv.CUSTOMER)
    hist = hist.sort_values("event", kind="stable")
    age = (date - hist["event"]).dt.days.astype(float)
    hist = hist.assign(w=0.5 ** (age / cfg.half_life_days), recent=age <= cfg.recent_days,
                       late_f=hist["late"].astype(float), days_late=hist["delay"].clip(lower=0))
    g = hist.groupby(Inv.CUSTOMER, sort=False)
    out = pd.DataFrame({
        "n_settled": g.size().astype(float),
        "late_share": g["late_f"].mean(),
        "mean_delay": g["delay"].mean(),
        "mean_days_late": g["days_late"].mean(),
        "p75_delay": g["delay"].quantile(0.75),
        "p90_delay": g["delay"].quantile(0.9),
        "delay_std": g["delay"].std().fillna(0.0),
        "late_share_recent_weighted": (hist["late_f"] * hist["w"]).groupby(hist[Inv.CUSTOMER]).sum()
        / g["w"].sum(),
    })
    tail = g.tail(cfg.last_n).groupby(Inv.CUSTOMER, sort=False)
    out["late_last_n"] = tail["late_f"].sum()
    out["n_last_n"] = tail.size().astype(float)
    # What the customer does when nothing is in dispute: disputes stretch delays and would blur it.
    out["mean_delay_undisputed"] = hist[~hist["disputed"].astype(bool)].groupby(Inv.CUSTOMER)["delay"].mean()
    recent = hist[hist["recent"]].groupby(Inv.CUSTOMER)["delay"].mean()
    older = hist[~hist["recent"]].groupby(Inv.CUSTOMER)["delay"].mean()
    out["delay_trend"] = (recent - older).reindex(out.index).fillna(0.0)
    last_late = hist[hist["late"]].groupby(Inv.CUSTOMER)["event"].max()
    out["days_since_last_late"] = (date - last_late).dt.days.reindex(out.index).astype(float)
    return out


def _ledger_habits(inv: pd.DataFrame, code: np.ndarray, passed: LedgerPass, pos: np.ndarray, date: pd.Timestamp,
                   cfg: FeatureConfig) -> pd.DataFrame:
    """Each customer's share of invoices paid in instalments (of those with a payment) and of invoices credited
    (of those issued), by ``date`` and shrunk toward the company's share; empty without the tables.
    ``inv`` are the invoices known at ``date``, at ``pos`` in ``passed``; ``code``: their customers' codes there."""
    k, out = cfg.prior_strength, {}
    if passed.has_payments and passed.n_payments(date):
        n = passed.payment_counts(date)
        paid = n[passed.row_code[pos]]
        some = paid > 0
        many = (paid[some] > 1).astype(float)
        many = _on_ids(pd.Series(many).groupby(code[some]).agg(["sum", "size"]), passed.customer_ids)
        prior = float((n[n > 0] > 1).mean())
        out["instalment_share"] = (many["sum"] + k * prior) / (many["size"] + k)
    if passed.has_credits and len(inv):
        credited = pd.Series(passed.credited(pos, date))
        per = _on_ids(credited.astype(float).groupby(code).agg(["sum", "size"]), passed.customer_ids)
        out["credited_share"] = (per["sum"] + k * float(credited.mean())) / (per["size"] + k)
    return pd.DataFrame({c: out.get(c, pd.Series(dtype=float)) for c in ("instalment_share", "credited_share")})


def _payment_runs(view: Company | None) -> pd.DataFrame:
    """Each customer's usual payment weekday and day of month, and how regularly it keeps them (``history``
    reads them from its ledger pass: ``LedgerPass.payment_runs``); empty for no view."""
    inv = view[Inv.TABLE] if view is not None else pd.DataFrame({Inv.CUSTOMER: [], Inv.PAID: []})
    paid = inv.loc[inv[Inv.PAID].notna(), [Inv.CUSTOMER, Inv.PAID]]
    if paid.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in
                             ("run_weekday", "run_weekday_share", "run_monthday", "run_monthday_share")})
    rows = {}
    for key, values in (("weekday", paid[Inv.PAID].dt.day_of_week), ("monthday", paid[Inv.PAID].dt.day)):
        counts = values.groupby(paid[Inv.CUSTOMER]).value_counts()
        top = counts.groupby(level=0).idxmax().map(lambda t: t[1])
        share = counts.groupby(level=0).max() / counts.groupby(level=0).sum()
        rows[f"run_{key}"], rows[f"run_{key}_share"] = top, share
    return pd.DataFrame(rows)


def _orders(view: Company, date: pd.Timestamp, cfg: FeatureConfig, passed: LedgerPass,
            pos: np.ndarray, code: np.ndarray) -> pd.DataFrame:
    """Each customer's order momentum (the last ``recent_days`` of orders against the ones before) and the
    median days from order to invoice; ``pos``: the view's invoices in ``passed``, ``code`` their customers'."""
    orders, inv = view.get(Ord.TABLE), view[Inv.TABLE]
    if orders.empty:
        return pd.DataFrame({"order_momentum": pd.Series(dtype=float), "order_lead_days": pd.Series(dtype=float)})
    recent = pd.Timedelta(days=cfg.recent_days)
    live = orders[(orders[Ord.DATE] > date - 2 * recent).to_numpy(bool)]  # the windows' orders, then the live ones
    live = live[~live[Ord.CANCELLED].astype(bool)]
    last = live[live[Ord.DATE] > date - recent].groupby(Ord.CUSTOMER)[Ord.AMOUNT].sum()
    prev = live[live[Ord.DATE] <= date - recent]
    prev = prev.groupby(Ord.CUSTOMER)[Ord.AMOUNT].sum()
    momentum = (last.reindex(prev.index.union(last.index)).fillna(0) + 1) / (prev.reindex(
        prev.index.union(last.index)).fillna(0) + 1)
    # How long an order took to invoice: over the invoices whose order is known by the date.
    placed = passed.order_day[pos]
    linked = ~(placed > date.to_datetime64()) & ~np.isnat(placed)
    lead = pd.TimedeltaIndex(inv[Inv.ISSUE].to_numpy("datetime64[ns]")[linked] - placed[linked]).days
    lead = _on_ids(pd.Series(lead).groupby(code[linked]).median(), passed.customer_ids)
    return pd.DataFrame({"order_momentum": np.log(momentum), "order_lead_days": lead})


def _priors(hist: pd.DataFrame, customers: pd.DataFrame, ids: pd.Index) -> pd.DataFrame:
    """Late share and mean delay of each industry x country (falling back to industry, then all); ``hist``'s
    customers are codes into ``ids``."""
    cust = customers.set_index(Cust.ID)[[Cust.INDUSTRY, Cust.COUNTRY]].astype("string").fillna("unknown")
    overall_late = hist["late"].mean() if len(hist) else 0.4
    overall_delay = hist["delay"].mean() if len(hist) else 0.0
    out = pd.DataFrame(index=cust.index)
    out["prior_late_share"], out["prior_mean_delay"] = overall_late, overall_delay
    if hist.empty:
        return out
    row = cust.index.get_indexer(ids)  # each code's customer row (-1: not in the table, in no peer group)
    code = hist[Inv.CUSTOMER].to_numpy()
    for keys in ([Cust.INDUSTRY], [Cust.INDUSTRY, Cust.COUNTRY]):
        group = cust.groupby(keys, sort=False).ngroup().to_numpy()  # each customer row's peer group
        of_rows = np.where(row >= 0, group[row], -1)[code]
        peer = of_rows >= 0
        stats = pd.DataFrame({"group": of_rows[peer], "code": code[peer], "late": hist["late"].to_numpy()[peer],
                              "delay": hist["delay"].to_numpy()[peer]})
        stats = stats.groupby("group").agg(n=("code", "nunique"), late=("late", "mean"), delay=("delay", "mean"))
        stats = stats[stats["n"] >= 8]  # a prior must speak for peers, not echo one customer
        have = np.isin(group, stats.index.to_numpy())
        out.loc[have, "prior_late_share"] = stats["late"].reindex(group[have]).to_numpy()
        out.loc[have, "prior_mean_delay"] = stats["delay"].reindex(group[have]).to_numpy()
    return out


@dataclass(frozen=True, eq=False)
class History:
    """What invoice features take from the history known at a date, per customer. ``history`` builds it
    once, so that a service scoring many requests against the same history does not rebuild it.

    ``customers`` holds every customer-only value already resolved (shrunk, filled), one row per customer plus
    a last row, ``UNKNOWN``, for a customer the history has never seen; ``_invoice_part`` looks rows up by
    position, so one invoice costs a lookup, not a join."""

    date: pd.Timestamp
    cfg: FeatureConfig
    view: Company
    hist: pd.DataFrame
    per_customer: pd.DataFrame  # customer history, priors, orders and payment runs, side by side (unresolved)
    delay_effects: tuple[np.ndarray, pd.Series]
    n_base: pd.Series
    tenure_days: pd.Series
    disputes: pd.DataFrame
    overall_disputes: float
    balances: pd.DataFrame
    typical: pd.Series
    customers: pd.DataFrame  # resolved customer state (``_STATE`` columns), index: customer ids, then UNKNOWN
    names: np.ndarray  # each customer's name in ``customers`` order ("" when none)
    state: np.ndarray  # ``customers`` as floats, for positional lookups
    order_index: pd.Index  # order ids known at ``date``
    order_days: np.ndarray  # their order dates, as datetime64[ns]
    reduced_rows: np.ndarray  # per invoice of ``view``: payments and applied credit notes by ``date``, in its currency
    customer_rows: np.ndarray  # per invoice of ``view``: its customer's row in ``customers``
    placed_rows: np.ndarray  # per invoice of ``view``: its order's date (NaT: none, or not known at ``date``)
    rates: dict[str, float]  # units of the base for one unit of each currency known at ``date`` (the base: 1)
    base: str | None  # the base currency (None: the data names none)

    @functools.cached_property
    def reduced(self) -> pd.Series:
        """``reduced_rows`` by invoice id (for invoices looked up by id: a request's, a worklist's)."""
        return pd.Series(self.reduced_rows, index=pd.Index(self.view[Inv.TABLE][Inv.ID].astype(object)))

    def rate(self, currencies: pd.Series | None, n: int) -> np.ndarray:
        """Each row's rate at ``date`` (no currency: the base's 1.0; a currency with no rate yet: NaN)."""
        return self._rate_of(_codes(currencies), n)

    def _rate_of(self, cur: np.ndarray | None, n: int) -> np.ndarray:
        """``rate`` of currency codes as ``_codes`` gives them."""
        if cur is None:
            return np.ones(n)
        return np.array([1.0 if c is None or c == self.base else self.rates.get(c, np.nan) for c in cur], float)


UNKNOWN = "\x00unknown customer"
# The customer-only columns of a feature row, in output order (``*_base`` and ``run_*day`` feed invoice values).
_CUSTOMER = ["n_settled", "late_share", "mean_delay", "mean_days_late", "p75_delay", "p90_delay", "delay_std",
             "late_share_recent_weighted", "late_last_n", "n_last_n", "mean_delay_undisputed", "delay_trend",
             "days_since_last_late", "prior_late_share", "prior_mean_delay", "order_momentum", "order_lead_days",
             "run_weekday_share", "run_monthday_share", "delay_margin", "expected_delay", "dispute_rate",
             "open_amount", "overdue_amount", "n_overdue_open", "max_days_overdue_open", "amount_vs_typical",
             "days_after_run_weekday", "days_after_run_monthday", "run_slack", "run_margin", "instalment_share",
             "credited_share", "paid_share", "expected_delay_recent", "recent_delay_spread", *COMPARISONS]
_HELPERS = ["expected_delay_base", "recent_delay_base", "typical", "run_weekday", "run_monthday"]
_PER_INVOICE = {"expected_delay", "amount_vs_typical", "days_after_run_weekday", "days_after_run_monthday",
                "run_slack", "run_margin", "paid_share", "expected_delay_recent"}
_STATE = [c for c in _CUSTOMER if c not in _PER_INVOICE] + _HELPERS


@dataclass(frozen=True, eq=False)
class LedgerPass:
    """A company's ledger sorted once, to be looked up at many dates (``snapshots``): what reduced each
    invoice and when (its payments and applied credit notes per day, in its currency, in date order), when
    each payment came, when each invoice was first credited, and each invoice's amount in the base at its
    issue-date rate. None of these changes with the date it is looked at from (a payment's rate is of its own
    day), so ``history`` reads them at its date instead of recomputing them from the view: the very values
    ``ledger.reduced`` and the view give (a test), at a lookup's cost."""

    rows: pd.Index  # the company's invoice rows (its index)
    row_code: np.ndarray  # each row's invoice id as a code 0..n_ids-1
    ids: np.ndarray  # the invoice id of each code
    n_ids: int
    event_code: np.ndarray  # per invoice and day that reduced it, ordered by (code, date)
    event_date: np.ndarray
    event_value: np.ndarray  # cash plus credit that day, in the invoice's currency
    pay_code: np.ndarray  # per payment of a known invoice
    pay_date: np.ndarray
    all_pay_dates: np.ndarray  # every payment's date, also of unknown invoices
    first_credit: np.ndarray  # per code, the first applied credit note's date (NaT: none; an undated one: the min)
    issued_base: np.ndarray  # per row, the amount in the base at the issue date's rate
    order_day: np.ndarray  # per row, the date its order was placed (NaT: no order, or one the data lacks)
    paid_day: np.ndarray  # per row, its paid date (NaT: open at the company's date)
    customer_code: np.ndarray  # per row, its customer as a code into ``customer_ids`` (sorted; -1: none)
    customer_ids: pd.Index
    base: str | None
    has_payments: bool
    has_credits: bool

    def positions(self, company: Company, inv: pd.DataFrame) -> np.ndarray:
        """Where ``inv`` (the invoices of ``company`` known at a date) sit in the pass; an error when the pass
        was built on other invoices than ``company``'s."""
        pos = self.rows.get_indexer(inv.index)
        if (len(company[Inv.TABLE]) != len(self.rows) or (pos < 0).any()
                or (self.ids[self.row_code[pos]] != inv[Inv.ID].to_numpy(object)).any()):
            raise ValueError("the ledger pass was built on another company's invoices")
        return pos

    def reduced(self, pos: np.ndarray, date: pd.Timestamp) -> np.ndarray:
        """Payments and applied credit notes dated by ``date``, in each invoice's currency (rows at ``pos``).
        Summed by pandas over each invoice's days in date order, as ``ledger.reduced`` does: the same floats."""
        by = self.event_date <= date.to_datetime64()
        sums = pd.Series(self.event_value[by]).groupby(self.event_code[by]).sum()
        total = np.zeros(self.n_ids)
        total[sums.index.to_numpy()] = sums.to_numpy(float)
        return total[self.row_code[pos]]

    def n_payments(self, date: pd.Timestamp) -> int:
        return int(np.count_nonzero(~(self.all_pay_dates > date.to_datetime64())))

    def payment_counts(self, date: pd.Timestamp) -> np.ndarray:
        """Per invoice code, its payments dated by ``date`` (an undated payment counts from the start, as in as_of)."""
        return np.bincount(self.pay_code[~(self.pay_date > date.to_datetime64())], minlength=self.n_ids)

    def credited(self, pos: np.ndarray, date: pd.Timestamp) -> np.ndarray:
        return self.first_credit[self.row_code[pos]] <= date.to_datetime64()

    def payment_runs(self, pos: np.ndarray, date: pd.Timestamp) -> pd.DataFrame:
        """``_payment_runs`` of the view at ``date`` (its invoices at ``pos``), from per-customer counts of the
        paid invoices' weekdays and days of the month: a customer's usual day is its most frequent one (among
        equals the one paid first in the view's row order, as pandas' ``value_counts`` then ``idxmax`` pick it)."""
        paid = self.paid_day[pos]
        rows = pos[~(paid > date.to_datetime64()) & ~np.isnat(paid) & (self.customer_code[pos] >= 0)]
        if len(rows) == 0:
            return _payment_runs(None)
        code, when = self.customer_code[rows], pd.DatetimeIndex(self.paid_day[rows])
        seen, groups = np.unique(code), len(self.customer_ids)
        paid_count = np.bincount(code, minlength=groups)[seen]
        out = {}
        for key, values, first, n in (("weekday", when.day_of_week, 0, 7), ("monthday", when.day, 1, 31)):
            top, count = cash.most_frequent(code, values.to_numpy() - first, groups, n)
            out[f"run_{key}"] = top[seen] + first
            out[f"run_{key}_share"] = count[seen] / paid_count
        return pd.DataFrame(out, index=self.customer_ids[seen])


def ledger_pass(company: Company) -> LedgerPass:
    """Sort a company's ledger once for ``history`` at many dates (see ``LedgerPass``). A validated company's
    is kept beside its validation (``features.cache``) and read back by the next command on the folder."""
    return validation_cache.kept(validation_cache.derived_path(company, "ledger-pass", {}), LedgerPass,
                                 lambda: _ledger_pass(company))


_PASSES: list = []  # [(weak references to the tables read, date, pass)]: the last earlier view's pass


def pass_at(company: Company, at: pd.Timestamp) -> LedgerPass:
    """``ledger_pass`` of ``as_of(company, at)``, for a caller that looks at many dates up to ``at`` (training's
    snapshots). At the company's last known date the view holds every row the pass reads (``as_of`` drops only
    rows born later, and blanks only facts learned later), so it is the company's own pass, which a validated
    company keeps beside its validation; before it, the view's, built once and held for the next caller with the
    same tables and date (the families fitted at one origin), the last one only."""
    at = pd.Timestamp(at).normalize()
    if at >= last_known_date(company):
        return ledger_pass(company)
    tables = _history_tables(company).tables
    for refs, date, passed in _PASSES:
        if date == at and refs.keys() == tables.keys() and all(refs[t]() is tables[t] for t in tables):
            return passed
    passed = ledger_pass(as_of(Company(tables, company.supplied, company.base_currency), at))
    _PASSES[:] = [({t: weakref.ref(frame) for t, frame in tables.items()}, at, passed)]
    return passed


def _ledger_pass(company: Company) -> LedgerPass:
    inv, pay, credits = company[Inv.TABLE], company.get(Pay.TABLE), company.get(Credit.TABLE)
    fx, base = company.get(Fx.TABLE), ledger.base_of(company)
    row_code, ids = pd.factorize(inv[Inv.ID].astype(object))
    # What ledger.reduced sums, per known invoice and day: by row position, then by code (each invoice's days
    # stay in order, and a code is one row's while the ids are unique, as the contract has them).
    applied = credits[credits[Credit.INVOICE].notna()]
    pay_at = ledger.positions(inv[Inv.ID], pay[Pay.INVOICE])
    credit_at = ledger.positions(inv[Inv.ID], applied[Credit.INVOICE])
    events = ledger.invoice_events(inv, pay, credits, fx, base, pay_at, credit_at)
    code = row_code[events["at"].to_numpy()]
    order = np.argsort(code, kind="stable")
    code = code[order]
    date = events["date"].to_numpy("datetime64[ns]")[order]
    value = (events["cash"] + events["credit"]).to_numpy(float)[order]
    pay_code = np.where(pay_at >= 0, row_code[pay_at], -1)
    pay_dates = pay[Pay.DATE].to_numpy("datetime64[ns]")
    credit_code = np.where(credit_at >= 0, row_code[credit_at], -1)
    credit_dates = applied[Credit.DATE].to_numpy("datetime64[ns]")
    credit_dates = np.where(np.isnat(credit_dates), np.datetime64(pd.Timestamp.min.as_unit("ns")), credit_dates)
    first = pd.Series(credit_dates[credit_code >= 0]).groupby(credit_code[credit_code >= 0]).min()
    first_credit = np.full(len(ids), np.datetime64("NaT"), dtype="datetime64[ns]")
    first_credit[first.index.to_numpy()] = first.to_numpy("datetime64[ns]")
    issued = ledger.to_base(inv[Inv.AMOUNT], inv[Inv.CURRENCY], inv[Inv.ISSUE], fx, base).to_numpy(float)
    orders = company.get(Ord.TABLE)
    first_orders = orders[~orders[Ord.ID].astype(object).duplicated()]
    placed = np.append(first_orders[Ord.DATE].to_numpy("datetime64[ns]"), np.datetime64("NaT"))
    placed = placed[ledger.positions(first_orders[Ord.ID], inv[Inv.ORDER])]  # -1 (no order): the NaT last
    customer_code, customer_ids = pd.factorize(inv[Inv.CUSTOMER], sort=True)
    customer_ids = pd.Index(customer_ids, name=Inv.CUSTOMER)
    return LedgerPass(
        rows=inv.index, row_code=row_code, ids=ids.to_numpy(object), n_ids=len(ids), event_code=code, event_date=date,
        event_value=value,
        pay_code=pay_code[pay_code >= 0],
        pay_date=pay_dates[pay_code >= 0], all_pay_dates=pay_dates, first_credit=first_credit, issued_base=issued,
        order_day=placed, paid_day=inv[Inv.PAID].to_numpy("datetime64[ns]"), customer_code=customer_code,
        customer_ids=customer_ids,
        base=base, has_payments=company.has(Pay.TABLE), has_credits=company.has(Credit.TABLE))


def history(company: Company, date: str | pd.Timestamp, cfg: FeatureConfig = FeatureConfig(),
            passed: LedgerPass | None = None) -> History:
    """The per-customer history ``invoice_features`` needs, from ``as_of(company, date)`` only. ``passed`` is
    ``ledger_pass(company)`` when the caller looks at many dates of the same company (built here otherwise)."""
    date = pd.Timestamp(date).normalize()
    # A pass: the caller looks at many dates. Else a validated company's history at its last known date is kept.
    kept = validation_cache.derived_path(company, "history", {"cfg": asdict(cfg)}, date) if passed is None else None
    if kept is not None and isinstance(state := validation_cache.read_derived(kept), dict):
        try:
            return History(view=as_of(company, date), **state)
        except TypeError:  # not a whole History's state: computed again below
            pass
    view = as_of(company, date)
    inv = view[Inv.TABLE]
    fx, base = view.get(Fx.TABLE), ledger.base_of(view)
    source = company
    if passed is None and company.cache is not None:  # a validated company's pass is kept: looked up at the date
        passed = ledger_pass(company)
    if passed is None or passed.base != base:  # a company without a set base may name fewer currencies by then
        passed, source = ledger_pass(view), view
    pos = passed.positions(source, inv)
    code, ids = passed.customer_code[pos], passed.customer_ids  # each invoice's customer, as an integer
    if (code < 0).any():
        raise ValueError("an invoice names no customer (the contract requires customer_id)")
    reduced = pd.Series(passed.reduced(pos, date), index=inv.index)
    is_open = open_mask(inv, reduced).to_numpy(bool)
    open_ = inv[is_open]
    known_codes = pd.Series(sorted(set(ledger.codes(fx[Fx.CURRENCY]).dropna())), dtype="string")
    rates = {c: float(r) for c, r in zip(known_codes, ledger.rates_on(known_codes, date, fx, base)) if r == r}
    # History in the base at each invoice's issue-date rate; what is open in the base at the date's rate.
    # Its customers are codes (``code``, into ``ids``) while it is grouped, their ids again once per customer.
    issued = pd.DataFrame({Inv.CUSTOMER: code, Inv.ISSUE: inv[Inv.ISSUE].to_numpy("datetime64[ns]"),
                           Inv.DUE: inv[Inv.DUE].to_numpy("datetime64[ns]"),
                           Inv.PAID: inv[Inv.PAID].to_numpy("datetime64[ns]"), Inv.AMOUNT: passed.issued_base[pos]})
    owed = (open_[Inv.AMOUNT] - reduced[open_.index]) * ledger.rates_on(open_[Inv.CURRENCY], date, fx, base)
    hist = _settled_history(inv, code, is_open, date, cfg)
    parts = [_on_ids(_customer_history(hist, date, cfg), ids), _priors(hist, view[Cust.TABLE], ids),
             _orders(view, date, cfg, passed, pos, code), passed.payment_runs(pos, date),
             _ledger_habits(inv, code, passed, pos, date, cfg)]
    per_customer = pd.concat([p.rename_axis(Inv.CUSTOMER) for p in parts], axis=1, join="outer")
    orders = view.get(Ord.TABLE)
    beta, base_delay = _delay_effects(hist)
    disputed = pd.Series(~np.isnat(inv[Inv.DISPUTE].to_numpy("datetime64[ns]")))
    known = dict(
        date=date, cfg=cfg, view=view, hist=hist, per_customer=per_customer,
        delay_effects=(beta, _on_ids(base_delay, ids) if len(base_delay) else base_delay),
        n_base=_on_ids(hist[~hist["open"]].groupby(Inv.CUSTOMER).size(), ids),
        tenure_days=(date - view[Cust.TABLE].set_index(Cust.ID)[Cust.ONBOARDED]).dt.days,
        disputes=_on_ids(disputed.groupby(code).agg(["sum", "size"]), ids),
        overall_disputes=disputed.mean() if len(inv) else 0.0,
        balances=_balances(open_, owed, ledger.unapplied_credit(view, date), date, cfg),
        typical=_on_ids(issued.groupby(Inv.CUSTOMER)[Inv.AMOUNT].median(), ids),
        order_index=pd.Index(orders[Ord.ID]), order_days=orders[Ord.DATE].to_numpy("datetime64[ns]"),
        reduced_rows=reduced.to_numpy(), rates=rates, base=base,
    )
    customers = _resolve(known, _on_ids(_usual_overdue(issued, date, cfg), ids), code, ids)
    names = view[Cust.TABLE].set_index(Cust.ID)[Cust.NAME].astype("string")
    names = names[~names.index.duplicated()].reindex(customers.index).fillna("").to_numpy(dtype=object)
    placed = passed.order_day[pos]  # the view's orders are the pass's placed by the date
    known = History(**known, customers=customers, state=customers.to_numpy(float), names=names,
                    customer_rows=customers.index.get_indexer(ids)[code],
                    placed_rows=np.where(placed > date.to_datetime64(), np.datetime64("NaT"), placed))
    if kept is not None:
        validation_cache.write_derived(kept, {f.name: getattr(known, f.name) for f in fields(History)
                                              if f.name != "view"})
    return known


def _resolve(known: dict, usual: pd.DataFrame, code: np.ndarray, ids: pd.Index) -> pd.DataFrame:
    """Every customer-only value, shrunk toward the customer's peers and filled, once per customer; ``code``:
    the view's invoices' customers, as codes into ``ids``."""
    view, hist, cfg = known["view"], known["hist"], known["cfg"]
    inv = view[Inv.TABLE]
    own = ids.take(np.unique(code))  # the customers of the view's invoices
    rows = known["per_customer"].index.union(pd.Index(view[Cust.TABLE][Cust.ID])).union(own).drop_duplicates()
    c = known["per_customer"].reindex(rows)
    c.loc[UNKNOWN] = np.nan  # a customer the history has never seen resolves like one with no record at all
    for col in ("n_settled", "late_last_n", "n_last_n"):
        c[col] = c[col].fillna(0.0)
    c["prior_late_share"] = c["prior_late_share"].fillna(hist["late"].mean() if len(hist) else 0.4)
    c["prior_mean_delay"] = c["prior_mean_delay"].fillna(hist["delay"].mean() if len(hist) else 0.0)
    # Shrink thin histories toward the prior, so a new customer reads as "like its peers".
    k, n = cfg.prior_strength, c["n_settled"]
    for col, prior in (("late_share", "prior_late_share"), ("late_share_recent_weighted", "prior_late_share"),
                       ("mean_delay", "prior_mean_delay"), ("mean_days_late", "prior_mean_delay"),
                       ("mean_delay_undisputed", "prior_mean_delay"),
                       ("p75_delay", "prior_mean_delay"),
                       ("p90_delay", "prior_mean_delay")):
        c[col] = (c[col].fillna(0.0) * n + c[prior] * k) / (n + k)
    # No history, no spread: the median spread over the invoices open at the date (by invoice), else 5 days.
    spread = pd.Series(c["delay_std"].to_numpy()[c.index.get_indexer(ids)[code[inv[Inv.PAID].isna().to_numpy()]]])
    c["delay_std"] = c["delay_std"].fillna(spread.median() if spread.notna().any() else 5.0)
    c["delay_trend"] = c["delay_trend"].fillna(0.0)
    # How many spreads the usual delay sits past the due date: smooth where late_share is lumpy.
    c["delay_margin"] = c["mean_delay_undisputed"] / (c["delay_std"] + 1.0)
    # The delay this customer would show on an undisputed electronic invoice: its own habit, shrunk.
    _, base = known["delay_effects"]
    n_base = known["n_base"].reindex(c.index).fillna(0)
    c["expected_delay_base"] = (base.reindex(c.index).fillna(0.0) * n_base + c["prior_mean_delay"] * k) / (n_base + k)
    # The same habit and its spread from recent payments, shrunk toward the long-run ones where those are few.
    recent = _recent_delay(hist, known["date"], cfg, known["delay_effects"][0])
    recent = (_on_ids(recent, ids) if len(recent) else recent).reindex(c.index)
    w = recent["recent_weight"].fillna(0.0)
    c["recent_delay_base"] = (recent["recent_mean"].fillna(0.0) * w + c["expected_delay_base"] * k) / (w + k)
    c["recent_delay_spread"] = np.sqrt((recent["recent_var"].fillna(0.0) * w + c["delay_std"] ** 2 * k) / (w + k))
    never = c["days_since_last_late"].isna()
    c.loc[never, "days_since_last_late"] = known["tenure_days"].reindex(c.index[never]).fillna(365.0).clip(0, None)
    # Share of the customer's invoices disputed so far (disputes dated by ``date`` only).
    d = known["disputes"].reindex(c.index)
    c["dispute_rate"] = (d["sum"].fillna(0) + k * known["overall_disputes"]) / (d["size"].fillna(0) + k)
    c = c.join(known["balances"])
    for col in ("open_amount", "overdue_amount", "n_overdue_open", "max_days_overdue_open"):
        c[col] = c[col].fillna(0.0)
    # No payment (or credit) record: a customer reads as the company does, and without the table as never.
    for col in ("instalment_share", "credited_share"):
        known_share = c[col].drop(index=UNKNOWN).dropna()
        c[col] = c[col].fillna(0.0 if known_share.empty else float(known_share.median()))
    c["order_momentum"] = c["order_momentum"].fillna(0.0)
    c["typical"] = known["typical"].reindex(c.index)
    # What reasons compare with: the customer's usual count of late invoices, overdue balance and count.
    c["usual_late_last_n"] = c["late_share"] * c["n_last_n"]
    c = c.join(usual)
    for col in ("usual_overdue_amount", "usual_n_overdue_open"):
        c[col] = c[col].fillna(0.0)
    return c[_STATE].astype(float)


def _usual_overdue(inv: pd.DataFrame, date: pd.Timestamp, cfg: FeatureConfig) -> pd.DataFrame:
    """Each customer's overdue balance and count of overdue invoices, averaged over the days of the last
    ``USUAL_WINDOW_DAYS`` (fewer when its invoices start later), as known at ``date``: an invoice is overdue
    on day d when due + grace < d and it is not paid by the end of d."""
    if inv.empty:  # nothing issued yet (an as-of before the first invoice)
        return pd.DataFrame({c: pd.Series(dtype=float) for c in ("usual_overdue_amount", "usual_n_overdue_open")})
    start = (inv.groupby(Inv.CUSTOMER)[Inv.ISSUE].min()).clip(lower=date - pd.Timedelta(days=USUAL_WINDOW_DAYS - 1))
    first = inv[Inv.DUE] + pd.Timedelta(days=cfg.grace_days + 1)  # the first overdue day
    first = np.maximum(first, inv[Inv.CUSTOMER].map(start))
    last = inv[Inv.PAID].fillna(date + DAY) - DAY  # the last day still unpaid at the end of the day
    overdue_days = ((last.clip(upper=date) - first).dt.days + 1).clip(lower=0).astype(float)
    span = ((date - start).dt.days + 1).astype(float)
    g = inv[Inv.CUSTOMER]
    return pd.DataFrame({
        "usual_overdue_amount": (overdue_days * inv[Inv.AMOUNT]).groupby(g).sum() / span,
        "usual_n_overdue_open": overdue_days.groupby(g).sum() / span,
    })


def _invoice_part(invoices: pd.DataFrame, known: History, rows: np.ndarray | None = None) -> pd.DataFrame:
    """Feature rows of ``invoices`` against ``known``: the invoice's own values, and its customer's from
    ``known.customers`` by position. Arrays, not joins, so one request invoice costs well under 5 ms.
    ``rows``: where ``invoices`` sit in ``known.view``'s invoices, when they are its own (else looked up by id)."""
    date, cfg = known.date, known.cfg
    now = date.to_datetime64()
    n = len(invoices)
    pos = known.customers.index.get_indexer(invoices[Inv.CUSTOMER]) if rows is None else known.customer_rows[rows]
    state = known.state[pos]  # a customer not in the history (-1) takes the last row, UNKNOWN
    s = dict(zip(_STATE, state.T))
    issue = invoices[Inv.ISSUE].to_numpy("datetime64[ns]")
    due_s = invoices[Inv.DUE]
    due = due_s.to_numpy("datetime64[ns]")
    # Money in the base at the date's rate; what is open net of the payments and credits known by the date.
    doc = invoices[Inv.AMOUNT].to_numpy(float)
    cur = _codes(invoices.get(Inv.CURRENCY))  # read once: the rate and the currency column both take them
    rate = known._rate_of(cur, n)
    if rows is None:
        at = _find(known.view[Inv.TABLE][Inv.ID], lambda: known.reduced.index, invoices[Inv.ID].astype(object))
        reduced = np.where(at >= 0, known.reduced_rows[np.maximum(at, 0)], 0.0)
        reduced[np.isnan(reduced)] = 0.0
    else:
        reduced = known.reduced_rows[rows]
    amount, owed = doc * rate, np.clip(doc - reduced, 0.0, None)
    to_due = ((due - now) // np.timedelta64(1, "D")).astype(float)
    delivery = invoices[Inv.DELIVERY].to_numpy(object)
    no_channel = pd.isna(delivery)
    paper = np.where(no_channel, np.nan, (np.where(no_channel, "", delivery) == "paper").astype(float))
    disputed = (invoices[Inv.DISPUTE].to_numpy("datetime64[ns]") <= now).astype(float)
    dates = pd.DatetimeIndex(due)
    beta = known.delay_effects[0]
    lead = s["order_lead_days"]
    orders = invoices[Inv.ORDER]
    if rows is not None or (orders.notna().any() and known.view.has(Ord.TABLE) and len(known.order_index)):
        if rows is None:
            at = _find(known.view.get(Ord.TABLE)[Ord.ID], lambda: known.order_index, orders)
            placed = np.where(at >= 0, known.order_days[at], np.datetime64("NaT"))
        else:
            placed = known.placed_rows[rows]
        own = (issue - placed) / np.timedelta64(1, "D")
        lead = np.where(np.isnan(own), lead, np.floor(own))
    out = {
        Inv.ID: invoices[Inv.ID].array, Inv.CUSTOMER: invoices[Inv.CUSTOMER].array, Inv.ISSUE: issue, Inv.DUE: due,
        SNAPSHOT: np.full(n, now), OPEN_AMOUNT: owed * rate, OPEN_AMOUNT_DOC: owed,
        CURRENCY: _currency(cur, known.base, n),
        CUSTOMER_NAME: known.names[pos], "amount": amount,
        "terms_days": ((due - issue) // np.timedelta64(1, "D")).astype(float), "days_to_due": to_due,
        DAYS_OVERDUE: -to_due, "age_days": ((now - issue) // np.timedelta64(1, "D")).astype(float),
        "paper": paper, "disputed": disputed,
        "due_month_end": month_end(due_s, cfg.month_end_days).to_numpy(float),
        "due_quarter_end": quarter_end(due_s, cfg.month_end_days).to_numpy(float),
        "due_month": dates.month.to_numpy(float),
    }
    # The delay this customer would show on this very invoice: its own habit, plus what a dispute or
    # paper adds for everybody (learned within customers, so habits and channels do not blur).
    flags = beta[0] * disputed + beta[1] * np.nan_to_num(paper, nan=0.0)
    expected = s["expected_delay_base"] + flags
    after_weekday = np.mod(dates.day_of_week.to_numpy(float) - s["run_weekday"], 7)
    after_monthday = _days_after_monthday(dates, s["run_monthday"])
    kind = cash.run_kinds(s["n_settled"], s["run_weekday_share"], s["run_monthday_share"])
    slack = np.select([kind == cash.RUN_MONTHLY, kind == cash.RUN_WEEKLY], [after_monthday, after_weekday], 0.0)
    per_invoice = {
        "expected_delay": expected,
        "amount_vs_typical": amount / np.where(np.isnan(s["typical"]), amount, s["typical"]),
        "days_after_run_weekday": after_weekday,
        "days_after_run_monthday": after_monthday,
        # Paid on time only at a run on or before the due date: how far before it that run is, and how many of
        # the customer's spreads its usual pay day for this invoice sits after it (past it: late).
        "run_slack": slack,
        "run_margin": (expected + slack) / (s["delay_std"] + 1.0),
        "order_lead_days": lead,
        "paid_share": np.clip(reduced / doc, 0.0, 1.0),
        "expected_delay_recent": s["recent_delay_base"] + flags,
    }
    for col in _CUSTOMER:
        out[col] = per_invoice[col] if col in per_invoice else s[col]
    return pd.DataFrame(out, index=invoices.index)


FEW_LOOKUPS = 1000  # ``_find``: up to this many ids (a request's) are looked up in the history's kept index


def _find(keys: pd.Series, index: Callable[[], pd.Index], lookups: pd.Series) -> np.ndarray:
    """Where each of ``lookups`` sits among the unique ``keys`` (-1: not there), as ``index().get_indexer`` gives:
    through that kept index (``index()``: the same keys) for a few, as a request's; for more, as a forecast's
    thousands, by one scan of the keys against the lookups, which builds no index of a million ids."""
    if len(lookups) <= FEW_LOOKUPS:
        return index().get_indexer(lookups)
    named = np.flatnonzero(ledger.is_in(keys, lookups).to_numpy(bool))
    if not len(named):
        return np.full(len(lookups), -1, dtype=np.intp)
    at = ledger.positions(keys.iloc[named], lookups)
    return np.where(at >= 0, named[np.maximum(at, 0)], -1)


def _codes(currencies: pd.Series | None) -> np.ndarray | None:
    """``ledger.codes`` as an object array, None where a row names no currency (None: no currency column)."""
    return None if currencies is None else ledger.codes(currencies).to_numpy(dtype=object, na_value=None)


def _currency(cur: np.ndarray | None, base: str | None, n: int) -> np.ndarray:
    """Each row's currency code (``_codes``), the base's (or ``ledger.MONEY``) where it names none."""
    default = base or ledger.MONEY
    if cur is None:
        return np.full(n, default, dtype=object)
    return np.array([default if c is None else c for c in cur], dtype=object)


def invoice_features(company: Company, date: str | pd.Timestamp, cfg: FeatureConfig = FeatureConfig(),
                     invoices: pd.DataFrame | None = None, known: History | None = None) -> pd.DataFrame:
    """Features of every invoice open at the end of ``date`` (or of ``invoices``, scored against the
    history known at ``date``), one row each, indexed like the invoices, plus ids, due dates and the
    values reasons compare with (``COMPARISONS``). ``known`` is ``history(company, date, cfg)`` when the
    caller already has it; a batch and a single invoice then get the very same values."""
    date = pd.Timestamp(date).normalize()
    if known is None:
        known = history(company, date, cfg)
    elif known.date != date or known.cfg != cfg:
        raise ValueError(f"history is as of {known.date:%Y-%m-%d} with {known.cfg}, not {date:%Y-%m-%d} with {cfg}")
    if invoices is None:  # the view's own open invoices: their payments and credits by position, not by id
        inv = known.view[Inv.TABLE]
        rows = np.flatnonzero(open_mask(inv, known.reduced_rows).to_numpy(bool))
        return _invoice_part(inv.iloc[rows], known, rows)
    return _invoice_part(invoices, known)


def _days_after_monthday(due: pd.DatetimeIndex, monthday: np.ndarray) -> np.ndarray:
    """Days from the customer's last usual monthly payment day on or before the due date."""
    day = due.day.to_numpy(float)
    prev_len = (due - pd.to_timedelta(due.day, unit="D")).days_in_month.to_numpy(float)
    return np.where(day >= monthday, day - monthday, day + prev_len - monthday)


def _balances(open_: pd.DataFrame, owed: pd.Series, unapplied: pd.Series, date: pd.Timestamp,
              cfg: FeatureConfig) -> pd.DataFrame:
    """Each customer's open balance (what its open invoices still owe in the base, less its unapplied credit),
    overdue balance and count, and its oldest overdue invoice's days past due."""
    late = open_[Inv.DUE] + pd.Timedelta(days=cfg.grace_days) < date
    overdue = open_[late]
    balance = owed.groupby(open_[Inv.CUSTOMER]).sum()
    balance = balance.reindex(balance.index.union(unapplied.index), fill_value=0.0) - unapplied.reindex(
        balance.index.union(unapplied.index), fill_value=0.0)
    return pd.DataFrame({
        "open_amount": balance,
        "overdue_amount": owed[late].groupby(overdue[Inv.CUSTOMER]).sum(),
        "n_overdue_open": overdue.groupby(Inv.CUSTOMER).size().astype(float),
        "max_days_overdue_open": (date - overdue[Inv.DUE]).dt.days.groupby(overdue[Inv.CUSTOMER]).max(),
    })


def snapshot_dates(company: Company, start: pd.Timestamp, end: pd.Timestamp, every_days: int) -> list[pd.Timestamp]:
    """Evenly spaced dates from ``start``, every ``every_days``, then ``end`` (added when off that grid): the grid
    is anchored at ``start``, so calls with the same start and a later end share their leading dates."""
    dates = pd.date_range(end=end, start=start, freq=f"{every_days}D")
    if len(dates) == 0 or dates[-1] != end:
        dates = dates.append(pd.DatetimeIndex([end]))
    return list(dates)


def snapshots(company: Company, dates: list[pd.Timestamp], cfg: FeatureConfig = FeatureConfig(),
              workers: int | None = 1, passed: LedgerPass | None = None) -> pd.DataFrame:
    """Features of the invoices open at each date, stacked (one row per invoice and date). Each date's rows
    depend on the company and that date alone, so ``workers`` processes may build them side by side: the
    same frames, stacked in date order. ``passed``: the company's ``ledger_pass``, when the caller has it."""
    company = _history_tables(company)
    passed = ledger_pass(company) if passed is None else passed  # the ledger sorted once, looked up at each date
    frames = by_date(lambda d: invoice_features(company, d, cfg, known=history(company, d, cfg, passed)), dates,
                     workers)
    frames = [f for f in frames if len(f)]
    if not frames:
        return invoice_features(company, dates[-1], cfg).iloc[:0]
    return pd.concat(frames, ignore_index=True)


def _history_tables(company: Company) -> Company:
    """The company with only the tables invoice features read (and the bills while they may decide the base
    currency), so that each date's ``as_of`` copies no more."""
    read = [Cust.TABLE, Inv.TABLE, Ord.TABLE, Pay.TABLE, Credit.TABLE, Fx.TABLE]
    read += [Bill.TABLE] if company.base_currency is None else []
    return Company({t: company[t] for t in read if company.has(t)}, company.supplied, company.base_currency)


_FORKED: list = []  # the function forked ``by_date`` workers call: inherited, never pickled


def _forked_call(date: pd.Timestamp):
    return _FORKED[0](date)


def by_date(fn: Callable[[pd.Timestamp], pd.DataFrame], dates: list[pd.Timestamp],
            workers: int | None = 1) -> list[pd.DataFrame]:
    """``[fn(d) for d in dates]``, in ``workers`` forked processes when more than one (None: one per core): they
    share this one's memory (copy on write), so ``fn`` may close over a whole company, and only the frames come
    back, in order. For snapshots, whose rows depend on the company and their date alone."""
    workers = min(workers if workers is not None else parallel.count(), len(dates))
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [fn(d) for d in dates]
    _FORKED.append(fn)
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            return pool.map(_forked_call, dates, chunksize=1)
    finally:
        _FORKED.clear()


def label(examples: pd.DataFrame, company: Company, known_at: pd.Timestamp,
          cfg: FeatureConfig = FeatureConfig()) -> pd.DataFrame:
    """Outcomes of feature rows as known at ``known_at``.

    ``late``: 1 paid after due + grace, 0 paid by then, NaN while undecided (due + grace not passed
    and still open). Still open after due + grace is late, with or without a payment date.
    ``delay``: days from due to payment, ``censored`` True when still open at ``known_at`` (the delay
    is then only known to exceed ``delay``). ``deadline_passed``: due + grace is before ``known_at``, so that
    ``late`` is decided whichever way it went; the classifier learns from those rows only
    (``training.examples.not_yet_due``): before its deadline an invoice is decided only when paid on time, and
    keeping those rows while its late counterparts wait would teach it that invoices are paid on time.
    """
    view = as_of(company, known_at)
    paid = view[Inv.TABLE].set_index(Inv.ID)[Inv.PAID].reindex(examples[Inv.ID]).to_numpy()
    paid = pd.Series(paid, index=examples.index, dtype="datetime64[ns]")
    due = examples[Inv.DUE]
    deadline = due + pd.Timedelta(days=cfg.grace_days)
    late = pd.Series(np.nan, index=examples.index)
    late[paid.notna() & (paid <= deadline)] = 0.0
    late[(paid.notna() & (paid > deadline)) | (paid.isna() & (deadline < known_at))] = 1.0
    censored = paid.isna()
    end = paid.where(~censored, known_at)
    return pd.DataFrame({"late": late, "delay": (end - due).dt.days.astype(float), "censored": censored,
                         "deadline_passed": (deadline < known_at).to_numpy()}, index=examples.index)
