"""Rolling-origin backtest of the cash forecast against four baselines (``training.cash.family``
logs it to MLflow).

At each origin every model is refitted on what was known then (the payment-timing model, in a
lighter configuration, on snapshots up to the origin; the cash model on history up to it), the
forecast runs 13 weeks, and the weeks are compared with what happened, as known at the last date.
Baselines: the mean of the last 8 weeks (with a band of their spread), the same weeks a year
earlier, the due-date method (every open invoice and bill paid on its due date, overdue ones in
week 1) and due date plus each customer's average delay (bills: plus the company's average).
The due-date methods see only open items; their net adds the 8-week mean of the other bank lines.

The receipts bands are widened (or narrowed) by horizon band as a model trained at each origin would widen
them (``CashModel.fit_bands``): from the unwidened forecasts of earlier origins on the same grid (the grid
runs on before the first evaluated origin for that) whose weeks had ended by then. ``band_rows`` makes the
same rows for ``likvid train``. The weeks carry the unwidened band too (``receipts_p10_unwidened``, ...).

``by_band`` scores every method on the same rows by horizon band (week 1, 2-4, 5-8, 9-13, and 14-26,
27-52 when the horizon reaches them): p10-p90 coverage, bias (mean of (actual - p50) / actual), WAPE and
the mean pinball loss over p10 / p50 / p90 as a share of the mean actual (a point forecast stands for all
three quantiles; the 8-week mean has its band). The summary carries them as ``{figure}_w{band}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen before pyplot loads
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from features import cash  # noqa: E402
from features.asof import as_of as view_as_of  # noqa: E402
from features.asof import last_known_date, to_date  # noqa: E402
from features.contract import Bill, Inv  # noqa: E402
from features.invoices import FeatureConfig, invoice_features  # noqa: E402
from features.load import Company  # noqa: E402
from training import metrics  # noqa: E402
from training.cash.engine import path_totals, simulate, widen_receipts  # noqa: E402
from training.cash.evaluate import METHODS, TARGETS, by_horizon, summary, wape  # noqa: E402
from training.cash.model import BANDS, CashForecastConfig, ForecastModels, build_cash_model  # noqa: E402
from training.cash.shocks import Shocks  # noqa: E402
from training.examples import ExampleConfig, examples, issued_later_rows, with_rows  # noqa: E402
from training.payment_timing import PaymentTimingConfig, build_payment_timing  # noqa: E402

Progress = Callable[[int, int, str], None]  # (origins done, origins in all, what is being done)


@dataclass(frozen=True)
class BacktestConfig:
    every_weeks: int = 4
    span_weeks: int = 52  # origins lie within this many weeks before the last full horizon
    weeks: int = 13
    origins: int | None = None  # keep only the latest N origins
    paths: int = 500
    examples: ExampleConfig = field(default_factory=lambda: ExampleConfig(every_days=28, max_snapshots=13))
    timing: PaymentTimingConfig = field(default_factory=lambda: PaymentTimingConfig(n_estimators=100, num_leaves=15))
    cash: CashForecastConfig = field(default_factory=CashForecastConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)  # the policy's definition of late
    seed: int = 0

    def params(self) -> dict:
        flat = {k: v for k, v in asdict(self).items() if k not in ("examples", "timing", "cash")}
        flat.update({f"timing.{k}": v for k, v in self.timing.params().items()})
        flat.update({f"examples.{k}": v for k, v in asdict(self.examples).items()})
        return flat


@dataclass
class BacktestResult:
    as_of: pd.Timestamp
    origins: list[pd.Timestamp]
    weekly: pd.DataFrame  # one row per origin and week: actuals, our quantiles, baselines
    summary: pd.DataFrame  # metric, target, method, value (the band figures as ``{figure}_w{band}``)
    by_horizon: pd.DataFrame  # horizon, target, method, wape, coverage
    by_band: pd.DataFrame = field(default_factory=pd.DataFrame)  # see ``by_band``


NAIVE = ("mean8", "last_year")  # the naive baselines a forecast is measured against
BAND_FIGURES = ("coverage", "bias", "wape", "pinball")


def band_name(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def _quantiles(rows: pd.DataFrame, target: str, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A method's p10, p50, p90 of ``target`` (a point forecast is all three); None when it has no band."""
    if method == "likvid":
        return tuple(rows[f"{target}_{q}"].to_numpy(float) for q in ("p10", "p50", "p90"))
    point = rows[f"{target}_{method}"].fillna(0.0).to_numpy(float)
    if method == "mean8":
        return rows[f"{target}_mean8_p10"].to_numpy(float), point, rows[f"{target}_mean8_p90"].to_numpy(float)
    return point, point, point


