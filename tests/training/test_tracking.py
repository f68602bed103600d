"""MLflow: runs, registry, the champion gate, and the train/score commands."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from serving.cli import app
from training import tracking
from training.examples import ExampleConfig
from training.late_payment import LatePaymentConfig
from training.pipeline import SCORE_COLUMNS, TrainConfig, train


def test_gate_decisions():
    assert tracking.gate("brier", 0.2, None).promote
    assert tracking.gate("brier", 0.2, 0.2).promote
    assert tracking.gate("brier", 0.19, 0.2).promote
    keep = tracking.gate("brier", 0.25, 0.2)
    assert not keep.promote and "worse than" in keep.reason
    assert not tracking.gate("auc", 0.7, 0.8, lower_is_better=False).promote


FAST = TrainConfig(examples=ExampleConfig(every_days=28, holdout_days=60))


def test_train_registers_promotes_and_keeps_the_better_champion(store, small_loaded, small_company):
    first = train(small_loaded, str(small_company), cfg=FAST)
    assert all(d.promote for d in first.decisions.values())
    client = tracking.connect()
    assert str(client.get_model_version_by_alias(tracking.LATE_PAYMENT, "champion").version) == "1"
    # A crippled candidate is registered but does not take the champion alias.
    weak = TrainConfig(examples=FAST.examples, late=LatePaymentConfig(n_estimators=1, learning_rate=0.01, num_leaves=2,
                                                                      small_data_shape=None))
    second = train(small_loaded, str(small_company), cfg=weak)
    decision = second.decisions[tracking.LATE_PAYMENT]
    assert not decision.promote and decision.champion is not None
    assert str(client.get_model_version_by_alias(tracking.LATE_PAYMENT, "champion").version) == "1"
    assert client.get_model_version(tracking.LATE_PAYMENT, "2").tags["gate"] == "keep"
    run = mlflow.search_runs(experiment_names=[tracking.LATE_PAYMENT], order_by=["start_time DESC"]).iloc[0]
    assert run["tags.gate.decision"] == "keep"
    for key in ("metrics.auc", "metrics.auc_customer_late_share", "metrics.auc_logistic_regression",
                "metrics.ece", "metrics.brier", "params.as_of", "params.rows.holdout"):
        assert key in run.index and not pd.isna(run[key]), key
    artifacts = {a.path for a in tracking.connect().list_artifacts(run["run_id"])}
    assert {"reliability.png", "shap_summary.png", "metrics_by_segment.csv"} <= artifacts


def test_score_without_a_champion_says_so(store, small_company, tmp_path):
    result = CliRunner().invoke(app, ["score", str(small_company), "--out", str(tmp_path / "s.csv")])
    assert result.exit_code == 1
    assert "run `likvid train DATA` first" in result.output


def test_train_then_score_commands(store, small_company, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(small_company), "--as-of", "2025-05-31"])
    assert result.exit_code == 0, result.output
    assert "promoted to champion" in result.output
    out = tmp_path / "scores.csv"
    result = runner.invoke(app, ["score", str(small_company), "--as-of", "2025-05-31", "--out", str(out)])
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out)
    assert list(scored.columns) == SCORE_COLUMNS and len(scored) > 0
    assert scored["reason_1"].notna().all()


def test_evaluate_logs_the_champions_beside_the_baselines(champions, small_loaded, small_company):
    from training.evaluate import _main, evaluate_champions

    late_table, timing_table = evaluate_champions(small_loaded, str(small_company), "2025-05-31",
                                                  ExampleConfig(every_days=28, holdout_days=60))
    assert {"champion", "customer_late_share", "logistic_regression"} == set(late_table.index)
    assert 0.5 < late_table.loc["champion", "auc"] <= 1 and late_table.loc["champion", "n"] > 0
    assert {"champion", "due_plus_average_delay"} == set(timing_table.index)
    run = mlflow.search_runs(experiment_names=[tracking.LATE_PAYMENT], order_by=["start_time DESC"]).iloc[0]
    assert run["tags.kind"] == "evaluation" and run["params.as_of"] == "2025-05-31"
    assert run["metrics.auc_champion"] == pytest.approx(late_table.loc["champion", "auc"])
    with pytest.raises(SystemExit, match="cannot be used"):
        _main([str(small_company / "missing-folder")])


def test_evaluate_without_a_champion_says_so(store, small_company):
    from training.evaluate import _main

    with pytest.raises(SystemExit, match="run `likvid train DATA` first"):
        _main([str(small_company)])


def test_scratch_store_is_its_own_store_and_leaves_nothing_behind(tmp_path, monkeypatch):
    from pathlib import Path

    from training.tracking import scratch_store, tracking_uri

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///users.db")
    with scratch_store() as folder:
        assert Path.cwd() == folder and tracking_uri() == f"sqlite:///{folder}/mlflow.db"
    assert Path.cwd() == tmp_path and tracking_uri() == "sqlite:///users.db" and not folder.exists()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with scratch_store():
        pass
    assert tracking_uri() == "sqlite:///mlflow.db"  # the default again
