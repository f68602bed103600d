"""Payment-timing model: a distribution of each invoice's payment date, censoring included.

Delay is counted in days from the due date. A LightGBM regression gives each invoice's centre;
the spread comes from residuals scaled by the customer's own recent delay volatility, whose distribution
is a Kaplan-Meier estimate, so invoices still open at training time (censored: their delay is
only known to exceed what it is so far) count as what they are instead of being dropped. Their
targets are imputed Buckley-James style (the conditional mean beyond the censoring point) and
the regression refitted.

A customer that pays in runs (most of its payments on one weekday, or one day of the month: the rule of
``features.cash.payment_runs``) is paid on a run day: its distribution is the continuous one gathered on the
nearest run day. An invoice open at a date is conditioned on not being paid by then, which for a run payer
means not at its last run on or before that date: everything the curve puts after that run (not only after
the date) is still to come, and what falls before the next run is paid at the next run. That is where most of
an overdue run payer's mass sits, and why its cash arrives in the first week of a forecast.
A customer without a run is paid on a business day the same way (a weekend's mass on the nearest Friday or
Monday) when fewer than ``max_weekend_share`` of such customers' receipts fall at weekends.

The whole conditional distribution is then recalibrated on a later time slice: each calibration invoice's
probability integral transform (the model's chance of a payment by the day it was paid, randomised within the
day's mass; a Kaplan-Meier estimate where still open) shows which levels the model's quantiles really are,
per segment (run kind x overdue or not: a Mondrian split conformal calibration of the quantile levels). One map
of levels per segment is right on average over every invoice's horizon but leaves the first week after the as-of
date short (the next run, invoices paid early: 12-17 % fewer payments than were made, at three backtest origins),
so the chance of a payment within ``first_week_days`` is recalibrated on its own on the same slice, per run kind x
overdue / due that week / due later, the rest of the distribution kept in proportion. An invoice a cash forecast
has not seen issued yet (scored as of its issue day) takes its run kind's own first-week ratio, learned from the
invoices issued after each calibration date and scored as of it (``training.examples.issued_later``): a snapshot
holds an invoice only once it is open at a date, so the invoices customers pay on receipt are seldom in one, and
the due-later ratio left a forecast's future invoices 28 % short in their first week (development seed 11). The
p10-p90 band, every quantile and every draw use the recalibrated levels; the point prediction is the most likely
day (the centre of the ``point_window_days`` window holding most mass), a run day for a run payer.

``quantiles`` and ``sample`` both condition and recalibrate, and the cash forecast draws from them. Mass
beyond ``max_delay_days`` shows as inf (not closed within the horizon). ``never_paid`` is the expected share
of the open amount never collected, learned from invoices written off or short-paid (``paid_amount`` below
``amount``) or still open ``write_off_days`` past due, as the provision's loss-rate matrix counts them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import lightgbm as lgb
import numba
import numpy as np
import pandas as pd

from features import cash
from features.asof import as_of
from features.company import Company
from features.contract import Inv
from features.invoices import FEATURES, SNAPSHOT, columns
from features.ledger import lost_amounts
from features.policy import Provision
from training import cores
from training.examples import ISSUED_LATER, later_dates

LOST = "lost"  # training examples' column: the share of the open amount never collected (NaN: not known yet)
RUN_NAMES = {cash.RUN_NONE: "ad_hoc", cash.RUN_WEEKLY: "weekly_run", cash.RUN_MONTHLY: "monthly_run"}
PAY_DATE_WITHIN_DAYS = 3  # "paid within 3 days of the predicted pay date": the figure a controller plans on
_BIG = 1 << 20  # row offset that turns a matrix of sorted rows into one sorted array (delays are far smaller)
_ROUNDED, _BUSINESS_DAY, _WEEKLY, _MONTHLY = 0, 1, 2, 3  # how a row's delays are gathered on pay days (``_delays``)


@dataclass(frozen=True)
class PaymentTimingConfig:
    n_estimators: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 100
    huber_alpha: float = 8.0  # days: the centre's loss is squared within this of the target, linear beyond
    buckley_james_rounds: int = 1
    min_scale_days: float = 2.0
    max_delay_days: float = 365.0  # horizon: later than this reads as never paid
    calibration_share: float = 0.25  # the latest snapshot dates: held out of the fit, they recalibrate the levels
    min_calibration_events: int = 100  # a segment with fewer paid invoices takes the pooled recalibration
    first_week_days: int = 7  # the chance of a payment this soon after the as-of date is recalibrated on its own
    min_first_week_events: int = 30  # a first-week segment with fewer such payments takes the pooled ratio
    band: tuple[float, float] = (0.1, 0.9)  # levels of the pay-date band
    max_weekend_share: float = 0.05  # customers without a run pay on business days if fewer of their payments are
    # on a Saturday or Sunday
    point_window_days: int = PAY_DATE_WITHIN_DAYS  # the point: centre of the most likely window of +- these days
    write_off_days: int = Provision.model_fields["write_off_days"].default  # open this long past due: lost
    min_lost: int = 20  # rows with a loss needed to learn the never-paid share per invoice (else the pooled share)
    seed: int = 0
    threads: int = 1  # LightGBM threads a fit (`likvid train --threads`), repeatable at any count (cores)

    def params(self) -> dict:
        return asdict(self)


def _odds_scaled(q: np.ndarray, factor: np.ndarray | float) -> np.ndarray:
    """Chances ``q`` with their odds times ``factor`` (a chance of 0 or 1 stays; none reaches 1 from below)."""
    scaled = q * factor / np.maximum(1.0 - q + q * factor, 1e-300)
    return np.where(q < 1.0, np.clip(scaled, 0.0, 1.0 - 1e-9), q)


def _odds_factor(q: np.ndarray, paid: int, bound: float = 50.0) -> float:
    """The factor on the odds of the chances ``q`` whose scaled chances (``_odds_scaled``) add up to ``paid``, found
    by bisection on its log within 1 / ``bound`` .. ``bound``. On the odds, not the chance itself: a chance near 1
    cannot be multiplied by 1.3, so a multiplied chance clipped at 1 left a run payer's first week short."""
    lo, hi = -np.log(bound), np.log(bound)
    for _ in range(60):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if _odds_scaled(q, np.exp(mid)).sum() < paid else (lo, mid)
    return float(np.exp((lo + hi) / 2.0))


