"""The commands a new user runs first print no third-party warning, info log or progress-bar spam."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

LIKVID = Path(sys.executable).with_name("likvid")
# What third-party chatter looks like on a terminal: Python warnings, MLflow's log lines and tqdm bars.
SPAM = ("Warning:", "warnings.warn(", " INFO mlflow", " WARNING mlflow", "CloudPickle", "Downloading artifacts",
        "Hint: Inferred schema")


def _run(tmp: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PYTHONWARNINGS"))}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
    done = subprocess.run([str(LIKVID), *args], cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.mark.skipif(not LIKVID.exists(), reason="the likvid command is not installed next to this Python")
def test_first_commands_print_no_warnings(tmp_path):
    printed = [
        _run(tmp_path, "generate", "co", "--customers", "25", "--years", "1", "--seed", "5"),
        _run(tmp_path, "validate", "co"),
        _run(tmp_path, "kpis", "co", "--out", "kpis.csv"),
        _run(tmp_path, "train", "co"),
        _run(tmp_path, "score", "co", "--out", "scores.csv"),
        _run(tmp_path, "forecast", "co", "--out", "forecast.csv", "--paths", "200"),  # LightGBM without sklearn
    ]
    for text in printed:
        found = [s for s in SPAM if s in text]
        assert not found, f"{found} in:\n{text}"
    assert "open invoices scored" in printed[-2] and "13 weeks -> forecast.csv" in printed[-1]