def band_scores(rows: pd.DataFrame, target: str, method: str) -> dict[str, float]:
    """Coverage (NaN without a band), bias, WAPE and scaled pinball loss of one method on ``rows``."""
    actual = rows[target].to_numpy(float)
    p10, p50, p90 = _quantiles(rows, target, method)
    nonzero = actual != 0
    scale = np.abs(actual).mean()
    banded = method in ("likvid", "mean8")
    return {
        "coverage": float(((actual >= p10) & (actual <= p90)).mean()) if banded and len(actual) else np.nan,
        "bias": float(np.mean((actual - p50)[nonzero] / actual[nonzero])) if nonzero.any() else np.nan,
        "wape": wape(actual, p50),
        "pinball": metrics.pinball(actual, {0.1: p10, 0.5: p50, 0.9: p90}) / scale if scale > 0 else np.nan,
    }


def by_band(weekly: pd.DataFrame) -> pd.DataFrame:
    """Every method's figures by horizon band on the same rows: ``band, first, last, target, method, n`` and
    ``BAND_FIGURES``; only the bands the horizon reaches (the last one cut at it)."""
    rows = []
    horizon = int(weekly["week"].max())
    for first, last in BANDS:
        if first > horizon:
            break
        part = weekly[weekly["week"].between(first, last)]
        name = band_name(first, min(last, horizon))
        for target in TARGETS:
            for method in METHODS:
                rows.append({"band": name, "first": first, "last": min(last, horizon), "target": target,
                             "method": method, "n": len(part), **band_scores(part, target, method)})
    return pd.DataFrame(rows)


def band_table(bands: pd.DataFrame, target: str) -> pd.DataFrame:
    """One target's bands side by side: likvid's coverage, bias, WAPE and pinball, the 8-week mean's coverage,
    and likvid's WAPE and pinball as a multiple of the better naive baseline's (``NAIVE``) in that band."""
    part = bands[bands["target"] == target].set_index(["band", "method"])
    rows = []
    for band in part.index.get_level_values(0).unique():
        b = part.loc[band]
        naive_wape, naive_pinball = b.loc[list(NAIVE), "wape"].min(), b.loc[list(NAIVE), "pinball"].min()
        rows.append({"band": band, "n": int(b.loc["likvid", "n"]), "coverage": b.loc["likvid", "coverage"],
                     "coverage_mean8": b.loc["mean8", "coverage"], "bias": b.loc["likvid", "bias"],
                     "wape": b.loc["likvid", "wape"], "wape_vs_naive": b.loc["likvid", "wape"] / naive_wape,
                     "pinball": b.loc["likvid", "pinball"],
                     "pinball_vs_naive": b.loc["likvid", "pinball"] / naive_pinball})
    return pd.DataFrame(rows)


def _with_bands(summary_rows: pd.DataFrame, weekly: pd.DataFrame, bands: pd.DataFrame) -> pd.DataFrame:
    """The summary with bias and pinball over all weeks, and every band figure as ``{figure}_w{band}``."""
    extra = [(f, t, m, band_scores(weekly, t, m)[f])
             for t in TARGETS for m in METHODS for f in ("bias", "pinball")]
    for r in bands.itertuples(index=False):
        for figure in BAND_FIGURES:
            value = getattr(r, figure)
            if np.isfinite(value):
                extra.append((f"{figure}_w{r.band.replace('-', '_')}", r.target, r.method, float(value)))
    return pd.concat([summary_rows, pd.DataFrame(extra, columns=summary_rows.columns)], ignore_index=True)


