"""The HTTP service through ``Service.to_asgi()``: answers, bad input as named 4xx, the bearer token."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from starlette.testclient import TestClient

from features.asof import as_of
from features.contract import Inv
from features.invoices import FEATURES, invoice_features
from features.limits import MAX_BATCH, TOP_N, WEEKS
from serving import auth, bento, guard, heavy, service
from serving import state as startup
from serving.schemas import ShocksIn
from training import tracking
from training.scoring import SCORE_COLUMNS

TOKEN = "t0k3n-for-tests"


def register(fitted: dict, company, data: Path) -> str:
    """The four families' models registered and promoted as ``data``'s company's champions, with the params a
    training run records: the ``fitted`` late-payment and timing models, and segmentation and cash models
    fitted here on everything known at the same as-of; returns the company key."""
    from training.cash.family import CashExamples, cash_output
    from training.customers import customer_output
    from training.invoice_families import late_payment_output, payment_timing_output
    from training.pipeline import families

    key, at = data.resolve().name, fitted["at"]
    recipes = {f.name: f for f in families()}
    segmentation = recipes[tracking.SEGMENTATION]
    cash = recipes[tracking.CASH_FORECAST]
    example = invoice_features(company, at)[FEATURES].head(3)
    seg_model = segmentation.fit(segmentation.examples(company, at))
    cash_model = cash.fit(CashExamples(company, at, fitted["timing"]))
    cash_example = pd.DataFrame([{"data": str(data), "as_of": f"{at:%Y-%m-%d}", "weeks": 1, "paths": 20}])
    tracking.connect()
    for family, model, ex, output, metric in (
            (tracking.LATE_PAYMENT, fitted["late"], example, late_payment_output, "auc"),
            (tracking.PAYMENT_TIMING, fitted["timing"], example, payment_timing_output, "mae_days"),
            (tracking.SEGMENTATION, seg_model, segmentation.input_example(seg_model, company, at), customer_output,
             "brier"),
            (tracking.CASH_FORECAST, cash_model, cash_example, cash_output, "wape_receipts_likvid")):
        mlflow.set_experiment(family)
        with mlflow.start_run():
            mlflow.log_params({"data": str(data), "as_of": f"{at:%Y-%m-%d}"})
            mlflow.log_metric(metric, 0.5)
            info = tracking.log_model(model, family, key, ex, output)
            tracking.promote(family, key, info.registered_model_version)
    return key


@functools.cache
def asgi_app():
    """One ASGI app for the whole test session: BentoML registers the app's Prometheus metrics in the global
    registry, so a second app in one process is refused. The service itself is made anew at each start-up
    (each ``TestClient`` context), from the environment of that moment."""
    return service.Likvid.to_asgi()


@pytest.fixture(scope="module")
def registry(tmp_path_factory, fitted, small_company, small_loaded):
    folder = tmp_path_factory.mktemp("registry")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        for name in (startup.ENV_DATA, startup.ENV_AS_OF, startup.ENV_CONFIG, auth.ENV_TOKEN, startup.ENV_SOURCE):
            mp.delenv(name, raising=False)
        register(fitted, small_loaded, small_company)
        yield uri


@pytest.fixture(scope="module")
def client(registry):
    with TestClient(asgi_app()) as c:
        yield c


@pytest.fixture(scope="module")
def open_invoices(small_loaded, fitted) -> pd.DataFrame:
    inv = as_of(small_loaded, fitted["at"])[Inv.TABLE]
    return inv[inv[Inv.PAID].isna()]


def request_row(row) -> dict:
    """An invoice-table row as a request row, with the optional fields it has."""
    out = {"invoice_id": row[Inv.ID], "customer_id": row[Inv.CUSTOMER], "issue_date": f"{row[Inv.ISSUE]:%Y-%m-%d}",
           "due_date": f"{row[Inv.DUE]:%Y-%m-%d}", "amount": float(row[Inv.AMOUNT])}
    for col in (Inv.DELIVERY, Inv.ORDER, Inv.CURRENCY):
        if pd.notna(row[col]):
            out[col] = str(row[col])
    if pd.notna(row[Inv.DISPUTE]):
        out[Inv.DISPUTE] = f"{row[Inv.DISPUTE]:%Y-%m-%d}"
    return out


def test_model_info_names_the_company_the_four_champions_and_the_served_data(client, small_company, fitted):
    r = client.get("/model_info")
    assert r.status_code == 200
    body = r.json()
    assert body["company"] == small_company.name
    assert body["service_as_of"] == f"{fitted['at']:%Y-%m-%d}"
    assert body["data"] == str(small_company)
    assert [m["family"] for m in body["models"]] == list(tracking.FAMILIES)
    assert [m["name"] for m in body["models"]] == [tracking.model_name(f, small_company.name)
                                                   for f in tracking.FAMILIES]
    late, timing, segmentation, cash = body["models"]
    assert late["version"] == "1" and late["trained_as_of"] == body["service_as_of"]
    assert late["metrics"] == {"auc": 0.5} and timing["metrics"] == {"mae_days": 0.5}
    assert segmentation["metrics"] == {"brier": 0.5} and cash["metrics"] == {"wape_receipts_likvid": 0.5}
    assert {"/score_invoices", "/customer_risk", "/forecast_cash", "/kpis", "/collection_worklist", "/discounts",
            "/credit_check", "/provision", "/forecast_variance", "/liquidity", "/model_info"} == set(body["endpoints"])


def test_every_open_invoice_scores_as_likvid_score_does(client, open_invoices, small_loaded, fitted):
    """The one feature path: /score_invoices, in one batch and one invoice at a time, gives exactly the p_late and
    reasons of `likvid score` (``training.pipeline.score``) on every open invoice, order ids included."""
    from training.pipeline import score

    rows = [request_row(r) for _, r in open_invoices.iterrows()]
    assert any(Inv.ORDER in row for row in rows)
    batch = score(small_loaded, fitted["at"], models=(fitted["late"], fitted["timing"])).set_index("invoice_id")
    assert len(batch) == len(rows) > 20
    r = client.post("/score_invoices", json={"invoices": rows})
    assert r.status_code == 200, r.text
    got = pd.DataFrame(r.json())
    assert list(got.columns) == SCORE_COLUMNS
    assert list(got["invoice_id"]) == [row["invoice_id"] for row in rows]  # request order
    single = pd.DataFrame([client.post("/score_invoices", json={"invoices": [row]}).json()[0] for row in rows])
    expected = batch.loc[got["invoice_id"]].reset_index()
    compared = ["invoice_id", "p_late", "risk_band", "reason_1", "reason_2", "reason_3"]
    for answer in (got, single):
        pd.testing.assert_frame_equal(answer[compared], expected[compared], check_exact=True)
    assert got["reason_1"].str.len().gt(10).all()


def test_known_open_invoices_are_looked_up_as_scoring_them_gives_and_a_changed_one_is_scored(registry, client,
                                                                                              open_invoices):
    """The start-up table holds, for every open invoice of the served data, exactly the row that scoring it alone
    gives; a request that changes one of its fields is scored, not answered from the table."""
    from serving.schemas import InvoiceIn, ScoreRow

    s = startup.load_state(startup.Settings.from_env())
    table = service._scored_open(s)
    invoices = [InvoiceIn.model_validate_json(json.dumps(request_row(r))) for _, r in open_invoices.iterrows()]
    assert len(table) == len(invoices) > 20
    for inv in invoices:
        assert table[service._invoice_key(inv)] == heavy.Answers(s).score([inv])[0]
    row = request_row(open_invoices.iloc[0])
    looked_up = client.post("/score_invoices", json={"invoices": [row]}).json()[0]
    changed = {**row, "amount": row["amount"] * 3}
    answer = client.post("/score_invoices", json={"invoices": [changed]}).json()[0]
    scored = heavy.Answers(s).score([InvoiceIn.model_validate_json(json.dumps(changed))])[0]
    assert answer == ScoreRow(**scored).model_dump(mode="json") != looked_up


def test_a_new_invoice_is_scored_against_its_customers_history(client, open_invoices, fitted):
    row = {k: v for k, v in request_row(open_invoices.iloc[0]).items() if k != Inv.DISPUTE}
    new = {**row, "invoice_id": "NEW-1", "issue_date": f"{fitted['at']:%Y-%m-%d}",
           "due_date": f"{fitted['at'] + pd.Timedelta(days=30):%Y-%m-%d}", "delivery": "paper",
           "currency": "EUR", "order_id": "ORD-NEW"}
    r = client.post("/score_invoices", json={"invoices": [new]})
    assert r.status_code == 200, r.text
    out = r.json()[0]
    assert out["invoice_id"] == "NEW-1" and 0 <= out["p_late"] <= 1
    assert out["due_date"] == new["due_date"] and out["risk_band"] != "overdue"


def test_a_foreign_invoice_is_scored_in_the_base_and_an_unknown_currency_is_a_400(client, open_invoices, fitted):
    foreign = open_invoices[open_invoices[Inv.CURRENCY] == "SEK"]
    assert len(foreign)
    row = {**request_row(foreign.iloc[0]), "invoice_id": "NEW-SEK"}
    out = client.post("/score_invoices", json={"invoices": [row]}).json()[0]
    assert out["currency"] == "SEK" and out["amount_open_doc"] == pytest.approx(row["amount"])
    assert 0 < out["amount_open"] < row["amount"] / 5  # EUR per SEK is about 0.09 in the generated company
    r = client.post("/score_invoices", json={"invoices": [row, {**row, "invoice_id": "NEW-USD", "currency": "USD"}]})
    assert r.status_code == 400
    assert [loc for loc, msg in _errors(r) if "USD" in msg] == [["invoices", 1, "currency"]]


def _errors(r) -> list[tuple[list, str]]:
    return [(d["loc"], d["msg"]) for d in r.json()["detail"]]


@pytest.mark.parametrize("change, field, words", [
    ({"amount": "lots"}, "amount", "valid number"),
    ({"amount": -5}, "amount", "greater than"),
    ({"amount": 0}, "amount", "greater than 0"),
    ({"issue_date": 20250101}, "issue_date", "valid date"),
    ({"due_date": "31/12/2025"}, "due_date", "date"),
    ({"due_date": "2020-01-01"}, "due_date", "before issue_date"),
    ({"delivery": "pigeon"}, "delivery", "electronic"),
    ({"customer_id": 7}, "customer_id", "valid string"),
    ({"amount": True}, "amount", "valid number"),
    ({"amount": "12.5"}, "amount", "valid number"),
    ({"issue_date": True}, "issue_date", "valid date"),
    ({"paid_date": "2025-01-01"}, "paid_date", "Extra inputs are not permitted"),
    ({"some_extra_column": "x"}, "some_extra_column", "Extra inputs are not permitted"),
])
def test_bad_fields_get_a_400_naming_the_field(client, open_invoices, change, field, words):
    row = {**request_row(open_invoices.iloc[0]), **change}
    r = client.post("/score_invoices", json={"invoices": [row]})
    assert r.status_code == 400
    (loc, msg), = _errors(r)
    assert loc == ["invoices", 0, field] and words in msg


def test_missing_fields_unknown_customers_and_future_invoices_are_named(client, open_invoices, fitted):
    base = {k: v for k, v in request_row(open_invoices.iloc[0]).items() if k != Inv.DISPUTE}
    missing = {k: v for k, v in base.items() if k != "due_date"}
    r = client.post("/score_invoices", json={"invoices": [missing]})
    assert r.status_code == 400 and _errors(r)[0][0] == ["invoices", 0, "due_date"]
    r = client.post("/score_invoices", json={"invoices": [base, {**base, "invoice_id": "X", "customer_id": "nobody"}]})
    assert r.status_code == 400
    assert _errors(r) == [(["invoices", 1, "customer_id"],
                           "unknown customer id 'nobody': not in the served data's customers")]
    later = f"{fitted['at'] + pd.Timedelta(days=1):%Y-%m-%d}"
    r = client.post("/score_invoices", json={"invoices": [{**base, "issue_date": later, "due_date": later}]})
    assert r.status_code == 400 and _errors(r)[0][0] == ["invoices", 0, "issue_date"]
    assert "after the service's as-of" in _errors(r)[0][1]
    r = client.post("/score_invoices", json={"invoices": [base, base]})
    assert r.status_code == 400 and "more than once" in _errors(r)[0][1]


@pytest.mark.parametrize("path, body, field", [
    ("/forecast_cash", {"week": 20}, "week"),
    ("/forecast_cash", {"weeks": 4, "shock": {}}, "shock"),
    ("/kpis", {"asof": "2025-01-01"}, "asof"),
    ("/collection_worklist", {"top": 5}, "top"),
    ("/discounts", {"weeks": 4}, "weeks"),
    ("/customer_risk", {"customer_ids": ["C1"], "limit": 1}, "limit"),
    ("/score_invoices", {"invoices": [], "top_n": 3}, "top_n"),
])
def test_unknown_top_level_keys_are_refused_by_name(client, path, body, field):
    r = client.post(path, json=body)
    assert r.status_code == 400, r.text
    assert ([field], "Extra inputs are not permitted") in _errors(r)


@pytest.mark.parametrize("weeks", [0, WEEKS.high + 1, 60, 104, 105, -1, True, False, 13.0, 2.5, "13", None, [13]])
def test_weeks_outside_the_limit_or_not_a_whole_number_are_a_400_naming_weeks(client, weeks):
    r = client.post("/forecast_cash", json={"weeks": weeks})
    assert r.status_code == 400, (weeks, r.text)
    assert _errors(r)[0][0] == ["weeks"]


def test_weeks_at_the_limits_are_answered(client):
    for weeks in (WEEKS.low, WEEKS.high):
        r = client.post("/forecast_cash", json={"weeks": weeks})
        assert r.status_code == 200, (weeks, r.text)
        assert len(r.json()) == weeks


@pytest.mark.parametrize("path, body, loc", [
    ("/forecast_cash", {"shocks": {"bogus": 1}}, ["shocks", "bogus"]),
    ("/forecast_cash", {"shocks": {"sales_change_pct": True}}, ["shocks", "sales_change_pct"]),
    ("/collection_worklist", {"top_n": True}, ["top_n"]),
    ("/collection_worklist", {"top_n": TOP_N.high + 1}, ["top_n"]),
    ("/collection_worklist", {"top_n": 5.0}, ["top_n"]),
    ("/kpis", {"as_of": 20250101}, ["as_of"]),
    ("/kpis", {"as_of": True}, ["as_of"]),
    ("/customer_risk", {"customer_ids": "C0001"}, ["customer_ids"]),
    ("/customer_risk", {"customer_ids": [1]}, ["customer_ids", 0]),
])
def test_mistyped_values_are_a_400_naming_the_field(client, path, body, loc):
    r = client.post(path, json=body)
    assert r.status_code == 400, r.text
    assert _errors(r)[0][0] == loc


@pytest.mark.parametrize("path", ["/score_invoices", "/customer_risk", "/forecast_cash", "/kpis",
                                  "/collection_worklist", "/discounts"])
def test_malformed_json_and_non_objects_are_a_400_on_every_endpoint(client, path):
    for content in (b"{not json", b"[1, 2]", b"13", b'"x"', b"null", b"\xff\xfe"):
        r = client.post(path, content=content, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (path, content, r.text)


def test_an_empty_body_means_the_defaults_or_names_what_is_missing(client):
    assert client.post("/kpis", content=b"").status_code == 200
    r = client.post("/score_invoices", content=b"")
    assert r.status_code == 400 and _errors(r)[0][0] == ["invoices"]
    r = client.post("/customer_risk", content=b"")
    assert r.status_code == 400 and _errors(r)[0][0] == ["customer_ids"]


def test_empty_oversize_and_malformed_bodies_are_4xx(client, open_invoices):
    assert client.post("/score_invoices", json={"invoices": []}).status_code == 400
    row = request_row(open_invoices.iloc[0])
    too_many = [{**row, "invoice_id": f"I{i}"} for i in range(MAX_BATCH + 1)]
    r = client.post("/score_invoices", json={"invoices": too_many})
    assert r.status_code == 400 and _errors(r)[0][0] == ["invoices"]
    assert client.post("/score_invoices", json={}).status_code == 400
    assert client.post("/score_invoices", content=b"{not json").status_code == 400
    assert client.post("/score_invoices", json=[1, 2]).status_code == 400


def test_a_full_batch_of_ten_thousand_is_accepted(client, open_invoices):
    row = request_row(open_invoices.iloc[0])
    batch = [{**row, "invoice_id": f"I{i}"} for i in range(MAX_BATCH)]
    r = client.post("/score_invoices", json={"invoices": batch})
    assert r.status_code == 200 and len(r.json()) == MAX_BATCH


def test_kpis_match_the_function_and_refuse_a_later_as_of(client, small_loaded, fitted):
    from features.working_capital import kpis

    r = client.post("/kpis", json={})
    assert r.status_code == 200
    assert [k["name"] for k in r.json()] == list(kpis(small_loaded, fitted["at"])["name"])
    r = client.post("/kpis", json={"as_of": f"{fitted['at'] + pd.Timedelta(days=1):%Y-%m-%d}"})
    assert r.status_code == 400 and _errors(r)[0][0] == ["as_of"]
    assert client.post("/kpis", json={"as_of": "yesterday"}).status_code == 400


def test_customer_risk_gives_the_customers_rows_and_names_unknown_ids(client, small_loaded, fitted):
    from training.customers import CUSTOMER_COLUMNS

    ids = list(small_loaded["customers"]["customer_id"].head(3))
    r = client.post("/customer_risk", json={"customer_ids": ids})
    assert r.status_code == 200, r.text
    rows = r.json()
    assert [row["customer_id"] for row in rows] == ids
    assert set(CUSTOMER_COLUMNS) <= set(rows[0])
    r = client.post("/customer_risk", json={"customer_ids": [ids[0], "nobody"]})
    assert r.status_code == 400 and _errors(r)[0][0] == ["customer_ids", 1]
    assert client.post("/customer_risk", json={"customer_ids": []}).status_code == 400


def test_forecast_cash_with_shocks_and_bad_shocks(client, fitted):
    from training.cash.forecast import FORECAST_COLUMNS

    r = client.post("/forecast_cash", json={"weeks": 4, "shocks": {"customer_delay_days": 10}})
    assert r.status_code == 200, r.text
    rows = r.json()
    assert [row["week"] for row in rows] == [1, 2, 3, 4] and list(rows[0]) == FORECAST_COLUMNS
    r = client.post("/forecast_cash", json={"weeks": 4, "shocks": {"customer_delay_days": 9999}})
    assert r.status_code == 400 and _errors(r)[0][0] == ["shocks", "customer_delay_days"]
    r = client.post("/forecast_cash", json={"weeks": 0})
    assert r.status_code == 400 and _errors(r)[0][0] == ["weeks"]
    r = client.post("/forecast_cash", json={"shocks": {"sales_change_pct": "more"}})
    assert r.status_code == 400 and _errors(r)[0][0] == ["shocks", "sales_change_pct"]


def test_collection_worklist_gives_the_commands_rows_and_names_bad_input(client, small_loaded, fitted):
    from training.collections import WORKLIST_COLUMNS, worklist

    r = client.post("/collection_worklist", json={"top_n": 7})
    assert r.status_code == 200, r.text
    got = pd.DataFrame(r.json())
    assert list(got.columns) == WORKLIST_COLUMNS and list(got["rank"]) == list(range(1, 8))
    expected = worklist(small_loaded, fitted["at"], 7, models=(fitted["late"], fitted["timing"]))
    assert list(got["invoice_id"]) == list(expected["invoice_id"]) and list(got["why"]) == list(expected["why"])
    assert got["expected_gain"].to_numpy() == pytest.approx(expected["expected_gain"].to_numpy())
    earlier = f"{fitted['at'] - pd.Timedelta(days=30):%Y-%m-%d}"
    r = client.post("/collection_worklist", json={"as_of": earlier})
    assert r.status_code == 200 and len(r.json()) == 50
    assert r.json()[0]["invoice_id"] == worklist(small_loaded, earlier, 1, models=(fitted["late"], fitted["timing"])
                                                 )["invoice_id"].iloc[0]
    for body, loc in (({"top_n": 0}, ["top_n"]), ({"top_n": MAX_BATCH + 1}, ["top_n"]), ({"top_n": "ten"}, ["top_n"]),
                      ({"as_of": "31/12/2025"}, ["as_of"]),
                      ({"as_of": f"{fitted['at'] + pd.Timedelta(days=1):%Y-%m-%d}"}, ["as_of"])):
        r = client.post("/collection_worklist", json=body)
        assert r.status_code == 400 and _errors(r)[0][0] == loc, (body, r.text)


def test_discounts_give_the_commands_rows_and_name_bad_input(client, small_loaded, small_company, fitted):
    from training.cash.forecast import forecast
    from training.cash.model import load_forecast_models
    from training.collections import DISCOUNT_COLUMNS, discounts

    r = client.post("/discounts", json={})
    assert r.status_code == 200, r.text
    got = pd.DataFrame(r.json(), columns=DISCOUNT_COLUMNS)
    fc = forecast(small_loaded, fitted["at"], models=load_forecast_models(small_company.name))
    expected = discounts(small_loaded, fitted["at"], forecast=fc)
    assert len(got) == len(expected) > 0 and list(r.json()[0]) == DISCOUNT_COLUMNS
    assert list(got["bill_id"]) == list(expected["bill_id"]) and list(got["take"]) == list(expected["take"])
    assert list(got["pay_by"]) == [f"{d:%Y-%m-%d}" for d in expected["pay_by"]]
    assert [None if pd.isna(v) else bool(v) for v in expected["cash_ok"]] == list(got["cash_ok"].astype(object)
                                                                                  .where(got["cash_ok"].notna(), None))
    for body in ({"as_of": "yesterday"}, {"as_of": f"{fitted['at'] + pd.Timedelta(days=1):%Y-%m-%d}"},
                 {"as_of": "1900-01-01"}):
        r = client.post("/discounts", json=body)
        assert r.status_code == 400 and _errors(r)[0][0] == ["as_of"], (body, r.text)


def test_the_openapi_page_documents_fields_with_examples(client):
    spec = client.get("/docs.json").json()
    assert {"/score_invoices", "/model_info", "/kpis", "/livez", "/readyz"} <= set(spec["paths"])
    invoice = spec["components"]["schemas"]["InvoiceIn"]["properties"]
    assert invoice["amount"]["description"] and invoice["amount"]["examples"]
    assert client.get("/").status_code == 200


def test_the_openapi_page_is_likvids_own(client):
    info = client.get("/docs.json").json()["info"]
    assert info["title"] == "likvid" and info["version"] == version("likvid")
    assert "late" in info["description"] and "BentoML" not in str(info)


def test_the_openapi_schema_carries_the_real_limits_and_refuses_unknown_keys(client):
    schemas = client.get("/docs.json").json()["components"]["schemas"]
    forecast = schemas["forecast_cash__Input"]
    assert forecast["properties"]["weeks"]["minimum"] == WEEKS.low
    assert forecast["properties"]["weeks"]["maximum"] == WEEKS.high
    assert forecast["additionalProperties"] is False and schemas["InvoiceIn"]["additionalProperties"] is False
    worklist = schemas["collection_worklist__Input"]["properties"]["top_n"]
    assert (worklist["minimum"], worklist["maximum"], worklist["default"]) == (TOP_N.low, TOP_N.high, TOP_N.default)
    assert schemas["score_invoices__Input"]["properties"]["invoices"]["maxItems"] == MAX_BATCH


def test_example_input_is_a_valid_request(client, open_invoices):
    example = {"invoices": [{**service.EXAMPLE_INPUT["invoices"][0],
                             "customer_id": open_invoices.iloc[0][Inv.CUSTOMER]}]}
    assert client.post("/score_invoices", json=example).status_code == 200


# ---- the bearer token ----

@pytest.fixture
def secured(client, monkeypatch):
    """The same app (one per process: its metrics are global) with the token set."""
    monkeypatch.setenv(auth.ENV_TOKEN, TOKEN)
    return client


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                                     {"Authorization": f"bearer {TOKEN}x"}])
def test_without_the_token_every_endpoint_answers_401(secured, headers):
    for method, path in (("GET", "/model_info"), ("POST", "/score_invoices"), ("POST", "/kpis"),
                         ("POST", "/collection_worklist"), ("POST", "/discounts"),
                         ("GET", "/docs.json"), ("GET", "/metrics")):
        r = secured.request(method, path, headers=headers, json={})
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"


def test_with_the_token_endpoints_answer_and_health_checks_need_none(secured):
    assert secured.get("/model_info", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    for path in ("/livez", "/readyz", "/healthz"):
        assert secured.get(path).status_code == 200, path


def test_the_middleware_compares_in_constant_time(monkeypatch):
    import hmac

    calls = []
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append((a, b)) or False)
    import asyncio

    async def app(scope, receive, send):  # pragma: no cover - never reached without the token
        raise AssertionError

    sent = []

    async def send(message):
        sent.append(message)

    guard = auth.BearerAuth(app, token="abc")
    asyncio.run(guard({"type": "http", "path": "/x", "headers": [(b"authorization", b"Bearer abd")]}, None, send))
    assert calls == [(b"Bearer abd", b"Bearer abc")] and sent[0]["status"] == 401


# ---- start-up ----

def test_start_up_without_a_registry_model_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(startup.StartupError, match="no 'champion' version of model likvid-late-payment"):
        startup.load_state(startup.Settings())


def test_start_up_with_a_missing_data_folder_says_so(registry, tmp_path):
    with pytest.raises(startup.StartupError, match="does not exist"):
        startup.load_state(startup.Settings(data=tmp_path / "nowhere"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "customers.csv").write_text("customer_id\nC1\n")
    with pytest.raises(startup.StartupError, match="invoices"):
        startup.load_state(startup.Settings(data=tmp_path / "broken"))


def test_serve_environment_makes_paths_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    monkeypatch.delenv(startup.ENV_OMP_THREADS, raising=False)
    env = startup.serve_environment(Path("data"), pd.Timestamp("2025-06-30"), None)
    assert env["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert env[startup.ENV_DATA] == str(tmp_path.resolve() / "data")
    assert env[startup.ENV_AS_OF] == "2025-06-30" and env[startup.ENV_CONFIG] == ""
    assert env[startup.ENV_OMP_THREADS] == "1"  # one OpenMP thread a worker process, unless the user set it
    monkeypatch.setenv(startup.ENV_OMP_THREADS, "2")
    assert startup.serve_environment(None, None, None)[startup.ENV_OMP_THREADS] == "2"


def test_history_built_once_gives_the_same_features_and_ignores_the_future(small_loaded, fitted):
    from features.invoices import FeatureConfig, history, invoice_features

    at = fitted["at"] - pd.Timedelta(days=60)
    inv = small_loaded[Inv.TABLE]
    request = inv[inv[Inv.ISSUE] <= at].tail(30)
    known = history(small_loaded, at)
    direct = invoice_features(small_loaded, at, invoices=request)
    pd.testing.assert_frame_equal(invoice_features(small_loaded, at, invoices=request, known=known), direct,
                                  check_dtype=False)
    # Rows from after the as-of date change nothing the service scores with.
    later = inv[inv[Inv.ISSUE] > at].assign(**{Inv.ID: lambda f: "F" + f[Inv.ID]})
    grown = small_loaded.replace(**{Inv.TABLE: pd.concat([inv, later])})
    pd.testing.assert_frame_equal(invoice_features(grown, at, invoices=request, known=history(grown, at)), direct,
                                  check_dtype=False)
    with pytest.raises(ValueError, match="history is as of"):
        invoice_features(small_loaded, fitted["at"], invoices=request, known=known)
    with pytest.raises(ValueError, match="history is as of"):
        invoice_features(small_loaded, at, FeatureConfig(grace_days=3), invoices=request, known=known)


# ---- `likvid serve`, for real ----

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_SERVERS: dict[str, int] = {}  # base URL -> pid of the `likvid serve` started for it


@contextlib.contextmanager
def serving_for_real(tracking_uri: str, token: str, *options: str):
    """A real `likvid serve` subprocess (with ``options``) with the token set, on a free loopback port, ready;
    its base URL. It is stopped on leaving."""
    import httpx

    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, auth.ENV_TOKEN: token}
    proc = subprocess.Popen([sys.executable, "-m", "serving.cli", "serve", "--port", str(port), *options], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    _SERVERS[base] = proc.pid
    try:
        deadline = time.monotonic() + 150
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_likvid_serve_for_real_answers_every_endpoint_with_the_token(registry, small_loaded, fitted, open_invoices):
    import httpx

    bearer = {"Authorization": f"Bearer {TOKEN}"}
    with serving_for_real(registry, TOKEN) as base:
        assert httpx.get(f"{base}/model_info").status_code == 401
        assert httpx.get(f"{base}/model_info", headers=bearer).json()["service_as_of"] == f"{fitted['at']:%Y-%m-%d}"
        row = request_row(open_invoices.iloc[0])
        calls = {"/score_invoices": {"invoices": [row]}, "/customer_risk": {"customer_ids": [row["customer_id"]]},
                 "/forecast_cash": {"weeks": 2, "shocks": {"sales_change_pct": -10}}, "/kpis": {},
                 "/collection_worklist": {"top_n": 3}, "/discounts": {}}
        for path, body in calls.items():
            r = httpx.post(f"{base}{path}", json=body, headers=bearer, timeout=60)
            assert r.status_code == 200, (path, r.text)
            assert r.json(), path
        scored = httpx.post(f"{base}/score_invoices", json=calls["/score_invoices"], headers=bearer).json()[0]
        assert scored["invoice_id"] == row["invoice_id"] and scored["reason_1"]
        # A big batch is a heavy call, scored by the heavy service's own process: the same rows, one by one.
        batch = [{**row, "invoice_id": f"{row['invoice_id']}-B{i}"} for i in range(guard.SMALL_BATCH_ROWS + 1)]
        r = httpx.post(f"{base}/score_invoices", json={"invoices": batch}, headers=bearer, timeout=60)
        assert r.status_code == 200 and [x["invoice_id"] for x in r.json()] == [b["invoice_id"] for b in batch]
        alone = httpx.post(f"{base}/score_invoices", json={"invoices": batch[-1:]}, headers=bearer).json()[0]
        assert r.json()[-1] == alone
        assert _heavy_processes(base) == 1
        r = httpx.post(f"{base}/score_invoices", json={"invoices": [{**row, "amount": "lots"}]}, headers=bearer)
        assert r.status_code == 400 and r.json()["detail"][0]["loc"] == ["invoices", 0, "amount"]


def _until_closed(sock) -> bytes:
    """What the server sends on a connection until it closes it."""
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


def test_likvid_serve_for_real_closes_stalled_headers_with_a_408_and_limits_connections(registry):
    import socket

    import httpx

    limit = 3
    with serving_for_real(registry, TOKEN, "--workers", "1", "--max-connections", str(limit)) as base:
        address = ("127.0.0.1", int(base.rsplit(":", 1)[1]))
        # Clients that send half their headers and stall (one after a first request answered on the same
        # connection), and one that sends nothing, hold the worker's connections.
        half = [socket.create_connection(address) for _ in range(limit - 1)]
        again = half[-1]
        again.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = b""
        while b"\r\n\r\n" not in first:
            first += again.recv(4096)
        assert first.startswith(b"HTTP/1.1 200 "), first
        for sock in half:
            sock.sendall(b"POST /score_invoices HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appli")
        silent = socket.create_connection(address)
        started = time.monotonic()
        time.sleep(0.3)
        busy = httpx.get(f"{base}/livez", timeout=5)  # one connection more than the worker takes
        assert busy.status_code == 503 and busy.headers["connection"] == "close"
        assert busy.headers["retry-after"] == str(guard.RETRY_AFTER_SECONDS)
        assert f"limit of {limit} connections" in busy.json()["error"]
        for sock in (*half, silent):
            sock.settimeout(guard.HEADER_SECONDS + 5)
        answers = [_until_closed(sock) for sock in half]  # the second one's begins with the rest of /livez's
        assert answers[0].startswith(b"HTTP/1.1 408 ") and b"HTTP/1.1 408 " in answers[-1], answers
        assert json.loads(answers[0].split(b"\r\n\r\n", 1)[1])["error"].startswith("the request headers")
        assert _until_closed(silent) == b""  # nothing was asked: closed without an answer
        waited = time.monotonic() - started
        assert guard.HEADER_SECONDS - 1 < waited < guard.HEADER_SECONDS + 3, waited
        for sock in (*half, silent):
            sock.close()
        # Freed, the worker answers again, and a request whose headers come in parts within the deadline is served.
        assert httpx.get(f"{base}/livez", timeout=5).status_code == 200
        with socket.create_connection(address) as sock:
            sock.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            time.sleep(1)
            sock.sendall(b"Connection: close\r\n\r\n")
            sock.settimeout(5)
            assert _until_closed(sock).startswith(b"HTTP/1.1 200 ")


def _heavy_processes(base: str) -> int:
    """The heavy service's processes (``serving.heavy``) of the ``likvid serve`` started for ``base``."""
    import psutil

    server = psutil.Process(_SERVERS[base])
    return sum(heavy.HEAVY_NAME in p.cmdline() for p in server.children(recursive=True))


