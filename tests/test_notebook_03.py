"""Notebook 03 (cash forecast) runs end to end on a small generated company."""

from __future__ import annotations

from tests.notebooks import run_notebook


def test_notebook_03_executes(small_company, monkeypatch, tmp_path):
    text, images = run_notebook("03-cash-forecast.ipynb", small_company, "2025-03-31", tmp_path, monkeypatch)
    assert "balance_p50" in text and "below_floor" in text  # the forecast table
    assert "week-13 p50 balance moves by -" in text  # the shock lowers the balance
    assert "due_plus_delay" in text and "coverage" in text  # the backtest summary
    assert images >= 1  # its plots
    assert (tmp_path / "fan_chart.png").exists() and (tmp_path / "error_by_horizon.png").exists()
