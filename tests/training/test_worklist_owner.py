"""The collector's view of the worklist: the customers' owner column, the worklist of one owner, one row per call
(``--by-customer``), and the same through `likvid worklist`, `POST /collection_worklist` and `likvid generate`."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from features.contract import Cust
from features.load import validate
from features.policy import Policy
from serving import auth
from serving import state as startup
from serving.cli import app
from tests.conftest import tiny_customers, tiny_invoices, write_tables
from tests.serving.test_service import asgi_app, register
from training.collections import CALL_COLUMNS, OWNER, WORKLIST_COLUMNS, owner_names, worklist
from training.decisions.dunning import DISPUTE, SAME_CONTACT, is_actionable
from training.decisions.effect import OWNER as EFFECT_OWNER

runner = CliRunner()


@pytest.fixture(scope="module")
def lists(small_loaded, fitted):
    """The small company's worklist and its calls, at the fitted as-of."""
    models = (fitted["late"], fitted["timing"])
    return (worklist(small_loaded, fitted["at"], models=models),
            worklist(small_loaded, fitted["at"], models=models, by_customer=True))


def test_the_owner_column_is_mapped_and_read_like_any_column(tmp_path):
    customers = [{**c, "Ansvarig": who} for c, who in zip(tiny_customers(), [" Anna ", ""])]
    folder = write_tables(tmp_path / "mapped", customers=customers, invoices=tiny_invoices())
    (folder / "mapping.yaml").write_text("customers:\n  owner: Ansvarig\n")
    result = validate(folder, today="2025-07-01")
    assert result.rejects.empty and "Ansvarig" not in result.ignored["customers"]
    assert list(result.company["customers"][Cust.OWNER].fillna("")) == ["Anna", ""]
    assert owner_names(result.company) == ["Anna"] and EFFECT_OWNER == OWNER == Cust.OWNER


def test_the_worklist_of_one_owner_is_the_worklist_of_their_customers(small_loaded, fitted, lists):
    rows, _ = lists
    assert list(rows.columns) == WORKLIST_COLUMNS and rows[OWNER].ne("").all()
    names = owner_names(small_loaded)
    assert len(names) >= 2 and set(rows[OWNER]) <= set(names)
    who = names[0]
    models = (fitted["late"], fitted["timing"])
    mine = worklist(small_loaded, fitted["at"], top=5, models=models, owner=f"  {who.upper()} ")
    expected = rows[rows[OWNER] == who].head(5)
    assert list(mine["invoice_id"]) == list(expected["invoice_id"]) and list(mine["rank"]) == [1, 2, 3, 4, 5]
    assert (mine[OWNER] == who).all() and list(mine["why"]) == list(expected["why"])
    with pytest.raises(ValueError, match=f"no customer has owner 'Nobody'; the owners are {names[0]}"):
        worklist(small_loaded, fitted["at"], models=models, owner="Nobody")
    unowned = small_loaded.replace(customers=small_loaded["customers"].assign(**{OWNER: pd.NA}))
    with pytest.raises(ValueError, match="mapping.yaml"):
        worklist(unowned, fitted["at"], models=models, owner=who)
    assert worklist(unowned, fitted["at"], top=3, models=models)[OWNER].eq("").all()


def test_one_row_per_call_with_its_invoices_totals_and_one_draft(small_loaded, fitted, lists):
    rows, calls = lists
    assert list(calls.columns) == CALL_COLUMNS and len(calls) > 3
    assert calls["customer_id"].is_unique and list(calls["rank"]) == list(range(1, len(calls) + 1))
    assert calls["best_rank"].is_monotonic_increasing
    proposed = rows[is_actionable(rows["action"])]
    assert set(calls["customer_id"]) == set(proposed["customer_id"])
    raised = rows[rows["customer_id"].isin(proposed["customer_id"])
                  & (is_actionable(rows["action"]) | (rows["action"] == SAME_CONTACT))]
    assert (calls["n_invoices"] > 1).any()
    steps = [Policy().dunning.pre_due_action, *(s.action for s in Policy().dunning.steps)]
    # Each invoice's own step: the same list with no limit on contacts per customer.
    models = (fitted["late"], fitted["timing"])
    alone = worklist(small_loaded, fitted["at"], policy=Policy(dunning={"min_days_between_contacts": 0}),
                     models=models).set_index("invoice_id")["action"]
    for call in calls.itertuples(index=False):
        mine = raised[raised["customer_id"] == call.customer_id]
        assert call.invoices.split(", ") == list(mine["invoice_id"]) and call.n_invoices == len(mine)
        assert call.amount_open == pytest.approx(mine["amount_open"].sum(), abs=0.01)
        assert call.amount_overdue == pytest.approx(mine.loc[mine["days_overdue"] > 0, "amount_open"].sum(), abs=0.01)
        assert call.expected_gain == pytest.approx(mine["expected_gain"].sum(), abs=0.01)
        assert call.best_rank == mine["rank"].min()
        assert call.earliest_due == fitted["at"] - pd.Timedelta(days=int(mine["days_overdue"].max()))
        assert call.owner == mine[OWNER].iloc[0] != ""
        own = alone.reindex(mine["invoice_id"])
        chased = [steps.index(a) for a in own if a != DISPUTE]
        assert is_actionable(own).all() and call.action == (steps[max(chased)] if chased else DISPUTE)
        assert call.message.startswith("Dear ") and all(i in call.message for i in mine["invoice_id"])
    assert calls["message"].str.contains("This also concerns invoice").any()  # one draft names the others
    swedish = Policy(dunning={"language": "sv"})
    sv = worklist(small_loaded, fitted["at"], policy=swedish, models=models, by_customer=True)
    assert list(sv["invoices"]) == list(calls["invoices"]) and sv["message"].str.startswith("Hej ").all()
    assert sv["message"].str.contains("Detta gäller även faktur").any()
    top = worklist(small_loaded, fitted["at"], top=3, policy=swedish, models=models, by_customer=True)
    pd.testing.assert_frame_equal(top, sv.head(3))


