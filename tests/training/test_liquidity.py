"""Surplus and gaps (``training.cash.liquidity``): a hand-made forecast with a surplus run and a dip below the floor,
every option's amount, cost and arrival week, the no-opening-balance case, bad settings, the command and the
endpoint."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.cash import NO_OPENING_BALANCE
from features.policy import PolicyError, parse_policy
from training.cash.liquidity import (
    CREDIT_LINE,
    DELAY_BILL,
    FACTORING,
    GAP,
    OPTION_COLUMNS,
    SKIP_DISCOUNT,
    SURPLUS,
    UNKNOWN,
    WEEK_COLUMNS,
    liquidity,
    summary,
)

AT = pd.Timestamp("2025-06-29")
P10 = [30000, 28000, 26000, 8000, 4000, 9000, 20000, 25000]  # floor 10,000; buffer 5,200; gap in weeks 4-6
POLICY = parse_policy({"cash_floor": 10000, "liquidity": {
    "buffer_share_of_monthly_outflows": 0.10, "placement_min_weeks": 2, "placement_rate": 0.03,
    "credit_line_limit": 5000, "credit_line_rate": 0.073, "factoring_advance_rate": 0.8, "factoring_fee": 0.02,
    "factoring_max_p_late": 0.25, "discretionary_suppliers": ["S2"], "bill_delay_days": 14, "bill_delay_fee": 0.01}})


def day(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


def hand_forecast(opening: float | None = 50000.0) -> pd.DataFrame:
    """Eight weeks from AT; outflows 12,000 a week (52,000 a month, so a 10 % buffer is 5,200)."""
    k = np.arange(1, len(P10) + 1)
    return pd.DataFrame({
        "week": k, "week_start": AT + pd.to_timedelta(7 * (k - 1) + 1, unit="D"),
        "week_end": AT + pd.to_timedelta(7 * k, unit="D"), "balance_p10": np.array(P10, float),
        "outflow_p50": 12000.0, "opening_balance": np.nan if opening is None else opening,
        "opening_note": NO_OPENING_BALANCE if opening is None else ""})


RECEIVABLES = pd.DataFrame({
    "invoice_id": ["A", "B", "C", "D"], "amount_open": [10000.0, 9000.0, 5000.0, 2000.0],
    "p_late": [0.10, 0.50, 0.05, 0.20],
    # A is paid in week 6; B is unsafe; C is paid in week 2, before the advance could help; D may never be paid
    "predicted_pay_date": [day("2025-08-10"), day("2025-08-10"), day("2025-07-08"), pd.NaT]})
BILLS = pd.DataFrame({
    "bill_id": ["B1", "B2", "B3", "B4"], "supplier_id": ["S1", "S1", "S2", "S2"],
    "due_date": [day("2025-08-05"), day("2025-07-30"), day("2025-07-23"), day("2025-09-30")],
    "amount": [3000.0, 1000.0, 4000.0, 7000.0]})
DISCOUNTS = pd.DataFrame({
    "bill_id": ["B1", "B2"], "supplier_id": ["S1", "S1"], "amount": [3000.0, 1000.0], "discount_pct": [2.0, 1.0],
    "pay_by": [day("2025-07-20"), day("2025-06-20")], "annualized_return": [0.45, 0.3], "cost_of_capital": 0.08,
    "take": [True, False], "cash_ok": pd.array([True, pd.NA], dtype="boolean"),
    "reason": ["taken", "window closed on 2025-06-20"]})


@pytest.fixture(scope="module")
def plan():
    return liquidity(hand_forecast(), POLICY, receivables=RECEIVABLES, discounts=DISCOUNTS, bills=BILLS)


def test_weeks_buffer_headroom_status_and_gap(plan):
    w = plan.weeks
    assert list(w.columns) == WEEK_COLUMNS
    assert plan.monthly_outflows == pytest.approx(52000.0)
    assert (w["buffer"] == 5200.0).all() and (w["floor"] == 10000.0).all()
    assert w["headroom"].tolist() == [14800, 12800, 10800, -7200, -11200, -6200, 4800, 9800]
    assert w["status"].tolist() == [SURPLUS] * 3 + [GAP] * 3 + [SURPLUS] * 2
    assert w["gap"].tolist() == [0, 0, 0, 2000, 6000, 1000, 0, 0]
    assert w["opening_needed"].tolist() == [65200 - b for b in P10]  # 50,000 opening: floor + buffer − flow
    assert (w["opening_note"] == "").all()


def test_week_inside_the_buffer_is_neither_surplus_nor_gap():
    fc = hand_forecast()
    fc.loc[0, "balance_p10"] = 12000.0  # above the floor, below floor plus buffer
    w = liquidity(fc, POLICY).weeks
    assert w.loc[0, "status"] == "inside buffer" and w.loc[0, "gap"] == 0 and w.loc[0, "surplus_placeable"] == 0


def test_surplus_run_is_placeable_for_its_length_at_its_least_headroom(plan):
    w = plan.weeks
    # weeks 1-3 above floor plus buffer: from week 1, the least of 14,800, 12,800, 10,800 for 3 weeks
    assert w["surplus_placeable"].tolist() == [10800, 10800, 0, 0, 0, 0, 4800, 0]
    assert w["placeable_weeks"].tolist() == [3, 2, 0, 0, 0, 0, 2, 0]  # a run shorter than 2 weeks is not placed
    assert w.loc[0, "placement_earns"] == pytest.approx(round(10800 * 0.03 * 21 / 365, 2))
    assert w.loc[6, "placement_earns"] == pytest.approx(round(4800 * 0.03 * 14 / 365, 2))
    longer = liquidity(hand_forecast(), parse_policy({"cash_floor": 10000, "liquidity": {"placement_min_weeks": 4}}))
    assert longer.weeks["surplus_placeable"].eq(0).all()  # no run of 4 weeks


def test_every_option_amount_cost_arrival_and_rank(plan):
    o = plan.options.set_index("option")
    assert list(plan.options.columns) == OPTION_COLUMNS
    assert plan.options["option"].tolist() == [CREDIT_LINE, DELAY_BILL, SKIP_DISCOUNT, FACTORING]  # cheapest first
    assert plan.options["rank"].tolist() == [1, 2, 3, 4]
    line = o.loc[CREDIT_LINE]  # drawn at once, the gap up to the 5,000 limit: 2,000 + 5,000 + 1,000 for a week each
    assert (line["amount"], line["arrives_week"], line["until_week"], line["closes"]) == (5000, 4, 6, 5000)
    assert line["cost"] == pytest.approx(8000 * 0.073 * 7 / 365) and line["cost_per_unit_week"] == pytest.approx(
        0.073 * 7 / 365)
    assert "leaves 1,000" in line["note"]
    delay = o.loc[DELAY_BILL]  # B3 (S2, due week 4) paid 14 days late, in week 6: 4,000 stays weeks 4-5, fee 1 %
    assert (delay["item"], delay["amount"], delay["arrives_week"], delay["until_week"]) == ("B3", 4000, 4, 5)
    assert delay["cost"] == pytest.approx(40) and delay["closes"] == 4000 and delay["gap_weeks"] == 2
    assert delay["cost_per_unit_week"] == pytest.approx(40 / 6000)
    skip = o.loc[SKIP_DISCOUNT]  # B1 paid at due (week 6) not by pay-by (week 3): 2,940 stays weeks 3-5
    assert (skip["item"], skip["amount"], skip["arrives_week"], skip["until_week"]) == ("B1", 2940, 3, 5)
    assert skip["cost"] == pytest.approx(60) and skip["cost_per_unit_week"] == pytest.approx(60 / 4940)
    assert "planned by discounts" in skip["note"]
    factor = o.loc[FACTORING]  # only A: 80 % of 10,000 the week after (week 2) until it would be paid (week 6)
    assert (factor["item"], factor["amount"], factor["arrives_week"], factor["until_week"]) == ("A", 8000, 2, 5)
    assert factor["cost"] == pytest.approx(200) and factor["closes"] == 6000
    assert factor["cost_per_unit_week"] == pytest.approx(200 / 8000)
    # cumulative: the credit line leaves 1,000 in week 5; the delayed bill closes it
    assert plan.options["gap_left"].tolist() == [1000, 0, 0, 0]


def test_options_left_out_or_empty_say_why():
    bare = parse_policy({"cash_floor": 10000})
    plan = liquidity(hand_forecast(), bare)
    assert plan.options.empty
    assert any("credit_line_limit is 0" in n for n in plan.notes)
    assert any("discretionary_suppliers is empty" in n for n in plan.notes)
    assert any("no scored receivables" in n for n in plan.notes)
    assert "nothing closes it" in summary(plan, bare)
    strict = parse_policy({"cash_floor": 10000, "liquidity": {"factoring_max_p_late": 0.01}})
    assert any("factoring_max_p_late" in n for n in liquidity(hand_forecast(), strict, receivables=RECEIVABLES).notes)


def test_no_gap_no_options_and_a_placement_line():
    plan = liquidity(hand_forecast(), parse_policy({"cash_floor": 0}))
    assert plan.options.empty and (plan.weeks["gap"] == 0).all()
    assert "can be placed" in summary(plan, parse_policy({"cash_floor": 0}))


def test_without_opening_balance_gap_and_surplus_are_withheld_not_zero():
    plan = liquidity(hand_forecast(None), POLICY, receivables=RECEIVABLES, discounts=DISCOUNTS, bills=BILLS)
    w = plan.weeks
    assert not plan.opening_known and plan.options.empty
    assert (w["status"] == UNKNOWN).all() and (w["opening_note"] == NO_OPENING_BALANCE).all()
    for col in ("headroom", "gap", "surplus_placeable", "placeable_weeks", "placement_earns"):
        assert w[col].isna().all(), col
    assert w["opening_needed"].tolist() == [15200 - b for b in P10]  # the cumulative flow from 0
    line = summary(plan, POLICY)
    assert "No opening balance" in line and f"{15200 - 4000:,.0f}" in line
    # read back from a CSV, an empty note is NaN: still a known balance
    assert liquidity(hand_forecast().assign(opening_note=np.nan), POLICY).opening_known


def test_bad_inputs_name_the_column():
    with pytest.raises(ValueError, match="balance_p10"):
        liquidity(hand_forecast().drop(columns="balance_p10"), POLICY)
    with pytest.raises(ValueError, match="no weeks"):
        liquidity(hand_forecast().head(0), POLICY)
    with pytest.raises(ValueError, match="receivables lacks column predicted_pay_date"):
        liquidity(hand_forecast(), POLICY, receivables=RECEIVABLES.drop(columns="predicted_pay_date"))


@pytest.mark.parametrize("setting, value", [
    ("buffer_share_of_monthly_outflows", 1.5), ("placement_min_weeks", 0), ("placement_rate", -0.01),
    ("credit_line_limit", -1), ("factoring_advance_rate", 0), ("factoring_max_p_late", 2),
    ("bill_delay_days", 0), ("unknown_setting", 1)])
def test_bad_policy_values_name_the_setting(setting, value):
    with pytest.raises(PolicyError, match=f"liquidity.{setting}"):
        parse_policy({"liquidity": {setting: value}})


def test_advance_and_fee_together_may_not_exceed_the_invoice():
    with pytest.raises(PolicyError, match="factoring_advance_rate plus factoring_fee"):
        parse_policy({"liquidity": {"factoring_advance_rate": 0.9, "factoring_fee": 0.2}})


def test_command_exits_2_naming_a_bad_setting(tiny, tmp_path):
    from typer.testing import CliRunner

    from serving.cli import app

    config = tmp_path / "bad.yaml"
    config.write_text("liquidity:\n  placement_rate: 2\n")
    result = CliRunner().invoke(app, ["liquidity", str(tiny), "--out", str(tmp_path / "l.csv"), "--config",
                                      str(config)])
    assert result.exit_code == 2
    assert "liquidity.placement_rate" in result.output + (result.stderr or "")


# ---- on the small generated company: the plan from the data, and the endpoint ----


@pytest.fixture(scope="module")
def forecast_models(small_loaded, fitted):
    from training.cash.model import ForecastModels, build_cash_model

    return ForecastModels(fitted["timing"], build_cash_model().fit(small_loaded, fitted["at"]))


def gap_policy(fc: pd.DataFrame, **liquidity) -> object:
    """A floor set between the forecast's lowest and highest p10, so that some weeks have a gap."""
    low, high = fc["balance_p10"].min(), fc["balance_p10"].max()
    return parse_policy({"cash_floor": float((low + high) / 2), "liquidity": {"credit_line_limit": 1e9, **liquidity}})


