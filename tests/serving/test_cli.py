"""The command line: exit codes, summaries and files, through typer's test runner."""

from __future__ import annotations

import pandas as pd
import pytest
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


DATA_COMMANDS = ("validate", "train", "score", "customers", "forecast", "backtest", "kpis", "worklist", "discounts",
                 "serve")


@pytest.mark.parametrize("command", DATA_COMMANDS)
def test_every_data_command_takes_mapping_and_config(command):
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "--mapping" in result.output and "--config" in result.output


def test_a_bad_as_of_exits_2_naming_the_option_and_value(tiny, tmp_path):
    for value in ("2025-13-01", "yesterday", "9999-12-31"):
        result = runner.invoke(app, ["kpis", str(tiny), "--as-of", value, "--out", str(tmp_path / "k.csv")])
        assert result.exit_code == 2, result.output
        assert "--as-of" in result.output and value in result.output


def test_parse_as_of_is_the_one_reading_of_a_day():
    import datetime

    from features.asof import parse_as_of

    assert parse_as_of(None) is None and parse_as_of("  ") is None
    assert parse_as_of("2025-03-31 17:45") == pd.Timestamp("2025-03-31")
    assert parse_as_of(datetime.date(2025, 3, 31)) == pd.Timestamp("2025-03-31")
    for bad in ("31.03.2025x", "NaT", 20250331, True, "0001-01-01"):
        with pytest.raises(ValueError, match="as_of must be a date"):
            parse_as_of(bad)


def test_outputs_carry_money_in_cents_and_probabilities_as_computed(tmp_path):
    from serving.cli import write_output

    frame = pd.DataFrame({"invoice_id": ["I1"], "amount_open": [507077.5326000001], "p_late": [0.1235],
                          "expected_days_late": [3.4]})
    write_output(frame, tmp_path / "s.csv")
    text = (tmp_path / "s.csv").read_text()
    assert "507077.53," in text and "0.1235" in text and "3.4" in text
    kpis = pd.DataFrame({"name": ["open_ar", "dso", "overdue_share"], "value": [1234.5678, 34.70763676, 0.0812345],
                         "unit": ["EUR", "days", "share"], "definition": ["", "", ""]})
    write_output(kpis, tmp_path / "k.csv")
    values = pd.read_csv(tmp_path / "k.csv").set_index("name")["value"]
    assert values["open_ar"] == 1234.57 and values["dso"] == 34.70763676 and values["overdue_share"] == 0.0812345


def test_why_nothing_is_open_names_the_as_of_to_try(tiny):
    from features.asof import why_none_open
    from features.load import validate

    company = validate(tiny).company
    assert "first is dated 2025-01-01" in why_none_open(company, pd.Timestamp("2024-12-01"))
    # Without the unpaid I2, every invoice is paid by 2025-03-31; the last one open was I3, the day before it was paid.
    paid = company.replace(invoices=company["invoices"][lambda f: f["invoice_id"] != "I2"])
    message = why_none_open(paid, pd.Timestamp("2025-03-31"))
    assert "was paid by then" in message and "--as-of 2025-02-19" in message  # I3, paid 2025-02-20


def test_score_with_nothing_open_says_why(champions, small_company, tmp_path):
    out = tmp_path / "s.csv"
    result = runner.invoke(app, ["score", str(small_company), "--as-of", "2020-01-01", "--out", str(out)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # rich wraps long lines at the terminal's width
    assert "0 open invoices scored" in said and "no invoice was issued by 2020-01-01" in said


def test_modules_warmed_on_a_thread_are_imported_and_a_failing_one_fails_in_the_caller(capsys):
    import importlib
    import sys

    from serving.cli import _warm

    assert _warm() is None
    sys.modules.pop("colorsys", None)
    _warm("colorsys").join(timeout=30)
    assert "colorsys" in sys.modules
    _warm("likvid_no_such_module", "colorsys").join(timeout=30)  # stops at the first that fails, silently
    assert capsys.readouterr().err == ""
    with pytest.raises(ModuleNotFoundError, match="likvid_no_such_module"):
        importlib.import_module("likvid_no_such_module")
