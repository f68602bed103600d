"""Customer behaviour as of a date, and early warnings of customers whose payments start to slip.

``customer_features(company, date)`` describes every customer known at the end of ``date`` (one row
each): invoicing volume and frequency, late share and delays over several windows, volatility,
disputes, open and overdue balance, DSO, trends of delays and orders, tenure. ``early_warnings``
compares each customer's recent record with its own history, on every signal a credit controller reads:
the delays (a CUSUM on standardised delays, less the days disputes, paper and period ends add), the
order count, disputes, invoices paid in part or short, broken promises to pay and, when the caller gives
it, the change of the customer's own ``p_late_next``. Both see only ``as_of(company, date)``.

An invoice's outcome is decided once its due date (plus grace) has passed: paid by then is on time,
paid later or still open is late. A still-open overdue invoice counts with the days it is overdue
so far, the least its delay can be.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from features import cache as validation_cache
from features import ledger
from features.asof import as_of
from features.company import Company
from features.contract import Act, Cust, Inv, Ord, Pay
from features.invoices import FeatureConfig, LedgerPass, within_customer_effects
from features.policy import month_end as falls_at_month_end

DAYS_PER_MONTH = 365.25 / 12
TREND_VALUES = ("improving", "stable", "worsening")

# Customer features, in order. Names are stable: the customer models and the notebook use them.
CUSTOMER_FEATURES = [
    "tenure_days", "monthly_invoiced", "invoices_per_month", "median_amount", "terms_days",
    "n_decided", "late_share", "late_share_90", "late_share_180", "late_share_365", "late_share_weighted",
    "mean_delay_90", "mean_delay_180", "mean_delay_365", "p90_delay_365", "delay_std_365",
    "dispute_rate", "open_amount", "overdue_amount", "overdue_share", "n_overdue_open", "max_days_overdue",
    "open_vs_monthly", "dso_days", "delay_trend", "order_trend", "days_since_last_late",
]


@dataclass(frozen=True)
class CustomerFeatureConfig:
    """Settings of the customer features."""

    grace_days: int = 0
    windows: tuple[int, ...] = (90, 180, 365)  # days of due dates for late shares and delays
    half_life_days: float = 90.0  # recency weighting of the weighted late share
    recent_days: int = 90  # "recent" for the trends of delays and orders and for DSO
    prior_strength: float = 3.0  # pseudo-invoices of the company-wide late share for thin histories


def decided_invoices(view: Company, date: pd.Timestamp, grace_days: int = 0) -> pd.DataFrame:
    """Invoices whose outcome is known at ``date`` (due + grace passed), with ``delay`` and ``late``.

    ``view`` must already be ``as_of(company, date)``. ``delay`` is days from due to payment, or to
    ``date`` for an invoice still open (a lower bound, flagged ``open``). ``disputed`` is a dispute
    known at ``date``; ``paper`` the invoice's delivery.
    """
    inv = view[Inv.TABLE]
    out = _outcomes(inv, date, grace_days)
    decided = inv[out["decided"]]
    out = {k: v[out["decided"]] for k, v in out.items() if k != "decided"}
    paper = (decided[Inv.DELIVERY].astype("string") == "paper").fillna(False)
    return pd.DataFrame({
        Inv.ID: decided[Inv.ID], Inv.CUSTOMER: decided[Inv.CUSTOMER], Inv.ISSUE: decided[Inv.ISSUE],
        Inv.DUE: decided[Inv.DUE], "delay": out["delay"], "late": out["late"], "open": out["open"],
        "disputed": decided[Inv.DISPUTE].notna(), "paper": paper,
    })


def _outcomes(inv: pd.DataFrame, date: pd.Timestamp, grace_days: int) -> dict[str, pd.Series]:
    """``decided_invoices``' definitions, per row of ``inv`` (its due and paid dates): ``decided`` (due + grace
    passed by ``date``), ``open`` (no paid date), ``delay`` (days from due to payment, or to ``date``) and ``late``
    (the delay past grace, or still open)."""
    open_ = inv[Inv.PAID].isna()
    delay = (inv[Inv.PAID].where(~open_, date) - inv[Inv.DUE]).dt.days.astype(float)
    return {"decided": (inv[Inv.DUE] + pd.Timedelta(days=grace_days) < date).to_numpy(bool), "open": open_,
            "delay": delay, "late": (delay > grace_days) | open_}


def _window_stats(hist: pd.DataFrame, date: pd.Timestamp, days: int) -> pd.DataFrame:
    recent = hist[hist[Inv.DUE] > date - pd.Timedelta(days=days)]
    g = recent.groupby(Inv.CUSTOMER)
    return pd.DataFrame({f"late_share_{days}": g["late"].mean().astype(float), f"mean_delay_{days}": g["delay"].mean(),
                         f"n_{days}": g.size().astype(float)})


def _first_seen(view: Company, first_invoice: pd.Series) -> pd.Series:
    """The day each customer became a customer: onboarding, else its first invoice (``first_invoice``, by
    customer id) or order."""
    cust = view[Cust.TABLE].set_index(Cust.ID)
    first_order = view.get(Ord.TABLE).groupby(Ord.CUSTOMER)[Ord.DATE].min()
    seen = pd.concat([first_invoice, first_order], axis=1).min(axis=1)
    return cust[Cust.ONBOARDED].fillna(seen.reindex(cust.index))


def _order_trend(view: Company, date: pd.Timestamp, ids: pd.Index, recent_days: int) -> pd.Series:
    """Log ratio of the recent order pace to the pace of the year before it (invoices if no orders)."""
    if view.has(Ord.TABLE) and len(view[Ord.TABLE]):
        orders = view[Ord.TABLE]
        live = orders[~orders[Ord.CANCELLED].fillna(False).astype(bool)]
        who, when, amount = live[Ord.CUSTOMER], live[Ord.DATE], live[Ord.AMOUNT]
    else:
        inv = view[Inv.TABLE]
        who, when, amount = inv[Inv.CUSTOMER], inv[Inv.ISSUE], inv[Inv.AMOUNT]
    cut, start = date - pd.Timedelta(days=recent_days), date - pd.Timedelta(days=recent_days + 365)
    recent = amount[when > cut].groupby(who[when > cut]).sum().reindex(ids).fillna(0.0)
    before = amount[(when > start) & (when <= cut)].groupby(who[(when > start) & (when <= cut)]).sum()
    before = before.reindex(ids).fillna(0.0) * recent_days / 365
    trend = np.log((recent + 1.0) / (before + 1.0))
    return trend.where(before > 0)


def customer_features(company: Company, date: str | pd.Timestamp,
                      cfg: CustomerFeatureConfig = CustomerFeatureConfig(),
                      passed: LedgerPass | None = None, keep: bool = False) -> pd.DataFrame:
    """Behaviour of every customer known at the end of ``date``, one row each, indexed by customer id.
    ``passed`` is ``ledger_pass(company)`` when the caller looks at many dates of the same company: the
    ledger's sums are then looked up at ``date``, not recomputed (the same values). A validated company's at its
    last known date (the read commands' as-of), or at any date with ``keep`` (the warnings' look-back), are kept
    beside its validation (``features.cache``) and read back."""
    date = pd.Timestamp(date).normalize()
    kept = validation_cache.derived_path(company, "customer-features", {"cfg": asdict(cfg)}, date, any_date=keep)
    return validation_cache.kept(kept, pd.DataFrame, lambda: _customer_features(company, date, cfg, passed))


def _customer_features(company: Company, date: pd.Timestamp, cfg: CustomerFeatureConfig,
                       passed: LedgerPass | None) -> pd.DataFrame:
    view = as_of(company, date)
    inv = view[Inv.TABLE]
    ids = pd.Index(view[Cust.TABLE][Cust.ID], name=Inv.CUSTOMER)
    x = pd.DataFrame(index=ids)
    so_far = None
    if passed is not None and passed.base == ledger.base_of(view):  # else the view may name fewer currencies
        pos = passed.positions(company, inv)
        so_far = pd.Series(passed.reduced(pos, date), index=inv.index)
        code, space = passed.customer_code[pos], passed.customer_ids
    else:
        code, space = pd.factorize(inv[Inv.CUSTOMER], sort=True)
    # The invoices grouped by their customers' codes (``space[code]``: their ids), each result read at ``ids``.
    at = pd.Index(space).get_indexer(ids)

    def by_id(per_code: pd.Series) -> pd.Series:
        return pd.Series(per_code.reindex(at).to_numpy(), index=ids)

    # Money in the base currency: what was invoiced at its issue-date rate (features.ledger).
    issued = ledger.base_amounts(view, Inv.TABLE).to_numpy() if so_far is None else passed.issued_base[pos]
    inv = pd.DataFrame({Inv.CUSTOMER: code, Inv.AMOUNT: issued,
                        **{c: inv[c].to_numpy("datetime64[ns]") for c in (Inv.ISSUE, Inv.DUE, Inv.PAID, Inv.DISPUTE)}})

    first = _first_seen(view, by_id(inv.groupby(Inv.CUSTOMER)[Inv.ISSUE].min()).dropna())
    x["tenure_days"] = (date - first).dt.days.astype(float).clip(lower=0)
    year = inv[inv[Inv.ISSUE] > date - pd.Timedelta(days=365)]
    months = (x["tenure_days"].fillna(0).clip(upper=365) + 1) / DAYS_PER_MONTH
    months = months.clip(lower=1.0)
    x["monthly_invoiced"] = by_id(year.groupby(Inv.CUSTOMER)[Inv.AMOUNT].sum()).fillna(0.0) / months
    x["invoices_per_month"] = by_id(year.groupby(Inv.CUSTOMER).size()).fillna(0.0) / months
    x["median_amount"] = by_id(inv.groupby(Inv.CUSTOMER)[Inv.AMOUNT].median())
    x["terms_days"] = by_id((inv[Inv.DUE] - inv[Inv.ISSUE]).dt.days.groupby(inv[Inv.CUSTOMER]).median())

    out = _outcomes(inv, date, cfg.grace_days)  # decided_invoices, of the codes
    hist = inv[[Inv.CUSTOMER, Inv.DUE]].assign(delay=out["delay"], late=out["late"])[out["decided"]]
    g = hist.groupby(Inv.CUSTOMER)
    x["n_decided"] = by_id(g.size()).fillna(0.0)
    overall = float(hist["late"].mean()) if len(hist) else 0.4
    k = cfg.prior_strength
    x["late_share"] = ((by_id(g["late"].sum()).fillna(0.0) + k * overall) / (x["n_decided"] + k))
    for days in cfg.windows:
        w = _window_stats(hist, date, days).reindex(at).set_axis(ids)
        n = w[f"n_{days}"].fillna(0.0)
        # Thin windows lean on the customer's own longer record, then on the company's.
        x[f"late_share_{days}"] = (w[f"late_share_{days}"].fillna(0.0) * n + k * x["late_share"]) / (n + k)
        x[f"mean_delay_{days}"] = w[f"mean_delay_{days}"]
    age = (date - hist[Inv.DUE]).dt.days.astype(float)
    weight = 0.5 ** (age / cfg.half_life_days)
    wsum = by_id(weight.groupby(hist[Inv.CUSTOMER]).sum()).fillna(0.0)
    wlate = by_id((weight * hist["late"]).groupby(hist[Inv.CUSTOMER]).sum()).fillna(0.0)
    x["late_share_weighted"] = (wlate + k * x["late_share"]) / (wsum + k)
    year_hist = hist[hist[Inv.DUE] > date - pd.Timedelta(days=365)]
    gy = year_hist.groupby(Inv.CUSTOMER)["delay"]
    x["p90_delay_365"] = by_id(gy.quantile(0.9))
    x["delay_std_365"] = by_id(gy.std())

    disputed = inv[Inv.DISPUTE].notna().groupby(inv[Inv.CUSTOMER]).agg(["sum", "size"]).reindex(at).set_axis(ids)
    disputed = disputed.fillna(0.0)
    base_disputes = float(inv[Inv.DISPUTE].notna().mean()) if len(inv) else 0.0
    x["dispute_rate"] = (disputed["sum"] + k * base_disputes) / (disputed["size"] + k)

    # What is still owed, net of payments and applied credit notes, at the as-of rate; the balance is also
    # less the credit on the account (CONTRACT "Open amount"), the overdue amount is not.
    open_ = ledger.open_amounts(view, date, so_far)
    overdue = open_[open_[Inv.DUE] + pd.Timedelta(days=cfg.grace_days) < date]
    unapplied = ledger.unapplied_credit(view, date)
    x["open_amount"] = (open_.groupby(Inv.CUSTOMER)["amount_open"].sum().reindex(ids).fillna(0.0)
                        - unapplied.reindex(ids).fillna(0.0).to_numpy())
    x["overdue_amount"] = overdue.groupby(Inv.CUSTOMER)["amount_open"].sum().reindex(ids).fillna(0.0)
    x["overdue_share"] = (x["overdue_amount"] / x["open_amount"]).where(x["open_amount"] > 0, 0.0).clip(0.0, 1.0)
    x["n_overdue_open"] = overdue.groupby(Inv.CUSTOMER).size().reindex(ids).fillna(0.0)
    x["max_days_overdue"] = (date - overdue[Inv.DUE]).dt.days.groupby(overdue[Inv.CUSTOMER]).max().reindex(ids)
    x["max_days_overdue"] = x["max_days_overdue"].fillna(0.0).astype(float)
    x["open_vs_monthly"] = x["open_amount"] / x["monthly_invoiced"].where(x["monthly_invoiced"] > 0)

    # DSO as CONTRACT.md defines it for the company, per customer: open AR / invoiced in 90 days x 90.
    recent = inv[inv[Inv.ISSUE] > date - pd.Timedelta(days=90)]
    invoiced_90 = by_id(recent.groupby(Inv.CUSTOMER)[Inv.AMOUNT].sum()).fillna(0.0)
    x["dso_days"] = (x["open_amount"] / invoiced_90 * 90).where(invoiced_90 > 0)
    x.loc[x["open_amount"] == 0, "dso_days"] = 0.0

    cut = date - pd.Timedelta(days=cfg.recent_days)
    late_recent = hist[hist[Inv.DUE] > cut].groupby(Inv.CUSTOMER)["delay"].mean()
    before = hist[(hist[Inv.DUE] <= cut) & (hist[Inv.DUE] > cut - pd.Timedelta(days=365))]
    x["delay_trend"] = by_id(late_recent - before.groupby(Inv.CUSTOMER)["delay"].mean())
    x["order_trend"] = _order_trend(view, date, ids, cfg.recent_days)
    last_late = by_id(hist[hist["late"]].groupby(Inv.CUSTOMER)[Inv.DUE].max())
    x["days_since_last_late"] = (date - last_late).dt.days.astype(float).fillna(x["tenure_days"])
    x[Cust.CREDIT_LIMIT] = view[Cust.TABLE].set_index(Cust.ID)[Cust.CREDIT_LIMIT].reindex(ids).to_numpy()
    return x[CUSTOMER_FEATURES + [Cust.CREDIT_LIMIT]]


def late_share_next(company: Company, date: str | pd.Timestamp, known_at: str | pd.Timestamp,
                    days: int = 91, grace_days: int = 0) -> pd.DataFrame:
    """Each customer's share of invoices due in the ``days`` after ``date`` that were late, as known at
    ``known_at`` (the label of the customer-level model), with their count ``n``."""
    date, known_at = pd.Timestamp(date).normalize(), pd.Timestamp(known_at).normalize()
    hist = decided_invoices(as_of(company, known_at), known_at, grace_days)
    return late_share_in(hist, date, days)


def late_share_in(hist: pd.DataFrame, date: pd.Timestamp, days: int = 91) -> pd.DataFrame:
    """``late_share_next`` from an already decided history (see ``decided_invoices``)."""
    window = hist[(hist[Inv.DUE] > date) & (hist[Inv.DUE] <= date + pd.Timedelta(days=days))]
    g = window.groupby(Inv.CUSTOMER)["late"]
    return pd.DataFrame({"late_share_next": g.mean().astype(float), "n": g.size().astype(float)})


# --- early warnings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WarningConfig:
    """Change detection on each customer against its own history."""

    recent_days: int = 180  # the window watched for a change; older decided invoices form the baseline
    baseline_days: int = 365  # how far back the baseline reaches before the watched window
    # Decided invoices needed in the baseline to judge a change. A customer whose record starts after the
    # baseline window's start has its first min_baseline invoices as baseline (when it has twice as many).
    min_baseline: int = 8
    min_sd_days: float = 3.0  # floor of the delay noise (payment runs make some customers look exact)
    clip_z: float = 3.0  # one extreme invoice moves the CUSUM at most this much
    k: float = 1.0  # CUSUM reference value, in standard deviations
    order_days: int = 120  # recent window for the order test
    min_orders_expected: float = 4.0  # too few usual orders to judge a drop
    event_days: int = 120  # recent window for disputes, part and short payments and broken promises
    min_exposure: int = 4  # invoices needed in the recent window and in the baseline to judge a rate
    risk_days: int = 91  # the change of p_late_next is taken against its value this many days before
    # The book's spread of those changes, floored: a model with few distinct leaves moves most customers by
    # nothing, and a move of a few points is within what refitting it moves anyone by.
    min_risk_spread: float = 0.05
    # The signals' p-values are combined by Lancaster's weighted Fisher test: each counts as a chi-square with
    # its weight as degrees of freedom (2 for all is Fisher's; delays and orders keep Fisher's share), so the
    # tests that seldom see anything (most customers never dispute more) dilute the ones that moved less.
    weight_delay: float = 2.0
    weight_orders: float = 2.0
    weight_events: float = 0.25  # each of disputes, part or short payments, broken promises
    weight_risk: float = 0.5  # the change of p_late_next, when given
    named_below: float = 0.1  # a signal is named in the warning when its own p-value is below this
    # A change is reported when the combined one-sided p-value is below this. The shift is measured from a
    # CUSUM-chosen start, so the p-value is optimistic: 0.035 flagged 7.0 % of the never-worsened customers
    # on the development companies (seeds 1001-1005 at five quarter-ends, customer models fitted at the last
    # day), and warned 78 % of those that worsened 30-240 days before. The seeds the issue's figures are
    # measured on (benchmarks/warnings_recall.py: 101, 202, 303) were not used to choose anything.
    alpha: float = 0.035


WARNING_COLUMNS = ["trend", "warning", "change_since", "baseline_delay", "recent_delay", "baseline_late_share",
                   "recent_late_share", "orders_vs_usual", "p_delay", "p_orders", "p_change"]
# The counted signals beside delays and orders: each gives ``{name}_recent`` (the count in the recent window),
# ``{name}_usual`` (what the customer's own earlier rate and the book's change expect) and ``p_{name}``; then
# ``p_late_next`` and ``p_late_before`` with ``p_risk`` when the model's view is given.
RATE_SIGNALS = ("disputes", "part_paid", "broken_promises")
SIGNAL_COLUMNS = ([f"{n}_{k}" for n in RATE_SIGNALS for k in ("recent", "usual")] + [f"p_{n}" for n in RATE_SIGNALS]
                  + ["p_late_next", "p_late_before", "p_risk"])


def cusum(z: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower one-sided CUSUM paths of standardised values ``z`` with reference ``k``."""
    up, down = np.zeros(len(z)), np.zeros(len(z))
    s_up = s_down = 0.0
    for i, v in enumerate(z):
        s_up = max(0.0, s_up + v - k)
        s_down = max(0.0, s_down - v - k)
        up[i], down[i] = s_up, s_down
    return up, down


