"""What a cash forecast learns from a company's history beyond the invoice models.

``CashModel`` fits, as known at a date: the weekly invoicing (and billing) model, how orders turn
into invoices (lead time, cancellations), the weekdays invoices are issued on, how the company pays its bills
(discount take-up, offsets from due, payment runs), how purchase orders arrive and are billed, and the
recurring bank lines.
``ForecastModels`` pairs it with the payment-timing model a forecast draws invoice payments from.

``CommonShocks`` is what ties invoices' payment days together: the timing model gives each invoice its own
distribution, but invoices due in the same week, or of one customer in the same month, are paid earlier or
later together. Left out, a path's weekly receipts are sums of independent draws and the band is far too
narrow. The shares are learned from the history's dispersion (``fit_common_shocks``).

``BandCalibration`` is what is left after that: by horizon band, how much wider (or narrower) the receipts
band had to be to hold 80 % of the actual weeks of the company's own earlier forecasts (``fit_band_calibration``,
learned once by ``CashModel.fit_bands`` where the model is trained; ``engine.widen_receipts`` applies it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy.special import ndtri

from features import cash, ledger
from features.asof import as_of as view_as_of
from features.asof import to_date
from features.contract import PO, Bill, Inv, Ord
from features.invoices import FeatureConfig
from features.load import Company
from training.cash.series import SeriesConfig, build_weekly_series
from training.payment_timing import PaymentTimingModel


@dataclass(frozen=True)
class CashForecastConfig:
    series: SeriesConfig = field(default_factory=SeriesConfig)
    levels: int = 100  # quantile levels of each invoice's pay-day distribution the paths draw from
    max_customers: int = 150  # customers that carry the sales not yet ordered (the rest pro rata)
    max_suppliers: int = 60
    share_weeks: int = 13  # customers' and suppliers' shares come from these last weeks
    chunk: int = 4000  # invoices per simulation block (memory: chunk x paths)
    common_shocks: bool = True  # tie payment days together as the history shows (False: independent draws)
    # The receipts bands' widening by horizon band (``BandCalibration``), learned from the forecasts of earlier
    # origins whose weeks are known: up to ``band_origins`` of them (0: off), every ``band_every_weeks``, each
    # forecast ``band_weeks`` ahead with ``band_paths`` paths; fewer than ``band_min_origins``: today's bands.
    # Off by default: with 8 origins, on the three companies nobody developed on, it moved week 1's coverage from
    # 0.86 to 0.76 and left weeks 2-4 at 0.74, while doubling the cash model's training (16 refits).
    band_origins: int = 0
    band_min_origins: int = 4
    band_every_weeks: int = 4
    band_weeks: int = 13
    band_paths: int = 200

    def params(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "series"},
                **{f"series.{k}": v for k, v in self.series.params().items()}}


@dataclass(frozen=True)
class CommonShocks:
    """How invoices' payment days move together, as shares of the variance of each invoice's normal score
    (the normal quantile of where its payment day falls in its own distribution). ``company``: shared by all
    invoices due in one week, correlated ``company_ar`` from one week to the next; ``customer``: shared by one
    customer's invoices due in one ``CUSTOMER_WEEKS`` period, correlated ``customer_ar`` between periods."""

    company: float = 0.0
    company_ar: float = 0.0
    customer: float = 0.0
    customer_ar: float = 0.0

    CUSTOMER_WEEKS = 4


NO_COMMON_SHOCKS = CommonShocks()
_TRAILING = 10  # a customer's usual delay: the mean of its last invoices before this one
_HISTORY_WEEKS = 104  # shocks are measured on invoices due in the last two years


def _between_share(score: pd.Series, group: pd.Series, min_size: int) -> tuple[float, float, pd.Series]:
    """One-way random effects of ``score`` by ``group`` (groups of at least ``min_size``): the between-group
    variance, the within-group variance, and each group's mean."""
    g = score.groupby(group)
    n, mean = g.size(), g.mean()
    keep = n >= min_size
    if keep.sum() < 3:
        return 0.0, float(score.var()) if len(score) > 1 else 1.0, mean[keep]
    within = float(((score - g.transform("mean")) ** 2)[group.map(keep).to_numpy(bool)].sum()
                   / max(int((n[keep] - 1).sum()), 1))
    between = float(mean[keep].var() - (within / n[keep]).mean())
    return max(between, 0.0), within, mean[keep]


