"""The UCI credit-default adapter (examples/uci-credit/prepare.py) on a few made-up rows in the source's
layout: the mapping to invoices, the target kept out of the folder, and the cross-validation."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.load import validate

ADAPTER = Path(__file__).resolve().parents[2] / "examples" / "uci-credit" / "prepare.py"


def _adapter():
    spec = importlib.util.spec_from_file_location("uci_prepare", ADAPTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _source(folder: Path, n: int = 80, seed: int = 0) -> Path:
    """Rows in UCI_Credit_Card.csv's layout: defaulters (every 4th) were 1-3 months late lately."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        default = int(i % 4 == 0)
        row = {"ID": i + 1, "LIMIT_BAL": 50_000.0 + 1000 * i, "SEX": 1, "EDUCATION": 2, "MARRIAGE": 1, "AGE": 30}
        for k, status in enumerate(["PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6"]):
            row[status] = int(rng.integers(1, 4)) if default and k < 3 else int(rng.choice([-1, 0]))
        for k in range(1, 7):
            row[f"BILL_AMT{k}"] = float(rng.integers(1000, 9000)) if (i + k) % 7 else 0.0  # some months: no bill
            row[f"PAY_AMT{k}"] = 1000.0
        row["DEFAULT"] = default
        rows.append(row)
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(folder / "UCI_Credit_Card.csv", index=False)
    return folder


def test_bills_become_invoices_paid_as_the_repayment_status_says(tmp_path):
    uci = _adapter()
    source = _source(tmp_path / "source", n=8)
    raw = pd.read_csv(source / "UCI_Credit_Card.csv")
    target = uci.prepare(source, tmp_path / "data")
    inv = pd.read_csv(tmp_path / "data" / "invoices.csv", dtype={"customer_id": str},
                      parse_dates=["issue_date", "due_date", "paid_date"])
    assert len(inv) == int((raw[[f"BILL_AMT{k}" for k in range(1, 7)]] > 0).to_numpy().sum())  # one per positive bill
    assert "DEFAULT" not in inv.columns and list(target.index) == [str(i) for i in raw["ID"]]
    july = inv.set_index("invoice_id").loc["1-2005-07"]  # customer 1 defaulted: PAY_3 is its July status
    assert july["due_date"] == pd.Timestamp("2005-07-31")
    late_months = int(raw.loc[0, "PAY_3"])
    expected = pd.Timestamp("2005-07-31") + pd.Timedelta(days=30 * late_months)
    assert (july["paid_date"] == expected) if expected <= uci.AS_OF else pd.isna(july["paid_date"])
    on_time = inv[inv["customer_id"] == "2"]  # customer 2 never late: paid on the due date
    assert (on_time["paid_date"] == on_time["due_date"]).all()
    company = validate(tmp_path / "data", today="2005-10-01")
    assert company.summary["rows_rejected"].sum() == 0


def test_cross_validation_ranks_the_defaulters(tmp_path):
    uci = _adapter()
    source = _source(tmp_path / "source")
    target = uci.prepare(source, tmp_path / "data")
    result = uci.cross_validate(tmp_path / "data", target, folds=4)
    assert result["customers"] == 80 and result["rows_rejected"] == 0
    assert result["likvid customer model (LightGBM)"] > 0.9  # lateness here is the whole story
    assert result["logistic regression"] == pytest.approx(result["likvid customer model (LightGBM)"], abs=0.1)
