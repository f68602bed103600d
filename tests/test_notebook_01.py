"""Notebook 01 (late payment) runs end to end on a small generated company."""

from __future__ import annotations

from tests.notebooks import run_notebook


def test_notebook_01_executes(store, small_company, monkeypatch, tmp_path):
    text, images = run_notebook("01-late-payment.ipynb", small_company, "2025-05-31", tmp_path, monkeypatch)
    assert "logistic_regression" in text and "customer_late_share" in text  # metrics beside the baselines
    assert "due_plus_average_delay" in text  # timing beside its baseline
    assert "(raises risk)" in text or "(lowers risk)" in text  # reasons
    assert images >= 4  # history, reliability, SHAP, pay-date error
