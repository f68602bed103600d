"""Notebook 03 (cash forecast) runs end to end on a small generated company."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03-cash-forecast.ipynb"


def test_notebook_03_executes(small_company, monkeypatch, tmp_path):
    monkeypatch.setenv("LIKVID_DATA", str(small_company))
    monkeypatch.setenv("LIKVID_AS_OF", "2025-03-31")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook without outputs"
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "balance_p50" in text and "below_floor" in text  # the forecast table
    assert "week-13 p50 balance moves by -" in text  # the shock lowers the balance
    assert "due_plus_delay" in text and "coverage" in text  # the backtest summary
    assert (tmp_path / "fan_chart.png").exists() and (tmp_path / "error_by_horizon.png").exists()