def backtest_origins(at: pd.Timestamp, cfg: BacktestConfig) -> list[pd.Timestamp]:
    """Origins every ``every_weeks`` weeks, the latest one whose whole horizon is known at ``at``."""
    last = at - pd.Timedelta(weeks=cfg.weeks)
    n = cfg.span_weeks // cfg.every_weeks + 1
    origins = [last - pd.Timedelta(weeks=cfg.every_weeks * j) for j in range(n)][::-1]
    return origins[-cfg.origins:] if cfg.origins else origins


def _baselines(company: Company, origin: pd.Timestamp, weeks: int) -> pd.DataFrame:
    """Each baseline's weekly receipts, payments and net from what was known at ``origin``."""
    series = cash.weekly_series(company, origin)
    wide = series.pivot(index=cash.DS, columns=cash.UID, values=cash.Y).sort_index()
    wide["net"] = wide[cash.RECEIPTS] - wide[cash.PAYMENTS] + wide[cash.OTHER]
    out = pd.DataFrame({"week": np.arange(1, weeks + 1)})
    other8 = float(wide[cash.OTHER].tail(8).mean())
    for target, column in (("receipts", cash.RECEIPTS), ("payments", cash.PAYMENTS), ("net", "net")):
        last8 = wide[column].tail(8)
        out[f"{target}_mean8"] = last8.mean()
        out[f"{target}_mean8_p10"] = last8.mean() - 1.2816 * last8.std()
        out[f"{target}_mean8_p90"] = last8.mean() + 1.2816 * last8.std()
        values = wide[column].to_numpy()
        idx = len(values) - 1 - 52 + out["week"].to_numpy()
        out[f"{target}_last_year"] = np.where(idx >= 0, values[np.clip(idx, 0, None)], np.nan)

    view = view_as_of(company, origin)
    x = invoice_features(company, origin)
    bills = cash.open_bills(company, origin)
    paid = view.get(Bill.TABLE).dropna(subset=[Bill.PAID])
    bill_delay = float((paid[Bill.PAID] - paid[Bill.DUE]).dt.days.mean()) if len(paid) else 0.0

    def weekly(dates: pd.Series, amounts: np.ndarray) -> np.ndarray:
        k = np.maximum(cash.week_of(dates, origin), 1)
        return pd.Series(amounts, index=k).groupby(level=0).sum().reindex(out["week"].astype(float),
                                                                            fill_value=0.0).to_numpy()

    shift = pd.to_timedelta(np.round(x["mean_delay"].to_numpy(float)), unit="D")
    receipts = {"due_date": weekly(x[Inv.DUE], x["amount_open"].to_numpy(float)),
                "due_plus_delay": weekly(x[Inv.DUE] + shift, x["amount_open"].to_numpy(float))}
    payments = {"due_date": weekly(bills[Bill.DUE], bills[Bill.AMOUNT].to_numpy(float)),
                "due_plus_delay": weekly(bills[Bill.DUE] + pd.Timedelta(days=round(bill_delay)),
                                         bills[Bill.AMOUNT].to_numpy(float))}
    for method in ("due_date", "due_plus_delay"):
        out[f"receipts_{method}"] = receipts[method]
        out[f"payments_{method}"] = payments[method]
        out[f"net_{method}"] = receipts[method] - payments[method] + other8
    return out


def _quantile_columns(out: pd.DataFrame, totals: dict[str, np.ndarray]) -> pd.DataFrame:
    """``out`` with likvid's p10 / p50 / p90 of receipts, payments and net from the paths' totals."""
    weeks = len(out)
    for target, column in (("receipts", "inflow"), ("payments", "payments"), ("net", "net")):
        q = np.quantile(totals[column][:, :weeks], [0.1, 0.5, 0.9], axis=0)
        out[f"{target}_p10"], out[f"{target}_p50"], out[f"{target}_p90"] = q
        out[f"{target}_likvid"] = q[1]
    return out


def evaluate_origin(company: Company, origin: pd.Timestamp, known_at: pd.Timestamp, models: ForecastModels,
                    weeks: int = 13, paths: int = 500, seed: int = 0) -> pd.DataFrame:
    """One origin's weeks: actual receipts, payments and net (known at ``known_at``), likvid's p10 /
    p50 / p90 and every baseline."""
    sim, opening = simulate(company, origin, weeks, Shocks(), models, paths, seed)
    out = cash.actual_weeks(company, origin, weeks, known_at)
    out.insert(0, "origin", origin)
    out = _quantile_columns(out, path_totals(sim, opening))
    base = _baselines(company, origin, weeks).drop(columns="week")
    return pd.concat([out.reset_index(drop=True), base], axis=1)


