"""Does chasing help: the synthetic credit team's true effect, the chased-against-control measurement that must
recover it, the collection KPIs (by owner), and `likvid collections-report`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from features.contract import Act, Inv
from features.control import in_control
from features.load import validate
from features.policy import load_policy, parse_policy
from features.synthetic import SyntheticConfig, generate, write
from serving.cli import app
from tests.conftest import write_tables
from training.decisions.effect import (
    CHASED,
    CONTROL,
    DIFFERENCE,
    OWNER,
    REPORT_COLUMNS,
    EffectConfig,
    chasing_effect,
    chasing_outcomes,
    collection_kpis,
    collections_report,
    measured_uplift,
    welch_interval,
)

SEEN = SyntheticConfig(customers=80, years=1.5, seed=404, control_share=0.3)  # a seed nobody developed on


@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    """A generated company whose team held back 30 % of the invoices: its tables, folder and loaded company."""
    tables = generate(SEEN)
    folder = write(tables, tmp_path_factory.mktemp("seen"))
    return tables, folder, validate(folder).company


def test_the_team_leaves_the_control_group_alone_and_its_reminders_bring_payments_forward():
    config = SyntheticConfig(customers=40, years=1, seed=5, control_share=0.3)
    tables = generate(config)
    truth, log = tables["truth/invoices"].set_index(Inv.ID), tables[Act.TABLE]
    assert (truth["control"] == in_control(truth.index, 0.3)).all()
    chased_ids = set(log.loc[log[Act.KIND].isin(["reminder", "call", "promise"]), Act.INVOICE])
    assert chased_ids and not chased_ids & set(truth.index[truth["control"]])
    # Both outcomes per invoice: a reminder never delays, sometimes brings the payment forward; what happened is
    # the chased outcome for a reminded invoice and the unchased one otherwise.
    assert (truth["pay_date_chased"] <= truth["pay_date_unchased"]).all()
    sooner = truth["pay_date_chased"] < truth["pay_date_unchased"]
    assert 0.02 < sooner[truth["reminded"]].mean() < 0.5
    control = truth[truth["control"]]
    assert len(control) > 50 and control["pay_date_true"].equals(control["pay_date_unchased"])
    happened = truth["pay_date_chased"].where(truth["reminded"], truth["pay_date_unchased"])
    assert happened.equals(truth["pay_date_true"])
    effect = tables["truth/actions"].set_index(Act.ID)["effect_days"]
    reminders = log[log[Act.KIND] == "reminder"]
    expected = (truth["pay_date_unchased"] - truth["pay_date_true"]).dt.days.reindex(reminders[Act.INVOICE])
    assert (effect.reindex(reminders[Act.ID]).to_numpy() == expected.to_numpy()).all() and expected.gt(0).any()
    # A disputed invoice hardly responds: disputes delay.
    disputed = tables[Inv.TABLE].set_index(Inv.ID)[Inv.DISPUTE].notna().reindex(truth.index)
    assert sooner[truth["reminded"] & disputed].mean() < sooner[truth["reminded"] & ~disputed].mean()
    again = generate(config)
    for name in ("truth/invoices", "truth/actions", Act.TABLE, Inv.TABLE):
        pd.testing.assert_frame_equal(tables[name], again[name])
    assert generate(SyntheticConfig(customers=40, years=1, seed=5))["truth/invoices"]["control"].sum() == 0


def test_the_folder_s_policy_holds_back_what_the_team_held_back(seen, tmp_path):
    _, folder, _ = seen
    assert load_policy(folder).dunning.control_share == SEEN.control_share
    assert yaml.safe_load((folder / "likvid.yaml").read_text())["base_currency"] == "EUR"
    plain = write(generate(SyntheticConfig(customers=10, years=0.5, seed=2)), tmp_path / "plain")
    assert "dunning" not in yaml.safe_load((plain / "likvid.yaml").read_text())


def _true_effect(tables, outcomes: pd.DataFrame, config: EffectConfig) -> dict[str, float]:
    """The effect on exactly the invoices compared, from both of their true outcomes."""
    truth = tables["truth/invoices"].set_index(Inv.ID).reindex(outcomes[Inv.ID])
    due = pd.to_datetime(outcomes[Inv.DUE]).to_numpy()
    days = {k: (truth[f"pay_date_{k}"].to_numpy() - due) / np.timedelta64(1, "D") for k in ("chased", "unchased")}
    return {"paid_within_30d": float(np.mean((days["chased"] <= config.window_days).astype(float)
                                             - (days["unchased"] <= config.window_days))),
            "days_to_pay": float(np.mean(np.minimum(days["chased"], config.cap_days)
                                         - np.minimum(days["unchased"], config.cap_days)))}


def test_the_measured_effect_matches_the_truth_within_its_interval(seen):
    tables, folder, company = seen
    policy = load_policy(folder)
    outcomes = chasing_outcomes(company, None, policy)
    report = chasing_effect(outcomes, policy).set_index(["metric", "arm"])
    truth = _true_effect(tables, outcomes, EffectConfig())
    for metric, true in truth.items():
        row = report.loc[(metric, DIFFERENCE)]
        assert row["low"] <= true <= row["high"], (metric, true, row[["value", "low", "high"]].to_dict())
    assert truth["days_to_pay"] < -0.2 and truth["paid_within_30d"] > 0  # there is an effect to find
    assert report.loc[("days_to_pay", DIFFERENCE), "high"] - report.loc[("days_to_pay", DIFFERENCE), "low"] < 2.5
    # The arms are the policy's draw, about its share; the control arm was never contacted, most chased ones were.
    share = (outcomes["arm"] == CONTROL).mean()
    assert abs(share - SEEN.control_share) < 0.05 and len(outcomes) > 1000
    contacted = report.xs("contacted_within_30d", level="metric")["value"]
    assert contacted[CONTROL] == 0 and contacted[CHASED] > 0.4


def test_outcomes_by_hand(tmp_path):
    invoices = [{"invoice_id": i, "customer_id": c, "issue_date": "2025-01-15", "due_date": d, "amount": 1000,
                 "currency": "EUR"}
                for i, c, d in [("J1", "C1", "2025-03-01"), ("J2", "C2", "2025-03-10"), ("J3", "C1", "2025-04-01"),
                                ("J4", "C1", "2025-02-20"), ("J5", "C2", "2025-03-15"), ("J6", "C2", "2025-05-20"),
                                ("J7", "C3", "2025-04-01")]]
    payments = [{"payment_id": p, "invoice_id": i, "date": d, "amount": a} for p, i, d, a in [
        ("P1", "J1", "2025-02-25", 400), ("P2", "J1", "2025-03-20", 600),  # settled 19 days after due
        ("P3", "J2", "2025-03-30", 500), ("P4", "J2", "2025-05-20", 500),  # half in 30 days, settled after 71
        ("P5", "J5", "2025-03-15", 1000), ("P6", "J4", "2025-03-01", 1000)]]
    actions = [{"action_id": a, "date": d, "kind": k, "invoice_id": i, "customer_id": c} for a, d, k, i, c in [
        ("A1", "2025-02-25", "note", "J4", ""), ("A2", "2025-03-08", "reminder", "J1", ""),
        ("A3", "2025-03-12", "call", "", "C2")]]
    folder = write_tables(tmp_path / "desk", customers=[{"customer_id": c} for c in ("C1", "C2", "C3")],
                          invoices=invoices, payments=payments, actions=actions)
    company = validate(folder, today="2025-07-15").company
    policy = parse_policy({"dunning": {"control_share": 0.5, "no_dunning": ["C3"]}})
    out = chasing_outcomes(company, "2025-06-30", policy).set_index(Inv.ID)
    # J4 fell due before the log began, J5 was paid on its due date, J6 is due less than 60 days before as-of,
    # J7's customer is never chased.
    assert list(out.index) == ["J1", "J2", "J3"]
    assert out["paid_within"].tolist() == [True, False, False]
    assert out["days_to_pay"].tolist() == [19, 60, 60]
    assert out["cash_share"].tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert out["contacted"].tolist() == [True, True, False]  # J2 through the call to its customer
    assert out["arm"].tolist() == np.where(in_control(out.index, 0.5), CONTROL, CHASED).tolist()


def test_welch_interval():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 1.0, 2.0])
    d, lo, hi = welch_interval(a, b)
    se = np.sqrt(np.var(a, ddof=1) / 4 + np.var(b, ddof=1) / 3)
    assert d == pytest.approx(1.5) and hi - d == pytest.approx(1.959964 * se) and d - lo == pytest.approx(hi - d)


def test_no_control_group_is_reported_as_not_measurable(seen):
    _, _, company = seen
    policy = parse_policy({})
    outcomes = chasing_outcomes(company, None, policy)
    assert (outcomes["arm"] == CHASED).all()
    diff = chasing_effect(outcomes, policy).query("arm == @DIFFERENCE")
    assert diff["value"].isna().all() and diff["definition"].str.contains("control_share is 0%").all()


def test_without_a_log_or_invoices_to_compare_it_says_why(seen, tmp_path):
    _, _, company = seen
    bare = company.replace(actions=company["actions"].iloc[:0])
    with pytest.raises(ValueError, match="no collections log"):
        chasing_outcomes(bare)
    with pytest.raises(ValueError, match="nothing to compare"):
        chasing_outcomes(company, company["actions"]["date"].min() + pd.Timedelta(days=10))
    with pytest.raises(ValueError, match="window_days"):
        EffectConfig(window_days=90, cap_days=60)


def test_collection_kpis_by_hand_and_by_owner(tmp_path):
    invoices = [
        {"invoice_id": "I1", "customer_id": "C1", "issue_date": "2025-02-01", "due_date": "2025-03-03",
         "amount": 1000, "paid_date": "2025-04-15"},  # open when the window starts, settled in it after 73 days
        {"invoice_id": "I2", "customer_id": "C1", "issue_date": "2025-04-10", "due_date": "2025-05-10",
         "amount": 500, "paid_date": "2025-05-20"},  # invoiced, due and settled (40 days) in the window
        {"invoice_id": "I3", "customer_id": "C2", "issue_date": "2025-05-01", "due_date": "2025-05-31",
         "amount": 2000, "paid_date": ""},  # due in the window, overdue at as-of
        {"invoice_id": "I4", "customer_id": "C2", "issue_date": "2025-06-15", "due_date": "2025-07-15",
         "amount": 300, "paid_date": ""},  # not yet due
    ]
    folder = write_tables(tmp_path / "kpi", customers=[{"customer_id": "C1"}, {"customer_id": "C2"}],
                          invoices=invoices)
    company = validate(folder, today="2025-07-15").company
    at = "2025-06-30"

    def figures(frame: pd.DataFrame, owner: str = "") -> pd.Series:
        return frame[frame["owner"] == owner].set_index("metric")["value"]

    everyone = collection_kpis(company, at)
    assert list(everyone.columns) == REPORT_COLUMNS and set(everyone["owner"]) == {""}
    f = figures(everyone)
    assert f["collection_rate"] == pytest.approx(500 / 2500)
    assert f["overdue_rate"] == pytest.approx(2000 / 2300)
    assert f["average_days_to_collect"] == pytest.approx((1000 * 73 + 500 * 40) / 1500)
    assert f["collection_effectiveness_index"] == pytest.approx(100 * (3800 - 2300) / (3800 - 300))

    owned = company.replace(customers=company["customers"].assign(**{OWNER: ["Anna", "Bo"]}))
    by = collection_kpis(owned, at)
    assert set(by["owner"]) == {"", "Anna", "Bo"}
    pd.testing.assert_series_equal(figures(by), f)
    anna, bo = figures(by, "Anna"), figures(by, "Bo")
    assert anna["collection_rate"] == 1 and np.isnan(anna["overdue_rate"]) and anna[
        "collection_effectiveness_index"] == pytest.approx(100)
    assert bo["collection_rate"] == 0 and bo["collection_effectiveness_index"] == pytest.approx(0)
    assert np.isnan(bo["average_days_to_collect"]) and anna["average_days_to_collect"] == pytest.approx(62)


def _outcomes(rows: list[tuple[str, str, int, int]]) -> pd.DataFrame:
    """Compared invoices from (customer, arm, invoices, of which unpaid 30 days after due)."""
    parts = [pd.DataFrame({Inv.CUSTOMER: c, "arm": arm, "paid_within": np.arange(n) >= unpaid})
             for c, arm, n, unpaid in rows]
    return pd.concat(parts, ignore_index=True)


def test_the_uplift_is_measured_per_customer_and_only_once_it_shows():
    # Overall, chasing halves what stays unpaid; K responds strongly on many invoices, F is barely seen.
    outcomes = _outcomes([("K", CHASED, 300, 15), ("K", CONTROL, 100, 40), ("M", CHASED, 300, 150),
                          ("M", CONTROL, 100, 40), ("F", CHASED, 4, 4), ("F", CONTROL, 1, 1)])
    up = measured_uplift(outcomes, prior_invoices=20)
    unpaid_chased, unpaid_control = (15 + 150 + 4) / 604, (40 + 40 + 1) / 201
    assert up.overall == pytest.approx(1 - unpaid_chased / unpaid_control) and up.low < up.overall < up.high
    k = 1 - ((15 + 20 * unpaid_chased) / 320) / ((40 + 20 * unpaid_control) / 120)
    assert up.customers["K"] == pytest.approx(k) and up.customers["K"] > up.overall > up.customers["M"]
    assert up.customers["M"] == 0  # chasing M did no good: clipped at zero, never negative
    assert abs(up.customers["F"] - up.overall) < abs(up.customers["K"] - up.overall)
    assert measured_uplift(_outcomes([("K", CHASED, 300, 60), ("K", CONTROL, 100, 21)])) is None  # no clear effect
    assert measured_uplift(_outcomes([("K", CHASED, 300, 60)])) is None  # no control group


def test_the_worklist_ranks_overdue_invoices_by_the_measured_uplift(small_loaded, fitted):
    from training.collections import ranked_invoices
    from training.decisions.effect import Uplift

    at, models = fitted["at"] - pd.Timedelta(days=45), (fitted["late"], fitted["timing"])
    assumed = ranked_invoices(small_loaded, at, models=models).set_index("invoice_id")
    overdue = assumed[assumed["days_overdue"] > 0]
    first = overdue["customer_id"].iloc[0]
    up = Uplift(overall=0.1, low=0.05, high=0.15, customers=pd.Series({first: 0.9}))
    measured = ranked_invoices(small_loaded, at, models=models, uplift=up).set_index("invoice_id")
    ratio = (measured["expected_gain"] / assumed["expected_gain"]).reindex(overdue.index)
    ratio = ratio[assumed["expected_gain"].reindex(overdue.index) > 50]  # away from the rounding to cents
    mine = overdue.loc[ratio.index, "customer_id"] == first
    assert mine.any() and (~mine).any()
    assert np.allclose(ratio[mine], 0.9 / 0.3, rtol=0.01) and np.allclose(ratio[~mine], 0.1 / 0.3, rtol=0.01)
    assert measured.loc[ratio.index, "why"].str.contains("measured against the control group").all()
    not_due = assumed["days_overdue"] <= 0
    assert np.allclose(measured.loc[not_due[not_due].index, "expected_gain"], assumed.loc[not_due, "expected_gain"])


runner = CliRunner()


def test_the_command_writes_the_report_and_names_a_missing_log(seen, tmp_path):
    _, folder, _ = seen
    out = tmp_path / "report.csv"
    result = runner.invoke(app, ["collections-report", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert list(rows.columns) == REPORT_COLUMNS and set(rows["section"]) == {"effect", "kpi"}
    expected = collections_report(validate(folder).company, None, load_policy(folder))
    assert rows["value"].to_numpy() == pytest.approx(expected["value"].to_numpy(), nan_ok=True)
    assert "days_to_pay" in result.output and "control" in result.output and "collection_rate" in result.output
    bare = write_tables(tmp_path / "bare", customers=[{"customer_id": "C1"}], invoices=[
        {"invoice_id": "I1", "customer_id": "C1", "issue_date": "2025-01-01", "due_date": "2025-01-31",
         "amount": 10, "paid_date": ""}])
    result = runner.invoke(app, ["collections-report", str(bare)])
    assert result.exit_code == 2 and "no collections log" in result.output
    shown = runner.invoke(app, ["collections-report", "--help"], terminal_width=200).output
    assert all(option in shown for option in ("--as-of", "--out", "--config", "--mapping"))
