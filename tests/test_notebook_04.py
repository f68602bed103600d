"""Notebook 04 (working capital) runs end to end on a small generated company with champion models."""

from __future__ import annotations

from tests.notebooks import run_notebook


def test_notebook_04_executes(champions, small_company, monkeypatch, tmp_path):
    text, images = run_notebook("04-working-capital.ipynb", small_company, "2025-03-31", tmp_path, monkeypatch)
    assert "dso" in text and "ccc" in text  # the figures and the CCC history
    assert "reminder" in text  # the worklist's actions
    assert images >= 1  # its plots
    assert "no 'champion' version" not in text
