"""The collections log's rules over a ranked worklist: promises, disputes, contact frequency, the no-chase
list, the control group and message drafts; and bad actions rows as row rejects."""

from __future__ import annotations

import pandas as pd
import pytest

from features.load import validate
from features.policy import Policy, parse_policy
from tests.conftest import write_tables
from training.collections import OWNER, RANKED_COLUMNS, WORKLIST_COLUMNS
from training.decisions.dunning import (
    CONTROL,
    DISPUTE,
    NOT_CHASED,
    PAUSED,
    SAME_CONTACT,
    WAIT,
    control_draw,
    escalate,
    honour_log,
    is_actionable,
    log_facts,
)

AT = pd.Timestamp("2025-06-30")
CUSTOMERS = [{"customer_id": c, "name": n} for c, n in
             [("C1", "Acme AB"), ("C2", "Beta AS"), ("C3", "Gamma Oy"), ("C4", "Delta BV"), ("C5", "Eps Ltd")]]
# Every invoice is open at AT; I1-I7 are 20 days overdue, I8 is due in 5 days.
INVOICES = [{"invoice_id": f"I{k}", "customer_id": c, "issue_date": "2025-05-01", "due_date": "2025-06-10",
             "amount": 1000 * k, "currency": "EUR", "paid_date": "", "dispute_date": d}
            for k, c, d in [(1, "C1", ""), (2, "C2", ""), (3, "C3", ""), (4, "C4", ""), (5, "C4", ""),
                            (6, "C5", "2025-06-15"), (7, "C1", "")]]
INVOICES.append({"invoice_id": "I8", "customer_id": "C2", "issue_date": "2025-06-01", "due_date": "2025-07-05",
                 "amount": 800, "currency": "EUR", "paid_date": "", "dispute_date": ""})
ACTIONS = [
    # C1 promised on I1 to pay by 2025-07-01: open.
    {"action_id": "A1", "date": "2025-06-20", "kind": "promise", "invoice_id": "I1", "customer_id": "",
     "promised_date": "2025-07-01", "promised_amount": 1000},
    # C2 promised 2000 by 2025-06-20 on I2 and paid 500 since: broken (grace ended 2025-06-23).
    {"action_id": "A2", "date": "2025-06-15", "kind": "promise", "invoice_id": "I2", "customer_id": "",
     "promised_date": "2025-06-20", "promised_amount": 2000},
    # C3 was called three days ago: not again within 7 days.
    {"action_id": "A3", "date": "2025-06-27", "kind": "call", "invoice_id": "", "customer_id": "C3"},
    # A reminder to C4 long ago does not hold it back; a note is not a contact.
    {"action_id": "A4", "date": "2025-05-01", "kind": "reminder", "invoice_id": "I4", "customer_id": ""},
    {"action_id": "A5", "date": "2025-06-29", "kind": "note", "invoice_id": "I5", "customer_id": "",
     "note": "asked for a copy"},
    # An action after as-of has not happened yet.
    {"action_id": "A6", "date": "2025-07-10", "kind": "call", "invoice_id": "", "customer_id": "C4"},
]
PAYMENTS = [{"payment_id": "P1", "invoice_id": "I2", "date": "2025-06-18", "amount": 500}]


def _company(tmp_path, actions=ACTIONS):
    folder = write_tables(tmp_path / "desk", customers=CUSTOMERS, invoices=INVOICES, actions=actions,
                          payments=PAYMENTS)
    result = validate(folder, today="2025-07-15")
    assert result.rejects.empty, result.rejects
    return result.company


def _ranked(ids=("I6", "I5", "I4", "I3", "I2", "I1", "I7", "I8")) -> pd.DataFrame:
    """A ranked worklist as the ranking gives it: I1-I7 20 days overdue (reminder), I8 not due (pre-due)."""
    customer = {r["invoice_id"]: r["customer_id"] for r in INVOICES}
    rows = []
    for rank, i in enumerate(ids, 1):
        overdue = i != "I8"
        rows.append({"rank": rank, "invoice_id": i, "customer_id": customer[i], "amount_open": 100.0,
                     "days_overdue": 20 if overdue else -5, "aging_bucket": "1-30" if overdue else "current",
                     "action": "reminder" if overdue else "friendly reminder before due", "p_late": 0.9,
                     "expected_gain": 100.0 - rank, "why": "ranked by the model"})
    return pd.DataFrame(rows)[RANKED_COLUMNS]


@pytest.fixture
def listed(tmp_path):
    company = _company(tmp_path)
    return honour_log(_ranked(), log_facts(company, AT), Policy())


