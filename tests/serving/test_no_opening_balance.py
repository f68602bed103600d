"""A company without ``cash_balances``: the service's forecast and liquidity say "no opening balance" and do not
present 0 as the known cash at as-of (issue 16)."""

from __future__ import annotations

import shutil

from fastapi.testclient import TestClient

from features.cash import NO_OPENING_BALANCE
from features.load import validate
from serving import auth
from serving import state as startup
from tests.serving.test_service import asgi_app, register


def test_forecast_and_liquidity_say_there_is_no_opening_balance(tmp_path, monkeypatch, fitted, small_company):
    data = tmp_path / "no-bank"
    shutil.copytree(small_company, data)
    for path in data.glob("cash_balances.*"):
        path.unlink()
    company = validate(data).company
    assert "cash_balances" not in company.tables
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    for name in (startup.ENV_AS_OF, startup.ENV_CONFIG, auth.ENV_TOKEN, startup.ENV_SOURCE, startup.ENV_MAPPING):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(startup.ENV_DATA, str(data))
    register(fitted, company, data)
    with TestClient(asgi_app()) as client:
        r = client.post("/forecast_cash", json={"weeks": 4})
        assert r.status_code == 200, r.text
        rows = r.json()
        assert len(rows) == 4
        assert all(row["opening_balance"] is None and row["opening_note"] == NO_OPENING_BALANCE for row in rows)
        r = client.post("/liquidity", json={"weeks": 4})
        assert r.status_code == 200, r.text
        plan = r.json()
        assert plan["opening_known"] is False and plan["options"] == []
        assert all(w["gap"] is None and w["headroom"] is None for w in plan["weeks"])
        assert any("opening balance" in note for note in plan["notes"])
