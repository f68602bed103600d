"""Forecast against actual: each passed week of a saved forecast beside what the ledgers say happened.

Actuals are ``features.cash.actual_weeks`` (customer receipts, supplier payments and other bank lines in the
base currency, as known at the as-of of the comparison), the same flows the forecast simulates. A week counts
as passed when it ended on or before that as-of. The accuracy history pools every saved version's passed
weeks by horizon (the week number): WAPE of the p50 and the share of actuals inside the p10-p90 band.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import cash
from features.load import Company
from training.cash.evaluate import wape
from training.cash.versions import ForecastVersion

VARIANCE_COLUMNS = ["week", "week_start", "week_end", "inflow_p10", "inflow_p50", "inflow_p90", "inflow_actual",
                    "inflow_inside", "outflow_p50", "outflow_actual", "outflow_inside", "net_p50", "net_actual"]
ACCURACY_COLUMNS = ["horizon", "weeks", "wape_inflow", "coverage_inflow", "wape_outflow", "coverage_outflow",
                    "wape_net", "coverage_net"]


def variance(company: Company, version: ForecastVersion, at: pd.Timestamp) -> pd.DataFrame:
    """The version's weeks that ended on or before ``at``, forecast against actual (``VARIANCE_COLUMNS``)."""
    table = version.table
    passed = table[table["week_end"] <= at]
    if passed.empty:
        return pd.DataFrame(columns=VARIANCE_COLUMNS)
    actual = cash.actual_weeks(company, version.as_of, int(passed["week"].max()), at).set_index("week")
    out = passed.copy()
    for name in ("inflow", "outflow", "net"):
        out[f"{name}_actual"] = actual.loc[out["week"], name].round(2).to_numpy()
    for name in ("inflow", "outflow"):
        out[f"{name}_inside"] = out[f"{name}_actual"].between(out[f"{name}_p10"], out[f"{name}_p90"])
    return out[VARIANCE_COLUMNS].reset_index(drop=True)


def accuracy(company: Company, versions: list[ForecastVersion], at: pd.Timestamp) -> pd.DataFrame:
    """WAPE and coverage by horizon over every saved version's passed weeks (``ACCURACY_COLUMNS``)."""
    frames = []
    for v in versions:
        table = v.table[v.table["week_end"] <= at]
        if table.empty:
            continue
        actual = cash.actual_weeks(company, v.as_of, int(table["week"].max()), at).set_index("week")
        frames.append(table.assign(**{f"{n}_actual": actual.loc[table["week"], n].to_numpy()
                                      for n in ("inflow", "outflow", "net")}))
    if not frames:
        return pd.DataFrame(columns=ACCURACY_COLUMNS)
    weeks = pd.concat(frames, ignore_index=True)
    rows = []
    for horizon, g in weeks.groupby("week"):
        row = {"horizon": int(horizon), "weeks": len(g)}
        for n in ("inflow", "outflow", "net"):
            row[f"wape_{n}"] = float(wape(g[f"{n}_actual"], g[f"{n}_p50"]))
            row[f"coverage_{n}"] = float(g[f"{n}_actual"].between(g[f"{n}_p10"], g[f"{n}_p90"]).mean())
        rows.append(row)
    return pd.DataFrame(rows, columns=ACCURACY_COLUMNS)


def variance_plot(rows: pd.DataFrame, path: str, title: str = "Forecast against actual") -> None:
    """Receipts band (p10-p90) and p50 against the actual receipts, week by week."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.asarray(rows["week_end"], dtype="datetime64[ns]")
    ax.fill_between(x, rows["inflow_p10"], rows["inflow_p90"], alpha=0.25, label="forecast p10-p90")
    ax.plot(x, rows["inflow_p50"], label="forecast p50")
    ax.plot(x, rows["inflow_actual"], "o-", color="black", label="actual receipts")
    ax.set_title(title)
    ax.set_ylabel("receipts per week")
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
