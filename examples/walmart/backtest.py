"""Backtest likvid's weekly series model on the Walmart chain total (real weekly sales).

The data (``../shared/data/walmart-weekly-sales/Walmart.csv``, 45 stores x 143 weeks) is not
copied into the repository. The chain total is the sum over stores per week. As in the peer
figure (SOURCE.md): 4 non-overlapping 13-week origins at the end of the series, MAPE over the 52
forecast weeks; the model is refitted at each origin on the weeks before it only.

Run: .venv/bin/python examples/walmart/backtest.py [--csv PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from training.cash.series import METHODS, build_weekly_series

DEFAULT = Path(__file__).resolve().parents[3] / "shared" / "data" / "walmart-weekly-sales" / "Walmart.csv"
PEER_SEASONAL_NAIVE_MAPE = 0.033


def chain_total(path: Path) -> pd.Series:
    """Weekly sales summed over stores, indexed by the week-ending Friday."""
    frame = pd.read_csv(path)
    missing = {"Store", "Date", "Weekly_Sales"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {', '.join(sorted(missing))}")
    frame["Date"] = pd.to_datetime(frame["Date"], format="%d-%m-%Y")
    return frame.groupby("Date")["Weekly_Sales"].sum().sort_index()


def backtest(series: pd.Series, origins: int = 4, horizon: int = 13) -> pd.DataFrame:
    """One row per origin and week: actual, likvid's forecast (its chosen method) and every method's."""
    rows = []
    n = len(series)
    for j in range(origins, 0, -1):
        cut = n - j * horizon
        history = series.iloc[:cut]
        model = build_weekly_series().fit(history)
        actual = series.iloc[cut: cut + horizon].to_numpy()
        values, ends = history.to_numpy(float), history.index
        each = {m: model._predict(m, values, ends, cut - 1, np.arange(1, horizon + 1)) for m in METHODS}
        for h in range(horizon):
            rows.append({"origin": history.index[-1], "week": h + 1, "actual": actual[h], "chosen": model.method_,
                         "likvid": model.predict(history, horizon)[h], **{m: each[m][h] for m in METHODS}})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--csv", type=Path, default=DEFAULT)
    args = parser.parse_args()
    result = backtest(chain_total(args.csv))
    print("origins (last known week) and the method each chose on its own holdout:")
    for origin, part in result.groupby("origin"):
        print(f"  {origin:%Y-%m-%d}: {part['chosen'].iloc[0]}")
    print("13-week-ahead MAPE over 4 origins x 13 weeks:")
    for column in ("likvid", *METHODS):
        mape = float((np.abs(result[column] - result["actual"]) / result["actual"]).mean())
        print(f"  {column:16s} {mape:.2%}")
    print(f"  peer seasonal naive (t-52), SOURCE.md: {PEER_SEASONAL_NAIVE_MAPE:.1%}")


if __name__ == "__main__":
    main()