def test_columns_names_and_ranks(listed):
    assert list(listed.columns) == [c for c in WORKLIST_COLUMNS if c != OWNER]  # the worklist adds the owner
    assert listed["rank"].tolist() == list(range(1, len(listed) + 1))
    row = listed.set_index("invoice_id").loc["I4"]
    assert row["customer_name"] == "Delta BV" and row["currency"] == "EUR" and row["amount_open_doc"] == 4000
    assert row["last_contact"] == "2025-05-01"  # the note of 2025-06-29 and the call after as-of do not count
    acting = is_actionable(listed["action"])
    assert listed["expected_gain"].is_monotonic_decreasing and acting.iloc[:acting.sum()].all()


def test_an_open_promise_pauses_chasing(listed):
    row = listed.set_index("invoice_id").loc["I1"]
    assert row["action"] == PAUSED and row["expected_gain"] == 0 and row["message"] == ""
    assert row["promise"] == "1,000.00 EUR by 2025-07-01" and "2025-07-04" in row["why"]


def test_the_grace_ends_the_pause_and_the_promise_breaks(tmp_path):
    company = _company(tmp_path)
    later = pd.Timestamp("2025-07-05")  # 2025-07-01 + 3 days of grace has passed, nothing paid
    row = honour_log(_ranked(), log_facts(company, later), Policy()).set_index("invoice_id").loc["I1"]
    assert row["action"] == "formal warning" and row["promise"].startswith("broken: ")
    wider = parse_policy({"dunning": {"promise_grace_days": 10}})
    assert honour_log(_ranked(), log_facts(company, later), wider).set_index("invoice_id").at["I1", "action"] == PAUSED


def test_a_broken_promise_escalates_one_step_and_says_so(listed):
    row = listed.set_index("invoice_id").loc["I2"]
    assert row["action"] == "formal warning"  # 20 days overdue is a reminder; one step up
    assert "broken" in row["why"] and "from reminder to formal warning" in row["why"]
    assert row["promise"] == "broken: 2,000.00 EUR by 2025-06-20"
    assert "you promised 2,000.00 EUR by 2025-06-20" in row["message"] and "I2" in row["message"]


def test_a_kept_promise_does_not_escalate(tmp_path):
    paid = [*ACTIONS[:1], {**ACTIONS[1], "promised_amount": 400}, *ACTIONS[2:]]  # 500 came, 400 promised
    row = honour_log(_ranked(), log_facts(_company(tmp_path, paid), AT), Policy()).set_index("invoice_id").loc["I2"]
    assert row["action"] == "reminder" and row["promise"].startswith("kept: ")


def test_escalation_stops_at_the_last_step():
    assert escalate(Policy(), 20) == ("reminder", "formal warning")
    assert escalate(Policy(), 200) == ("legal or collection agency", "legal or collection agency")
    assert escalate(Policy(), -3) == ("friendly reminder before due", "reminder")


def test_contact_frequency_counts_the_log_and_the_list(listed):
    rows = listed.set_index("invoice_id")
    assert rows.at["I3", "action"] == WAIT and "2025-06-27" in rows.at["I3", "why"]
    assert "2025-07-04" in rows.at["I3", "why"]  # the next allowed contact
    # C4 has I5 ranked before I4: one contact, about I5, naming I4; its gain carries both.
    assert rows.at["I4", "action"] == SAME_CONTACT and "I5" in rows.at["I4", "why"]
    assert rows.at["I5", "action"] == "reminder" and "I4 (4,000.00 EUR)" in rows.at["I5", "message"]
    assert rows.at["I5", "expected_gain"] == (100 - 2) + (100 - 3) and rows.at["I4", "expected_gain"] == 0
    # C2's broken promise on I2 is the contact; the pre-due reminder for I8 waits.
    assert rows.at["I8", "action"] == SAME_CONTACT
    proposed = listed[is_actionable(listed["action"])]
    assert proposed["customer_id"].is_unique


def test_no_contact_limit_when_zero(tmp_path):
    policy = parse_policy({"dunning": {"min_days_between_contacts": 0}})
    rows = honour_log(_ranked(), log_facts(_company(tmp_path), AT), policy).set_index("invoice_id")
    assert rows.at["I3", "action"] == "reminder" and rows.at["I4", "action"] == "reminder"


def test_a_disputed_invoice_goes_to_resolution_until_resolved(tmp_path, listed):
    row = listed.set_index("invoice_id").loc["I6"]
    assert row["action"] == DISPUTE and "resolve" in row["message"] and "Eps Ltd" in row["message"]
    resolved = [*ACTIONS, {"action_id": "A7", "date": "2025-06-25", "kind": "resolved", "invoice_id": "I6",
                           "customer_id": ""}]
    rows = honour_log(_ranked(), log_facts(_company(tmp_path, resolved), AT), Policy()).set_index("invoice_id")
    assert rows.at["I6", "action"] == "reminder"


