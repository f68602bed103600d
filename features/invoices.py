"""Point-in-time invoice features: what a credit analyst would look at, as of a date.

``invoice_features(company, date)`` describes every invoice open at the end of ``date`` using only
what ``as_of(company, date)`` shows. ``snapshots`` stacks such views at several dates to make
training examples, each labelled later by ``label``.

Customer history counts a still-open overdue invoice as late: it is the strongest fact about
lateness there is, and dropping it would make a customer who stopped paying look punctual.
Customers with little history fall back on the late share and delays of their industry and
country (shrinkage), not on zeros that read as "never late".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.asof import as_of
from features.contract import Cust, Inv, Ord
from features.load import Company

DAY = pd.Timedelta(days=1)
OPEN_AMOUNT = "amount_open"
SNAPSHOT = "as_of"
DAYS_OVERDUE = "days_overdue"


@dataclass(frozen=True)
class FeatureConfig:
    """Settings of the invoice features."""

    grace_days: int = 0
    half_life_days: float = 90.0  # recency weighting of the late share
    recent_days: int = 90  # "recent" window for trends and momentum
    prior_strength: float = 5.0  # pseudo-invoices of the industry/country prior
    last_n: int = 10  # "paid k of its last n invoices late"


# Model inputs, in order. Names are stable: reasons and plots refer to them.
FEATURES = [
    "amount", "amount_vs_typical", "terms_days", "days_to_due", "age_days",
    "paper", "disputed", "due_month_end", "due_quarter_end", "due_month",
    "n_settled", "late_share", "late_last_n", "n_last_n", "late_share_recent_weighted",
    "mean_delay", "mean_delay_undisputed", "delay_margin", "expected_delay", "mean_days_late",
    "p75_delay", "p90_delay", "delay_std", "delay_trend", "days_since_last_late",
    "dispute_rate",
    "open_amount", "overdue_amount", "n_overdue_open", "max_days_overdue_open",
    "prior_late_share", "prior_mean_delay",
    "run_weekday_share", "days_after_run_weekday", "run_monthday_share", "days_after_run_monthday",
    "order_momentum", "order_lead_days",
]


def is_late(paid: pd.Series, due: pd.Series, grace_days: int = 0) -> pd.Series:
    """Paid after the due date plus grace (NaT paid is not decided here)."""
    return paid > due + pd.to_timedelta(grace_days, unit="D")


def _settled_history(view: Company, date: pd.Timestamp, cfg: FeatureConfig) -> pd.DataFrame:
    """One row per invoice whose outcome is known at ``date``: settled, or open and already late."""
    inv = view[Inv.TABLE]
    grace = pd.Timedelta(days=cfg.grace_days)
    settled = inv[inv[Inv.PAID].notna()]
    overdue = inv[inv[Inv.PAID].isna() & (inv[Inv.DUE] + grace < date)]
    hist = pd.concat([
        pd.DataFrame({Inv.CUSTOMER: settled[Inv.CUSTOMER], "event": settled[Inv.PAID],
                      "delay": (settled[Inv.PAID] - settled[Inv.DUE]).dt.days.astype(float),
                      "late": is_late(settled[Inv.PAID], settled[Inv.DUE], cfg.grace_days), "open": False,
                      "disputed": settled[Inv.DISPUTE].notna(), "paper": _paper(settled)}),
        # An open overdue invoice is late now; its delay is at least its days overdue.
        pd.DataFrame({Inv.CUSTOMER: overdue[Inv.CUSTOMER], "event": date,
                      "delay": (date - overdue[Inv.DUE]).dt.days.astype(float), "late": True, "open": True,
                      "disputed": overdue[Inv.DISPUTE].notna(), "paper": _paper(overdue)}),
    ])
    return hist


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


def _payment_runs(view: Company) -> pd.DataFrame:
    """Each customer's usual payment weekday and day of month, and how regularly it keeps them."""
    inv = view[Inv.TABLE]
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