def test_plan_from_the_data_follows_its_forecast(small_loaded, fitted, forecast_models):
    from training.cash.liquidity import plan_liquidity

    at = fitted["at"]
    fc, base = plan_liquidity(small_loaded, at, 8, models=forecast_models, late=fitted["late"], paths=100)
    assert base.opening_known and base.weeks["balance_p10"].tolist() == fc["balance_p10"].tolist()
    policy = gap_policy(fc)
    fc2, plan = plan_liquidity(small_loaded, at, 8, models=forecast_models, late=fitted["late"], policy=policy,
                               paths=100)
    gaps = plan.weeks["gap"]
    assert (gaps > 0).any() and (gaps > 0).tolist() == fc2["below_floor"].tolist()
    o = plan.options
    assert len(o) and o["cost_per_unit_week"].is_monotonic_increasing
    line = o[o["option"] == CREDIT_LINE].iloc[0]  # a limit above any gap closes it all, at once
    assert line["closes"] == pytest.approx(gaps.max()) and line["arrives_week"] == int(plan.weeks.loc[gaps > 0,
                                                                                                      "week"].min())
    assert o["gap_left"].iloc[-1] == 0
    factored = o[o["option"] == FACTORING]
    assert (factored["arrives_week"] >= 2).all()  # the week after the request