def test_likvid_serve_without_a_champion_stops_with_a_message(tmp_path):
    from typer.testing import CliRunner

    from serving.cli import app

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none.db'}")
        mp.chdir(tmp_path)
        result = CliRunner().invoke(app, ["serve", "--port", str(_free_port())])
    assert result.exit_code == 1
    assert "cannot start" in result.output and "likvid train" in result.output


def test_a_bento_needs_no_registry(registry, small_company, tmp_path, monkeypatch):
    """``likvid build`` imports all four champion families; the service then loads from BentoML's store."""
    from training.cash.forecast import forecast

    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    tags = bento.import_champions()
    assert {t.split(":")[0] for t in tags} == set(tracking.FAMILIES)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")  # no registry to fall back on
    state = startup.load_state(startup.Settings(data=small_company, source="bento"))
    assert [c.family for c in state.models.cards] == list(tracking.FAMILIES)
    assert state.models.cards[0].name == tracking.model_name(tracking.LATE_PAYMENT, small_company.name)
    assert set(state.models.forecast.versions) >= {tracking.CASH_FORECAST}
    rows = forecast(state.company, state.at, weeks=2, models=state.models.forecast, paths=50)
    assert len(rows) == 2 and rows["inflow_p50"].notna().all()
    assert state.models.customers is not None


