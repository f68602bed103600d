"""The command line: exit codes, summaries and files, through typer's test runner."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from serving.cli import app

runner = CliRunner()


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("generate", "validate", "demo"):
        assert command in result.output


def test_generate_then_validate_with_rejects_file(tmp_path):
    data = tmp_path / "co"
    result = runner.invoke(app, ["generate", str(data), "--customers", "8", "--years", "0.5", "--seed", "1"])
    assert result.exit_code == 0, result.output
    invoices = pd.read_csv(data / "invoices.csv", dtype=str, keep_default_na=False)
    extra = {**invoices.iloc[0].to_dict(), "amount": "-1"}
    pd.concat([invoices, pd.DataFrame([extra])]).to_csv(data / "invoices.csv", index=False)
    rejects = tmp_path / "rejects.csv"
    result = runner.invoke(app, ["validate", str(data), "--rejects", str(rejects)])
    assert result.exit_code == 0, result.output
    assert "Rows per table" in result.output
    report = pd.read_csv(rejects)
    assert list(report.columns) == ["table", "row", "column", "problem"]
    assert report["row"].unique().tolist() == [len(invoices) + 1]
    assert "amount" in report["column"].tolist()


def test_validate_exits_2_naming_the_missing_column(tiny):
    pd.read_csv(tiny / "invoices.csv").drop(columns=["due_date"]).to_csv(tiny / "invoices.csv", index=False)
    result = runner.invoke(app, ["validate", str(tiny)])
    assert result.exit_code == 2
    assert "due_date" in result.output


def test_validate_exits_2_on_a_bad_mapping(tiny, tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("invoices:\n  due_date: Due\n")
    result = runner.invoke(app, ["validate", str(tiny), "--mapping", str(mapping)])
    assert result.exit_code == 2
    assert "'Due'" in result.output


def test_generate_rejects_a_bad_format(tmp_path):
    result = runner.invoke(app, ["generate", str(tmp_path / "x"), "--format", "xlsx"])
    assert result.exit_code == 2