@pytest.fixture
def serve_state(monkeypatch, small_loaded, small_company, fitted, forecast_models):
    """The service's start-up replaced by a state built from the fitted models (no registry); yields a setter that
    swaps the company (e.g. one without bank balances)."""
    from features.asof import as_of
    from features.contract import Cust, Inv
    from features.invoices import FeatureConfig, history
    from serving import service
    from serving.state import Champions, State

    def state(company, policy):
        at, cfg = fitted["at"], FeatureConfig()
        view = as_of(company, at)
        return State(company=company, at=at, data=str(small_company), policy=policy, company_key="small",
                     models=Champions(fitted["late"], fitted["timing"], None, forecast_models, ()), cfg=cfg,
                     known=history(company, at, cfg), customers=frozenset(view[Cust.TABLE][Cust.ID]),
                     open_invoices=int(view[Inv.TABLE][Inv.PAID].isna().sum()))

    def use(company=small_loaded, policy=parse_policy({})):
        monkeypatch.setattr(service, "load_state", lambda settings: state(company, policy))

    return use


def test_endpoint_answers_the_plan_and_names_bad_fields(serve_state):
    from starlette.testclient import TestClient

    from tests.serving.test_service import asgi_app

    serve_state()
    with TestClient(asgi_app()) as client:
        r = client.post("/liquidity", json={"weeks": 6})
        assert r.status_code == 200, r.text
        body = r.json()
        assert [w["week"] for w in body["weeks"]] == list(range(1, 7)) and body["opening_known"] is True
        assert set(body["weeks"][0]) == set(WEEK_COLUMNS) and body["summary"]
        for payload, field in (({"weeks": 0}, "weeks"), ({"as_of": "1990-01-01"}, "as_of"),
                               ({"as_of": "2199-01-01"}, "as_of"), ({"week": 6}, "week"),
                               ({"shocks": {"customer_delay_days": 1e6}}, "customer_delay_days"),
                               ({"weeks": "6"}, "weeks")):
            r = client.post("/liquidity", json=payload)
            assert r.status_code == 400, payload
            assert field in str(r.json()["detail"][0]["loc"]), r.text


def test_endpoint_without_bank_balances_says_so(serve_state, small_loaded):
    from starlette.testclient import TestClient

    from features.load import Company
    from tests.serving.test_service import asgi_app

    bare = Company({k: v for k, v in small_loaded.tables.items() if k != "cash_balances"}, small_loaded.supplied,
                   small_loaded.base_currency)
    serve_state(bare, parse_policy({"cash_floor": 1e6}))
    with TestClient(asgi_app()) as client:
        body = client.post("/liquidity", json={"weeks": 4}).json()
    assert body["opening_known"] is False and body["options"] == []
    assert all(w["gap"] is None and w["headroom"] is None and w["opening_note"] == NO_OPENING_BALANCE
               for w in body["weeks"])
    assert body["summary"].startswith("No opening balance")
