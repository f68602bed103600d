"""Customer models: grades ordered by true lateness, the limit policy, the contract's rows, MLflow and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.contract import Cust, Inv
from features.customers import customer_features
from features.policy import Policy, parse_policy
from training.customers import (
    CUSTOMER_COLUMNS,
    HEADROOM,
    NEW,
    customer_examples,
    customer_risk,
    fit_customer_models,
    load_customer_models,
    recommended_limit,
    train_segmentation,
)

AT = pd.Timestamp("2025-03-31")  # a quarter before the small company's end, so the next quarter is known


@pytest.fixture(scope="module")
def models(small_loaded):
    return fit_customer_models(small_loaded, AT)


def _true_next_quarter(folder: Path) -> pd.Series:
    truth = pd.read_csv(folder / "truth" / "invoices.csv", dtype={Inv.ID: str})
    inv = pd.read_csv(folder / "invoices.csv", dtype={Inv.ID: str, Inv.CUSTOMER: str}, parse_dates=[Inv.DUE])
    j = inv.merge(truth, on=Inv.ID)
    window = j[(j[Inv.DUE] > AT) & (j[Inv.DUE] <= AT + pd.Timedelta(days=91))]
    return window.groupby(Inv.CUSTOMER)["p_late_true"].mean()


def test_grades_are_ordered_by_true_lateness(small_loaded, small_company, models):
    rows = customer_risk(small_loaded, AT, models).set_index("customer_id")
    truth = rows.join(_true_next_quarter(small_company).rename("true"), how="inner")
    by_grade = truth.groupby("credit_grade")["true"].mean().reindex(["AAA", "AA", "A", "B", "C"]).dropna()
    assert len(by_grade) >= 3
    assert by_grade.is_monotonic_increasing, by_grade
    assert truth["p_late_next"].corr(truth["true"], method="spearman") > 0.7


def test_rows_follow_the_contract(small_loaded, models):
    rows = customer_risk(small_loaded, AT, models)
    assert list(rows.columns) == CUSTOMER_COLUMNS + [HEADROOM]  # the generator supplies credit_limit
    known = small_loaded[Cust.TABLE]
    assert rows["customer_id"].is_unique and set(rows["customer_id"]) == set(known.loc[
        ~(known[Cust.ONBOARDED] > AT), Cust.ID])
    assert set(rows["credit_grade"]) <= {"AAA", "AA", "A", "B", "C"}
    assert set(rows["trend"]) <= {"improving", "stable", "worsening"}
    assert rows["p_late_next"].between(0, 1).all()
    assert ((rows["warning"] == "") == (rows["trend"] != "worsening")).all()
    assert (rows.loc[rows["credit_grade"] == "C", "recommended_credit_limit"] == 0).all()
    assert NEW in set(rows["segment"]) or rows["segment"].nunique() >= 2


def test_punctual_customer_is_graded_above_a_late_one(small_loaded, models):
    rows = customer_risk(small_loaded, AT, models).set_index("customer_id")
    x = customer_features(small_loaded, AT)
    established = x[x["n_decided"] >= 20]
    punctual, late = established["late_share_365"].idxmin(), established["late_share_365"].idxmax()
    order = ["AAA", "AA", "A", "B", "C"]
    assert order.index(rows.loc[punctual, "credit_grade"]) < order.index(rows.loc[late, "credit_grade"])


def test_limit_policy():
    grades = Policy().grades
    grade = pd.Series(["AAA", "AA", "A", "B", "C"])
    monthly = pd.Series([1000.0, 1000.0, 1000.0, 1000.0, 1000.0])
    assert recommended_limit(grade, monthly, grades).tolist() == [3000.0, 2000.0, 1500.0, 1000.0, 0.0]
    # Never above the limit the data sets; rounded down to 100.
    capped = recommended_limit(grade, pd.Series([1234.0] * 5), grades, pd.Series([2500.0, np.nan, 100.0, 5000.0, 10.0]))
    assert capped.tolist() == [2500.0, 2400.0, 100.0, 1200.0, 0.0]
    custom = parse_policy({"grades": {"bands": [
        {"grade": "AAA", "max_p_late": 0.05, "limit_months": 6}, {"grade": "AA", "max_p_late": 0.1, "limit_months": 4},
        {"grade": "A", "max_p_late": 0.2, "limit_months": 2}, {"grade": "B", "max_p_late": 0.3, "limit_months": 0.5},
        {"grade": "C", "max_p_late": 1.0, "limit_months": 0}]}}).grades
    assert recommended_limit(pd.Series(["AAA", "B"]), pd.Series([1000.0, 1000.0]), custom).tolist() == [6000.0, 500.0]
    assert custom.grade(0.15) == "A" and Policy().grades.grade(0.15) == "AA"


def test_grade_bands_from_the_policy_change_the_grades(small_loaded, models):
    strict = parse_policy({"grades": {"bands": [
        {"grade": "AAA", "max_p_late": 0.01, "limit_months": 3}, {"grade": "AA", "max_p_late": 0.02, "limit_months": 2},
        {"grade": "A", "max_p_late": 0.03, "limit_months": 1}, {"grade": "B", "max_p_late": 0.04, "limit_months": 1},
        {"grade": "C", "max_p_late": 1.0, "limit_months": 0}]}})
    default = customer_risk(small_loaded, AT, models)
    harsh = customer_risk(small_loaded, AT, models, policy=strict)
    assert (harsh["credit_grade"] == "C").sum() > (default["credit_grade"] == "C").sum()
    pd.testing.assert_series_equal(harsh["p_late_next"], default["p_late_next"])


def test_too_little_history_is_a_clear_error(small_loaded):
    with pytest.raises(ValueError, match="not enough history"):
        customer_examples(small_loaded, small_loaded[Inv.TABLE][Inv.ISSUE].min() + pd.Timedelta(days=100))


def test_train_registers_the_champion_and_the_cli_uses_it(small_loaded, small_company, store, tmp_path):
    key = small_company.resolve().name
    with pytest.raises(LookupError, match="run `likvid train DATA` first"):
        load_customer_models(key)
    decision, version = train_segmentation(small_loaded, str(small_company), AT)
    assert decision.promote and version == "1"
    loaded = load_customer_models(key)
    assert loaded.segmentation_.k_ in loaded.segmentation_.silhouette_

    from serving.cli import app

    out = tmp_path / "customers.csv"
    result = CliRunner().invoke(app, ["customers", str(small_company), "--as-of", "2025-03-31", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(out, dtype={"customer_id": str}, keep_default_na=False)
    assert list(rows.columns)[: len(CUSTOMER_COLUMNS)] == CUSTOMER_COLUMNS
    bad = tmp_path / "bad.yaml"
    bad.write_text("grades: {bands: []}\n")
    result = CliRunner().invoke(app, ["customers", str(small_company), "--out", str(out), "--config", str(bad)])
    assert result.exit_code == 2 and "grades" in result.output