def refit(company: Company, origin: pd.Timestamp, cfg: BacktestConfig) -> ForecastModels:
    """The backtest's models as they would have been fitted at ``origin`` (the band widening not yet learned)."""
    ex = examples(company, origin, cfg.examples, cfg.features)
    ex = with_rows(ex, issued_later_rows(company, origin, ex, cfg.timing.calibration_share, cfg.examples.every_days,
                                         cfg.features))
    timing = build_payment_timing(cfg.timing).fit(ex, ex["delay"].to_numpy(), ex["censored"].to_numpy())
    return ForecastModels(timing, build_cash_model(cfg.cash).fit(company, origin), features=cfg.features)


_MIN_HISTORY = pd.Timedelta(weeks=52)  # an origin the bands are learned from has this much history before it
_NO_ROWS = ["origin", "week", "receipts", "receipts_p10", "receipts_p50", "receipts_p90"]


def _history_start(company: Company) -> pd.Timestamp:
    return company[Inv.TABLE][Inv.ISSUE].min()


def band_origins(at: pd.Timestamp, config: CashForecastConfig) -> list[pd.Timestamp]:
    """The earlier origins a forecast as of ``at`` learns its band widening from: every ``band_every_weeks``
    back from the latest one whose ``band_weeks`` weeks have ended by ``at``, ``band_origins`` of them."""
    last = at - pd.Timedelta(weeks=config.band_weeks)
    return [last - pd.Timedelta(weeks=config.band_every_weeks * j) for j in range(config.band_origins)][::-1]


def _raw_rows(company: Company, origin: pd.Timestamp, known_at: pd.Timestamp, weeks: int,
              totals: dict[str, np.ndarray]) -> pd.DataFrame:
    """An origin's weeks as ``fit_band_calibration`` reads them: actuals known at ``known_at``, quantiles of
    the paths before any widening."""
    out = cash.actual_weeks(company, origin, weeks, known_at)
    out.insert(0, "origin", origin)
    return _quantile_columns(out, totals)


