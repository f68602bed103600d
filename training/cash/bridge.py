"""The bridge between two saved forecasts: why each week's p50 balance moved from version V to the later W.

Method: sequential substitution. Starting from V's forecast, one driver at a time is switched to W's, in this
fixed order, and the forecast is remade after each switch with the same seed and paths:

1. ``model changes``: W's fitted models in place of V's (V's data, origin and shocks);
2. ``settings and shocks``: W's shocks and number of paths;
3. ``cash received and paid``: the weeks between the two as-ofs are replaced, path by path, by what really
   happened there: the balance starts from the actual balance at W's as-of;
4. ``payment expectations``: the forecast is remade from W's as-of over only the invoices, bills, orders and
   purchase orders that already existed at V's as-of (paid ones have left, open ones are now conditioned on
   being unpaid longer and on their customers' newer history);
5. ``new invoices, bills and orders``: everything dated after V's as-of is added: this is W's own forecast.

Each cause is the change in the p50 balance of a week between consecutive steps, so the causes add up to W's
less V's exactly, whatever the order (a telescoping sum; p50s are not additive, so a one-shot split of the
paths could not promise that). The order goes from what the treasurer chose or the modeller changed to what
the world did, so the world's part is measured under W's models and settings. The same seed keeps the Monte
Carlo noise between steps small. When remaking V or W from the data does not give back the saved table (the
ledgers were restated, a model version is gone), the difference is reported as ``data restated since saving``
rather than hidden in another cause.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import PO, Act, Bill, Credit, Inv, Ord, Pay
from features.load import Company
from training.cash.engine import path_totals, simulate
from training.cash.model import ForecastModels
from training.cash.versions import ForecastVersion

BRIDGE_COLUMNS = ["week_end", "cause", "amount"]
CAUSES = ("model changes", "settings and shocks", "cash received and paid", "payment expectations",
          "new invoices, bills and orders")
RESTATED = "data restated since saving"


def known_items(company: Company, at: pd.Timestamp) -> Company:
    """The company with only the documents that existed at the end of ``at`` (later invoices, bills, orders and
    purchase orders, and the payments, credit notes and actions on those invoices, left out)."""
    inv = company[Inv.TABLE]
    inv = inv[inv[Inv.ISSUE] <= at]
    kept = set(inv[Inv.ID])
    tables = {Inv.TABLE: inv}
    for name, date in ((Bill.TABLE, Bill.ISSUE), (Ord.TABLE, Ord.DATE), (PO.TABLE, PO.DATE)):
        if company.has(name):
            tables[name] = company[name][company[name][date] <= at]
    for name, ref in ((Pay.TABLE, Pay.INVOICE), (Credit.TABLE, Credit.INVOICE), (Act.TABLE, Act.INVOICE)):
        if company.has(name):
            frame = company[name]
            tables[name] = frame[frame[ref].isna() | frame[ref].isin(kept)]
    return company.replace(**tables)


def _p50(balance: np.ndarray) -> np.ndarray:
    return np.round(np.quantile(balance, 0.5, axis=0), 2)


def _balance(company: Company, at: pd.Timestamp, weeks: int, v: ForecastVersion, models: ForecastModels,
             paths: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-path balances and nets (paths x weeks) of a remade forecast, and its opening balance."""
    sim, opening = simulate(company, at, weeks, v.shocks, models, paths, v.seed)
    totals = path_totals(sim, opening)
    return totals["balance"], totals["net"], opening


def bridge(company: Company, v: ForecastVersion, w: ForecastVersion, models_v: ForecastModels,
           models_w: ForecastModels) -> pd.DataFrame:
    """Long rows ``week_end, cause, amount`` for every week end in both versions; per week end the amounts
    add up to W's ``balance_p50`` less V's."""
    gap_days = (w.as_of - v.as_of).days
    if gap_days <= 0 or gap_days % 7:
        raise ValueError(f"the later version must start a whole number of weeks after the first: {v.version[:8]} "
                         f"is as of {v.as_of:%Y-%m-%d}, {w.version[:8]} as of {w.as_of:%Y-%m-%d}")
    gap = gap_days // 7
    common = int(min(v.weeks - gap, w.weeks))
    if common < 1:
        raise ValueError(f"the versions share no week: {v.version[:8]} covers {v.weeks} weeks from "
                         f"{v.as_of:%Y-%m-%d}, {w.version[:8]} starts {gap} weeks later")
    in_v = slice(gap, gap + common)  # V's columns of the common weeks; W's are 0..common
    ends = w.table["week_end"].iloc[:common].reset_index(drop=True)
    steps = [v.table["balance_p50"].to_numpy(float)[in_v]]

    bal, _, _ = _balance(company, v.as_of, v.weeks, v, models_v, v.paths)
    remade_v = _p50(bal)[in_v]
    bal, _, _ = _balance(company, v.as_of, v.weeks, v, models_w, v.paths)
    steps += [remade_v, _p50(bal)[in_v]]
    bal, net, _ = _balance(company, v.as_of, v.weeks, w, models_w, w.paths)
    steps.append(_p50(bal)[in_v])
    known = known_items(company, v.as_of)
    bal_known, _, opening_w = _balance(known, w.as_of, w.weeks, w, models_w, w.paths)
    # Step 3: the same paths, with the weeks already passed replaced by the actual cash up to W's as-of.
    steps.append(_p50(opening_w + np.cumsum(net[:, gap: gap + common], axis=1)))
    steps.append(_p50(bal_known)[:common])
    bal_w, _, _ = _balance(company, w.as_of, w.weeks, w, models_w, w.paths)
    steps += [_p50(bal_w)[:common], w.table["balance_p50"].to_numpy(float)[:common]]

    names = [RESTATED, *CAUSES, RESTATED]
    parts = [(names[i], steps[i + 1] - steps[i]) for i in range(len(names))]
    restated = parts[0][1] + parts[-1][1]
    rows = [pd.DataFrame({"week_end": ends, "cause": cause, "amount": np.round(amount, 2)})
            for cause, amount in [*parts[1:-1], (RESTATED, restated)]]
    out = pd.concat(rows, ignore_index=True)
    return out[BRIDGE_COLUMNS].sort_values(["week_end"], kind="stable").reset_index(drop=True)


def waterfall_plot(rows: pd.DataFrame, start: float, path: str, title: str = "What moved the balance") -> None:
    """A waterfall of the causes summed over the last common week: V's balance, each cause, W's balance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    last = rows[rows["week_end"] == rows["week_end"].max()]
    labels, amounts = list(last["cause"]), last["amount"].to_numpy(float)
    bottoms = start + np.concatenate([[0.0], np.cumsum(amounts)[:-1]])
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(["earlier"], [start], color="grey")
    ax.bar(labels, amounts, bottom=bottoms, color=["tab:green" if a >= 0 else "tab:red" for a in amounts])
    ax.bar(["later"], [start + amounts.sum()], color="grey")
    ax.set_title(f"{title} (week ending {last['week_end'].iloc[0]:%Y-%m-%d})")
    ax.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