# ---- a champion promoted while the service runs ----

@contextlib.contextmanager
def _promoted_copy(company: str):
    """The late-payment champion registered again as a new version and promoted; the old one is champion again on
    leaving. Its new version number."""
    client = tracking.connect()
    name = tracking.model_name(tracking.LATE_PAYMENT, company)
    old = client.get_model_version_by_alias(name, tracking.CHAMPION)
    new = client.create_model_version(name, old.source, run_id=old.run_id, tags=old.tags)
    client.set_registered_model_alias(name, tracking.CHAMPION, new.version)
    try:
        yield str(new.version)
    finally:
        client.set_registered_model_alias(name, tracking.CHAMPION, old.version)


def test_model_info_says_when_the_registry_champion_moved_and_reload_on_promote_serves_it(registry, small_company,
                                                                                         monkeypatch):
    """On a service instance of its own (ending a second start-up of the shared app would stop the shared one)."""
    family = tracking.LATE_PAYMENT
    monkeypatch.setenv(startup.ENV_RELOAD, "0.2")
    reloading = service.Likvid()
    info = reloading.model_info().model_dump()
    assert info["champion_moved"] is False and info["reload_on_promote"] == 0.2
    assert info["registry_champions"][family] == info["models"][0]["version"]
    with _promoted_copy(small_company.name) as version:
        deadline = time.monotonic() + 60
        while (info := reloading.model_info().model_dump())["models"][0]["version"] != version:
            assert time.monotonic() < deadline, info
            time.sleep(0.2)
        assert info["champion_moved"] is False and info["registry_champions"][family] == version
    monkeypatch.delenv(startup.ENV_RELOAD)
    fixed = service.Likvid()
    with _promoted_copy(small_company.name) as version:
        info = fixed.model_info().model_dump()
        assert info["champion_moved"] is True and info["reload_on_promote"] is None
        assert info["registry_champions"][family] == version != info["models"][0]["version"]