def _lag_correlation(means: pd.Series, between: float, step: int = 1) -> float:
    """Correlation of a shock with the next period's (indexed by integer period, optionally within the first
    index level), corrected for the noise in each period's mean; 0 when there is no shock."""
    if between <= 0 or len(means) < 4:
        return 0.0
    centred = means - means.mean()
    nxt = centred.copy()
    if isinstance(centred.index, pd.MultiIndex):
        nxt.index = pd.MultiIndex.from_arrays([centred.index.get_level_values(0),
                                               centred.index.get_level_values(1) - step])
    else:
        nxt.index = centred.index - step
    pairs = pd.concat([centred, nxt], axis=1, join="inner").dropna()
    if len(pairs) < 3:
        return 0.0
    return float(np.clip((pairs.iloc[:, 0] * pairs.iloc[:, 1]).mean() / between, 0.0, 0.95))


def _usual_delays(customer: np.ndarray, delay: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's customer's usual delay and its spread: the mean and the standard deviation (n - 1) of its
    ``_TRAILING`` previous rows' delays (rows in order within each customer, the customers' rows together;
    ``customer`` codes, -1: none), NaN with fewer than 3 of them: what pandas' ``groupby().shift()`` then
    ``groupby().rolling(_TRAILING, min_periods=3)`` give, by cumulative sums (with them and a factorised
    MultiIndex, ``fit_common_shocks`` took 3.0 s at 985,325 invoices; with these and integer pairs, 1.3 s)."""
    n = len(delay)
    start = np.flatnonzero(np.r_[True, customer[1:] != customer[:-1]]) if n else np.zeros(0, int)
    first = np.repeat(start, np.diff(np.r_[start, n]))  # each row's customer's first row
    i = np.arange(n)
    lo = np.maximum(first, i - _TRAILING)
    count = (i - lo).astype(float)
    total, squares = np.r_[0.0, np.cumsum(delay)], np.r_[0.0, np.cumsum(delay * delay)]
    with np.errstate(divide="ignore", invalid="ignore"):
        sums = total[i] - total[lo]
        mean = sums / count
        var = np.maximum(squares[i] - squares[lo] - sums * mean, 0.0) / (count - 1)
    enough = (count >= 3) & (customer >= 0)
    return np.where(enough, mean, np.nan), np.where(enough, np.sqrt(var), np.nan)


def fit_common_shocks(inv: pd.DataFrame, at: pd.Timestamp) -> CommonShocks:
    """What ties paid invoices' delays together in the history known at ``at``. Each delay is measured against
    the customer's usual one (the mean of its previous invoices, scaled by their spread, as the timing model
    sees a customer) and turned into a normal score; the variance of those scores shared by the invoices due
    in one week, and by one customer's invoices in one period beyond that, are the shocks' shares."""
    paid = inv[inv[Inv.PAID].notna() & inv[Inv.DUE].notna()]
    paid = paid.sort_values([Inv.CUSTOMER, Inv.DUE], kind="stable")
    delay = pd.Series((paid[Inv.PAID] - paid[Inv.DUE]).dt.days.to_numpy(float), index=paid.index)
    code, names = pd.factorize(paid[Inv.CUSTOMER])
    usual, spread = _usual_delays(code, delay.to_numpy())
    week = np.floor((paid[Inv.DUE] - at).dt.days.to_numpy(float) / 7.0)
    r = (delay - usual) / np.maximum(spread, 2.0)
    keep = r.notna().to_numpy() & (week >= -_HISTORY_WEEKS)
    if keep.sum() < 50:
        return NO_COMMON_SHOCKS
    r = r[keep]
    score = pd.Series(ndtri(r.rank(method="average").to_numpy() / (len(r) + 1)), index=r.index)
    week = pd.Series(week[keep].astype(int), index=r.index)
    company, within, weekly = _between_share(score, week, 5)
    rest = score - week.map(weekly).fillna(0.0)
    period = (week // CommonShocks.CUSTOMER_WEEKS).to_numpy()
    low, span = period.min(), period.max() - period.min() + 1
    codes, pairs = pd.factorize(code[keep] * span + (period - low))  # (customer, period), as one integer
    own, _, by_customer = _between_share(rest, pd.Series(codes, index=rest.index), 2)
    pair = pairs[by_customer.index.to_numpy()]
    by_customer.index = pd.MultiIndex.from_arrays([names[pair // span], pair % span + low])
    total = company + within
    share_company = float(np.clip(company / total, 0.0, 0.5)) if total > 0 else 0.0
    share_customer = float(np.clip(own / total, 0.0, 0.9 - share_company)) if total > 0 else 0.0
    return CommonShocks(share_company, _lag_correlation(weekly, company), share_customer,
                        _lag_correlation(by_customer, own))


BANDS = ((1, 1), (2, 4), (5, 8), (9, 13), (14, 26), (27, 52))  # horizon bands, in weeks
BAND_LEVEL = 0.80  # the share of actual weeks the p10-p90 band should hold
_BAND_RANGE = (0.5, 3.0)  # a band is narrowed or widened at most this much
_BAND_PRIOR = 8  # a band's factor is shrunk toward the pooled one as if that had this many rows


@dataclass(frozen=True)
class BandCalibration:
    """How much each forecast week's receipts band is widened (> 1) or narrowed (< 1) around its p50:
    ``factors[w - 1]`` for week ``w``; weeks beyond them keep the simulated band. Learned from ``origins``
    earlier forecasts, the last one from ``last_origin``; ``note`` says what was learned or why nothing was."""

    factors: tuple[float, ...] = ()
    origins: int = 0
    last_origin: pd.Timestamp | None = None
    note: str = "not learned: the simulated bands as they are"

    def factor(self, weeks: int) -> np.ndarray:
        """Each of weeks 1..``weeks``'s factor (1 where none was learned)."""
        out = np.ones(weeks)
        k = min(weeks, len(self.factors))
        out[:k] = self.factors[:k]
        return out

    def params(self) -> dict:
        return {"bands.origins": self.origins, "bands.note": self.note,
                **{f"bands.w{b}": round(float(self.factors[first - 1]), 3)
                   for first, last in BANDS if first <= len(self.factors)
                   for b in [f"{first}" if first == last else f"{first}_{min(last, len(self.factors))}"]}}


