"""Turn the IBM accounts-receivable sample into a likvid data folder (IBM column names kept).

Run: .venv/bin/python examples/ibm-ar/prepare.py ../shared/data/ibm-ar-late-payment OUT [--dispute-at-issue]
then: .venv/bin/likvid validate OUT --mapping examples/ibm-ar/mapping.yaml

``Disputed`` (Yes/No) carries no date, so when a dispute became known cannot be placed in time.
By default ``DisputeDate`` is left empty (no dispute is ever known: strict, no leak). With
``--dispute-at-issue`` a disputed invoice is taken as disputed from its issue date: an
assumption, reported as such in the README.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

SOURCE_FILE = "WA_Fn-UseC_-Accounts-Receivable.csv"
OUTCOME = ["DaysToSettle", "DaysLate"]  # the outcome itself: never carried into the data folder


def prepare(source: Path, out: Path, dispute_at_issue: bool = False) -> Path:
    raw = pd.read_csv(source / SOURCE_FILE, dtype=str)
    for col in ("InvoiceDate", "DueDate", "SettledDate", "PaperlessDate"):
        raw[col] = pd.to_datetime(raw[col], format="%m/%d/%Y").dt.strftime("%Y-%m-%d")
    raw["PaperlessBill"] = raw["PaperlessBill"].str.lower()
    raw["DisputeDate"] = raw["InvoiceDate"].where((raw["Disputed"] == "Yes") & dispute_at_issue, "")
    out.mkdir(parents=True, exist_ok=True)
    raw.drop(columns=OUTCOME + ["Disputed"]).to_csv(out / "invoices.csv", index=False)
    customers = raw[["customerID", "countryCode"]].drop_duplicates("customerID")
    customers.to_csv(out / "customers.csv", index=False)
    return out


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2 or set(sys.argv[1:]) - set(args) - {"--dispute-at-issue"}:
        sys.exit(__doc__)
    print(prepare(Path(args[0]), Path(args[1]), "--dispute-at-issue" in sys.argv))
