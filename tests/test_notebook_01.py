"""Notebook 01 (late payment) runs end to end on a small generated company."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01-late-payment.ipynb"


def test_notebook_01_executes(store, small_company, monkeypatch, tmp_path):
    monkeypatch.setenv("LIKVID_DATA", str(small_company))
    monkeypatch.setenv("LIKVID_AS_OF", "2025-05-31")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook without outputs"
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                 for o in c.get("outputs", []))
    assert "logistic_regression" in text and "customer_late_share" in text  # metrics beside the baselines
    assert "due_plus_average_delay" in text  # timing beside its baseline
    assert "(raises risk)" in text or "(lowers risk)" in text  # reasons
    assert images >= 4  # history, reliability, SHAP, pay-date error
