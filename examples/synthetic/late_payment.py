"""The README's late-payment and payment-date tables on a generated company, with the true probabilities.

Run: .venv/bin/python examples/synthetic/late_payment.py [--seed 7] [--customers 300] [--years 3]
     [--as-of 2025-06-30]

Generates the company into a temporary folder and trains as ``likvid train DATA --as-of D`` does
(``training.pipeline.train``, into a temporary MLflow store whose artifacts stay in that folder), so
the likvid, logistic-regression and late-share rows are the ones ``likvid train`` prints. The
generator's true probabilities (``truth/invoices.csv``, ``p_late_true``) are scored on the same
holdout rows: each open, not-yet-due invoice of a snapshot after the origin whose outcome is known
at as-of gets its invoice's true probability of being paid after its due date.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

LATE_ROWS = {"lightgbm": "likvid (LightGBM + isotonic)", "logistic_regression": "logistic regression",
             "customer_late_share": "customer's historical late share",
             "true_probability": "the generator's true probabilities"}  # the README's order
TIMING_ROWS = {"payment_timing": "likvid (censored timing model)",
               "due_plus_average_delay": "due date + customer's average delay (± 1.28 sd)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--years", type=float, default=3.0)
    parser.add_argument("--as-of", default="2025-06-30")
    args = parser.parse_args()
    from training.tracking import scratch_store

    with scratch_store() as tmp:
        _report(tmp / "company", args)


def _report(folder: Path, args: argparse.Namespace) -> None:
    from features.contract import Inv
    from features.load import validate
    from features.policy import load_policy
    from features.synthetic import SyntheticConfig, generate, write
    from training import metrics
    from training.examples import not_yet_due
    from training.pipeline import TrainConfig, train

    write(generate(SyntheticConfig(customers=args.customers, years=args.years, seed=args.seed)), folder)
    policy = load_policy(folder)
    result = train(validate(folder).company, str(folder), args.as_of, TrainConfig.from_policy(policy), policy=policy)

    ho = not_yet_due(result.holdout)
    truth = pd.read_csv(folder / "truth" / "invoices.csv", usecols=[Inv.ID, "p_late_true"])
    p_true = ho[Inv.ID].map(truth.set_index(Inv.ID)["p_late_true"])
    if p_true.isna().any():
        raise SystemExit(f"{int(p_true.isna().sum())} holdout invoices have no true probability")
    late = pd.concat([result.late_metrics.T,
                      pd.Series(metrics.classification(ho["late"].to_numpy(), p_true.to_numpy()),
                                name="true_probability")], axis=1).T.loc[list(LATE_ROWS)]
    n, share = late.loc["lightgbm", ["n", "late_rate"]]
    print(f"seed {args.seed}, {args.customers} customers, {args.years:g} years; trained as of "
          f"{result.as_of:%Y-%m-%d} (registered models fitted then); figures of the recipe fitted at "
          f"{result.origin:%Y-%m-%d}")
    print(f"\nlate payment ({n:,.0f} rows, {share:.1%} late): AUC | PR-AUC | Brier | log loss | ECE")
    for name, row in late.iterrows():
        assert (row["n"], row["late_rate"]) == (n, share), "every row is scored on the same holdout"
        print(f"  {LATE_ROWS[name]}: {row['auc']:.3f} | {row['pr_auc']:.3f} | {row['brier']:.3f} | "
              f"{row['log_loss']:.3f} | {row['ece']:.3f}")
    print(f"likvid's AUC is {late.loc['lightgbm', 'auc'] / late.loc['true_probability', 'auc']:.3f} "
          "x that of the true probabilities")
    timing = result.timing_metrics
    print(f"\npayment date ({timing['n'].iloc[0]:,.0f} settled rows): MAE (days) | p10-p90 coverage")
    for name, row in timing.iterrows():
        print(f"  {TIMING_ROWS[name]}: {row['mae_days']:.2f} | {row['coverage_p10_p90']:.2f}")


if __name__ == "__main__":
    main()
