"""Notebook 02 (customers) runs end to end on a small generated company."""

from __future__ import annotations

from tests.notebooks import run_notebook


def test_notebook_02_executes(small_company, monkeypatch, tmp_path):
    text, images = run_notebook("02-customers.ipynb", small_company, "2025-03-31", tmp_path, monkeypatch)
    assert "silhouette by k" in text and "late_share_365" in text  # segment profiles
    assert "mean_p_late_next" in text  # the grade table
    assert "cusum" in text  # the warning timeline
    assert images >= 1  # its plots
