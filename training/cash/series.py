"""A weekly series model for invoicing and purchasing totals: direct multi-horizon forecasts.

Every forecast is a ratio to the level of the last 8 weeks at the origin. The methods compete on
the latest ``holdout_weeks`` of origins (fitted only on rows whose target lies before them) and
the best by WAPE over horizons 1-13 is kept: LightGBM on seasonal ratios (last year's same week
relative to last year's level, week of year, year-on-year growth, recent momentum), the seasonal
naive (the same week a year earlier) with and without the last quarter's year-on-year growth, a
harmonic trend (log-linear growth and two yearly harmonics fitted on the last three years, anchored
on the last 8 weeks' ratio to it: a smooth season instead of one noisy week a year earlier; only part
of the growth is carried forward, ``trend_damping``), and
the 8-week mean. The holdout's origins overlap, so the harmonic trend is kept unless another method
is clearly better there (``prefer_margin``). The chosen method's holdout errors set the simulation
noise: a level error shared by all weeks of a path plus an error of each week.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.cash.evaluate import wape

METHODS = ("lightgbm", "seasonal_growth", "seasonal_naive", "harmonic", "mean8")
_FEATURES = ["h", "woy_sin", "woy_cos", "ly_ratio", "ly_ratio_smooth", "growth", "growth13", "recent"]
_LEVEL = 8
_YEAR = 52  # weeks back to the same weekday a year earlier (364 days): the seasonal naive's lag
_SEASON = 365.25 / 7  # the yearly cycle in weeks: a 52-week period would drift 1.25 days a year
_HARMONICS, _HARMONIC_YEARS = 2, 3  # yearly harmonics of the harmonic trend, and the years it is fitted on


@dataclass(frozen=True)
class SeriesConfig:
    horizon: int = 52
    n_estimators: int = 150
    learning_rate: float = 0.05
    num_leaves: int = 7
    min_child_samples: int = 15
    holdout_weeks: int = 26
    select_horizon: int = 13
    # The holdout's origins overlap, so its WAPEs are close and noisy: the harmonic trend keeps the place
    # unless another method's holdout WAPE is lower by more than this share of its own.
    prefer: str = "harmonic"
    prefer_margin: float = 0.1
    # The share of the harmonic trend's growth carried beyond the origin. Fitted on three years, the growth
    # is their average; a company's growth slows as it matures (new customers are a smaller share of a
    # larger base), and carrying all of it forward over-forecasts invoicing by 3-4 %.
    trend_damping: float = 0.5
    seed: int = 0

    def params(self) -> dict:
        return asdict(self)


def _level(y: np.ndarray, t: int) -> float:
    return float(y[max(0, t - _LEVEL + 1): t + 1].mean())


def _rows(y: np.ndarray, ends: pd.DatetimeIndex, t: int, hs: np.ndarray) -> pd.DataFrame:
    """Feature rows for origin index ``t`` (last known week) and horizons ``hs``."""
    level = _level(y, t)
    ly_level = _level(y, t - _YEAR) if t - _YEAR >= 0 else np.nan
    target_day = ends[t] + pd.to_timedelta(7 * hs, unit="D")
    angle = 2 * np.pi * target_day.day_of_year.to_numpy() / 365.25
    idx = t + hs - _YEAR
    ly = np.where(idx >= 0, y[np.clip(idx, 0, len(y) - 1)], np.nan)
    smooth = np.array([y[max(i - 1, 0): i + 2].mean() if i >= 1 and i + 1 <= t else np.nan for i in idx])
    denom = ly_level if ly_level and np.isfinite(ly_level) and ly_level > 0 else np.nan
    return pd.DataFrame({
        "h": hs.astype(float), "woy_sin": np.sin(angle), "woy_cos": np.cos(angle),
        "ly_ratio": ly / denom, "ly_ratio_smooth": smooth / denom,
        "growth": (level / denom) if level > 0 else np.nan,
        "growth13": _growth13(y, t),
        "recent": y[max(0, t - 3): t + 1].mean() / level if level > 0 else np.nan,
    })


def _growth13(y: np.ndarray, t: int) -> float:
    """Year-on-year growth of the last 13 weeks (NaN without a year of history)."""
    if t - _YEAR - 12 < 0:
        return np.nan
    before = y[t - _YEAR - 12: t - _YEAR + 1].sum()
    return float(y[t - 12: t + 1].sum() / before) if before > 0 else np.nan


def _harmonic_terms(t: np.ndarray) -> np.ndarray:
    """Design of the harmonic trend at week indices ``t``: intercept, linear trend, yearly harmonics."""
    cols = [np.ones(len(t)), t / _YEAR]
    for k in range(1, _HARMONICS + 1):
        angle = 2 * np.pi * k * t / _SEASON
        cols += [np.cos(angle), np.sin(angle)]
    return np.column_stack(cols)


def _harmonic(y: np.ndarray, t: int, hs: np.ndarray, damping: float = 1.0) -> np.ndarray:
    """The harmonic trend's forecasts from origin index ``t``: log weekly totals fitted on growth and yearly
    harmonics over the last ``_HARMONIC_YEARS`` years, scaled by the last 8 weeks' ratio to the fit, with the
    share ``damping`` of the growth carried beyond the origin (NaN with less than a year and a level of
    history, or without a level)."""
    lo = max(0, t + 1 - _YEAR * _HARMONIC_YEARS)
    weeks = np.arange(lo, t + 1)
    seen = y[lo: t + 1]
    positive = seen > 0
    if t + 1 - lo < _YEAR + _LEVEL or positive.sum() < _YEAR:
        return np.full(len(hs), np.nan)
    beta, *_ = np.linalg.lstsq(_harmonic_terms(weeks[positive]), np.log(seen[positive]), rcond=None)
    fitted = np.exp(_harmonic_terms(weeks[-_LEVEL:]) @ beta).sum()
    if not fitted > 0:
        return np.full(len(hs), np.nan)
    ahead = _harmonic_terms(t + hs)
    ahead[:, 1] = (t + damping * hs) / _YEAR
    return np.exp(ahead @ beta) * seen[-_LEVEL:].sum() / fitted


def _training(y: np.ndarray, ends: pd.DatetimeIndex, upto: int, horizon: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of every origin and horizon whose target index is at most ``upto``."""
    frames, targets = [], []
    for t in range(_LEVEL - 1, upto):
        hs = np.arange(1, min(horizon, upto - t) + 1)
        level = _level(y, t)
        if len(hs) == 0 or level <= 0:
            continue
        frames.append(_rows(y, ends, t, hs))
        targets.append(y[t + hs] / level)
    if not frames:
        return pd.DataFrame(columns=_FEATURES), np.array([])
    return pd.concat(frames, ignore_index=True), np.concatenate(targets)


