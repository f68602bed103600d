"""Put the Cassandra invoice set in a likvid data folder; the mapping (beside it in OUT) does the rest.

Run: .venv/bin/python examples/cassandra-ap/prepare.py ../shared/data/cassandra-ap-invoices OUT
then: .venv/bin/likvid validate OUT

SOURCE.md names the outcome: ``Number_of_Days_until_Payment`` (and ``Outstanding``, which follows from
``Settled``). The outcome is turned into the contract's ``paid_date``, counted from ``Invoice_Date`` (an
assumption: README.md), written in the file's own ``DD-Mon-YY``; the two outcome columns are then left
out. The data has no invoice number, so the row's number in trainData.csv is the invoice id, and the
customers table is each ``Vendor_Name`` once. Nothing else is changed: dates, amounts and names are as
published.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd

SOURCE_FILE = "trainData.csv"
DATE_FORMAT = "%d-%b-%y"
OUTCOME = ["Number_of_Days_until_Payment", "Outstanding"]
MAPPING = Path(__file__).with_name("mapping.yaml")


def prepare(source: Path, out: Path) -> Path:
    raw = pd.read_csv(source / SOURCE_FILE, dtype=str, keep_default_na=False)
    issued = pd.to_datetime(raw["Invoice_Date"], format=DATE_FORMAT)
    paid = issued + pd.to_timedelta(pd.to_numeric(raw["Number_of_Days_until_Payment"]), unit="D")
    raw.insert(0, "Invoice_Row", [str(i) for i in range(1, len(raw) + 1)])
    raw["Paid_Date"] = paid.dt.strftime(DATE_FORMAT)
    out.mkdir(parents=True, exist_ok=True)
    raw.drop(columns=OUTCOME).to_csv(out / "invoices.csv", index=False)
    vendors = raw[["Vendor_Name"]].drop_duplicates().assign(Vendor_Name_Text=lambda f: f["Vendor_Name"])
    vendors.to_csv(out / "customers.csv", index=False)
    shutil.copyfile(MAPPING, out / "mapping.yaml")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(prepare(Path(sys.argv[1]), Path(sys.argv[2])))