def test_no_dunning_customers_never_appear(tmp_path):
    policy = parse_policy({"dunning": {"no_dunning": ["C4", "C1"]}})
    w = honour_log(_ranked(), log_facts(_company(tmp_path), AT), policy)
    assert not w["customer_id"].isin(["C4", "C1"]).any() and len(w) == 4


def test_the_control_group_is_seeded_by_invoice_id_and_marked(tmp_path):
    ids = pd.Series([f"INV{k:05d}" for k in range(4000)])
    draw = control_draw(ids)
    assert (draw == control_draw(ids)).all() and 0.45 < (draw < 0.5).mean() < 0.55
    assert control_draw(ids.iloc[::-1]).tolist() == draw[::-1].tolist()  # per id, not per position
    policy = parse_policy({"dunning": {"control_share": 0.5}})
    facts = log_facts(_company(tmp_path), AT)
    w = honour_log(_ranked(), facts, policy)
    held = w[w["action"] == CONTROL]
    expected = {i for i, u in zip(_ranked()["invoice_id"], control_draw(_ranked()["invoice_id"])) if u < 0.5}
    assert set(held["invoice_id"]) <= expected and len(held) > 0
    assert held["why"].str.contains("control group").all() and (held["expected_gain"] == 0).all()
    assert honour_log(_ranked(), facts, policy).equals(w)


def test_every_actionable_row_has_a_message(listed):
    acting = listed[is_actionable(listed["action"])]
    assert len(acting) >= 4 and acting["message"].str.len().gt(40).all()
    assert (listed.loc[listed["action"].isin(NOT_CHASED), "message"] == "").all()
    for _, r in acting.iterrows():
        assert r["invoice_id"] in r["message"] and r["customer_name"] in r["message"]


def test_messages_in_swedish(tmp_path):
    policy = parse_policy({"dunning": {"language": "sv"}})
    w = honour_log(_ranked(), log_facts(_company(tmp_path), AT), policy).set_index("invoice_id")
    assert w.at["I5", "message"].startswith("Hej Delta BV, faktura I5 på 5,000.00 EUR förföll 2025-06-10")


def test_an_action_after_as_of_has_not_happened(tmp_path):
    company = _company(tmp_path)
    early = pd.Timestamp("2025-06-19")  # before the promise on I1 and the call to C3
    rows = honour_log(_ranked(), log_facts(company, early), Policy()).set_index("invoice_id")
    assert rows.at["I1", "promise"] == "" and rows.at["I3", "last_contact"] == ""


@pytest.mark.parametrize("row, column, problem", [
    ({"action_id": "B1", "date": "2025-06-01", "kind": "call", "invoice_id": "NOPE", "customer_id": ""},
     "invoice_id", "NOPE"),
    ({"action_id": "B2", "date": "2025-06-01", "kind": "promise", "invoice_id": "I1", "customer_id": "",
      "promised_date": ""}, "promised_date", "promise"),
    ({"action_id": "B3", "date": "2025-06-01", "kind": "call", "invoice_id": "", "customer_id": ""},
     "customer_id", "invoice_id"),
    ({"action_id": "B4", "date": "2025-06-01", "kind": "shout", "invoice_id": "I1", "customer_id": ""},
     "kind", "shout"),
])
def test_bad_actions_rows_are_rejects_with_reasons(tmp_path, row, column, problem):
    folder = write_tables(tmp_path / "bad", customers=CUSTOMERS, invoices=INVOICES, actions=[*ACTIONS, row])
    result = validate(folder, today="2025-07-15")
    rejects = result.rejects[result.rejects["table"] == "actions"]
    assert len(rejects) == 1 and rejects.iloc[0]["column"] == column, rejects
    assert problem in rejects.iloc[0]["problem"] and rejects.iloc[0]["row"] == len(ACTIONS) + 1
    assert len(result.company["actions"]) == len(ACTIONS)


def test_the_log_facts_from_the_historys_reductions_are_the_ones_summed_from_the_ledger(small_loaded):
    from features.invoices import history
    from training.decisions.dunning import log_facts

    at = pd.Timestamp("2025-03-31")
    reduced = history(small_loaded, at).reduced
    summed, given = log_facts(small_loaded, at), log_facts(small_loaded, at, reduced)
    assert len(summed.invoices) > 10
    shifted = log_facts(small_loaded, at, reduced + 1.0).invoices  # the given reductions are the ones used
    assert (shifted["amount_open_doc"] - summed.invoices["amount_open_doc"].reindex(shifted.index)).lt(-0.99).all()
    pd.testing.assert_frame_equal(given.invoices, summed.invoices)
    pd.testing.assert_frame_equal(given.customers, summed.customers)
