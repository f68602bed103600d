"""Put the IBM accounts-receivable sample in a likvid data folder; the mapping does the rest.

Run: .venv/bin/python examples/ibm-ar/prepare.py ../shared/data/ibm-ar-late-payment OUT [--dispute-at-issue]
then: .venv/bin/likvid validate OUT   (OUT holds the mapping.yaml that reads IBM's columns and US dates)

The only changes to the sample are those SOURCE.md requires: the outcome columns (DaysToSettle,
DaysLate) are left out, and the customers table the contract requires is the sample's one row per
customerID. ``Disputed`` (Yes/No) carries no date, so when a dispute became known cannot be placed
in time: by default ``DisputeDate`` is empty (no dispute is ever known: strict, no leak); with
``--dispute-at-issue`` a disputed invoice is taken as disputed from its issue date, an assumption
reported as such in the README.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd

SOURCE_FILE = "WA_Fn-UseC_-Accounts-Receivable.csv"
OUTCOME = ["DaysToSettle", "DaysLate"]  # the outcome itself: never carried into the data folder
MAPPING = Path(__file__).with_name("mapping.yaml")


def prepare(source: Path, out: Path, dispute_at_issue: bool = False) -> Path:
    raw = pd.read_csv(source / SOURCE_FILE, dtype=str, keep_default_na=False)
    raw["DisputeDate"] = raw["InvoiceDate"].where((raw["Disputed"] == "Yes") & dispute_at_issue, "")
    out.mkdir(parents=True, exist_ok=True)
    raw.drop(columns=[*OUTCOME, "Disputed"]).to_csv(out / "invoices.csv", index=False)
    raw[["customerID", "countryCode"]].drop_duplicates("customerID").to_csv(out / "customers.csv", index=False)
    shutil.copyfile(MAPPING, out / "mapping.yaml")
    return out


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2 or set(sys.argv[1:]) - set(args) - {"--dispute-at-issue"}:
        sys.exit(__doc__)
    print(prepare(Path(args[0]), Path(args[1]), "--dispute-at-issue" in sys.argv))