def _run_start(path: np.ndarray) -> int | None:
    """First observation of the run that reaches the path's maximum (None when the path stays at 0)."""
    if len(path) == 0 or path.max() <= 0:
        return None
    top = int(np.argmax(path))
    zeros = np.nonzero(path[:top] == 0)[0]
    return int(zeros[-1] + 1) if len(zeros) else 0


EFFECTS = ("disputed", "paper", "month_end", "quarter_end")


def known_effects(hist: pd.DataFrame) -> pd.Series:
    """Days of each decided invoice's delay owed to facts other than the customer's habit: a dispute, a
    paper invoice, a due date at month or quarter end. The days each adds are learned by least squares
    within customers over the settled invoices (so they do not blur into habits), never below 0."""
    due = hist[Inv.DUE]
    month_end = falls_at_month_end(due, FeatureConfig.month_end_days)
    flags = pd.DataFrame({"disputed": hist["disputed"], "paper": hist["paper"], "month_end": month_end,
                          "quarter_end": month_end & due.dt.month.isin([3, 6, 9, 12])}).astype(float)
    settled = ~hist["open"].to_numpy()
    beta = within_customer_effects(hist[settled], flags[settled])
    return pd.Series(flags.to_numpy() @ beta, index=hist.index)


def _censored_to_expected(delay: np.ndarray, open_: np.ndarray, base_delay: np.ndarray,
                          base_open: np.ndarray) -> np.ndarray:
    """Recent delays, with each still-open invoice's lower bound (days overdue so far) replaced by what
    the customer's baseline says such an invoice comes to: the mean of the settled baseline delays
    beyond it (the bound itself when none is). Taken as it stands, an invoice open 5 days past due
    would read as an improvement for a customer who usually pays 10 days late."""
    r = np.array(delay, dtype=float, copy=True)
    if open_.any():
        settled = np.sort(base_delay[~base_open])
        tail_sums = np.r_[np.cumsum(settled[::-1])[::-1], 0.0]
        first = np.searchsorted(settled, r[open_], side="right")
        beyond = first < len(settled)
        idx = np.nonzero(open_)[0][beyond]
        r[idx] = tail_sums[first[beyond]] / (len(settled) - first[beyond])
    return r


