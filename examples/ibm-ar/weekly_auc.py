"""The README's IBM figure through the product's own commands: ``likvid train DATA --as-of 2013-06-30``,
then ``likvid score DATA --as-of W`` at the end of each week W of 2013H2, and the AUC of ``p_late`` on the
invoices issued in that week (scored in the week they were issued, with only the history known then),
against what happened (late: paid after due + the policy's grace).

Run: .venv/bin/python examples/ibm-ar/prepare.py ../shared/data/ibm-ar-late-payment OUT
then: .venv/bin/python examples/ibm-ar/weekly_auc.py OUT [--mapping examples/ibm-ar/mapping.yaml]

It works in a scratch MLflow store (nothing is written to yours) and calls the commands themselves
(``likvid`` in a subprocess), so the figure is what a user of the product gets.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from features.asof import last_known_date
from features.contract import Inv
from features.invoices import FeatureConfig, label
from features.load import validate
from features.policy import load_policy
from training.tracking import scratch_store

TRAIN_AS_OF = "2013-06-30"
FIRST_WEEK_END, LAST_DAY = "2013-07-07", "2013-12-31"
LIKVID = str(Path(sys.executable).with_name("likvid"))


def _likvid(*args: str) -> None:
    done = subprocess.run([LIKVID, *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"likvid {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def weekly_auc(data: Path, mapping: Path | None) -> tuple[pd.DataFrame, float]:
    """(rows of every week's new invoices with p_late and the outcome, AUC over all of them)."""
    where = [] if mapping is None else ["--mapping", str(mapping.resolve())]
    data = data.resolve()
    company = validate(data, mapping).company
    features = FeatureConfig.from_policy(load_policy(data))
    inv = company[Inv.TABLE]
    frames = []
    with scratch_store(), tempfile.TemporaryDirectory() as tmp:
        _likvid("train", str(data), "--as-of", TRAIN_AS_OF, *where)
        for week_end in pd.date_range(FIRST_WEEK_END, LAST_DAY, freq="7D"):
            out = Path(tmp) / f"{week_end:%Y%m%d}.csv"
            _likvid("score", str(data), "--as-of", f"{week_end:%Y-%m-%d}", "--out", str(out), *where)
            scored = pd.read_csv(out, dtype={"invoice_id": str, "customer_id": str})
            new = inv[(inv[Inv.ISSUE] > week_end - pd.Timedelta(days=7)) & (inv[Inv.ISSUE] <= week_end)]
            frames.append(scored[scored["invoice_id"].isin(new[Inv.ID])].assign(week_end=week_end))
    rows = pd.concat(frames, ignore_index=True)
    known = inv.set_index(Inv.ID).loc[rows["invoice_id"], [Inv.DUE, Inv.PAID]].reset_index()
    outcome = label(known.assign(as_of=rows["week_end"].to_numpy()), company, last_known_date(company), features)
    rows["late"] = outcome["late"].to_numpy()
    rows = rows[rows["late"].notna()]
    return rows, float(roc_auc_score(rows["late"].astype(int), rows["p_late"]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--mapping", type=Path, default=None)
    args = parser.parse_args()
    rows, auc = weekly_auc(args.data, args.mapping)
    print(f"{len(rows)} invoices issued in 2013H2, scored with `likvid score --as-of` at the end of their week; "
          f"model from `likvid train --as-of {TRAIN_AS_OF}`")
    print(f"AUC {auc:.5f}")
