"""Turn the UCI credit-card default data (Taiwan, 2005) into a likvid data folder, and score its customers.

Run: .venv/bin/python examples/uci-credit/prepare.py ../shared/data/uci-credit-default-taiwan OUT
It writes OUT/customers.csv and OUT/invoices.csv in the contract's format, then fits likvid's
customer-level model (``training.customers.build_customer_risk``) on the customer features as of
2005-09-30 in 5-fold stratified cross-validation against ``DEFAULT`` (default in October 2005), and
prints the AUC beside a logistic regression on the same features.

The mapping is an approximation, since these are card statements, not invoices: each month's bill
(BILL_AMT, April..September, when positive) is an invoice issued on the 1st and due on the month's
last day; its repayment status (PAY_6..PAY_0) of k >= 1 months late pays it k x 30 days after due (still
open when that is after 2005-09-30), anything else pays it on the due date. ``LIMIT_BAL`` is the
credit limit. ``DEFAULT`` never enters the data folder. Demographics (sex, education, marriage, age)
and the amounts paid are left out: likvid's customer model reads payment behaviour only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

SOURCE_FILE = "UCI_Credit_Card.csv"
AS_OF = pd.Timestamp("2005-09-30")
# Statement months, newest first, with their bill and repayment-status columns (there is no PAY_1).
MONTHS = [("2005-09", "BILL_AMT1", "PAY_0"), ("2005-08", "BILL_AMT2", "PAY_2"), ("2005-07", "BILL_AMT3", "PAY_3"),
          ("2005-06", "BILL_AMT4", "PAY_4"), ("2005-05", "BILL_AMT5", "PAY_5"), ("2005-04", "BILL_AMT6", "PAY_6")]


def prepare(source: Path, out: Path) -> pd.Series:
    """Write the data folder; return ``DEFAULT`` by customer id (kept out of the folder)."""
    raw = pd.read_csv(source / SOURCE_FILE)
    ids = raw["ID"].astype(str)
    frames = []
    for month, bill, status in MONTHS:
        issue = pd.Timestamp(f"{month}-01")
        due = issue + pd.offsets.MonthEnd(0)
        late_months = raw[status].clip(lower=0).to_numpy()
        paid = due + pd.to_timedelta(late_months * 30, unit="D")
        keep = raw[bill].to_numpy() > 0
        frames.append(pd.DataFrame({
            "invoice_id": (ids + "-" + month)[keep], "customer_id": ids[keep], "issue_date": issue, "due_date": due,
            "amount": raw.loc[keep, bill].astype(float),
            "paid_date": pd.Series(paid, index=raw.index).where(paid <= AS_OF)[keep],
        }))
    out.mkdir(parents=True, exist_ok=True)
    invoices = pd.concat(frames, ignore_index=True).sort_values(["issue_date", "invoice_id"])
    invoices.to_csv(out / "invoices.csv", index=False, date_format="%Y-%m-%d")
    pd.DataFrame({"customer_id": ids, "credit_limit": raw["LIMIT_BAL"].astype(float),
                  "onboarded_date": "2005-04-01"}).to_csv(out / "customers.csv", index=False)
    return pd.Series(raw["DEFAULT"].to_numpy(), index=ids, name="DEFAULT")


def cross_validate(folder: Path, target: pd.Series, folds: int = 5, seed: int = 0) -> dict[str, float]:
    """AUC of likvid's customer-level model and of a logistic regression, stratified k-fold."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from features.customers import CUSTOMER_FEATURES, customer_features
    from features.load import validate
    from training.customers import build_customer_risk

    result = validate(folder, today="2005-10-01")
    x = customer_features(result.company, AS_OF)
    y = target.reindex(x.index).to_numpy()
    scores = {"likvid customer model (LightGBM)": np.zeros(len(y)), "logistic regression": np.zeros(len(y))}
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        model = build_customer_risk().fit(x.iloc[train], y[train])
        scores["likvid customer model (LightGBM)"][test] = model.predict(x.iloc[test])
        logistic = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=2000))
        logistic.fit(x.iloc[train][CUSTOMER_FEATURES], y[train])
        scores["logistic regression"][test] = logistic.predict_proba(x.iloc[test][CUSTOMER_FEATURES])[:, 1]
    return {name: float(roc_auc_score(y, s)) for name, s in scores.items()} | {
        "customers": float(len(y)), "rows_rejected": float(result.summary["rows_rejected"].sum())}


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    target = prepare(Path(sys.argv[1]), Path(sys.argv[2]))
    for name, value in cross_validate(Path(sys.argv[2]), target).items():
        print(f"{name}: {value:.3f}" if value < 2 else f"{name}: {value:,.0f}")