class WeeklySeriesModel:
    """Forecasts a weekly total ``h`` weeks ahead of an origin from the series up to it."""

    def __init__(self, config: SeriesConfig = SeriesConfig()):
        self.config = config

    def _booster(self) -> lgb.LGBMRegressor:
        c = self.config
        return lgb.LGBMRegressor(n_estimators=c.n_estimators, learning_rate=c.learning_rate,
                                 num_leaves=c.num_leaves, min_child_samples=c.min_child_samples,
                                 random_state=c.seed, verbose=-1, n_jobs=1)

    def fit(self, y: pd.Series) -> WeeklySeriesModel:
        """Fit on a regular weekly series (index: week end dates, oldest first)."""
        c = self.config
        values, ends = np.asarray(y, float), pd.DatetimeIndex(y.index)
        if len(values) < _LEVEL + c.select_horizon:
            raise ValueError(f"a weekly series needs at least {_LEVEL + c.select_horizon} weeks of history, "
                             f"got {len(values)}")
        holdout = min(c.holdout_weeks, max(len(values) - _LEVEL - 2 * c.select_horizon, 0))
        first = len(values) - holdout - c.select_horizon  # first holdout origin
        errors: dict[str, list[np.ndarray]] = {m: [] for m in METHODS}
        actual: list[np.ndarray] = []
        if holdout > 0:
            self.booster_ = self._fit_booster(values, ends, first)
            for t in range(first, len(values) - c.select_horizon):
                hs = np.arange(1, c.select_horizon + 1)
                actual.append(values[t + hs])
                for m in METHODS:
                    errors[m].append(self._predict(m, values, ends, t, hs))
        if actual:
            act = np.vstack(actual)
            self.holdout_wape_ = {m: wape(act, np.vstack(errors[m])) for m in METHODS}
            usable = {m: w for m, w in self.holdout_wape_.items() if np.isfinite(w)}
            self.method_ = min(usable, key=usable.get) if usable else "mean8"
            if c.prefer in usable and usable[self.method_] >= (1 - c.prefer_margin) * usable[c.prefer]:
                self.method_ = c.prefer
            pred = np.vstack(errors[self.method_])
            rel = np.where(pred > 0, act / np.maximum(pred, 1e-9) - 1.0, 0.0)
            self.sd_level_ = float(rel.mean(axis=1).std(ddof=1)) if len(rel) > 1 else 0.1
            self.sd_week_ = float((rel - rel.mean(axis=1, keepdims=True)).std(ddof=1))
        else:
            self.holdout_wape_, self.method_ = {}, "mean8"
            level = pd.Series(values).rolling(_LEVEL).mean().to_numpy()[_LEVEL - 1:-1]
            rel = values[_LEVEL:] / np.maximum(level, 1e-9) - 1
            self.sd_level_, self.sd_week_ = float(np.std(rel)) / 2, float(np.std(rel))
        self.booster_ = self._fit_booster(values, ends, len(values) - 1)
        self.n_weeks_ = len(values)
        return self

    def _fit_booster(self, values: np.ndarray, ends: pd.DatetimeIndex, upto: int) -> lgb.LGBMRegressor | None:
        x, target = _training(values, ends, upto, self.config.horizon)
        if len(target) < 50:
            return None
        return self._booster().fit(x[_FEATURES], target)

    def _predict(self, method: str, values: np.ndarray, ends: pd.DatetimeIndex, t: int, hs: np.ndarray) -> np.ndarray:
        level = _level(values, t)
        if method == "mean8" or level <= 0:
            return np.full(len(hs), max(level, 0.0))
        if method == "harmonic":
            return _harmonic(values, t, hs, self.config.trend_damping)
        rows = _rows(values, ends, t, hs)
        if method in ("seasonal_naive", "seasonal_growth"):
            idx = t + hs - _YEAR
            if idx.min() < 0:
                return np.full(len(hs), np.nan)
            growth = _growth13(values, t) if method == "seasonal_growth" else 1.0
            return values[idx] * growth
        if self.booster_ is None:
            return np.full(len(hs), np.nan)
        return np.maximum(self.booster_.predict(rows[_FEATURES]), 0.0) * level

    def predict(self, y: pd.Series, horizon: int) -> np.ndarray:
        """Forecasts for weeks 1..``horizon`` after the last week of ``y``."""
        values, ends = np.asarray(y, float), pd.DatetimeIndex(y.index)
        if len(values) == 0:
            return np.zeros(horizon)
        out = self._predict(self.method_, values, ends, len(values) - 1, np.arange(1, horizon + 1))
        if not np.isfinite(out).all():
            out = self._predict("mean8", values, ends, len(values) - 1, np.arange(1, horizon + 1))
        return out

    def multipliers(self, horizon: int, paths: int, rng: np.random.Generator) -> np.ndarray:
        """Multiplicative errors (paths x horizon): a shared level error, growing with the square root
        of the horizon beyond 13 weeks (measured up to 13), plus an error of each week; never below 0."""
        grow = np.sqrt(np.maximum(1.0, np.arange(1, horizon + 1) / self.config.select_horizon))
        z = rng.standard_normal((paths, 1)) * self.sd_level_ * grow[None, :]
        e = rng.standard_normal((paths, horizon)) * self.sd_week_
        return np.maximum(1.0 + z + e, 0.0)


def build_weekly_series(config: SeriesConfig = SeriesConfig()) -> WeeklySeriesModel:
    return WeeklySeriesModel(config)
