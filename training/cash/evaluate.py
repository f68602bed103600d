"""How good a cash forecast was: WAPE of every method and p10-p90 coverage, overall and by horizon.

``weekly`` frames have one row per origin and week: the actual ``receipts``, ``payments`` and
``net``, and each method's forecast in ``{target}_{method}`` (likvid's band in ``{target}_p10`` /
``{target}_p90``, the 8-week mean's in ``{target}_mean8_p10`` / ``_p90``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TARGETS = ("receipts", "payments", "net")
METHODS = ("likvid", "mean8", "last_year", "due_date", "due_plus_delay")


def wape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Weighted absolute percentage error: sum |error| / sum |actual|."""
    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    denom = np.abs(actual).sum()
    return float(np.abs(actual - predicted).sum() / denom) if denom > 0 else float("nan")


def coverage(frame: pd.DataFrame, target: str, lo: str, hi: str) -> float:
    """Share of rows whose actual ``target`` lies inside the band ``lo`` to ``hi``."""
    y = frame[target]
    return float(((y >= frame[lo]) & (y <= frame[hi])).mean())


def summary(weekly: pd.DataFrame) -> pd.DataFrame:
    """WAPE of every method and p10-p90 coverage (likvid, and the 8-week mean's band) per target."""
    rows = []
    for target in TARGETS:
        for method in METHODS:
            rows.append(("wape", target, method, wape(weekly[target], weekly[f"{target}_{method}"].fillna(0.0))))
        rows.append(("coverage", target, "likvid", coverage(weekly, target, f"{target}_p10", f"{target}_p90")))
        rows.append(("coverage", target, "mean8", coverage(weekly, target, f"{target}_mean8_p10",
                                                           f"{target}_mean8_p90")))
    return pd.DataFrame(rows, columns=["metric", "target", "method", "value"])


def by_horizon(weekly: pd.DataFrame) -> pd.DataFrame:
    """WAPE of every method and likvid's coverage at each horizon (week), per target."""
    rows = []
    for h, part in weekly.groupby("week"):
        for target in TARGETS:
            cover = coverage(part, target, f"{target}_p10", f"{target}_p90")
            for method in METHODS:
                rows.append((int(h), target, method, wape(part[target], part[f"{target}_{method}"].fillna(0.0)),
                             cover if method == "likvid" else np.nan))
    return pd.DataFrame(rows, columns=["horizon", "target", "method", "wape", "coverage"])