def _delay_changes(hist: pd.DataFrame, date: pd.Timestamp, cfg: WarningConfig) -> pd.DataFrame:
    """Per customer: baseline and recent delays, where a CUSUM places the start of a rise or fall, and
    the shift of the segment after it against the baseline, with its sampling variance. Each customer's rows
    are read as numpy slices (in the history's order), not pandas frames: at 4,000 customers the frames' own
    indexing was most of ``likvid customers``."""
    watch = np.datetime64(date - pd.Timedelta(days=cfg.recent_days), "ns")
    first = np.datetime64(date - pd.Timedelta(days=cfg.recent_days + cfg.baseline_days), "ns")
    codes, customers = pd.factorize(hist[Inv.CUSTOMER], sort=False)  # groups in order of first appearance
    keep = np.flatnonzero(codes >= 0)
    order = keep[np.argsort(codes[keep], kind="stable")]  # each customer's rows together, in their own order
    bounds = np.searchsorted(codes[order], np.arange(len(customers) + 1))
    cols = {c: hist[c].to_numpy()[order] for c in ("delay", "open", "decided")}
    cols["due"] = hist[Inv.DUE].to_numpy("datetime64[ns]")[order]
    cols["late"] = hist["late"].astype(float).to_numpy()[order]
    cols["delay"], cols["open"] = cols["delay"].astype(float), cols["open"].astype(bool)
    cols["decided"] = cols["decided"].astype(bool)
    rows = {}
    for g, cust in enumerate(customers):
        h = {c: v[bounds[g]:bounds[g + 1]] for c, v in cols.items()}
        due = h["due"]
        base_at, recent_at = np.flatnonzero((due <= watch) & (due > first)), np.flatnonzero(due > watch)
        young = len(base_at) < cfg.min_baseline and due[0] > first
        if young and len(due) >= 2 * cfg.min_baseline:
            # A customer whose whole record is younger than the baseline window: its first invoices
            # are its baseline, the rest is watched.
            base_at, recent_at = np.arange(cfg.min_baseline), np.arange(cfg.min_baseline, len(due))
        if len(base_at) < cfg.min_baseline or len(recent_at) == 0:
            continue
        base = {c: v[base_at] for c, v in h.items()}
        recent = {c: v[recent_at] for c, v in h.items()}
        b = base["delay"]
        r = _censored_to_expected(recent["delay"], recent["open"], b, base["open"])
        centre = float(np.median(b))
        sd = max(1.4826 * float(np.median(np.abs(b - centre))), float(np.std(b)) * 0.5, cfg.min_sd_days)
        # Winsorised at clip_z sd: one disputed invoice paid a month late is not a change of habit.
        b = np.clip(b, centre - cfg.clip_z * sd, centre + cfg.clip_z * sd)
        r = np.clip(r, centre - cfg.clip_z * sd, centre + cfg.clip_z * sd)
        up, down = cusum((r - centre) / sd, cfg.k)
        row = {"n_base": len(b), "sd": sd, "baseline_delay": float(np.nanmean(base["delay"])),
               "window_shift": float(r.mean() - b.mean()),
               "window_var": sd**2 * (1 / len(b) + 1 / len(r)), "baseline_late_share": float(np.nanmean(base["late"]))}
        for key, path in (("rise", up), ("fall", down)):
            start = _run_start(path)
            seg = r[start:] if start is not None else r[:0]
            row[f"{key}_since"] = pd.Timestamp(recent["due"][start]) if start is not None else pd.NaT
            row[f"{key}_shift"] = float(seg.mean() - b.mean()) if len(seg) else 0.0
            row[f"{key}_var"] = sd**2 * (1 / len(b) + 1 / max(len(seg), 1))
            # What the sentence says is of the invoices already decided (a bound of one not yet due is no delay).
            decided = recent["decided"][start:] if len(seg) else np.zeros(0, bool)
            row[f"{key}_delay"] = (float(recent["delay"][start:][decided].mean()) if decided.any()
                                   else float(seg.mean()) if len(seg) else np.nan)
            row[f"{key}_late_share"] = (float(recent["late"][start:][decided].mean()) if decided.any()
                                        else 0.0 if len(seg) else np.nan)
        rows[cust] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def undecided_invoices(view: Company, date: pd.Timestamp, grace_days: int = 0) -> pd.DataFrame:
    """Invoices whose outcome is not decided at ``date`` (due + grace not passed), in the shape of
    ``decided_invoices``: paid ones with their delay (on or before due), open ones with days from due to
    ``date`` (negative: before due), the least their delay can be. A customer who pays ten days before
    due and has left an invoice due in three days unpaid has already changed; the ones it paid early
    belong beside it, or the open ones alone would read as a change."""
    inv = view[Inv.TABLE]
    pending = inv[inv[Inv.DUE] + pd.Timedelta(days=grace_days) >= date]
    open_ = pending[Inv.PAID].isna()
    end = pending[Inv.PAID].where(~open_, date)
    paper = (pending[Inv.DELIVERY].astype("string") == "paper").fillna(False)
    return pd.DataFrame({
        Inv.ID: pending[Inv.ID], Inv.CUSTOMER: pending[Inv.CUSTOMER], Inv.ISSUE: pending[Inv.ISSUE],
        Inv.DUE: pending[Inv.DUE], "delay": (end - pending[Inv.DUE]).dt.days.astype(float), "late": False,
        "open": open_, "disputed": pending[Inv.DISPUTE].notna(), "paper": paper,
    })