NO_BAND_CALIBRATION = BandCalibration()


def band_scores(rows: pd.DataFrame, target: str = "receipts") -> np.ndarray:
    """Each row's actual as a multiple of its half band on its side of the p50 (inside the p10-p90 band
    exactly when at most 1): the factor that would just have covered it."""
    actual, p10, p50, p90 = (rows[c].to_numpy(float) for c in (target, f"{target}_p10", f"{target}_p50",
                                                                 f"{target}_p90"))
    gap = actual - p50
    half = np.where(gap >= 0, p90 - p50, p50 - p10)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(half > 0, np.abs(gap) / half, np.where(gap == 0, 0.0, np.inf))


def _conformal_quantile(score: np.ndarray) -> float:
    """The score that a new week, exchangeable with these, stays under with ``BAND_LEVEL``'s probability: the
    ``BAND_LEVEL * (n + 1) / n`` quantile of n scores (split conformal's finite-sample level)."""
    return float(np.quantile(score, min(BAND_LEVEL * (len(score) + 1) / len(score), 1.0)))


def fit_band_calibration(rows: pd.DataFrame, at: pd.Timestamp,
                         config: CashForecastConfig = CashForecastConfig()) -> BandCalibration:
    """The band widening a forecast as of ``at`` uses, from earlier forecasts' weeks (``origin, week,
    receipts, receipts_p10, receipts_p50, receipts_p90``, the actuals as known at ``at``): only origins whose
    first ``band_weeks`` weeks ended by ``at``, the latest ``band_origins`` of them. Each horizon band's factor is
    the conformal ``BAND_LEVEL`` quantile of its rows' ``band_scores``, shrunk toward the factor of all
    rows, so a band with few rows leans on the rest."""
    weeks = config.band_weeks
    if config.band_origins <= 0:
        return BandCalibration(note="off (band_origins = 0): the simulated bands as they are")
    rows = rows[rows["week"] <= weeks]
    ends = pd.to_datetime(rows["origin"]) + pd.Timedelta(weeks=weeks)
    known = rows[ends <= at]
    full = known.groupby("origin")["week"].nunique()
    origins = sorted(full[full == weeks].index)[-config.band_origins:]
    if len(origins) < config.band_min_origins:
        return BandCalibration(note=f"not learned: {len(origins)} earlier origins with {weeks} known weeks, "
                               f"fewer than {config.band_min_origins}; the simulated bands as they are")
    known = known[known["origin"].isin(origins)]
    score, week = band_scores(known), known["week"].to_numpy(int)
    pooled = _conformal_quantile(score)
    factors = np.ones(weeks)
    for first, last in BANDS:
        if first > weeks:
            break
        mine = (week >= first) & (week <= last)
        own, n = _conformal_quantile(score[mine]), int(mine.sum())
        shrunk = np.exp((n * np.log(max(own, 1e-6)) + _BAND_PRIOR * np.log(max(pooled, 1e-6))) / (n + _BAND_PRIOR))
        factors[first - 1: min(last, weeks)] = np.clip(shrunk, *_BAND_RANGE)
    last_origin = pd.Timestamp(origins[-1])
    return BandCalibration(tuple(float(f) for f in factors), len(origins), last_origin,
                           f"learned from {len(origins)} origins up to {last_origin:%Y-%m-%d}")


