"""The 12-month view: the weekly simulation summed into months, with downside / base / upside balances.

A week belongs to the calendar month its last day falls in, so every month is whole weeks and the months'
flows sum the weeks' flows path by path (month 1 is the as-of's month, or the next when no forecast week ends
in it). Balances are month-end balances: p10 / p50 / p90 are the downside / base / upside scenarios. With
scenario probabilities (downside, base, upside; summing to 1) the ``expected_balance`` weighs the three.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import cash
from features.asof import last_known_date, to_date
from features.limits import MONTHS, PATHS
from features.load import Company
from training.cash.engine import path_totals, simulate
from training.cash.model import ForecastModels
from training.cash.shocks import Shocks

MONTHLY_COLUMNS = ["month", "month_start", "month_end", "weeks", "inflow_p10", "inflow_p50", "inflow_p90",
                   "inflow_mean", "outflow_p10", "outflow_p50", "outflow_p90", "outflow_mean", "net_p10", "net_p50",
                   "net_p90", "net_mean", "balance_p10", "balance_p50", "balance_p90", "downside", "base", "upside",
                   "expected_balance"]


def month_weeks(at: pd.Timestamp, months: int) -> pd.DataFrame:
    """The forecast weeks of the first ``months`` months after ``at``: ``week, week_start, week_end, month``."""
    first = (at + pd.Timedelta(days=7)).to_period("M")
    last_day = (first + (months - 1)).to_timestamp(how="end").normalize()
    weeks = int(np.floor((last_day - at).days / 7))
    out = cash.week_bounds(at, weeks)
    out["month"] = out["week_end"].dt.to_period("M").astype(str)
    return out


def monthly(company: Company, as_of: str | pd.Timestamp | None = None, months: int = MONTHS.default,
            shocks: Shocks = Shocks(), *, models: ForecastModels, paths: int = PATHS.default, seed: int = 0,
            probabilities: tuple[float, float, float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(months rows (MONTHLY_COLUMNS), the weekly means they sum)`` from one simulation."""
    months, paths = MONTHS.check(int(months)), PATHS.check(int(paths))
    if probabilities is not None:
        p = np.asarray(probabilities, float)
        if p.shape != (3,) or (p < 0).any() or abs(p.sum() - 1) > 1e-6:
            raise ValueError(f"scenario probabilities must be three shares (downside, base, upside) summing to 1, "
                             f"got {list(probabilities)}")
    at = to_date(as_of) if as_of is not None else last_known_date(company)
    weeks = month_weeks(at, months)
    sim, opening = simulate(company, at, len(weeks), shocks, models, paths, seed)
    totals = path_totals(sim, opening)
    weekly = weeks.copy()
    for name in ("inflow", "outflow", "net", "balance"):
        weekly[f"{name}_mean"] = totals[name].mean(axis=0)
    rows = []
    for month, g in weeks.groupby("month", sort=False):
        cols = g.index.to_numpy()
        row = {"month": month, "month_start": g["week_start"].iloc[0], "month_end": g["week_end"].iloc[-1],
               "weeks": len(g)}
        for name in ("inflow", "outflow", "net"):
            summed = totals[name][:, cols].sum(axis=1)
            row.update(zip((f"{name}_p10", f"{name}_p50", f"{name}_p90"), np.quantile(summed, [0.1, 0.5, 0.9])))
            row[f"{name}_mean"] = summed.mean()
        q = np.quantile(totals["balance"][:, cols[-1]], [0.1, 0.5, 0.9])
        row.update(balance_p10=q[0], balance_p50=q[1], balance_p90=q[2], downside=q[0], base=q[1], upside=q[2])
        row["expected_balance"] = float(np.dot(probabilities, q)) if probabilities is not None else np.nan
        rows.append(row)
    out = pd.DataFrame(rows, columns=MONTHLY_COLUMNS)
    money = [c for c in MONTHLY_COLUMNS if c not in ("month", "month_start", "month_end", "weeks")]
    out[money] = out[money].astype(float).round(2)
    return out, weekly