def _delays(view: Company, date: pd.Timestamp, grace_days: int) -> pd.DataFrame:
    """The delays a warning reads, by due date: the decided invoices and the still pending ones (their
    bound so far), less the days disputes, paper and period ends add (a month of disputes or
    quarter-ends is not a change of habit)."""
    hist = pd.concat([decided_invoices(view, date, grace_days).assign(decided=True),
                      undecided_invoices(view, date, grace_days).assign(decided=False)],
                     ignore_index=True).sort_values([Inv.DUE, Inv.ISSUE, Inv.ID], kind="stable")
    return hist.assign(delay=hist["delay"] - known_effects(hist))


def _drift_variance(changes: pd.DataFrame) -> tuple[float, float]:
    """How much customers' levels move between baseline and recent window when nothing happened to them:
    the book's centre and robust spread of those shifts, less their sampling noise (never below 0)."""
    if len(changes) < 10:
        return 0.0, 0.0
    shift = changes["window_shift"]
    centre = float(shift.median())
    robust_var = (1.4826 * float((shift - centre).abs().median())) ** 2
    return centre, max(robust_var - float(changes["window_var"].median()), 0.0)


def _order_drop(view: Company, date: pd.Timestamp, ids: pd.Index, cfg: WarningConfig) -> pd.DataFrame:
    """Recent order count against the customer's usual pace, adjusted by the whole book's pace
    (seasonality and growth move every customer), with a one-sided p-value.

    Both counts are Poisson, so given their sum the recent count is binomial with the share the book's
    pace implies; this exact conditional test counts the noise of the usual pace as well as the
    recent one's."""
    if view.has(Ord.TABLE) and len(view[Ord.TABLE]):
        orders = view[Ord.TABLE]
        live = orders[~orders[Ord.CANCELLED].fillna(False).astype(bool)]
        who, when = live[Ord.CUSTOMER], live[Ord.DATE]
    else:
        inv = view[Inv.TABLE]
        who, when = inv[Inv.CUSTOMER], inv[Inv.ISSUE]
    cut = date - pd.Timedelta(days=cfg.order_days)
    start = cut - pd.Timedelta(days=cfg.baseline_days)
    recent = who[when > cut].value_counts().reindex(ids).fillna(0.0)
    before = who[(when > start) & (when <= cut)].value_counts().reindex(ids).fillna(0.0)
    book = recent.sum() / before.sum() if before.sum() > 0 else 1.0  # the whole book's recent pace
    expected = before * book
    judged = expected >= cfg.min_orders_expected
    p = pd.Series(stats.binom.cdf(recent.to_numpy(), (recent + before).to_numpy().astype(int), book / (1 + book)),
                  index=ids)
    return pd.DataFrame({"orders_vs_usual": (recent / expected).where(judged), "p_orders": p.where(judged)})


