"""Notebook 02 (customers) runs end to end on a small generated company."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02-customers.ipynb"


def test_notebook_02_executes(small_company, monkeypatch):
    monkeypatch.setenv("LIKVID_DATA", str(small_company))
    monkeypatch.setenv("LIKVID_AS_OF", "2025-03-31")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook without outputs"
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "silhouette by k" in text and "late_share_365" in text  # segment profiles
    assert "mean_p_late_next" in text  # the grade table
    assert "cusum" in text  # the warning timeline
