"""Payment-timing model: a distribution of each invoice's payment date, censoring included.

Delay is counted in days from the due date. A LightGBM regression gives each invoice's centre;
the spread comes from residuals scaled by the customer's own delay volatility, whose distribution
is a Kaplan-Meier estimate, so invoices still open at training time (censored: their delay is
only known to exceed what it is so far) count as what they are instead of being dropped. Their
targets are imputed Buckley-James style (the conditional mean beyond the censoring point) and
the regression refitted. Mass the Kaplan-Meier curve never reaches is the chance of never being
paid (write-off).

An invoice open at a date is conditioned on not being paid by then: its distribution is the
part of the curve after that day, renormalised. ``quantiles`` and ``sample`` both do this, and
the cash forecast draws from ``sample``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.invoices import FEATURES


@dataclass(frozen=True)
class PaymentTimingConfig:
    n_estimators: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 100
    buckley_james_rounds: int = 1
    min_scale_days: float = 2.0
    max_delay_days: float = 365.0  # horizon: later than this reads as never paid
    seed: int = 0
    threads: int = 1  # LightGBM threads; one a process keeps fits bit-for-bit repeatable (the gate relies on it)

    def params(self) -> dict:
        return asdict(self)


def kaplan_meier(values: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Event values (sorted) and the CDF right after each; ties put events before censorings."""
    order = np.lexsort((~event, values))
    v, e = values[order], event[order].astype(float)
    at_risk = len(v) - np.arange(len(v))
    survival = np.cumprod(1.0 - e / at_risk)
    keep = e > 0
    return v[keep], 1.0 - survival[keep]


class PaymentTimingModel:
    """Boosted accelerated-failure-time style model with a Kaplan-Meier residual distribution."""

    def __init__(self, config: PaymentTimingConfig = PaymentTimingConfig()):
        self.config = config

    def _scale(self, x: pd.DataFrame) -> np.ndarray:
        return np.clip(x["delay_std"].to_numpy(float), self.config.min_scale_days, 60.0)

    def fit(self, x: pd.DataFrame, delay: np.ndarray, censored: np.ndarray) -> PaymentTimingModel:
        c = self.config
        self.features_ = list(FEATURES)
        delay, censored = np.asarray(delay, float), np.asarray(censored, bool)
        scale = self._scale(x)
        # Start from the settled invoices, then impute each censored delay by its conditional mean
        # beyond the censoring point (Buckley-James) and refit on everything.
        self.regressor_ = self._regressor().fit(x.loc[~censored, self.features_], delay[~censored])
        for _ in range(c.buckley_james_rounds):
            self._residuals(x, delay, censored, scale)
            target = delay.copy()
            if censored.any():
                centre = self.regressor_.predict(x.loc[censored, self.features_])
                r_c = (delay[censored] - centre) / scale[censored]
                target[censored] = centre + scale[censored] * self._mean_beyond(r_c)
            self.regressor_ = self._regressor().fit(x[self.features_], target)
        self._residuals(x, delay, censored, scale)
        return self

    def _regressor(self) -> lgb.LGBMRegressor:
        c = self.config
        return lgb.LGBMRegressor(
            n_estimators=c.n_estimators, learning_rate=c.learning_rate, num_leaves=c.num_leaves,
            min_child_samples=c.min_child_samples, subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
            random_state=c.seed, verbose=-1, n_jobs=c.threads, objective="huber", alpha=15.0,
        )

    def _residuals(self, x: pd.DataFrame, delay: np.ndarray, censored: np.ndarray, scale: np.ndarray) -> None:
        """Kaplan-Meier distribution of scaled residuals, censored ones as censored."""
        resid = (delay - self.regressor_.predict(x[self.features_])) / scale
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

    def _inverse(self, u: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.cdf_, u, side="left")
        out = self.values_[np.minimum(idx, len(self.values_) - 1)]
        return np.where(idx >= len(self.values_), np.inf, out)

    def _floor(self, x: pd.DataFrame, paid_after: np.ndarray | None) -> np.ndarray:
        """Least possible delay: the day after the as-of date for an open invoice."""
        if paid_after is None:
            paid_after = -x["days_to_due"].to_numpy(float)
        return np.asarray(paid_after, float) + 1.0

    def _grid(self, x: pd.DataFrame, u: np.ndarray, paid_after: np.ndarray | None) -> np.ndarray:
        """Delays at conditional probabilities ``u`` (rows: invoices, columns: u), inf = never paid."""
        centre = self.regressor_.predict(x[self.features_])
        scale = self._scale(x)
        floor = self._floor(x, paid_after)
        lo = self._cdf((floor - centre) / scale)
        uu = lo[:, None] + np.atleast_2d(u) * (1.0 - lo[:, None])
        r = self._inverse(uu.ravel()).reshape(uu.shape)
        d = centre[:, None] + scale[:, None] * r
        d = np.maximum(np.round(d), floor[:, None])
        return np.where(d > self.config.max_delay_days, np.inf, d)

    def quantiles(self, x: pd.DataFrame, qs=(0.1, 0.5, 0.9), paid_after: np.ndarray | None = None) -> np.ndarray:
        """Delay quantiles in days after due, conditional on being unpaid ``paid_after`` days after due
        (by default: at the snapshot date of each row). Never-paid mass shows as inf."""
        return self._grid(x, np.asarray(qs, float), paid_after)

    def sample(self, x: pd.DataFrame, n: int, rng: np.random.Generator,
               paid_after: np.ndarray | None = None) -> np.ndarray:
        """``n`` draws of each invoice's delay (days after due); inf means never paid."""
        return self._grid(x, rng.random((len(x), n)), paid_after)

    def expected_days_late(self, x: pd.DataFrame, paid_after: np.ndarray | None = None) -> np.ndarray:
        grid = np.linspace(0.005, 0.995, 100)
        d = self._grid(x, grid, paid_after)
        d = np.where(np.isinf(d), self.config.max_delay_days, d)
        return np.maximum(d, 0).mean(axis=1)

    def never_paid(self, x: pd.DataFrame, paid_after: np.ndarray | None = None) -> np.ndarray:
        """Chance of not being paid within the horizon (write-off risk), given unpaid so far."""
        return np.isinf(self._grid(x, np.linspace(0.005, 0.995, 100), paid_after)).mean(axis=1)


def build_payment_timing(config: PaymentTimingConfig = PaymentTimingConfig()) -> PaymentTimingModel:
    return PaymentTimingModel(config)


def average_delay_baseline(x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Due date plus the customer's average delay (p50), with a normal band of its spread (p10, p90),
    never before the day after the snapshot."""
    floor = -x["days_to_due"].to_numpy(float) + 1
    mean, std = x["mean_delay"].to_numpy(float), x["delay_std"].to_numpy(float)
    p50 = np.maximum(np.round(mean), floor)
    return np.maximum(np.round(mean - 1.2816 * std), floor), p50, np.maximum(np.round(mean + 1.2816 * std), p50)