def band_rows(company: Company, at: pd.Timestamp, cfg: BacktestConfig = BacktestConfig(),
              progress: Callable[[str], None] = lambda what: None) -> pd.DataFrame:
    """The forecasts of ``band_origins(at)`` and their weeks as known at ``at``, each from models refitted on
    what was known at its origin (as the backtest refits them), with ``band_paths`` paths; origins with less
    than a year of history before them are left out."""
    frames = []
    for i, origin in enumerate(band_origins(at, cfg.cash), 1):
        if origin < _history_start(company) + _MIN_HISTORY:
            continue
        progress(f"Band widening: forecasting from earlier origin {origin:%Y-%m-%d}")
        models = refit(company, origin, cfg)
        sim, opening = simulate(company, origin, cfg.cash.band_weeks, Shocks(), models, cfg.cash.band_paths,
                                cfg.seed + 1000 + i, calibrated=False)
        frames.append(_raw_rows(company, origin, at, cfg.cash.band_weeks, path_totals(sim, opening)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=_NO_ROWS)


def backtest(company: Company, as_of: str | pd.Timestamp | None = None, cfg: BacktestConfig = BacktestConfig(),
             progress: Progress = lambda done, total, what: None) -> BacktestResult:
    """Rolling-origin evaluation: refit at each origin on what was known then, forecast, compare.
    Each origin's band widening is learned from the unwidened forecasts of earlier origins (on the same
    grid, extended back before the first evaluated one) whose weeks had ended by then, their actuals as known
    then: what a model trained at that origin would have learned. ``progress(done, total, what)`` is told
    before each step and once all origins are done."""
    at = to_date(as_of) if as_of is not None else last_known_date(company)
    origins = backtest_origins(at, cfg)
    band = cfg.cash
    horizon = max(cfg.weeks, band.band_weeks)
    # grid origins before the first evaluated one, enough for it to learn from band_origins of them
    back = -(-band.band_weeks // cfg.every_weeks) + band.band_origins - 1 if band.band_origins > 0 else 0
    earlier = [origins[0] - pd.Timedelta(weeks=cfg.every_weeks * j) for j in range(back, 0, -1)]
    earlier = [o for o in earlier if o >= _history_start(company) + _MIN_HISTORY]
    usable = [o for o in earlier + origins[:-1] if o + pd.Timedelta(weeks=band.band_weeks) <= origins[-1]
              and o >= _history_start(company) + _MIN_HISTORY]
    if len(usable) < band.band_min_origins:  # not even the last origin could learn: no band widening at all
        earlier = []
    frames, raw = [], {}
    grid = earlier + origins
    for i, origin in enumerate(grid, 1):
        step = f"Origin {i}/{len(grid)} ({origin:%Y-%m-%d})" + (" to learn the bands from" if i <= len(earlier) else "")
        progress(i - 1, len(grid), f"{step}: refitting on what was known then")
        models = refit(company, origin, cfg)
        progress(i - 1, len(grid), f"{step}: forecasting {horizon} weeks")
        # evaluated origins draw as they did before the widening existed (cfg.seed + their number)
        k = i - len(earlier)
        paths, seed = (cfg.paths, cfg.seed + k) if k > 0 else (band.band_paths, cfg.seed + 1000 + i)
        sim, opening = simulate(company, origin, horizon, Shocks(), models, paths, seed, calibrated=False)
        raw[origin] = path_totals(sim, opening)
        if origin not in origins:
            continue
        ends = [o for o in raw if o + pd.Timedelta(weeks=band.band_weeks) <= origin
                and o >= _history_start(company) + _MIN_HISTORY]
        rows = [_raw_rows(company, o, origin, band.band_weeks, raw[o]) for o in ends]
        models.cash.fit_bands(pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=_NO_ROWS))
        widen_receipts(sim, models.cash.bands())
        out = cash.actual_weeks(company, origin, cfg.weeks, at)
        out.insert(0, "origin", origin)
        out = _quantile_columns(out, path_totals(sim, opening))
        q = np.quantile(raw[origin]["inflow"][:, :cfg.weeks], [0.1, 0.9], axis=0)
        out["receipts_p10_unwidened"], out["receipts_p90_unwidened"] = q
        out["receipts_band_factor"] = models.cash.bands().factor(cfg.weeks)
        base = _baselines(company, origin, cfg.weeks).drop(columns="week")
        frames.append(pd.concat([out.reset_index(drop=True), base], axis=1))
    progress(len(grid), len(grid), f"{len(origins)} origins evaluated")
    weekly = pd.concat(frames, ignore_index=True)
    bands = by_band(weekly)
    return BacktestResult(at, origins, weekly, _with_bands(summary(weekly), weekly, bands), by_horizon(weekly), bands)


def fan_chart(weekly: pd.DataFrame, path: str, title: str = "") -> str:
    """Receipts, payments and net of one origin's weeks: p10-p90 band, p50 and what happened."""
    last = weekly[weekly["origin"] == weekly["origin"].max()]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharex=True)
    for ax, target in zip(axes, TARGETS):
        ax.fill_between(last["week"], last[f"{target}_p10"], last[f"{target}_p90"], alpha=0.3, label="likvid p10-p90")
        ax.plot(last["week"], last[f"{target}_p50"], label="likvid p50")
        ax.plot(last["week"], last[f"{target}_mean8"], ":", label="mean of last 8 weeks")
        ax.plot(last["week"], last[target], "k.-", label="actual")
        ax.set_title(target)
        ax.set_xlabel("week after origin")
    axes[0].legend(fontsize=8)
    fig.suptitle(title or f"Forecast from {last['origin'].iloc[0]:%Y-%m-%d}")
    return metrics.save_figure(fig, path)


def error_by_horizon_plot(table: pd.DataFrame, path: str) -> str:
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharex=True)
    for ax, target in zip(axes, TARGETS):
        part = table[table["target"] == target]
        for method in METHODS:
            m = part[part["method"] == method]
            ax.plot(m["horizon"], m["wape"], "o-" if method == "likvid" else ".--", label=method)
        ax.set_title(f"{target}: WAPE by horizon")
        ax.set_xlabel("weeks ahead")
    axes[0].legend(fontsize=8)
    return metrics.save_figure(fig, path)