def test_the_service_filters_by_owner_and_groups_by_customer(tmp_path, monkeypatch, fitted, small_company,
                                                             small_loaded, lists):
    rows, calls = lists
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    for name in (startup.ENV_AS_OF, startup.ENV_CONFIG, auth.ENV_TOKEN, startup.ENV_SOURCE, startup.ENV_MAPPING):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(startup.ENV_DATA, str(small_company))
    register(fitted, small_loaded, small_company)
    who = owner_names(small_loaded)[1]
    with TestClient(asgi_app()) as client:
        r = client.post("/collection_worklist", json={"top_n": 4, "owner": who})
        assert r.status_code == 200, r.text
        got = pd.DataFrame(r.json())
        assert list(got.columns) == WORKLIST_COLUMNS and (got[OWNER] == who).all()
        assert list(got["invoice_id"]) == list(rows.loc[rows[OWNER] == who, "invoice_id"].head(4))
        r = client.post("/collection_worklist", json={"top_n": 3, "by_customer": True})
        assert r.status_code == 200, r.text
        got = pd.DataFrame(r.json())
        assert list(got.columns) == CALL_COLUMNS and list(got["invoices"]) == list(calls["invoices"].head(3))
        assert list(got["earliest_due"]) == [f"{d:%Y-%m-%d}" for d in calls["earliest_due"].head(3)]
        r = client.post("/collection_worklist", json={"by_customer": True, "owner": who})
        assert r.status_code == 200 and {c[OWNER] for c in r.json()} == {who}
        for body, loc in (({"owner": "Nobody"}, ["owner"]), ({"owner": ""}, ["owner"]),
                          ({"by_customer": "yes"}, ["by_customer"])):
            r = client.post("/collection_worklist", json=body)
            assert r.status_code == 400 and r.json()["detail"][0]["loc"][-1] == loc[0], (body, r.text)


def test_the_command_takes_owner_and_by_customer(champions, small_company, small_loaded, lists, tmp_path):
    _, calls = lists
    who = owner_names(small_loaded)[0]
    out = tmp_path / "calls.csv"
    result = runner.invoke(app, ["worklist", str(small_company), "--by-customer", "--owner", who, "--top", "3",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(got.columns) == CALL_COLUMNS and len(got) == 3 and (got[OWNER] == who).all()
    assert list(got["invoices"]) == list(calls.loc[calls[OWNER] == who, "invoices"].head(3))
    assert "calls" in result.output
    result = runner.invoke(app, ["worklist", str(small_company), "--owner", "Nobody", "--out", str(out)])
    assert result.exit_code == 2 and "the owners are" in result.output


def test_generate_writes_owners_and_the_control_share(tmp_path):
    out = tmp_path / "co"
    args = ["generate", str(out), "--customers", "8", "--years", "0.25", "--seed", "4"]
    result = runner.invoke(app, [*args, "--control-share", "0.2"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((out / "likvid.yaml").read_text())["dunning"]["control_share"] == 0.2
    assert pd.read_csv(out / "customers.csv")[OWNER].notna().all()
    for bad in ("0.9", "-0.1"):
        result = runner.invoke(app, [*args, "--control-share", bad])
        assert result.exit_code == 2 and "control-share" in result.output, result.output
