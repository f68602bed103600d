"""MLproject's entry points call real ``likvid`` options: each command, with its parameters' defaults
filled in as MLflow does (each value quoted, a float parameter as written, e.g. 200), parses against
the CLI."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import typer
import yaml

from serving.cli import app

PROJECT = yaml.safe_load((Path(__file__).resolve().parents[1] / "MLproject").read_text())
LIKVID = {name: spec for name, spec in PROJECT["entry_points"].items() if spec["command"].startswith("likvid ")}


@pytest.mark.parametrize("entry", sorted(LIKVID))
def test_entry_point_parses_against_the_cli(entry, tmp_path):
    spec = LIKVID[entry]
    values = {}
    for name, param in spec.get("parameters", {}).items():
        kind = param if isinstance(param, str) else param.get("type", "string")
        default = None if isinstance(param, str) else param.get("default")
        values[name] = str(tmp_path) if default is None and kind == "path" else default
    # MLflow quotes every value (an empty as_of stays an empty argument).
    quoted = {k: shlex.quote("" if v is None else str(v)) for k, v in values.items()}
    args = shlex.split(spec["command"].format(**quoted))
    command = typer.main.get_command(app)
    sub = command.get_command(None, args[1])
    context = sub.make_context(args[1], args[2:])  # raises on an unknown option or a bad value
    if entry == "train":
        from features.customers import WarningConfig
        from training.customers import CustomerConfig

        assert context.params["customer_n_estimators"] == CustomerConfig().n_estimators
        assert context.params["warning_alpha"] == WarningConfig().alpha  # the same defaults everywhere
        assert context.params["threads"] == 1
    if entry in ("train", "validate"):  # an unset project parameter ("") is no file, not the working folder
        assert context.params["config"] is None and context.params["mapping"] is None
