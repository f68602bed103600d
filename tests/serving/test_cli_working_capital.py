"""`likvid kpis`, `worklist` and `discounts`: files, the policy file, exit codes."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from features.working_capital import KPI_COLUMNS
from serving.cli import app
from training.collections import DISCOUNT_COLUMNS, NO_ACTION, WORKLIST_COLUMNS

runner = CliRunner()


def test_kpis_writes_every_figure_with_its_definition(small_company, tmp_path):
    out = tmp_path / "kpis.csv"
    result = runner.invoke(app, ["kpis", str(small_company), "--as-of", "2025-03-31", "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert list(frame.columns) == KPI_COLUMNS
    assert {"dso", "dpo", "dio", "ccc", "aging_90+", "overdue_share", "bad_debt_share"} <= set(frame["name"])
    assert frame.set_index("name").loc[["dso", "dpo", "dio", "ccc"], "value"].notna().all()
    assert "DSO" in result.output or "dso" in result.output


def test_policy_file_in_the_data_folder_and_bad_config(tiny, tmp_path):
    (tiny / "likvid.yaml").write_text("aging_buckets: [15, 45]\n")
    out = tmp_path / "kpis.csv"
    assert runner.invoke(app, ["kpis", str(tiny), "--out", str(out)]).exit_code == 0
    assert {"aging_1-15", "aging_16-45", "aging_45+"} <= set(pd.read_csv(out)["name"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("cost_of_capital: lots\n")
    for command in ("kpis", "worklist", "discounts"):
        result = runner.invoke(app, [command, str(tiny), "--config", str(bad), "--out", str(out)])
        assert result.exit_code == 2, (command, result.output)
        assert "cost_of_capital" in result.output


def test_discounts_with_no_bills_writes_an_empty_table(tiny, tmp_path):
    out = tmp_path / "discounts.csv"
    result = runner.invoke(app, ["discounts", str(tiny), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert list(pd.read_csv(out).columns) == DISCOUNT_COLUMNS


def test_worklist_without_champions_says_so(store, small_company, tmp_path):
    result = runner.invoke(app, ["worklist", str(small_company), "--out", str(tmp_path / "w.csv")])
    assert result.exit_code == 1 and "likvid train" in result.output


def test_worklist_ranks_with_the_champions(champions, small_company, tmp_path):
    out = tmp_path / "worklist.csv"
    result = runner.invoke(app, ["worklist", str(small_company), "--top", "25", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(out)
    assert list(rows.columns) == WORKLIST_COLUMNS and len(rows) == 25
    assert (rows.loc[rows["days_overdue"] > 0, "action"] != NO_ACTION).all()
    assert "open invoices ranked" in result.output
