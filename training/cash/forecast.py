"""The weekly cash forecast: the contract's rows (``FORECAST_COLUMNS``) from the simulated paths.

p10 / p50 / p90 are quantiles of each week's simulated sums across paths; the components split the
p50 totals by their means; ``below_floor`` flags weeks whose p10 balance is below the policy's cash
floor. Without bank balances the rows say so (``opening_balance`` empty, ``opening_note`` is
``features.cash.NO_OPENING_BALANCE``) rather than present a 0 as known. The fitted models are passed
in (``training.cash.model.load_forecast_models`` gives the
champions), so this module needs no registry.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import cash
from features.asof import last_known_date, to_date
from features.limits import PATHS, WEEKS
from features.load import Company
from features.policy import Policy
from training.cash.engine import COMPONENTS, _Paths, path_totals, simulate
from training.cash.model import ForecastModels
from training.cash.shocks import Shocks

FORECAST_COLUMNS = ["week", "week_start", "week_end", "inflow_p10", "inflow_p50", "inflow_p90",
                    "outflow_p10", "outflow_p50", "outflow_p90", "net_p10", "net_p50", "net_p90",
                    "balance_p10", "balance_p50", "balance_p90", "ar_open", "ar_future", "ap_open",
                    "ap_future", "other", "below_floor", "opening_balance", "opening_note"]


def _whole(value: object) -> object:
    """NumPy integers as Python ones (for the limits' checks); anything else unchanged."""
    return int(value) if isinstance(value, np.integer) else value


def forecast(company: Company, as_of: str | pd.Timestamp | None = None, weeks: int = WEEKS.default,
             shocks: Shocks = Shocks(), *, models: ForecastModels, policy: Policy = Policy(),
             paths: int = PATHS.default, seed: int = 0) -> pd.DataFrame:
    """The contract's weekly forecast rows (``FORECAST_COLUMNS``) from as-of for ``weeks`` weeks."""
    weeks, paths = WEEKS.check(_whole(weeks)), PATHS.check(_whole(paths))
    if not isinstance(shocks, Shocks):
        raise ValueError(f"shocks must be a Shocks, got {type(shocks).__name__}")
    at = to_date(as_of) if as_of is not None else last_known_date(company)
    sim, opening = simulate(company, at, weeks, shocks, models, paths, seed)
    out = summarise(sim, opening, at, policy)
    known = cash.has_opening_balance(company, at)
    out["opening_balance"] = opening if known else np.nan
    out["opening_note"] = "" if known else cash.NO_OPENING_BALANCE
    return out


def summarise(sim: _Paths, opening: float, at: pd.Timestamp, policy: Policy = Policy()) -> pd.DataFrame:
    """Quantiles of the simulated weekly sums; components split the p50 totals by their means."""
    out = cash.week_bounds(at, sim.weeks)
    totals = path_totals(sim, opening)
    for name in ("inflow", "outflow", "net", "balance"):
        q = np.quantile(totals[name], [0.1, 0.5, 0.9], axis=0)
        for i, p in enumerate(("p10", "p50", "p90")):
            out[f"{name}_{p}"] = q[i]
    means = {c: sim.weekly(c).mean(axis=0) for c in COMPONENTS}
    ar = means["ar_open"] + means["ar_future"]
    scale_in = np.divide(out["inflow_p50"].to_numpy(), ar, out=np.zeros_like(ar), where=ar != 0)
    ap = means["ap_open"] + means["ap_future"] - means["other"]
    scale_out = np.divide(out["outflow_p50"].to_numpy(), ap, out=np.ones_like(ap), where=ap != 0)
    out["ar_open"] = means["ar_open"] * scale_in
    out["ar_future"] = means["ar_future"] * scale_in
    out["ap_open"] = means["ap_open"] * scale_out
    out["ap_future"] = means["ap_future"] * scale_out
    out["other"] = means["other"] * scale_out
    money = FORECAST_COLUMNS[FORECAST_COLUMNS.index("inflow_p10"): FORECAST_COLUMNS.index("below_floor")]
    out[money] = out[money].round(2)
    out["below_floor"] = out["balance_p10"] < policy.cash_floor
    return out[FORECAST_COLUMNS[: FORECAST_COLUMNS.index("below_floor") + 1]]