def test_customer_rows_at_the_served_as_of_are_computed_once(client, small_loaded, monkeypatch):
    from training import customers

    ids = sorted(small_loaded["customers"]["customer_id"])[:2]
    first = client.post("/customer_risk", json={"customer_ids": ids}).json()
    calls = []
    real = customers.customer_risk
    monkeypatch.setattr(customers, "customer_risk", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert client.post("/customer_risk", json={"customer_ids": ids[::-1]}).json() == first[::-1]
    assert client.post("/credit_check", json={"customer_id": ids[0], "amount": 100.0}).status_code == 200
    assert calls == []


def test_the_rate_memo_keeps_one_entry_per_known_code_however_requests_spell_it():
    from types import SimpleNamespace

    import numpy as np

    from serving.state import State

    asked = []

    def rate(codes, n):
        codes = codes.to_numpy(dtype=object, na_value=None)
        asked.append(list(codes))
        return np.array([{"EUR": 1.1}.get(c, np.nan) if c is not None else 1.0 for c in codes], float)

    s = SimpleNamespace(known=SimpleNamespace(rate=rate), rate_memo={})
    out = State.rates(s, [" eur", "EUR", "eur ", "XYZ", None])
    assert out[:3].tolist() == [1.1, 1.1, 1.1] and np.isnan(out[3]) and out[4] == 1.0
    assert set(s.rate_memo) == {"EUR", None} and asked == [["EUR", "XYZ", None]]
    State.rates(s, ["Eur", "  EUR  "])
    assert len(asked) == 1  # read from the memo


@pytest.mark.parametrize("name, params", [
    ("forecast_cash", {"weeks": 13, "shocks": ShocksIn().model_dump()}), ("kpis", {}), ("discounts", {}),
    ("provision", {}),
    ("collection_worklist", {"top_n": 20, "owner": None, "by_customer": False}),
    ("collection_worklist", {"top_n": 20, "owner": None, "by_customer": True}),
    ("liquidity", {"weeks": 13, "shocks": ShocksIn().model_dump()}),
])
def test_a_heavy_answer_made_into_its_body_where_it_is_computed_is_the_body_bentoml_makes_of_it(registry, name,
                                                                                                   params):
    """The heavy process encodes an endpoint's answer itself (``heavy.encode``) and the API worker passes the bytes
    on: they are the bytes BentoML's own answer path makes of the same value, byte for byte."""
    import asyncio

    from _bentoml_impl.serde import JSONSerde
    from _bentoml_sdk.io_models import IORootModel

    from serving.schemas import LiquidityAnswer

    s = startup.load_state(startup.Settings.from_env())
    kind, value = heavy.run(heavy.Answers(s), name, {"at": s.at, **params})
    assert kind == "rows" and value
    spec = service.Likvid.apis[name].output_spec
    returned = value if issubclass(spec, IORootModel) else LiquidityAnswer(**value)  # as the endpoints returned them
    response = asyncio.run(spec.to_http_response(returned, JSONSerde()))
    bentoml_body = b"".join(bytes(chunk) for chunk in response.body_iterator)
    assert heavy.run(heavy.Answers(s), name, {"at": s.at, **params}, name) == ("json", bentoml_body)


def test_invoices_of_several_calls_scored_as_one_batch_get_the_rows_each_gets_alone(registry, open_invoices):
    """What joining the waiting calls (``serving.combine``) rests on: ``score_rows`` of a batch gives every
    invoice the row scoring it alone gives, new ids and changed amounts included."""
    from serving.schemas import InvoiceIn

    s = startup.load_state(startup.Settings.from_env())
    rows = [request_row(r) for _, r in open_invoices.head(12).iterrows()]
    rows = [{**r, "invoice_id": f"NEW-{i}", "amount": r["amount"] * (1 + i % 3)} for i, r in enumerate(rows)]
    invoices = [InvoiceIn.model_validate_json(json.dumps(r)) for r in rows]
    assert heavy.score_rows(s, invoices) == [heavy.score_rows(s, [inv])[0] for inv in invoices]