def _sorted_days(values: pd.Series) -> np.ndarray:
    return np.sort(values.dropna().to_numpy(float))


_SHARE_WEEKS, _SHARE_ORIGINS = 13, 26  # horizons, and weekly origins, the share not yet ordered is measured on


def _unordered_share(issue: pd.Series, ordered: pd.Series, amount: np.ndarray, at: pd.Timestamp) -> np.ndarray:
    """Of what was invoiced in week h after an origin (h = 1..13), the share whose order was not yet placed at
    the origin (an invoice raised without an order never was), over the last weekly origins whose 13 weeks had
    ended by ``at``: the part of each week's invoicing that open orders cannot show."""
    issue_day = (issue - at).dt.days.to_numpy(float)
    order_day = (ordered - at).dt.days.to_numpy(float)
    order_day = np.where(np.isnan(order_day), issue_day, order_day)
    total, unordered = np.zeros(_SHARE_WEEKS), np.zeros(_SHARE_WEEKS)
    for j in range(_SHARE_WEEKS, _SHARE_WEEKS + _SHARE_ORIGINS):
        h = np.ceil((issue_day + 7 * j) / 7)
        keep = (h >= 1) & (h <= _SHARE_WEEKS)
        late = keep & (order_day > -7 * j)
        total += np.bincount(h[keep].astype(int) - 1, weights=amount[keep], minlength=_SHARE_WEEKS)
        unordered += np.bincount(h[late].astype(int) - 1, weights=amount[late], minlength=_SHARE_WEEKS)
    return np.divide(unordered, total, out=np.ones(_SHARE_WEEKS), where=total > 0)


_WEEKDAY_WEEKS = 52  # the weekdays invoices are issued on are measured on the last year


def _issue_weekdays(issue: pd.Series, amount: pd.Series, at: pd.Timestamp) -> np.ndarray:
    """The share of the last year's invoicing issued on each weekday (Monday first): where in its week a future
    week's invoicing falls, so that its due dates, and its payments, spread over the week as they do."""
    recent = (issue > at - pd.Timedelta(weeks=_WEEKDAY_WEEKS)).to_numpy()
    by_day = np.bincount(issue[recent].dt.day_of_week.to_numpy(), weights=amount[recent].to_numpy(float), minlength=7)
    return by_day / by_day.sum() if by_day.sum() > 0 else np.full(7, 1 / 7)