def _rate_rise(recent: pd.Series, recent_n: pd.Series, before: pd.Series, before_n: pd.Series,
               min_n: int) -> pd.DataFrame:
    """A count in the recent window against the customer's own earlier rate, scaled by the whole book's
    change of rate (a dispute is raised, a promise broken, days after the invoice: the book's recent rate
    lags too), with the one-sided p-value of a rise.

    Both counts are taken as Poisson, so given their sum the recent count is binomial with the share the
    two exposures and the book's change imply (the same exact conditional test as the orders'). A
    customer with too few invoices in either window, or no event in either, is not judged."""
    def rate(events: pd.Series, exposure: pd.Series) -> float:
        return float(events.sum()) / float(exposure.sum()) if exposure.sum() > 0 else 0.0

    book_before, book_recent = rate(before, before_n), rate(recent, recent_n)
    book = book_recent / book_before if book_before > 0 and book_recent > 0 else 1.0
    share = (recent_n * book / (recent_n * book + before_n)).where(recent_n + before_n > 0, 0.0)
    total = recent + before
    judged = (recent_n >= min_n) & (before_n >= min_n) & (total > 0)
    p = pd.Series(stats.binom.sf(recent.to_numpy() - 1, total.to_numpy().astype(int), share.to_numpy()),
                  index=recent.index)
    usual = (before / before_n.where(before_n > 0) * recent_n * book)
    return pd.DataFrame({"recent": recent, "usual": usual.where(judged), "p": p.where(judged)})


