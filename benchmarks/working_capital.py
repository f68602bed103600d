"""Check issue 7's "what it must show" on a company, and time kpis / worklist / discounts.

    MLFLOW_TRACKING_URI=sqlite:///data/c7/mlflow.db .venv/bin/python benchmarks/working_capital.py data/c7 2025-04-15

Needs a champion payment-timing and late-payment model trained as of AS_OF or earlier (``likvid train DATA
--as-of AS_OF``) and data that runs at least 30 days past AS_OF. Prints: DSO from likvid against DSO computed
here from the raw invoice file by the contract's definition; whether every overdue worklist row has an action;
the cash really still unpaid 30 days later in the worklist's top 50 against the top 50 by days overdue ×
amount; the discount decisions on a cash forecast whose cash model is fitted here as of AS_OF.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

from features.load import validate
from features.working_capital import kpis
from training import tracking
from training.cash.forecast import forecast
from training.cash.model import ForecastModels, build_cash_model
from training.collections import NO_ACTION, discounts, evaluate_worklist, worklist


def _dso_by_hand(folder: Path, at: pd.Timestamp) -> float:
    """Open AR / invoiced in the 90 days to as-of × 90, straight from invoices.csv."""
    inv = pd.read_csv(folder / "invoices.csv", parse_dates=["issue_date", "paid_date"])
    issued = inv[inv["issue_date"] <= at]
    open_ar = issued.loc[issued["paid_date"].isna() | (issued["paid_date"] > at), "amount"].sum()
    invoiced = issued.loc[issued["issue_date"] > at - pd.Timedelta(days=90), "amount"].sum()
    return open_ar / invoiced * 90


def main(folder: str, as_of: str) -> None:
    data, at = Path(folder), pd.Timestamp(as_of)
    company = validate(data).company

    started = time.perf_counter()
    figures = kpis(company, at).set_index("name")["value"]
    t_kpis = time.perf_counter() - started
    by_hand = _dso_by_hand(data, at)
    print(f"DSO at {at:%Y-%m-%d}: likvid {figures['dso']:.3f} days, by hand {by_hand:.3f} days, "
          f"difference {abs(figures['dso'] - by_hand):.3f}")
    print("CCC {ccc:.1f} = DSO {dso:.1f} + DIO {dio:.1f} - DPO {dpo:.1f}; overdue share {overdue_share:.1%}, "
          "bad-debt share {bad_debt_share:.2%}, digitalisation {digitalisation_rate:.1%}, slow-moving stock "
          "{slow_moving_share:.1%}".format(**figures))

    started = time.perf_counter()
    ranked = worklist(company, at)
    t_worklist = time.perf_counter() - started
    overdue = ranked[ranked["days_overdue"] > 0]
    print(f"worklist: {len(ranked):,} open invoices, {len(overdue):,} overdue, "
          f"{(overdue['action'] != NO_ACTION).sum():,} of them with an action; actions: "
          + ", ".join(f"{k} {v}" for k, v in ranked["action"].value_counts().items()))
    print("top 50 actions: " + ", ".join(f"{k} {v}" for k, v in ranked.head(50)["action"].value_counts().items()))
    for top in (50, 100):
        r = evaluate_worklist(company, at, ranked, top=top)
        print(f"top {top}: cash still unpaid 30 days later {r['worklist_top']:,.0f} (worklist) vs "
              f"{r['days_x_amount_top']:,.0f} (days overdue x amount): {r['ratio']:.2f}x "
              f"(all open invoices: {r['still_unpaid_total']:,.0f})")

    started = time.perf_counter()
    timing = tracking.load_champion(tracking.PAYMENT_TIMING)[0]
    cash = forecast(company, at, models=ForecastModels(timing, build_cash_model().fit(company, at)))
    decided = discounts(company, at, forecast=cash)
    t_discounts = time.perf_counter() - started
    window = decided["pay_by"] > at
    print(f"discounts: {len(decided):,} open bills with terms, {int(window.sum()):,} still in their window, "
          f"take {int(decided['take'].sum()):,}, cash_ok false {int((decided['cash_ok'] == False).sum()):,}")  # noqa: E712
    print(f"time: kpis {t_kpis:.2f} s, worklist {t_worklist:.2f} s ({len(ranked):,} invoices), "
          f"discounts incl. fitting the cash model and a 1,000-path forecast {t_discounts:.2f} s")


if __name__ == "__main__":
    main(*sys.argv[1:3])
