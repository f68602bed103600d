"""Issue 4's figures on a generated company, against the generator's ``truth/``.

Run: .venv/bin/python examples/synthetic/customers.py --seed 61 [--customers 300] [--years 3]
     [--as-of 2025-03-31]

Generates the company into a temporary folder, trains the customer models as of ``--as-of`` into a
temporary MLflow store (``train_segmentation``), writes the ``customers`` rows with them and prints
``training.customers.truth_check``: Spearman of ``p_late_next`` with the true lateness of the next
quarter, true lateness by grade, and warnings among customers that worsened 30-240 days before and
among those that never did. Then the warning figures pooled over five quarter-ends (warnings need no
fitted model). Pick a seed nobody has developed on.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

QUARTER_ENDS = ["2024-06-30", "2024-09-30", "2024-12-31", "2025-03-31", "2025-06-30"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--years", type=float, default=3.0)
    parser.add_argument("--as-of", default="2025-03-31")
    args = parser.parse_args()
    from training.tracking import scratch_store

    with scratch_store() as tmp:
        _report(tmp, args)


def _report(tmp: Path, args: argparse.Namespace) -> None:
    from features.contract import Cust
    from features.customers import early_warnings
    from features.load import validate
    from features.policy import load_policy
    from features.synthetic import SyntheticConfig, generate, write
    from training.customers import customer_risk, train_segmentation, truth_check

    folder = tmp / "company"
    write(generate(SyntheticConfig(customers=args.customers, years=args.years, seed=args.seed)), folder)
    company = validate(folder).company
    policy = load_policy(folder)
    train_segmentation(company, str(folder), args.as_of, policy=policy)
    rows = customer_risk(company, args.as_of, policy=policy, company_key=policy.company_key(folder))
    check = truth_check(rows, folder, args.as_of)
    print(f"seed {args.seed}, {args.customers} customers, {args.years:g} years, as of {args.as_of}")
    for key, value in check.items():
        print(f"{key}:\n{value}" if isinstance(value, pd.DataFrame) else f"{key}: {value}")

    facts = pd.read_csv(folder / "truth" / "customers.csv", dtype={Cust.ID: str},
                        parse_dates=["deteriorates_from"]).set_index(Cust.ID)
    print("\nwarnings by quarter-end: worsened 30-240 days before flagged | never worsened flagged")
    totals = [0, 0, 0, 0]
    for date in QUARTER_ENDS:
        w = early_warnings(company, date)
        start = facts["deteriorates_from"].reindex(w.index)
        age = (pd.Timestamp(date) - start).dt.days
        worsened, never, warned = (age >= 30) & (age <= 240), start.isna(), w["warning"] != ""
        counts = [int(warned[worsened].sum()), int(worsened.sum()), int(warned[never].sum()), int(never.sum())]
        totals = [a + b for a, b in zip(totals, counts)]
        print(f"  {date}: {counts[0]} of {counts[1]} ({counts[0] / max(counts[1], 1):.0%}) | "
              f"{counts[2]} of {counts[3]} ({counts[2] / max(counts[3], 1):.1%})")
    print(f"  pooled: {totals[0]} of {totals[1]} ({totals[0] / max(totals[1], 1):.1%}) | "
          f"{totals[2]} of {totals[3]} ({totals[2] / max(totals[3], 1):.1%})")


if __name__ == "__main__":
    main()