def _windows(when: pd.Series, date: pd.Timestamp, cfg: WarningConfig) -> tuple[pd.Series, pd.Series]:
    """Rows dated in the recent window, and in the baseline before it."""
    cut = date - pd.Timedelta(days=cfg.event_days)
    return (when > cut) & (when <= date), (when > cut - pd.Timedelta(days=cfg.baseline_days)) & (when <= cut)


def _per_customer(place: np.ndarray, rows: pd.Series, ids: pd.Index) -> pd.Series:
    """How many of ``rows`` fall to each customer of ``ids``; ``place`` is each row's position in ``ids`` (-1: none,
    ``_places``)."""
    ok = place >= 0
    return pd.Series(np.bincount(place[ok], weights=rows.to_numpy(float)[ok], minlength=len(ids)), index=ids)


def _places(who: pd.Series, ids: pd.Index) -> np.ndarray:
    """Each row's customer's position in ``ids`` (-1: none, or not one of them), for ``_per_customer``."""
    return ledger.positions(pd.Series(ids), who)


def _invoice_rates(view: Company, date: pd.Timestamp, ids: pd.Index, cfg: WarningConfig) -> dict[str, pd.DataFrame]:
    """Disputes, and invoices paid in part or short, among the invoices issued in each window.

    Paid in part: a payment received that did not settle the invoice (an instalment, or a payment short of
    what is still open); paid short: settled for less than its amount (``paid_amount``, the rest credited
    or written off). Both as known at ``date``."""
    inv = view[Inv.TABLE]
    who = _places(inv[Inv.CUSTOMER], ids)
    recent, before = _windows(inv[Inv.ISSUE], date, cfg)
    disputed = inv[Inv.DISPUTE].notna()
    settled = inv[Inv.PAID].notna()
    short = settled & (inv[Inv.PAID_AMOUNT] < inv[Inv.AMOUNT] - ledger.TOLERANCE).fillna(False)
    part = pd.Series(False, index=inv.index)
    if view.has(Pay.TABLE) and len(view[Pay.TABLE]):
        paid = ledger.positions(inv[Inv.ID], view[Pay.TABLE][Pay.INVOICE])  # each payment's invoice
        n_pay = np.bincount(paid[paid >= 0], minlength=len(inv))
        part = pd.Series((n_pay >= 2) | ((n_pay >= 1) & ~settled.to_numpy()), index=inv.index)
    out = {}
    for name, flag in (("disputes", disputed), ("part_paid", part | short)):
        out[name] = _rate_rise(_per_customer(who, flag & recent, ids), _per_customer(who, recent, ids),
                               _per_customer(who, flag & before, ids), _per_customer(who, before, ids),
                               cfg.min_exposure)
    return out