def _orders(view: Company, date: pd.Timestamp, cfg: FeatureConfig) -> pd.DataFrame:
    orders, inv = view.get(Ord.TABLE), view[Inv.TABLE]
    if orders.empty:
        return pd.DataFrame({"order_momentum": pd.Series(dtype=float), "order_lead_days": pd.Series(dtype=float)})
    recent = pd.Timedelta(days=cfg.recent_days)
    live = orders[~orders[Ord.CANCELLED].astype(bool)]
    last = live[live[Ord.DATE] > date - recent].groupby(Ord.CUSTOMER)[Ord.AMOUNT].sum()
    prev = live[(live[Ord.DATE] <= date - recent) & (live[Ord.DATE] > date - 2 * recent)]
    prev = prev.groupby(Ord.CUSTOMER)[Ord.AMOUNT].sum()
    momentum = (last.reindex(prev.index.union(last.index)).fillna(0) + 1) / (prev.reindex(
        prev.index.union(last.index)).fillna(0) + 1)
    linked = inv.dropna(subset=[Inv.ORDER]).merge(orders[[Ord.ID, Ord.DATE]], left_on=Inv.ORDER,
                                                  right_on=Ord.ID, how="inner")
    lead = (linked[Inv.ISSUE] - linked[Ord.DATE]).dt.days.groupby(linked[Inv.CUSTOMER]).median()
    return pd.DataFrame({"order_momentum": np.log(momentum), "order_lead_days": lead})