def kaplan_meier(values: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Event values (sorted) and the CDF right after each; ties put events before censorings."""
    order = np.lexsort((~event, values))
    v, e = values[order], event[order].astype(float)
    at_risk = len(v) - np.arange(len(v))
    survival = np.cumprod(1.0 - e / at_risk)
    keep = e > 0
    return v[keep], 1.0 - survival[keep]


def write_off_labels(company: Company, at: pd.Timestamp, examples: pd.DataFrame,
                     write_off_days: int = PaymentTimingConfig.write_off_days) -> np.ndarray:
    """Each example's share of its open amount never collected, as known at ``at``: what the payment fell short of
    the amount (written off, short-paid), or all of it when still open ``write_off_days`` past due; NaN while
    the invoice is open and not yet that far past due (its outcome is not known)."""
    inv = as_of(company, at)[Inv.TABLE].drop_duplicates(Inv.ID).set_index(Inv.ID)
    inv = inv.reindex(examples[Inv.ID].to_numpy())
    still_open = inv[Inv.AMOUNT].to_numpy(float) * (1.0 - examples["paid_share"].fillna(0.0).to_numpy(float))
    return np.clip(lost_amounts(inv, at, write_off_days) / np.maximum(still_open, 1e-9), 0.0, 1.0)


@dataclass(frozen=True)
class _Runs:
    """The run days of monthly payers (``rows``: positions) in delay coordinates (days after due): ``days``, one
    sorted row each."""

    rows: np.ndarray
    days: np.ndarray
    GATHER: ClassVar[int] = _MONTHLY

    def _find(self, v: np.ndarray, side: str) -> np.ndarray:
        """Per row of ``v`` (rows x k), the index into its run days of ``searchsorted(days, v, side)``."""
        width = self.days.shape[1]
        offset = (np.arange(len(self.rows)) * _BIG)[:, None]
        flat = (self.days + offset).ravel()
        at = np.searchsorted(flat, (np.clip(v, -_BIG // 4, _BIG // 4) + offset).ravel(), side=side)
        return np.clip(at.reshape(v.shape) - np.arange(len(self.rows))[:, None] * width, 0, width - 1)

    def _day(self, idx: np.ndarray) -> np.ndarray:
        return np.take_along_axis(self.days, idx, axis=1)

    def after(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The last run on or before ``s`` and the first after it (per row)."""
        nxt = self._find(s[:, None], "right")
        return self._day(np.maximum(nxt - 1, 0))[:, 0], self._day(nxt)[:, 0]

    def gathering(self) -> np.ndarray:
        """Each row's place in ``days``: how ``_nearest_month_run`` finds its run days."""
        return np.arange(len(self.rows), dtype=float)


@numba.njit(cache=True, inline="always")
def _nearest_month_run(v: float, days: np.ndarray, row: int) -> float:
    """``v`` gathered on its nearest run day in ``days[row]`` (``_Runs.days``; a tie: the later one), as ``_Runs``
    found it in numpy: ``hi = searchsorted(flat days + row * _BIG, clip(v, -_BIG // 4, _BIG // 4) + row * _BIG,
    "left")`` kept within the row, then ``where(v - lower < upper - v, lower, upper)`` of ``days[row, hi - 1]`` and
    ``days[row, hi]``."""
    width, offset = days.shape[1], float(row * _BIG)
    key = min(max(v, -float(_BIG // 4)), float(_BIG // 4)) + offset
    hi = 0
    while hi < width - 1 and days[row, hi] + offset < key:
        hi += 1
    upper, lower = days[row, hi], days[row, max(hi - 1, 0)]
    return lower if v - lower < upper - v else upper


@dataclass(frozen=True)
class _WeeklyRuns:
    """The run days of weekly payers (``rows``): in delay coordinates, every day that is ``-offset`` modulo 7."""

    rows: np.ndarray
    offset: np.ndarray  # days_after_run_weekday: the due date's weekday less the run weekday
    GATHER: ClassVar[int] = _WEEKLY

    def after(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The last run on or before ``s`` and the first after it (per row)."""
        last = 7.0 * np.floor((s + self.offset) / 7.0) - self.offset
        return last, last + 7.0

    def gathering(self) -> np.ndarray:
        """Each row's offset: what ``_nearest_weekly_run`` needs."""
        return self.offset


@numba.njit(cache=True, inline="always")
def _nearest_weekly_run(v: float, offset: float) -> float:
    """``v`` gathered on its nearest weekly run day (``_WeeklyRuns.offset``; a tie: the later one)."""
    return 7.0 * np.floor((v + offset) / 7.0 + 0.5) - offset


@dataclass(frozen=True)
class _BusinessDays:
    """The pay days of customers without a run (``rows``) whose payments fall on business days: in delay
    coordinates, every day that is not a Saturday or Sunday counted from the due date's ``weekday`` (Monday 0)."""

    rows: np.ndarray
    weekday: np.ndarray
    GATHER: ClassVar[int] = _BUSINESS_DAY

    def _weekend_days(self, d: np.ndarray) -> np.ndarray:
        """Days of ``d`` into the weekend: 1 on a Saturday, 2 on a Sunday, else 0."""
        return np.maximum(np.mod(self.weekday.reshape((-1,) + (1,) * (np.ndim(d) - 1)) + d, 7) - 4, 0)

    def after(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The last business day on or before ``s`` and the first after it (per row)."""
        day = np.floor(s)
        nxt = day + 1.0
        into = self._weekend_days(nxt)
        return day - self._weekend_days(day), nxt + np.where(into > 0, 3 - into, 0)

    def gathering(self) -> np.ndarray:
        """Each row's due weekday: what ``_nearest_business_day`` needs."""
        return self.weekday


@numba.njit(cache=True, inline="always")
def _nearest_business_day(v: float, weekday: float) -> float:
    """``v`` gathered on its nearest business day (``weekday``: the due date's, Monday 0): a Saturday's first half
    on the Friday, the rest of the weekend on the Monday (``_BusinessDays._weekend_days`` of its rounded day)."""
    day = np.rint(v)
    into = (weekday + day) % 7.0 - 4.0
    if into == 1.0:
        return day - 1.0 if v < day + 0.5 else day + 2.0
    return day + 1.0 if into == 2.0 else day


def _month_runs(due: np.ndarray, after_monthday: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Monthly run days (days after due) from ``lo`` to ``hi``: the run day of month is the due date's day less
    ``days_after_run_monthday``, the month's last day when the month is shorter."""
    due_d = due.astype("datetime64[D]")
    month = due_d.astype("datetime64[M]")
    dom = (due_d - month.astype("datetime64[D]")).astype(np.int64) + 1
    prev_len = (month.astype("datetime64[D]") - (month - 1).astype("datetime64[D]")).astype(np.int64)
    monthday = dom - np.round(after_monthday).astype(np.int64)
    monthday = np.where(monthday < 1, monthday + prev_len, monthday)
    k = np.arange(int(np.floor(lo / 31)) - 1, int(np.ceil(hi / 28)) + 2)
    months = month[:, None] + k[None, :]
    start = months.astype("datetime64[D]")
    length = ((months + 1).astype("datetime64[D]") - start).astype(np.int64)
    day = start + (np.minimum(monthday[:, None], length) - 1)
    return (day - due_d[:, None]).astype(np.int64).astype(float)


def run_kind(x: pd.DataFrame) -> np.ndarray:
    """Each row's payment run (``features.cash``: RUN_NONE, RUN_WEEKLY, RUN_MONTHLY) from its customer's history:
    monthly when ``monthly_share`` of its payments fall on one day of month, weekly when ``weekly_share`` fall on
    one weekday, with at least ``min_payments`` (``payment_runs``'s rule). Monthly runs need the due date."""
    kind = cash.run_kinds(x["n_settled"], x["run_weekday_share"], x["run_monthday_share"])
    if Inv.DUE not in x.columns:  # no due date, no monthly run day: a monthly payer reads as weekly or none
        kind = cash.run_kinds(x["n_settled"], x["run_weekday_share"], np.zeros(len(x)))
    return kind


def _runs(x: pd.DataFrame, kind: np.ndarray, lo: float, hi: float,
          business_days: bool = False) -> list[_Runs | _WeeklyRuns | _BusinessDays]:
    """The run days of the weekly and of the monthly payers among the rows, from ``lo`` to ``hi`` days after due, and
    with ``business_days`` the business days of the customers without a run (they need the due date)."""
    out = []
    none = np.flatnonzero(kind == cash.RUN_NONE)
    if business_days and len(none) and Inv.DUE in x.columns:
        out.append(_BusinessDays(none, pd.DatetimeIndex(x[Inv.DUE]).day_of_week.to_numpy()[none].astype(float)))
    weekly = np.flatnonzero(kind == cash.RUN_WEEKLY)
    if len(weekly):
        out.append(_WeeklyRuns(weekly, np.round(x["days_after_run_weekday"].to_numpy(float)[weekly])))
    monthly = np.flatnonzero(kind == cash.RUN_MONTHLY)
    if len(monthly):
        due = x[Inv.DUE].to_numpy("datetime64[ns]")[monthly]
        out.append(_Runs(monthly, _month_runs(due, x["days_after_run_monthday"].to_numpy(float)[monthly], lo, hi)))
    return out


class PaymentTimingModel:
    """Boosted accelerated-failure-time style model with a Kaplan-Meier residual distribution, gathered on
    payment runs and recalibrated on a later slice; a second booster for the share never collected."""

    def __init__(self, config: PaymentTimingConfig = PaymentTimingConfig()):
        self.config = config

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_starts"}  # derived: not pickled

    def _cdf_slices(self) -> np.ndarray:
        """``_slice_starts(self.cdf_)``, found once per model (a search of up to 2^19 levels in the residuals' CDF:
        5.6 ms of a single invoice's 15 ms call when found on every call, measured)."""
        starts = self.__dict__.get("_starts")
        if starts is None or starts[0] is not self.cdf_:
            starts = self.__dict__["_starts"] = (self.cdf_, _slice_starts(self.cdf_))
        return starts[1]

    def _scale(self, x: pd.DataFrame) -> np.ndarray:
        """The customer's recent spread: its habit drifts, so its spread over all history overstates it (a model
        fitted before that was learned keeps the spread it was fitted with)."""
        column = getattr(self, "scale_column_", "delay_std")
        return np.clip(x[column].to_numpy(float), self.config.min_scale_days, 60.0)

    def fit(self, x: pd.DataFrame, delay: np.ndarray, censored: np.ndarray,
            lost: np.ndarray | None = None) -> PaymentTimingModel:
        """Fit on snapshot rows (``delay`` after due, ``censored`` while open); the latest ``calibration_share``
        of snapshot dates recalibrates the levels. ``lost`` (default: the rows' ``LOST`` column, if any; see
        ``write_off_labels``) teaches ``never_paid``."""
        self.features_, self.scale_column_ = list(FEATURES), "recent_delay_spread"
        delay, censored = np.asarray(delay, float), np.asarray(censored, bool)
        if lost is None:
            lost = x[LOST].to_numpy(float) if LOST in x.columns else np.full(len(x), np.nan)
        issued = x[ISSUED_LATER].to_numpy(bool) if ISSUED_LATER in x.columns else np.zeros(len(x), bool)
        later = x[issued], delay[issued], censored[issued]  # only the not-yet-issued ratio learns from these
        x, delay, censored, lost = x[~issued], delay[~issued], censored[~issued], np.asarray(lost, float)[~issued]
        late = self._calibration_rows(x)
        self.business_days_ = self._pays_on_business_days(x, delay, censored)
        # The never-paid model needs nothing of the centre or the recalibration: it is fitted on a second thread
        # meanwhile (LightGBM fits without holding the GIL, and each fit is the same alone or beside another).
        never = cores.ahead(lambda: self._fit_never(x, np.asarray(lost, float)))
        self._fit_centre(x[~late], delay[~late], censored[~late])
        self._recalibrate(x[late], delay[late], censored[late])
        self._fit_issued_later(*later)
        never.result()
        return self

    def _pays_on_business_days(self, x: pd.DataFrame, delay: np.ndarray, censored: np.ndarray) -> bool:
        """Whether customers without a run pay on business days: fewer than ``max_weekend_share`` of their payments
        fall on a Saturday or Sunday (a ledger of bank receipts)."""
        rows = ~censored & (run_kind(x) == cash.RUN_NONE)
        if Inv.DUE not in x.columns or rows.sum() < self.config.min_calibration_events:
            return False
        weekday = np.mod(pd.DatetimeIndex(x[Inv.DUE]).day_of_week.to_numpy()[rows] + delay[rows], 7)
        return bool(np.mean(weekday >= 5) < self.config.max_weekend_share)

    def _calibration_rows(self, x: pd.DataFrame) -> np.ndarray:
        """The rows of the latest ``calibration_share`` of snapshot dates (none when there is one date)."""
        if SNAPSHOT not in x.columns:
            return np.zeros(len(x), bool)
        return x[SNAPSHOT].isin(later_dates(x[SNAPSHOT], self.config.calibration_share)).to_numpy()

    def _fit_centre(self, x: pd.DataFrame, delay: np.ndarray, censored: np.ndarray) -> None:
        scale = self._scale(x)
        # Start from the settled invoices, then impute each censored delay by its conditional mean
        # beyond the censoring point (Buckley-James) and refit on everything.
        self.regressor_, settled = _fitted(self._regressor(), x.loc[~censored, self.features_], delay[~censored])
        centre = np.empty(len(x))
        centre[~censored] = settled
        if censored.any():
            centre[censored] = self.regressor_.predict(x.loc[censored, self.features_])
        # Nothing censored (often so before the calibration slice), nothing to impute: a refit would be the same
        # fit of the same rows and targets again.
        for _ in range(self.config.buckley_james_rounds if censored.any() else 0):
            self._residuals(delay, censored, scale, centre)
            target = delay.copy()
            r_c = (delay[censored] - centre[censored]) / scale[censored]
            target[censored] = centre[censored] + scale[censored] * self._mean_beyond(r_c)
            self.regressor_, centre = _fitted(self._regressor(), x[self.features_], target)
        self._residuals(delay, censored, scale, centre)

    def _regressor(self, objective: str = "huber") -> lgb.LGBMRegressor:
        c = self.config
        extra = {"alpha": c.huber_alpha} if objective == "huber" else {}
        return lgb.LGBMRegressor(
            n_estimators=c.n_estimators, learning_rate=c.learning_rate, num_leaves=c.num_leaves,
            min_child_samples=c.min_child_samples, subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
            random_state=c.seed, verbose=-1, objective=objective, **cores.lightgbm_threads(c.threads), **extra,
        )

    def _residuals(self, delay: np.ndarray, censored: np.ndarray, scale: np.ndarray, centre: np.ndarray) -> None:
        """Kaplan-Meier distribution of scaled residuals from the regressor's ``centre`` of each row, censored ones
        as censored."""
        resid = (delay - centre) / scale
        self.values_, self.cdf_ = kaplan_meier(resid, ~censored)
        self._tails()

    def _tails(self) -> None:
        mass = np.diff(np.concatenate([[0.0], self.cdf_]))
        self.defect_ = max(0.0, 1.0 - float(self.cdf_[-1])) if len(self.cdf_) else 1.0
        self.tail_mass_ = np.concatenate([np.cumsum(mass[::-1])[::-1], [0.0]])
        self.tail_sum_ = np.concatenate([np.cumsum((mass * self.values_)[::-1])[::-1], [0.0]])

    def _mean_beyond(self, r: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.values_, r, side="right")
        beyond = np.maximum(self.values_[-1], r) + 1.0
        mass = self.tail_mass_[idx] + self.defect_
        total = self.tail_sum_[idx] + self.defect_ * beyond
        return np.where(mass > 0, total / np.maximum(mass, 1e-12), r + 1.0)

    def _cdf(self, r: np.ndarray) -> np.ndarray:
        """CDF just below r (the mass of residuals strictly smaller)."""
        idx = np.searchsorted(self.values_, r, side="left")
        return np.where(idx > 0, self.cdf_[np.maximum(idx - 1, 0)], 0.0)

    # --- the conditional distribution: floors, runs, recalibrated levels --------------------------------------

    def _asof_day(self, x: pd.DataFrame, paid_after: np.ndarray | None) -> np.ndarray:
        """The day (after due) the invoice is known unpaid at: by default its snapshot date."""
        if paid_after is None:
            return -x["days_to_due"].to_numpy(float)
        return np.broadcast_to(np.asarray(paid_after, float), (len(x),)).astype(float)

    def _floor(self, x: pd.DataFrame, paid_after: np.ndarray | None) -> np.ndarray:
        """Least possible delay: the day after the as-of date for an open invoice."""
        return self._asof_day(x, paid_after) + 1.0

    def _setup(self, x: pd.DataFrame, paid_after: np.ndarray | None) -> dict:
        """What every query of rows needs: centre, scale, the as-of day, the least pay day, the continuous floor
        (for a run payer: midway between its last run by the as-of day and the next one), the run days."""
        # The booster on the rows' values: the same numbers as on the frame, without pandas' checks per call.
        centre = self.regressor_.booster_.predict(x[columns(self.features_)].to_numpy(float),
                                                 num_threads=cores.predict_threads(len(x)))
        scale = self._scale(x)
        s = self._asof_day(x, paid_after)
        first, lower = s + 1.0, s + 1.0
        kind = run_kind(x)
        runs = _runs(x, kind, float(min(s.min(initial=0.0), 0.0)) - 40.0,
                     float(max(s.max(initial=0.0), 0.0)) + self.config.max_delay_days + 40.0,
                     getattr(self, "business_days_", False))
        for r in runs:
            before, nxt = r.after(s[r.rows])
            first[r.rows], lower[r.rows] = nxt, np.minimum((before + nxt) / 2.0, nxt)
        segment = kind * 2 + (s > 0)
        # Days since issue at the as-of day (0 for an invoice not yet issued, scored as of its issue day).
        age = s + x["terms_days"].to_numpy(float) if "terms_days" in x.columns else np.full(len(x), np.inf)
        return {"centre": centre, "scale": scale, "first": first, "lower": lower, "runs": runs, "segment": segment,
                "lo": self._cdf((lower - centre) / scale), "asof": s, "age": age}

    def _first_week(self, setup: dict) -> tuple[np.ndarray, np.ndarray] | None:
        """Per row, the recalibrated chance of a payment within ``first_week_days`` of the as-of day and the chance
        the first-week recalibration gives it instead (None before that recalibration is learned)."""
        ratio = getattr(self, "first_week_", None)
        if ratio is None or getattr(self, "levels_", None) is None:
            return None
        q = self._recalibrated_below(setup, setup["asof"] + self.config.first_week_days)
        ratio = ratio[self._week_segment(setup)]
        issued = getattr(self, "issued_week_", None)  # None in a model fitted before it was learned, or without
        if issued is not None:
            ratio = np.where(self._not_issued(setup), issued[setup["segment"] // 2], ratio)
        if getattr(self, "week_odds_", False):
            return q, _odds_scaled(q, ratio)
        return q, np.where(q < 1.0, np.clip(q * ratio, 0.0, 1.0 - 1e-9), q)  # a model fitted before the odds

    def _week_segment(self, setup: dict) -> np.ndarray:
        """Each row's segment for the first week: run kind x overdue, due within the first week, or due later."""
        s = setup["asof"]
        due = np.select([s > 0, s + self.config.first_week_days >= 0], [0, 1], 2)
        return setup["segment"] // 2 * 3 + due

    def _not_issued(self, setup: dict) -> np.ndarray:
        """Rows due after the first week and scored as of their issue day or before: a cash forecast's invoices
        not yet issued."""
        return (setup["asof"] + self.config.first_week_days < 0) & (setup["age"] <= 0)

    def _final_below(self, setup: dict, y: np.ndarray, week: tuple | None = None) -> np.ndarray:
        """The chance of a payment by day ``y`` the quantiles give: recalibrated per segment and in the first week
        (``week``: ``_first_week(setup)``, found here unless given)."""
        p, week = self._recalibrated_below(setup, y), self._first_week(setup) if week is None else week
        if week is None:
            return p
        q, t = week
        inside = p * t / np.maximum(q, 1e-12)
        after = t + (p - q) * (1.0 - t) / np.maximum(1.0 - q, 1e-12)
        return np.clip(np.where(p <= q, inside, after), 0.0, 1.0)

    def _days(self, setup: dict, u: np.ndarray) -> np.ndarray:
        """Delays (rows x k) at conditional levels ``u`` (rows x k, or k for every row), inf = never paid: the model's
        levels of ``u`` (the first week's share of the distribution moved to its recalibrated chance, the rest kept in
        proportion, then the segment's recalibration) through the residuals' inverse CDF, rounded to a day or gathered
        on the nearest run day, no earlier than the least pay day."""
        week = self._first_week(setup)
        q, t = (np.zeros(0), np.zeros(0)) if week is None else week
        table = getattr(self, "levels_", None)
        table = np.zeros((0, 0)) if table is None else table
        lo, runs = setup["lo"], setup["runs"]
        kind, value = np.full(len(lo), _ROUNDED), np.zeros(len(lo))  # how each row's delays are gathered on days
        for run in runs:
            kind[run.rows], value[run.rows] = run.GATHER, run.gathering()
        monthly = [run.days for run in runs if run.GATHER == _MONTHLY]
        return _delays(np.atleast_2d(np.asarray(u, float)),
                       (q, t, np.maximum(t, 1e-12), 1.0 - q, np.maximum(1.0 - t, 1e-12)),
                       (np.linspace(0.0, 1.0, table.shape[1]), table, setup["segment"]),
                       (lo, 1.0 - lo, setup["centre"], setup["scale"], setup["first"]),
                       (self.cdf_, self._cdf_slices(), self.values_),
                       (kind, value, monthly[0] if monthly else np.zeros((1, 1))),
                       float(self.config.max_delay_days))

    def _grid(self, x: pd.DataFrame, u: np.ndarray, paid_after: np.ndarray | None) -> np.ndarray:
        """Delays at conditional probabilities ``u`` (rows: invoices, columns: u), inf = never paid."""
        if len(x) == 0:
            return np.zeros((0, np.atleast_2d(u).shape[1]))
        setup = self._setup(x, paid_after)
        return self._days(setup, u)

    def _below(self, setup: dict, y: np.ndarray) -> np.ndarray:
        """The model's conditional chance (before recalibration) of a payment by day ``y`` (per row)."""
        centre, scale, lo = setup["centre"], setup["scale"], setup["lo"]
        edge = y + 0.5  # a continuous delay rounds to y below this
        for run in setup["runs"]:
            last, nxt = run.after(y[run.rows])  # the run on or before y, and the next
            edge[run.rows] = (last + nxt) / 2.0  # below the midpoint it is gathered on ``last`` or earlier
        p = (self._cdf((edge - centre) / scale) - lo) / np.maximum(1.0 - lo, 1e-12)
        return np.where(y < setup["first"], 0.0, np.clip(p, 0.0, 1.0))

    def _recalibrate(self, x: pd.DataFrame, delay: np.ndarray, censored: np.ndarray) -> None:
        """Per segment, the levels the model's quantiles really are on the calibration slice: the Kaplan-Meier
        distribution of the probability integral transforms (randomised within a day's mass; censored rows
        at the chance of a payment by the day they were last seen open)."""
        self.levels_, self.band_, self.first_week_ = None, None, None
        if len(x) == 0:
            return
        setup = self._setup(x, None)
        hi, lo = self._below(setup, delay), self._below(setup, delay - 1.0)
        v = np.random.default_rng(self.config.seed).random(len(x))
        pit = np.where(censored, hi, lo + v * (hi - lo))
        grid = np.linspace(0.0, 1.0, 201)
        pooled = self._level_table(pit, ~censored, grid)
        if pooled is None:
            return
        table = np.tile(pooled, (6, 1))
        for seg in range(6):
            rows = setup["segment"] == seg
            own = self._level_table(pit[rows], ~censored[rows], grid)
            if own is not None:
                table[seg] = own
        self.levels_ = table
        self._fit_first_week(setup, delay, censored)
        self._fit_band(setup)

    def _fit_first_week(self, setup: dict, delay: np.ndarray, censored: np.ndarray) -> None:
        """Per first-week segment (``_week_segment``): the calibration invoices paid within ``first_week_days`` of
        their snapshot against the recalibrated chance of it (rows seen that long; the pooled ratio where a segment
        has fewer than ``min_first_week_events`` such payments). One map of levels per segment recalibrates the
        distribution on average over every invoice's horizon, and leaves short what invoices pay in the first
        week after the as-of date (a run payer's next run, a not-yet-due invoice paid early): the forecast's
        first week."""
        s = setup["asof"]
        seen = ~censored | (delay - s >= self.config.first_week_days)
        self.first_week_ = self._week_factors(setup, seen, delay, censored, self._week_segment(setup), 9)
        self.week_odds_ = True

    def _fit_issued_later(self, x: pd.DataFrame, delay: np.ndarray, censored: np.ndarray) -> None:
        """Per run kind, the first-week ratio of invoices not yet issued (``_not_issued``), from invoices issued after
        a calibration date and scored as of it (``training.examples.issued_later``, due after their first week):
        those paid within ``first_week_days`` of issue against the recalibrated chance of it; pooled over the kinds
        where a kind has fewer than ``min_first_week_events`` such payments, the due-later ratio where all have.
        A snapshot holds an invoice only once it is open at a date, so the customers that pay on receipt are
        seldom in the calibration slice, and the due-later ratio leaves a forecast's future invoices short in the
        week after they are issued."""
        self.issued_week_ = None
        if getattr(self, "first_week_", None) is None or not len(x):
            return
        setup = self._setup(x, -x["terms_days"].to_numpy(float))  # as of each invoice's issue day
        s = setup["asof"]
        seen = (~censored | (delay - s >= self.config.first_week_days)) & self._not_issued(setup)
        self.issued_week_ = self._week_factors(setup, seen, delay, censored, setup["segment"] // 2, 3)

    def _week_factors(self, setup: dict, seen: np.ndarray, delay: np.ndarray, censored: np.ndarray,
                      group: np.ndarray, groups: int) -> np.ndarray | None:
        """Per group, the factor on the odds of each ``seen`` row's recalibrated chance of a payment within
        ``first_week_days`` of its as-of day that makes the chances add up to the payments made (``_odds_factor``);
        the pooled factor for a group with fewer than ``min_first_week_events`` payments; None when all have."""
        c, s = self.config, setup["asof"]
        paid = seen & ~censored & (delay <= s + c.first_week_days)
        if paid.sum() < c.min_first_week_events:
            return None
        q = self._recalibrated_below(setup, s + c.first_week_days)
        out = np.full(groups, _odds_factor(q[seen], int(paid.sum())))
        for g in range(groups):
            rows = seen & (group == g)
            if paid[rows].sum() >= c.min_first_week_events:
                out[g] = _odds_factor(q[rows], int(paid[rows].sum()))
        return out

    def _recalibrated_below(self, setup: dict, y: np.ndarray) -> np.ndarray:
        """The recalibrated chance of a payment by day ``y``: the PITs' CDF at the model's chance."""
        p, out = self._below(setup, y), np.empty(len(y))
        grid = np.linspace(0.0, 1.0, self.levels_.shape[1])
        for seg in np.unique(setup["segment"]):
            rows = setup["segment"] == seg
            out[rows] = np.interp(p[rows], self.levels_[int(seg)], grid)
        return out

    def _fit_band(self, setup: dict) -> None:
        """Per segment, the tail level of the band whose recalibrated chance of holding the payment averages
        ``band``'s width over the calibration slice: a run payer's mass sits on a few days, so the plain
        p10-p90 of a discrete distribution holds more than 80 %."""
        c, segment = self.config, setup["segment"]
        target = c.band[1] - c.band[0]
        tails = np.round(np.arange(0.02, 0.5, 0.02), 2)
        cover = np.empty((len(tails), len(segment)))
        # Every tail's band at once (the same numbers, level by level), and the first week's chances once.
        bands = self._days(setup, np.column_stack([tails, 1.0 - tails]).ravel())
        bands = np.where(np.isfinite(bands), bands, c.max_delay_days + 1)
        week = self._first_week(setup)
        for i in range(len(tails)):
            lo, hi = bands[:, 2 * i], bands[:, 2 * i + 1]
            cover[i] = self._final_below(setup, hi, week) - self._final_below(setup, lo - 1.0, week)
        self.band_ = np.tile(np.asarray(c.band, float), (6, 1))
        for seg in np.unique(segment):
            mean = cover[:, segment == seg].mean(axis=1)
            t = float(tails[np.argmin(np.abs(mean - target))])
            self.band_[int(seg)] = (t, 1.0 - t)

    def _level_table(self, pit: np.ndarray, event: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
        """The recalibrated level of each ``grid`` level: the inverse of the PITs' Kaplan-Meier CDF."""
        if event.sum() < self.config.min_calibration_events:
            return None
        values, cdf = kaplan_meier(pit, event)
        xp = np.concatenate([[0.0], cdf, [1.0]])
        fp = np.concatenate([[0.0], values, [1.0]])
        keep = np.concatenate([[True], np.diff(xp) > 0])
        return np.clip(np.interp(grid, xp[keep], np.maximum.accumulate(fp[keep])), 0.0, 1.0)

    # --- the share never collected --------------------------------------------------------------------------

    def _fit_never(self, x: pd.DataFrame, lost: np.ndarray) -> None:
        known = np.isfinite(lost)
        self.never_model_, self.never_share_ = None, None
        if known.sum() == 0:
            return
        y = lost[known]
        self.never_share_ = float(y.mean())
        if (y > 0).sum() >= self.config.min_lost and (y == 0).sum() >= self.config.min_lost:
            self.never_model_ = self._regressor("cross_entropy").fit(x.loc[known, self.features_], y)

    # --- public ----------------------------------------------------------------------------------------------

    def quantiles(self, x: pd.DataFrame, qs=(0.1, 0.5, 0.9), paid_after: np.ndarray | None = None) -> np.ndarray:
        """Delay quantiles in days after due, conditional on being unpaid ``paid_after`` days after due
        (by default: at the snapshot date of each row). Never-paid mass shows as inf."""
        return self._grid(x, np.asarray(qs, float), paid_after)

    def sample(self, x: pd.DataFrame, n: int, rng: np.random.Generator,
               paid_after: np.ndarray | None = None) -> np.ndarray:
        """``n`` draws of each invoice's delay (days after due); inf means never paid."""
        return self._grid(x, rng.random((len(x), n)), paid_after)

    def pay_days(self, x: pd.DataFrame, paid_after: np.ndarray | None = None, levels: int = 100) -> np.ndarray:
        """Per row (days after due): the band's low end, the point prediction and the band's high end. The point
        is the most likely day, the centre of the ``point_window_days`` window holding most of the distribution
        (a run day for a run payer), kept inside the band."""
        if len(x) == 0:
            return np.zeros((0, 3))
        return self._pay_days(self._setup(x, paid_after), levels)

    def pay_summary(self, x: pd.DataFrame, qs=None) -> tuple[np.ndarray, ...]:
        """``pay_days`` and ``expected_days_late`` of the rows at their snapshot, from one set-up of them; with
        ``qs``, also ``quantiles(x, qs)`` from that set-up (the booster runs once for all three)."""
        if len(x) == 0:
            return (np.zeros((0, 3)), np.zeros(0)) + (() if qs is None else (np.zeros((0, np.size(qs))),))
        setup = self._setup(x, None)
        # The point's levels are the mean's: their delays are found once.
        d = self._days(setup, _MEAN_LEVELS)
        summary = self._pay_days(setup, days=d), self._expected(setup, days=d)
        return summary if qs is None else (*summary, self._days(setup, np.asarray(qs, float)))

    def _pay_days(self, setup: dict, levels: int = 100, days: np.ndarray | None = None) -> np.ndarray:
        """``pay_days`` from the delays at ``_point_levels(levels)`` (``days``, found here unless given)."""
        c = self.config
        band_levels = getattr(self, "band_", None)
        band_levels = np.asarray(c.band, float) if band_levels is None else band_levels[setup["segment"]]
        band = self._days(setup, band_levels)
        d = self._days(setup, _point_levels(levels)) if days is None else days
        high = np.where(np.isfinite(band[:, 1]), band[:, 1], np.inf)
        point = np.clip(_most_likely(d, c.point_window_days), band[:, 0], high)
        return np.column_stack([band[:, 0], point, band[:, 1]])

    def expected_days_late(self, x: pd.DataFrame, paid_after: np.ndarray | None = None) -> np.ndarray:
        if len(x) == 0:
            return np.zeros(0)
        return self._expected(self._setup(x, paid_after))

    def _expected(self, setup: dict, days: np.ndarray | None = None) -> np.ndarray:
        """``expected_days_late`` from the delays at ``_MEAN_LEVELS`` (``days``, found here unless given)."""
        d = self._days(setup, _MEAN_LEVELS) if days is None else days
        d = np.where(np.isinf(d), self.config.max_delay_days, d)
        return np.maximum(d, 0, out=d).mean(axis=1)

    def never_paid(self, x: pd.DataFrame, paid_after: np.ndarray | None = None) -> np.ndarray:
        """Expected share of the open amount never collected (written off, short-paid), given unpaid
        ``paid_after`` days after due (by default at the snapshot): learned from the history's write-offs when
        the model saw them; otherwise the chance of not being paid within the horizon."""
        if getattr(self, "never_share_", None) is None:
            return np.isinf(self._grid(x, _MEAN_LEVELS, paid_after)).mean(axis=1)
        if self.never_model_ is None or len(x) == 0:
            return np.full(len(x), self.never_share_)
        rows = x[self.features_]
        if paid_after is not None:
            s = self._asof_day(x, paid_after)
            rows = rows.assign(days_to_due=-s, age_days=x["age_days"].to_numpy(float) + s + x["days_to_due"])
        return np.clip(self.never_model_.predict(rows), 0.0, 1.0)


def _point_levels(levels: int = 100) -> np.ndarray:
    """The levels whose delays give ``pay_days``' most likely day."""
    return (np.arange(levels) + 0.5) / levels


# The levels whose delays average to ``expected_days_late`` (and whose unpaid share is an old model's ``never_paid``):
# the point's own midpoints, so that ``pay_summary`` finds the delays of 100 levels for both
# (``np.linspace(0.005, 0.995, 100)``, used before, differs from them by an ulp at 21 of them).
_MEAN_LEVELS = _point_levels()


# --- kernels: per element, the same IEEE operations in the same order as the numpy code each docstring names ------


def _slice_starts(cdf: np.ndarray) -> np.ndarray:
    """Where each of 2^k equal slices of [0, 1] starts in ``cdf`` (``searchsorted`` left; k exact: ``u * 2^k``
    floors to u's slice), a slice per one or two CDF steps: a level's search is then a step or two within its slice,
    not a binary search over the whole CDF that misses the cache at every step (and the table fits in the cache)."""
    slices = 1 << max(10, int(len(cdf) - 1).bit_length() - 1)
    return np.searchsorted(cdf, np.arange(slices + 2) / slices, side="left")


@numba.njit(cache=True, inline="always")
def _searchsorted_left(cdf: np.ndarray, starts: np.ndarray, p: float) -> int:
    """``np.searchsorted(cdf, p, side="left")`` for a CDF (values in [0, 1]): the first index whose value is not below
    ``p`` (NaN sorts last), a binary search within ``p``'s slice (``starts``: ``_slice_starts(cdf)``; below 0 the
    first slice, above 1 the last holds the answer). No early return: the loop's branches then compile to
    selects and a search starts before the last one ended (12M levels of the 100k-open case: 0.3 s, against 0.8 s
    with an early return for NaN or a search over the whole CDF outside [0, 1])."""
    within = p if p >= 0.0 else 0.0  # NaN too: a valid slice, its answer replaced below
    within = within if within <= 1.0 else 1.0
    k = int(within * (len(starts) - 2))
    a, b = starts[k], starts[k + 1]
    while a < b:
        m = (a + b) >> 1
        if cdf[m] < p:
            a = m + 1
        else:
            b = m
    return a if p == p else len(cdf)


@numba.njit(cache=True, inline="always")
def _interp(x: float, xp: np.ndarray, fp: np.ndarray) -> float:
    """``np.interp(x, xp, fp)`` for increasing ``xp`` of two or more points, as numpy computes it: the end values
    outside and at the last point, ``fp[j]`` at ``xp[j]``, else ``slope * (x - xp[j]) + fp[j]`` (from the right end
    of the interval when that is NaN)."""
    n = len(xp)
    if x != x:
        return x
    if x < xp[0]:
        return fp[0]
    if x >= xp[n - 1]:
        return fp[n - 1]
    j = min(max(int((x - xp[0]) / (xp[n - 1] - xp[0]) * (n - 1)), 0), n - 2)  # a guess, exact on an even grid
    while x < xp[j]:
        j -= 1
    while x >= xp[j + 1]:
        j += 1
    if x == xp[j]:
        return fp[j]
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    y = slope * (x - xp[j]) + fp[j]
    if y != y:
        y = slope * (x - xp[j + 1]) + fp[j + 1]
        if y != y and fp[j] == fp[j + 1]:
            y = fp[j]
    return y


def _delays(u: np.ndarray, week: tuple, recalibration: tuple, rows: tuple, residuals: tuple, gathering: tuple,
            max_delay: float) -> np.ndarray:
    """``_delays_of_rows`` of every row, the rows spread over the cores (``training.cores.by_rows``)."""
    out = np.empty((len(rows[0]), u.shape[1]))
    cores.by_rows(lambda start, stop: _delays_of_rows(out, start, stop, u, week, recalibration, rows, residuals,
                                                      gathering, max_delay), len(out), u.shape[1])
    return out


@numba.njit(cache=True, nogil=True)
def _delays_of_rows(out: np.ndarray, start: int, stop: int, u: np.ndarray, week: tuple, recalibration: tuple,
                    rows: tuple, residuals: tuple, gathering: tuple, max_delay: float) -> None:
    """``PaymentTimingModel._days``: the delays (into rows ``start`` to ``stop`` of ``out``, rows x k) at conditional
    levels ``u`` ((1 or rows) x k), one row at a time instead of through a dozen arrays of rows x k, the same numbers
    as the numpy code
        ``inside = u * q / max(t, 1e-12); after = (u - t) * (1 - q) / max(1 - t, 1e-12) + q``,
        ``v = clip(where(u < t, inside, after), 0, 1)`` (``week``: q, t and those three; empty: ``v = u``),
        ``v = interp(v, grid, table[segment])`` (``recalibration``; ``table`` empty: none),
        ``i = searchsorted(cdf, v * (1 - lo) + lo, "left")``, ``d = where(i < n, values[i], inf) * scale + centre``
        (``rows``: lo, 1 - lo, centre, scale and the least pay day; ``residuals``: cdf, its ``_slice_starts``,
        values), then ``maximum(round(d), first)``, or for a run payer ``where(isfinite(d), maximum(nearest(d),
        first), inf)`` (``gathering``: each row's kind and value, the monthly run days), inf beyond ``max_delay``.
    ``clip`` and ``maximum`` as numpy does them: NaN stays, and a tie gives ``clip``'s value, ``maximum``'s second."""
    q, t, t_floor, q_rest, t_rest = week
    grid, table, segment = recalibration
    lo, lo_rest, centre, scale, first = rows
    cdf, starts, values = residuals
    kind, value, month_days = gathering
    for i in range(start, stop):
        level, d = u[i if u.shape[0] > 1 else 0], out[i]  # the row's levels become its delays in place
        for j in range(len(d)):
            v = level[j]
            if len(q):
                v = v * q[i] / t_floor[i] if v < t[i] else (v - t[i]) * q_rest[i] / t_rest[i] + q[i]
                v = v if v >= 0.0 or v != v else 0.0
                v = v if v <= 1.0 or v != v else 1.0
            d[j] = _interp(v, grid, table[segment[i]]) if len(table) else v
        for j in range(len(d)):
            k = _searchsorted_left(cdf, starts, d[j] * lo_rest[i] + lo[i])
            d[j] = (values[k] if k < len(values) else np.inf) * scale[i] + centre[i]
        for j in range(len(d)):
            if kind[i] == _ROUNDED:
                day = np.rint(d[j])
            elif not np.isfinite(d[j]):
                d[j] = np.inf
                continue
            elif kind[i] == _BUSINESS_DAY:
                day = _nearest_business_day(d[j], value[i])
            elif kind[i] == _WEEKLY:
                day = _nearest_weekly_run(d[j], value[i])
            else:
                day = _nearest_month_run(d[j], month_days, int(value[i]))
            day = day if day > first[i] or day != day else first[i]
            d[j] = np.inf if day > max_delay else day


def _most_likely(d: np.ndarray, w: int) -> np.ndarray:
    """Per row of delays ``d`` (rows x k, each row non-decreasing, inf last), the first finite delay with the most
    finite delays within ``w`` days of it (inf when none): by two pointers walking each row, or, were a row ever
    out of order, by binary searches of all rows at once (``flat``: each row offset far from the next)."""
    best, in_order = _window_centres(d, float(w), 4.0 * _BIG, 16 * _BIG)
    if in_order:
        return best
    finite = np.isfinite(d)
    flat = (np.where(finite, d, 4.0 * _BIG) + (np.arange(len(d)) * 16 * _BIG)[:, None]).ravel()
    count = (np.searchsorted(flat, flat + w, side="right") - np.searchsorted(flat, flat - w, side="left"))
    count = np.where(finite, count.reshape(d.shape), -1)
    best = np.take_along_axis(d, count.argmax(axis=1)[:, None], axis=1)[:, 0]
    return np.where(finite.any(axis=1), best, np.inf)


@numba.njit(cache=True)
def _window_centres(d: np.ndarray, w: float, sentinel: float, spacing: int) -> tuple[np.ndarray, bool]:
    """``_most_likely``'s binary searches, two pointers in each row: with ``f = where(isfinite(d), d, sentinel) +
    row * spacing``, the count of each finite delay is ``searchsorted(f, f + w, "right") - searchsorted(f, f - w,
    "left")`` (-1 for the rest) and a row's delay is the one at the count's ``argmax`` (inf when none is finite).
    That is the binary searches' result when all of ``f`` is sorted and no window reaches another row, which is
    checked: ``False`` when not."""
    rows, k = d.shape
    best = np.full(rows, np.inf)
    f = np.empty(k)
    last = -np.inf  # the previous row's last value of f
    for i in range(rows):
        for j in range(k):
            f[j] = (d[i, j] if np.isfinite(d[i, j]) else sentinel) + float(i * spacing)
            if f[j] < (f[j - 1] if j else last) or (j == 0 and not (last + w < f[0] and f[0] - w > last)):
                return best, False
        if k:
            last = f[k - 1]
        below, within, top, finite = 0, 0, 0, False  # f[:below] < f[j] - w, f[:within] <= f[j] + w
        for j in range(k):
            count = -1
            if np.isfinite(d[i, j]):
                while within < k and f[within] <= f[j] + w:
                    within += 1
                while below < k and f[below] < f[j] - w:
                    below += 1
                count, finite = within - below, True
            if j == 0 or count > top:
                top, best[i] = count, d[i, j]
        if not finite:
            best[i] = np.inf
    return best, True


def _fitted(regressor: lgb.LGBMRegressor, x: pd.DataFrame, y: np.ndarray) -> tuple[lgb.LGBMRegressor, np.ndarray]:
    """``regressor`` fitted on ``x`` and its predictions of ``x``: LightGBM's own scores of the training rows after
    the last tree, which are those predictions (the same sums of the same leaves, a test checks it), without a
    second pass over the rows; predicted after all when the fit stopped early."""
    scores: list[np.ndarray] = []

    def keep_last(env) -> None:
        if env.iteration == env.end_iteration - 1:
            env.model.eval_train(lambda preds, _: (scores.append(np.array(preds, float)), ("scores", 0.0, False))[1])

    regressor.fit(x, y, callbacks=[keep_last])
    return regressor, scores[0] if scores else regressor.predict(x)


def build_payment_timing(config: PaymentTimingConfig = PaymentTimingConfig()) -> PaymentTimingModel:
    return PaymentTimingModel(config)


def average_delay_baseline(x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Due date plus the customer's average delay (p50), with a normal band of its spread (p10, p90),
    never before the day after the snapshot."""
    floor = -x["days_to_due"].to_numpy(float) + 1
    mean, std = x["mean_delay"].to_numpy(float), x["delay_std"].to_numpy(float)
    p50 = np.maximum(np.round(mean), floor)
    return np.maximum(np.round(mean - 1.2816 * std), floor), p50, np.maximum(np.round(mean + 1.2816 * std), p50)