def _broken_promises(view: Company, date: pd.Timestamp, ids: pd.Index, cfg: WarningConfig,
                     promise_grace_days: int) -> pd.DataFrame:
    """Promises to pay (the ``actions`` log) broken in each window, per invoice falling due in it.

    A promise is judged once its date plus the grace has passed: on an invoice it is broken when the
    invoice was not settled by then; on the customer (no invoice named) when nothing was paid on any of
    its invoices between the promise and then."""
    inv = view[Inv.TABLE]
    acts = view.get(Act.TABLE)
    promises = acts[(acts[Act.KIND] == "promise") & acts[Act.PROMISED].notna()]
    grace = pd.Timedelta(days=promise_grace_days)
    judged = promises[promises[Act.PROMISED] + grace < date]
    on_invoice = judged[Act.INVOICE].notna()
    who = judged[Act.CUSTOMER].astype(object).where(~on_invoice,
                                                    ledger.of_invoices(inv, judged[Act.INVOICE], Inv.CUSTOMER))
    deadline = judged[Act.PROMISED] + grace
    settled_by = ledger.of_invoices(inv, judged[Act.INVOICE], Inv.PAID).to_numpy()
    broken = on_invoice & ~(pd.Series(settled_by, index=judged.index) <= deadline)
    if (~on_invoice).any():
        if view.has(Pay.TABLE) and len(view[Pay.TABLE]):
            pay = view[Pay.TABLE]
            received = pd.DataFrame({"who": ledger.of_invoices(inv, pay[Pay.INVOICE], Inv.CUSTOMER).to_numpy(),
                                     "day": pay[Pay.DATE].to_numpy()})
        else:
            received = pd.DataFrame({"who": inv[Inv.CUSTOMER].to_numpy(), "day": inv[Inv.PAID].to_numpy()})
        for i in judged.index[~on_invoice]:
            days = received.loc[received["who"] == who[i], "day"]
            broken[i] = not ((days >= judged.at[i, Act.DATE]) & (days <= deadline[i])).any()
    recent, before = _windows(deadline, date, cfg)
    due_recent, due_before = _windows(inv[Inv.DUE], date, cfg)
    promised, owed = _places(who, ids), _places(inv[Inv.CUSTOMER], ids)
    return _rate_rise(_per_customer(promised, broken & recent, ids), _per_customer(owed, due_recent, ids),
                      _per_customer(promised, broken & before, ids), _per_customer(owed, due_before, ids),
                      cfg.min_exposure)


def _risk_rise(risk: pd.DataFrame, ids: pd.Index, cfg: WarningConfig) -> pd.DataFrame:
    """The change of each customer's ``p_late_next`` (columns ``p_late_next`` and ``p_late_before``), judged
    against the changes the whole book shows over the same days (its median and robust spread, at least
    ``min_risk_spread``), since the model's view of everyone moves with the season and with what it learned."""
    r = risk.reindex(ids)
    change = r["p_late_next"] - r["p_late_before"]
    centre = float(change.median()) if change.notna().any() else 0.0
    spread = 1.4826 * float((change - centre).abs().median()) if change.notna().any() else 0.0
    p = pd.Series(stats.norm.sf((change - centre) / max(spread, cfg.min_risk_spread)), index=ids)
    return pd.DataFrame({"p_late_next": r["p_late_next"], "p_late_before": r["p_late_before"],
                         "p_risk": p.where(change.notna())})


def lancaster(p: pd.DataFrame, weights: dict[str, float]) -> pd.Series:
    """Combined one-sided p-value of each row's tests (NaN: not made), by Lancaster's generalisation of
    Fisher's method: each p-value becomes the chi-square quantile with its weight as degrees of freedom,
    and their sum is chi-square with the summed weights of the tests made (exact for independent tests)."""
    stat, dof = np.zeros(len(p)), np.zeros(len(p))
    for column, weight in weights.items():
        values = p[column].astype(float).to_numpy()
        made = ~np.isnan(values)
        stat[made] += stats.chi2.isf(np.clip(values[made], 1e-300, 1.0), weight)
        dof[made] += weight
    out = np.ones(len(p))
    out[dof > 0] = stats.chi2.sf(stat[dof > 0], dof[dof > 0])
    return pd.Series(out, index=p.index)


def _sentence(row: dict, cfg: WarningConfig) -> str:
    parts = []
    if row["delay_rise"]:
        parts.append(f"payments slipped from {row['baseline_delay']:+.0f} to {row['recent_delay']:+.0f} days "
                     f"against due (late share {row['baseline_late_share']:.0%} to {row['recent_late_share']:.0%}) "
                     f"on invoices due since {row['change_since']:%Y-%m-%d}")
    if row["order_drop"]:
        parts.append(f"orders in the last {cfg.order_days} days ran {1 - row['orders_vs_usual']:.0%} below "
                     "the usual pace")
    what = {"disputes": "invoices disputed", "part_paid": "invoices paid in part or short",
            "broken_promises": "promises to pay broken"}
    for name in RATE_SIGNALS:
        if row[f"{name}_rise"]:
            parts.append(f"{row[f'{name}_recent']:.0f} {what[name]} in the last {cfg.event_days} days "
                         f"(about {row[f'{name}_usual']:.1f} usual)")
    if row["risk_rise"]:
        parts.append(f"the expected late share of its next quarter rose from {row['p_late_before']:.0%} to "
                     f"{row['p_late_next']:.0%} in {cfg.risk_days} days")
    if not parts:
        return ""
    text = " and ".join(parts) if len(parts) <= 2 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return text[0].upper() + text[1:] + "."