def _priors(hist: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """Late share and mean delay of each industry x country (falling back to industry, then all)."""
    cust = customers.set_index(Cust.ID)[[Cust.INDUSTRY, Cust.COUNTRY]].astype("string").fillna("unknown")
    h = hist.join(cust, on=Inv.CUSTOMER)
    overall_late = h["late"].mean() if len(h) else 0.4
    overall_delay = h["delay"].mean() if len(h) else 0.0
    out = pd.DataFrame(index=cust.index)
    out["prior_late_share"], out["prior_mean_delay"] = overall_late, overall_delay
    for keys in ([Cust.INDUSTRY], [Cust.INDUSTRY, Cust.COUNTRY]):
        if h.empty:
            break
        stats = h.groupby(keys).agg(n=(Inv.CUSTOMER, "nunique"), late=("late", "mean"), delay=("delay", "mean"))
        stats = stats[stats["n"] >= 8]  # a prior must speak for peers, not echo one customer
        joined = cust.join(stats, on=keys)
        have = joined["n"].notna()
        out.loc[have, "prior_late_share"] = joined.loc[have, "late"]
        out.loc[have, "prior_mean_delay"] = joined.loc[have, "delay"]
    return out


@dataclass(frozen=True)
class History:
    """What invoice features take from the history known at a date, per customer. ``history`` builds it
    once, so that a service scoring many requests against the same history does not rebuild it."""

    date: pd.Timestamp
    cfg: FeatureConfig
    view: Company
    hist: pd.DataFrame
    per_customer: pd.DataFrame  # customer history, priors, orders and payment runs, side by side
    delay_effects: tuple[np.ndarray, pd.Series]
    n_base: pd.Series
    tenure_days: pd.Series
    disputes: pd.DataFrame
    overall_disputes: float
    balances: pd.DataFrame
    typical: pd.Series
    order_dates: pd.Series


def history(company: Company, date: str | pd.Timestamp, cfg: FeatureConfig = FeatureConfig()) -> History:
    """The per-customer history ``invoice_features`` needs, from ``as_of(company, date)`` only."""
    date = pd.Timestamp(date).normalize()
    view = as_of(company, date)
    inv = view[Inv.TABLE]
    hist = _settled_history(view, date, cfg)
    parts = [_customer_history(hist, date, cfg), _priors(hist, view[Cust.TABLE]), _orders(view, date, cfg),
             _payment_runs(view)]
    per_customer = pd.concat([p.rename_axis(Inv.CUSTOMER) for p in parts], axis=1, join="outer")
    return History(
        date=date, cfg=cfg, view=view, hist=hist, per_customer=per_customer,
        delay_effects=_delay_effects(hist), n_base=hist[~hist["open"]].groupby(Inv.CUSTOMER).size(),
        tenure_days=(date - view[Cust.TABLE].set_index(Cust.ID)[Cust.ONBOARDED]).dt.days,
        disputes=inv[Inv.DISPUTE].notna().groupby(inv[Inv.CUSTOMER]).agg(["sum", "size"]),
        overall_disputes=inv[Inv.DISPUTE].notna().mean() if len(inv) else 0.0,
        balances=_balances(inv, date, cfg), typical=inv.groupby(Inv.CUSTOMER)[Inv.AMOUNT].median(),
        order_dates=view.get(Ord.TABLE).set_index(Ord.ID)[Ord.DATE],
    )


def invoice_features(company: Company, date: str | pd.Timestamp, cfg: FeatureConfig = FeatureConfig(),
                     invoices: pd.DataFrame | None = None, known: History | None = None) -> pd.DataFrame:
    """Features of every invoice open at the end of ``date`` (or of ``invoices``, scored against the
    history known at ``date``), one row each, indexed like the invoices, plus ids and due dates.
    ``known`` is ``history(company, date, cfg)`` when the caller already has it."""
    date = pd.Timestamp(date).normalize()
    if known is None:
        known = history(company, date, cfg)
    elif known.date != date or known.cfg != cfg:
        raise ValueError(f"history is as of {known.date:%Y-%m-%d} with {known.cfg}, not {date:%Y-%m-%d} with {cfg}")
    view, hist = known.view, known.hist
    inv = view[Inv.TABLE]
    if invoices is None:
        invoices = inv[inv[Inv.PAID].isna()]

    x = pd.DataFrame(index=invoices.index)
    x[Inv.ID] = invoices[Inv.ID]
    x[Inv.CUSTOMER] = invoices[Inv.CUSTOMER]
    x[Inv.ISSUE] = invoices[Inv.ISSUE]
    x[Inv.DUE] = invoices[Inv.DUE]
    x[SNAPSHOT] = date
    x[OPEN_AMOUNT] = invoices[Inv.AMOUNT]
    x["amount"] = invoices[Inv.AMOUNT].astype(float)
    x["terms_days"] = (invoices[Inv.DUE] - invoices[Inv.ISSUE]).dt.days.astype(float)
    x["days_to_due"] = (invoices[Inv.DUE] - date).dt.days.astype(float)
    x[DAYS_OVERDUE] = -x["days_to_due"]
    x["age_days"] = (date - invoices[Inv.ISSUE]).dt.days.astype(float)
    delivery = invoices[Inv.DELIVERY].astype("string")
    x["paper"] = np.where(delivery.isna(), np.nan, (delivery == "paper").astype(float))
    x["disputed"] = (invoices[Inv.DISPUTE].notna() & (invoices[Inv.DISPUTE] <= date)).astype(float)
    due = invoices[Inv.DUE]
    x["due_month_end"] = (due.dt.days_in_month - due.dt.day < 5).astype(float)
    x["due_quarter_end"] = (x["due_month_end"].astype(bool) & due.dt.month.isin([3, 6, 9, 12])).astype(float)
    x["due_month"] = due.dt.month.astype(float)

    cust = invoices[Inv.CUSTOMER]
    x = x.join(known.per_customer, on=Inv.CUSTOMER)
    x["n_settled"] = x["n_settled"].fillna(0.0)
    x["late_last_n"] = x["late_last_n"].fillna(0.0)
    x["n_last_n"] = x["n_last_n"].fillna(0.0)
    overall = hist["late"].mean() if len(hist) else 0.4
    x["prior_late_share"] = x["prior_late_share"].fillna(overall)
    x["prior_mean_delay"] = x["prior_mean_delay"].fillna(hist["delay"].mean() if len(hist) else 0.0)
    # Shrink thin histories toward the prior, so a new customer reads as "like its peers".
    k, n = cfg.prior_strength, x["n_settled"]
    for col, prior in (("late_share", "prior_late_share"), ("late_share_recent_weighted", "prior_late_share"),
                       ("mean_delay", "prior_mean_delay"), ("mean_days_late", "prior_mean_delay"),
                       ("mean_delay_undisputed", "prior_mean_delay"),
                       ("p75_delay", "prior_mean_delay"),
                       ("p90_delay", "prior_mean_delay")):
        x[col] = (x[col].fillna(0.0) * n + x[prior] * k) / (n + k)
    x["delay_std"] = x["delay_std"].fillna(x["delay_std"].median() if x["delay_std"].notna().any() else 5.0)
    x["delay_trend"] = x["delay_trend"].fillna(0.0)
    # How many spreads the usual delay sits past the due date: smooth where late_share is lumpy.
    x["delay_margin"] = x["mean_delay_undisputed"] / (x["delay_std"] + 1.0)
    # The delay this customer would show on this very invoice: its own habit, plus what a dispute or
    # paper adds for everybody (learned within customers, so habits and channels do not blur).
    beta, base = known.delay_effects
    n_base = known.n_base.reindex(cust).fillna(0).to_numpy()
    base = base.reindex(cust).fillna(0.0).to_numpy()
    base = (base * n_base + x["prior_mean_delay"].to_numpy() * k) / (n_base + k)
    x["expected_delay"] = base + beta[0] * x["disputed"].to_numpy() + beta[1] * x["paper"].fillna(0).to_numpy()
    tenure_days = known.tenure_days
    never = x["days_since_last_late"].isna()
    x.loc[never, "days_since_last_late"] = tenure_days.reindex(cust[never]).fillna(365.0).to_numpy().clip(0, None)

    # Share of the customer's invoices disputed so far (disputes dated by ``date`` only).
    overall_disputes = known.overall_disputes
    d = known.disputes.reindex(cust)
    x["dispute_rate"] = ((d["sum"].fillna(0) + k * overall_disputes) / (d["size"].fillna(0) + k)).to_numpy()
    x = x.join(known.balances, on=Inv.CUSTOMER)
    for col in ("open_amount", "overdue_amount", "n_overdue_open", "max_days_overdue_open"):
        x[col] = x[col].fillna(0.0)
    x["amount_vs_typical"] = x["amount"] / known.typical.reindex(cust).fillna(x["amount"]).to_numpy()

    x["days_after_run_weekday"] = ((due.dt.day_of_week - x["run_weekday"]) % 7).astype(float)
    x["days_after_run_monthday"] = _days_after_monthday(due, x["run_monthday"])
    x["order_momentum"] = x["order_momentum"].fillna(0.0)
    if invoices[Inv.ORDER].notna().any() and company.has(Ord.TABLE):
        own = invoices[[Inv.ORDER, Inv.ISSUE]].join(known.order_dates, on=Inv.ORDER)
        own_lead = (own[Inv.ISSUE] - own[Ord.DATE]).dt.days
        x["order_lead_days"] = own_lead.fillna(x["order_lead_days"])
    return x.drop(columns=["run_weekday", "run_monthday"])


def _days_after_monthday(due: pd.Series, monthday: pd.Series) -> pd.Series:
    """Days from the customer's last usual monthly payment day on or before the due date."""
    day = due.dt.day.astype(float)
    prev_len = (due - pd.to_timedelta(due.dt.day, unit="D")).dt.days_in_month.astype(float)
    return pd.Series(np.where(day >= monthday, day - monthday, day + prev_len - monthday), index=due.index)


def _balances(inv: pd.DataFrame, date: pd.Timestamp, cfg: FeatureConfig) -> pd.DataFrame:
    open_ = inv[inv[Inv.PAID].isna()]
    overdue = open_[open_[Inv.DUE] + pd.Timedelta(days=cfg.grace_days) < date]
    return pd.DataFrame({
        "open_amount": open_.groupby(Inv.CUSTOMER)[Inv.AMOUNT].sum(),
        "overdue_amount": overdue.groupby(Inv.CUSTOMER)[Inv.AMOUNT].sum(),
        "n_overdue_open": overdue.groupby(Inv.CUSTOMER).size().astype(float),
        "max_days_overdue_open": (date - overdue[Inv.DUE]).dt.days.groupby(overdue[Inv.CUSTOMER]).max(),
    })


def snapshot_dates(company: Company, start: pd.Timestamp, end: pd.Timestamp, every_days: int) -> list[pd.Timestamp]:
    """Evenly spaced dates from ``end`` back to ``start`` (inclusive of ``end``)."""
    dates = pd.date_range(end=end, start=start, freq=f"{every_days}D")
    if len(dates) == 0 or dates[-1] != end:
        dates = dates.append(pd.DatetimeIndex([end]))
    return list(dates)


def snapshots(company: Company, dates: list[pd.Timestamp], cfg: FeatureConfig = FeatureConfig()) -> pd.DataFrame:
    """Features of the invoices open at each date, stacked (one row per invoice and date)."""
    frames = [invoice_features(company, d, cfg) for d in dates]
    frames = [f for f in frames if len(f)]
    if not frames:
        return invoice_features(company, dates[-1], cfg).iloc[:0]
    return pd.concat(frames, ignore_index=True)


def label(examples: pd.DataFrame, company: Company, known_at: pd.Timestamp,
          cfg: FeatureConfig = FeatureConfig()) -> pd.DataFrame:
    """Outcomes of feature rows as known at ``known_at``.

    ``late``: 1 paid after due + grace, 0 paid by then, NaN while undecided (due + grace not passed
    and still open). Still open after due + grace is late, with or without a payment date.
    ``delay``: days from due to payment, ``censored`` True when still open at ``known_at`` (the delay
    is then only known to exceed ``delay``).
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
    return pd.DataFrame({"late": late, "delay": (end - due).dt.days.astype(float), "censored": censored},
                        index=examples.index)