class CashModel:
    """What a cash forecast learns from a company's history beyond the invoice models."""

    def __init__(self, config: CashForecastConfig = CashForecastConfig()):
        self.config = config

    def fit(self, company: Company, date: str | pd.Timestamp) -> CashModel:
        """Learn from the company as known at the end of ``date``."""
        at = to_date(date)
        view = view_as_of(company, at)
        series = cash.weekly_series(view, at)
        self.as_of_ = at
        self.invoicing_ = build_weekly_series(self.config.series).fit(one_series(series, cash.INVOICED))
        billed = one_series(series, cash.BILLED)
        self.billing_ = build_weekly_series(self.config.series).fit(billed) if billed.sum() > 0 else None
        self._fit_sales(view)
        self._fit_purchases(view)
        self.lines_ = cash.recurring_lines(view.get("cash_transactions"), at)
        self.common_shocks_ = (fit_common_shocks(view[Inv.TABLE], at) if self.config.common_shocks
                               else NO_COMMON_SHOCKS)
        return self

    def fit_bands(self, rows: pd.DataFrame) -> CashModel:
        """Learn the band widening (``fit_band_calibration``) from earlier origins' forecasts and their weeks
        (``training.cash.backtest.band_rows`` makes them), as known at this model's as-of."""
        self.bands_ = fit_band_calibration(rows, self.as_of_, self.config)
        return self

    def bands(self) -> BandCalibration:
        """The learned band widening (none before ``fit_bands``, or for a model pickled before it existed)."""
        return getattr(self, "bands_", NO_BAND_CALIBRATION)

    def common_shocks(self) -> CommonShocks:
        """The learned common shocks (none for a model pickled before they were learned)."""
        return getattr(self, "common_shocks_", NO_COMMON_SHOCKS)

    def unordered_share(self, weeks: int) -> np.ndarray | None:
        """The share of each week's invoicing not yet ordered at the forecast's date, weeks 1..``weeks`` (all of
        it beyond those measured; None for a model pickled before it was learned)."""
        share = getattr(self, "unordered_share_", None)
        if share is None:
            return None
        return np.concatenate([share, np.ones(max(weeks - len(share), 0))])[:weeks]

    def issue_weekdays(self) -> np.ndarray | None:
        """The share of invoicing issued on each weekday, Monday first (None for a model pickled before it was
        learned: each week's sales not yet ordered are then issued on its fourth day)."""
        return getattr(self, "issue_weekdays_", None)

    def _fit_sales(self, view: Company) -> None:
        inv, orders = view[Inv.TABLE], view.get(Ord.TABLE)
        paid = inv[inv[Inv.PAID].notna()]
        # The share of what is invoiced that is collected, in the base currency (both at the issue-date rate).
        base = ledger.base_amounts(view, Inv.TABLE)
        rate = (base / inv[Inv.AMOUNT])[paid.index]
        self.collect_ratio_ = (float((cash.received_amount(paid) * rate).sum() / (paid[Inv.AMOUNT] * rate).sum())
                               if len(paid) else 1.0)
        # Each invoice's order among the orders (-1: none), by one lookup (a merge, an isin and a reindex of the
        # ids as objects took 2.8 s at 1M invoices).
        order = ledger.positions(orders[Ord.ID], inv[Inv.ORDER])
        has = order >= 0
        ordered = pd.Series(pd.NaT, index=inv.index, dtype=orders[Ord.DATE].dtype)
        ordered[has] = orders[Ord.DATE].to_numpy()[order[has]]
        lead = (inv[Inv.ISSUE] - ordered)[has].dt.days
        self.order_lead_ = lead.groupby(inv.loc[has, Inv.CUSTOMER]).median()
        self.order_lead_global_ = float(lead.median()) if len(lead) else 7.0
        invoiced = np.zeros(len(orders), bool)
        invoiced[order[has]] = True
        known = orders[orders[Ord.CANCELLED].fillna(False).astype(bool).to_numpy() | invoiced]
        self.cancel_share_ = float(known[Ord.CANCELLED].fillna(False).astype(bool).mean()) if len(known) else 0.0
        self.unordered_share_ = _unordered_share(inv[Inv.ISSUE], ordered, base.to_numpy(float), self.as_of_)
        self.issue_weekdays_ = _issue_weekdays(inv[Inv.ISSUE], base, self.as_of_)

    def _fit_purchases(self, view: Company) -> None:
        bills, pos = view.get(Bill.TABLE), view.get(PO.TABLE)
        paid = bills[bills[Bill.PAID].notna()]
        offers = paid[paid[Bill.DISCOUNT_PCT].fillna(0) > 0]
        window = offers[Bill.ISSUE] + pd.to_timedelta(offers[Bill.DISCOUNT_DAYS].fillna(0), unit="D")
        taken = offers[offers[Bill.PAID] <= window]
        self.take_share_ = float(len(taken) / len(offers)) if len(offers) else 0.0
        self.discount_days_ = _sorted_days((taken[Bill.PAID] - taken[Bill.ISSUE]).dt.days)
        regular = paid[~paid.index.isin(taken.index)]
        self.due_offsets_ = _sorted_days((regular[Bill.PAID] - regular[Bill.DUE]).dt.days)
        terms = (bills[Bill.DUE] - bills[Bill.ISSUE]).dt.days
        self.supplier_terms_ = terms.groupby(bills[Bill.SUPPLIER]).median()
        self.terms_global_ = float(terms.median()) if len(terms) else 30.0
        last_offer = bills[bills[Bill.DISCOUNT_PCT].fillna(0) > 0].groupby(Bill.SUPPLIER).tail(1)
        self.supplier_discount_ = last_offer.set_index(Bill.SUPPLIER)[[Bill.DISCOUNT_PCT, Bill.DISCOUNT_DAYS]]
        delivered = pos[pos[PO.DELIVERED].notna()]
        self.delivery_slip_ = _sorted_days((delivered[PO.DELIVERED] - delivered[PO.EXPECTED]).dt.days)
        lead = (delivered[PO.DELIVERED] - delivered[PO.DATE]).dt.days
        self.po_lead_ = float(lead.median()) if len(delivered) else 14.0
        billed = bills.dropna(subset=[Bill.PO]).merge(delivered[[PO.ID, PO.DELIVERED]], left_on=Bill.PO, right_on=PO.ID)
        self.bill_lag_ = _sorted_days((billed[Bill.ISSUE] - billed[PO.DELIVERED]).dt.days.clip(lower=0))
        runs = cash.payment_runs(regular[Bill.PAID], pd.Series("company", index=regular.index))
        self.bill_run_ = tuple(int(v) for v in runs.iloc[0]) if len(runs) else (cash.RUN_NONE, 0, 1)


def build_cash_model(config: CashForecastConfig = CashForecastConfig()) -> CashModel:
    return CashModel(config)


def one_series(series: pd.DataFrame, name: str) -> pd.Series:
    return series[series[cash.UID] == name].set_index(cash.DS)[cash.Y]


@dataclass
class ForecastModels:
    """The fitted parts a forecast needs: the payment-timing model, the cash model, and the invoice features'
    settings the timing model was fitted on (the definition of late it learned: grace, month end)."""

    timing: PaymentTimingModel
    cash: CashModel
    versions: dict[str, str] = field(default_factory=dict)
    features: FeatureConfig = field(default_factory=FeatureConfig)


def load_forecast_models(company: str, policy=None) -> ForecastModels:
    """``company``'s champion forecast pair (cash model and the timing model it was registered with). Here, not
    in ``family`` with the training recipe, so that a forecast imports neither MLflow's training side nor the
    backtest's plots."""
    from training import tracking

    champion = tracking.load_champion(tracking.CASH_FORECAST, company, policy)
    models: ForecastModels = champion.model
    return ForecastModels(models.timing, models.cash, {**models.versions, tracking.CASH_FORECAST: champion.version},
                          models.features)