def early_warnings(company: Company, date: str | pd.Timestamp, cfg: WarningConfig = WarningConfig(),
                   grace_days: int = 0, promise_grace_days: int = 0, risk: pd.DataFrame | None = None) -> pd.DataFrame:
    """``trend`` (improving, stable, worsening) and ``warning`` (empty, or what changed and since when)
    for every customer known at the end of ``date``, with the figures behind them.

    Delays are first cleared of the days disputes, paper and month or quarter ends add
    (``known_effects``). A CUSUM on the customer's recent delays, standardised by its own baseline,
    places the start of a rise (or fall); the shift since then is tested against the baseline with the
    sampling noise plus the drift the whole book shows over the same span. The order count, disputes,
    invoices paid in part or short and broken promises (``promise_grace_days`` after their date) are
    each tested against the customer's own earlier rate, and ``risk`` (per customer ``p_late_next`` now
    and ``p_late_before``, ``cfg.risk_days`` earlier, from the customer model) against the book's
    changes. The p-values of the tests that could be made are combined (``lancaster``); the
    customer is flagged when the combined p-value is below ``alpha`` and something really moved the
    wrong way.
    """
    date = pd.Timestamp(date).normalize()
    view = as_of(company, date)
    ids = pd.Index(view[Cust.TABLE][Cust.ID], name=Inv.CUSTOMER)
    hist = _delays(view, date, grace_days)
    changes = _delay_changes(hist, date, cfg)
    out = pd.DataFrame(index=ids)
    if len(changes):
        centre, drift = _drift_variance(changes)
        ch = changes.reindex(ids)
        for key, sign in (("rise", 1.0), ("fall", -1.0)):
            z = sign * (ch[f"{key}_shift"] - centre) / np.sqrt(ch[f"{key}_var"] + drift)
            out[f"p_{key}"] = pd.Series(stats.norm.sf(z), index=ids).where(ch["n_base"].notna())
        out["change_since"] = ch["rise_since"]
        out["baseline_delay"], out["recent_delay"] = ch["baseline_delay"], ch["rise_delay"]
        out["baseline_late_share"], out["recent_late_share"] = ch["baseline_late_share"], ch["rise_late_share"]
    else:
        for col in ("p_rise", "p_fall", "baseline_delay", "recent_delay", "baseline_late_share", "recent_late_share"):
            out[col] = np.nan
        out["change_since"] = pd.NaT
    out = out.join(_order_drop(view, date, ids, cfg))
    out["p_delay"] = out["p_rise"]
    rates = {**_invoice_rates(view, date, ids, cfg),
             "broken_promises": _broken_promises(view, date, ids, cfg, promise_grace_days)}
    for name in RATE_SIGNALS:
        out[f"{name}_recent"], out[f"{name}_usual"], out[f"p_{name}"] = (rates[name]["recent"], rates[name]["usual"],
                                                                         rates[name]["p"])
    given = _risk_rise(risk, ids, cfg) if risk is not None else pd.DataFrame(
        np.nan, index=ids, columns=["p_late_next", "p_late_before", "p_risk"])
    out = out.join(given)
    # The tests that could be made (a customer with too few orders to judge is judged on the rest).
    weights = {"p_rise": cfg.weight_delay, "p_orders": cfg.weight_orders,
               **{f"p_{n}": cfg.weight_events for n in RATE_SIGNALS}, "p_risk": cfg.weight_risk}
    out["p_change"] = lancaster(out, weights)
    flagged = out["p_change"] < cfg.alpha
    # Name only what moved: a part whose own p-value is not small stays out of the sentence.
    small = cfg.named_below
    out["delay_rise"] = flagged & (out["p_rise"] < small) & (out["recent_delay"] > out["baseline_delay"])
    out["order_drop"] = flagged & (out["orders_vs_usual"] < 1) & (out["p_orders"] < small)
    for name in RATE_SIGNALS:
        out[f"{name}_rise"] = flagged & (out[f"p_{name}"] < small) & (out[f"{name}_recent"] > out[f"{name}_usual"])
    out["risk_rise"] = flagged & (out["p_risk"] < small) & (out["p_late_next"] > out["p_late_before"])
    named = ["delay_rise", "order_drop"] + [f"{n}_rise" for n in RATE_SIGNALS] + ["risk_rise"]
    lone = flagged & ~out[named].any(axis=1)  # several together, none alone
    out.loc[lone, "delay_rise"] = (out.loc[lone, "recent_delay"] > out.loc[lone, "baseline_delay"]).fillna(False)
    out.loc[lone, "order_drop"] = (out.loc[lone, "orders_vs_usual"] < 1).fillna(False)
    improving = (out["p_fall"] < cfg.alpha / 4) & ~flagged
    worsening = out[named].any(axis=1)
    out["trend"] = np.where(worsening, "worsening", np.where(improving, "improving", "stable"))
    out["warning"] = [_sentence(r, cfg) for r in out.to_dict("records")]
    out.index.name = Inv.CUSTOMER
    return out[WARNING_COLUMNS + SIGNAL_COLUMNS + named]


def warning_timeline(company: Company, customer_id: str, date: str | pd.Timestamp,
                     cfg: WarningConfig = WarningConfig(), grace_days: int = 0) -> pd.DataFrame:
    """One customer's invoices by due date up to ``date`` (those not decided yet with their bound so far):
    delay (less the days disputes, paper and period ends add), whether in the baseline or the watched
    window, and the upward CUSUM over the watched window (what a warning is drawn from)."""
    date = pd.Timestamp(date).normalize()
    hist = _delays(as_of(company, date), date, grace_days)
    h = hist[hist[Inv.CUSTOMER] == customer_id]
    watch = date - pd.Timedelta(days=cfg.recent_days)
    first = watch - pd.Timedelta(days=cfg.baseline_days)
    out = h[[Inv.ID, Inv.DUE, "delay", "late", "open"]].assign(
        part=np.where(h[Inv.DUE] > watch, "watched", np.where(h[Inv.DUE] > first, "baseline", "older")), cusum=np.nan)
    base = out.loc[out["part"] == "baseline", "delay"].to_numpy()
    recent = out["part"] == "watched"
    if len(base) and recent.any():
        centre = float(np.median(base))
        sd = max(1.4826 * float(np.median(np.abs(base - centre))), float(np.std(base)) * 0.5, cfg.min_sd_days)
        z = np.clip((out.loc[recent, "delay"].to_numpy() - centre) / sd, -cfg.clip_z, cfg.clip_z)
        out.loc[recent, "cusum"] = cusum(z, cfg.k)[0]
    return out.reset_index(drop=True)
