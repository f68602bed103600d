"""The collections log's rules over a ranked worklist: promises, disputes, contact frequency, the no-chase list
and the control group, plus a ready-to-send message per proposed contact.

The worklist (``training.collections.worklist``) ranks open invoices by the cash acting brings in; this
module then applies what the credit team's log (the ``actions`` table, seen as of the worklist's date) says,
in this order, each rule on the rows the earlier ones left actionable:

1. a customer on ``dunning.no_dunning`` never appears;
2. an open dispute (the invoice's ``dispute_date`` or a ``dispute`` action, with no ``resolved`` action
   after it) goes to dispute resolution instead of the ladder;
3. an open promise to pay (the latest ``promise`` on the invoice or its customer, whose ``promised_date``
   plus ``promise_grace_days`` has not passed) pauses chasing;
4. a broken promise (that date passed, the invoice still open and the promised amount not received since
   the promise) goes one step further up the ladder than its days overdue say, and says so;
5. ``control_share`` of the invoices still to be chased is held back, by a hash of the invoice id (the same
   invoices every run), and marked ``control``;
6. a customer contacted within ``min_days_between_contacts`` days is not contacted again yet, and the list
   proposes at most one contact per customer: the best-ranked invoice carries it, and its message names
   the customer's other invoices that would have been chased.

Rows the rules hold back stay in the list, below every proposed contact, with an expected gain of 0
(acting on them is not proposed) and a ``why`` that names the rule; a customer's one contact carries the
expected gain of all the invoices it raises, and the proposed contacts are ranked again by it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.asof import as_of
from features.contract import Act, Cust, Inv, Pay
from features.control import control_draw
from features.ledger import TOLERANCE, is_in, of_invoices, open_amounts
from features.load import Company
from features.policy import Policy

NO_ACTION = "no action"  # the worklist's word for "nothing to do" (the ladder gives no step)
DISPUTE = "dispute resolution"
PAUSED = "paused: promise to pay"
CONTROL = "control (not chased)"
WAIT = "wait: contacted recently"
SAME_CONTACT = "in the same contact"
NOT_CHASED = frozenset({NO_ACTION, PAUSED, CONTROL, WAIT, SAME_CONTACT})
# What counts as contacting the customer, for the frequency rule (what the team did, or heard on a call).
CONTACT_KINDS = ("reminder", "call", "email", "letter", "warning", "hold", "legal", "promise")
LOG_COLUMNS = ["customer_name", "currency", "amount_open_doc", "last_contact", "promise", "message"]


def is_actionable(action: pd.Series) -> pd.Series:
    """Rows that propose a contact (a ladder step, the pre-due reminder, dispute resolution)."""
    return ~action.isin(NOT_CHASED)


@dataclass(frozen=True)
class LogFacts:
    """What the log and the ledger say at one date, per invoice (index ``invoice_id``) and per customer."""

    at: pd.Timestamp
    invoices: pd.DataFrame  # customer_id, due_date, currency, amount_open_doc, promised_date, promised_amount,
    # promise_made, paid_since_promise, disputed
    customers: pd.DataFrame  # name, last_contact


def _latest(actions: pd.DataFrame, key: str) -> pd.DataFrame:
    return actions.sort_values([Act.DATE, Act.ID], kind="stable").groupby(key).tail(1).set_index(key)


def log_facts(company: Company, at: pd.Timestamp, reduced: pd.Series | None = None) -> LogFacts:
    """The log's facts for every invoice open at ``at``, from the company as known at the end of ``at``.
    ``reduced`` is what payments and credit notes took off each invoice known then, by invoice id, when the
    caller has it (``features.invoices.History.reduced``): the ledger is then not summed again."""
    view = as_of(company, at)
    inv = view[Inv.TABLE]
    acts = view.get(Act.TABLE).copy()
    unnamed = acts[Act.CUSTOMER].isna()
    acts.loc[unnamed, Act.CUSTOMER] = of_invoices(inv, acts.loc[unnamed, Act.INVOICE], Inv.CUSTOMER)
    so_far = None
    if reduced is not None and reduced.index.equals(pd.Index(inv[Inv.ID].astype(object))):
        so_far = pd.Series(reduced.to_numpy(), index=inv.index)
    opened = open_amounts(view, at, so_far).set_index(Inv.ID)

    # Promises: the latest on the invoice, else the latest on its customer (with no invoice named).
    promises = acts[acts[Act.KIND] == "promise"]
    by_inv = _latest(promises[promises[Act.INVOICE].notna()], Act.INVOICE)
    by_cust = _latest(promises[promises[Act.INVOICE].isna()], Act.CUSTOMER)
    frame = pd.DataFrame(index=opened.index)
    cols = [Act.DATE, Act.PROMISED, Act.PROMISED_AMOUNT]
    on_inv = by_inv[cols].reindex(opened.index)
    on_cust = by_cust[cols].reindex(opened[Inv.CUSTOMER]).set_axis(opened.index)
    take_cust = on_cust[Act.DATE].notna() & ~(on_inv[Act.DATE] >= on_cust[Act.DATE])
    chosen = on_inv.mask(take_cust, on_cust)
    frame["promise_made"] = chosen[Act.DATE]
    frame["promised_date"] = chosen[Act.PROMISED]
    frame["promised_amount"] = chosen[Act.PROMISED_AMOUNT].astype(float)
    frame["promise_on_customer"] = take_cust

    # What came in since each promise: on the invoice, or on all the customer's invoices for a customer promise.
    # Only the payments a promise can count (its invoice's, or any of its customer's invoices'), in their order:
    # each promise then looks through those, not through the whole ledger.
    made = frame["promise_made"].notna().to_numpy()
    on_customer = take_cust.to_numpy()
    wanted_inv = frame.index[made & ~on_customer].to_series()
    wanted_cust = opened.loc[frame.index[made & on_customer], Inv.CUSTOMER]
    counted = pd.concat([wanted_inv, inv.loc[is_in(inv[Inv.CUSTOMER], wanted_cust), Inv.ID]], ignore_index=True)
    pay = view.get(Pay.TABLE)
    pay = pay[is_in(pay[Pay.INVOICE], counted)]
    pay = pay.assign(customer=of_invoices(inv, pay[Pay.INVOICE], Inv.CUSTOMER).to_numpy())
    since = np.zeros(len(frame))
    if made.any():
        paid_on, amounts = pay[Pay.DATE].to_numpy(), pay[Pay.AMOUNT].to_numpy(float)
        # Each invoice's and each customer's payments (positions in ledger order), grouped once.
        rows_of = {False: pay.groupby(Pay.INVOICE, sort=False).indices,
                   True: pay.groupby("customer", sort=False).indices}
        none = np.zeros(0, np.intp)
        promised_on, customers = frame["promise_made"].to_numpy(), opened[Inv.CUSTOMER].to_numpy(object)
        for k in np.flatnonzero(made).tolist():
            key = customers[k] if on_customer[k] else frame.index[k]
            rows = rows_of[bool(on_customer[k])].get(key, none)
            counted = amounts[rows[paid_on[rows] >= promised_on[k]]]
            since[k] = np.where(np.isnan(counted), 0.0, counted).sum()  # as pandas sums: missing as 0, in order
    frame["paid_since_promise"] = since

    # Disputes: open when the last dispute (dated on the invoice or logged) is after the last resolution.
    unpaid = inv[inv[Inv.PAID].isna()]  # the open invoices are among these: a far smaller index than all
    disputed_on = unpaid.set_index(Inv.ID)[Inv.DISPUTE].reindex(opened.index)
    logged = acts[(acts[Act.KIND] == "dispute") & acts[Act.INVOICE].notna()].groupby(Act.INVOICE)[Act.DATE].max()
    resolved = acts[(acts[Act.KIND] == "resolved") & acts[Act.INVOICE].notna()].groupby(Act.INVOICE)[Act.DATE].max()
    last_dispute = pd.concat([disputed_on, logged.reindex(opened.index)], axis=1).max(axis=1)
    last_resolved = resolved.reindex(opened.index)
    frame["disputed"] = last_dispute.notna() & ~(last_resolved >= last_dispute)
    frame = frame.join(opened[[Inv.CUSTOMER, Inv.DUE, "currency", "amount_open_doc"]])

    contacts = acts[acts[Act.KIND].isin(CONTACT_KINDS)].groupby(Act.CUSTOMER)[Act.DATE].max()
    cust = view[Cust.TABLE].set_index(Cust.ID)
    customers = pd.DataFrame({"name": cust[Cust.NAME], "last_contact": contacts.reindex(cust.index)})
    return LogFacts(at=at, invoices=frame, customers=customers)


def promise_state(invoices: pd.DataFrame, at: pd.Timestamp, grace_days: int) -> tuple[pd.Series, pd.Series]:
    """Per invoice of ``LogFacts.invoices``: the promise is open (its date plus grace not passed), and it is
    broken (passed, the invoice still open and the promised amount, or with none any payment, not received)."""
    has = invoices["promised_date"].notna()
    open_ = has & (invoices["promised_date"] + pd.Timedelta(days=grace_days) >= at)
    short = invoices["promised_amount"].isna() | (invoices["paid_since_promise"]
                                                  < invoices["promised_amount"] - TOLERANCE)
    return open_, has & ~open_ & short


def escalate(policy: Policy, days_overdue: int) -> tuple[str, str]:
    """The ladder's step for these days overdue, and the step above it (the last step stays the last)."""
    steps = [s.action for s in policy.dunning.steps]
    now = policy.dunning.action(days_overdue) if days_overdue > 0 else policy.dunning.pre_due_action
    i = steps.index(now) if now in steps else -1
    return now, steps[min(i + 1, len(steps) - 1)]


def _money(x: float) -> str:
    return f"{x:,.2f}"


def _day(d) -> str:
    return "" if pd.isna(d) else f"{pd.Timestamp(d):%Y-%m-%d}"


def _promise_text(row: dict) -> str:
    amount = "" if pd.isna(row["promised_amount"]) else f"{_money(row['promised_amount'])} {row['currency']} "
    return f"{amount}by {_day(row['promised_date'])}"


def honour_log(ranked: pd.DataFrame, facts: LogFacts, policy: Policy, top: int | None = None) -> pd.DataFrame:
    """The ranked worklist with the log's rules applied (see the module docstring) and ``LOG_COLUMNS`` added.

    ``ranked`` has the worklist's columns, best first; the rows come back best first, re-ranked, the first
    ``top`` of them when given.
    """
    d = policy.dunning
    out = ranked[~ranked["customer_id"].isin(d.no_dunning)].reset_index(drop=True)
    info = facts.invoices.reindex(out["invoice_id"]).reset_index(drop=True)
    names = facts.customers.reindex(out["customer_id"]).reset_index(drop=True)
    out["customer_name"] = names["name"].fillna("").astype(str).to_numpy()
    out["currency"] = info["currency"].to_numpy()
    out["amount_open_doc"] = info["amount_open_doc"].round(2).to_numpy()
    out["last_contact"] = pd.to_datetime(names["last_contact"]).dt.strftime("%Y-%m-%d").fillna("").to_numpy()
    grace = pd.Timedelta(days=d.promise_grace_days)
    has_promise = info["promised_date"].notna()
    open_promise, broken = promise_state(info, facts.at, d.promise_grace_days)
    acting = is_actionable(out["action"]).to_numpy()
    # The rows the rules and the texts read, as records (only those: most open invoices are neither).
    read = np.flatnonzero(acting | has_promise.to_numpy()).tolist()
    rec = dict(zip(read, pd.concat([out, info[["promised_date", "promised_amount", "disputed"]]], axis=1)
                   .iloc[read].to_dict("records")))
    out["promise"] = [("" if not h else ("broken: " if b else "" if o else "kept: ") + _promise_text(rec[i]))
                      for i, (h, o, b) in enumerate(zip(has_promise, open_promise, broken))]

    action, why = out["action"].to_numpy(object).copy(), out["why"].to_numpy(object).copy()
    gain = out["expected_gain"].to_numpy(float).copy()
    purpose = np.full(len(out), "", dtype=object)
    draw = control_draw(out["invoice_id"])
    for i in np.flatnonzero(acting).tolist():
        r = rec[i]
        if r["disputed"]:
            action[i], purpose[i] = DISPUTE, "dispute"
            why[i] = (f"The invoice is disputed and the dispute is not resolved: resolve it with the customer "
                      f"instead of a {r['action']}")
        elif open_promise[i]:
            until = r["promised_date"] + grace
            action[i], gain[i] = PAUSED, 0.0
            why[i] = (f"The customer promised to pay {_promise_text(r)}: not chased until the grace ends on "
                      f"{until:%Y-%m-%d}")
        elif draw[i] < d.control_share:
            action[i], gain[i] = CONTROL, 0.0
            why[i] = (f"Held back at random in the control group ({d.control_share:.0%} of the invoices to be "
                      f"chased) so that the effect of chasing can be measured; otherwise: {r['why']}")
        else:
            if broken[i] and r["days_overdue"] > 0:
                old, new = escalate(policy, int(r["days_overdue"]))
                action[i], purpose[i] = new, "broken_promise"
                why[i] = (f"{r['why']}; the promise to pay {_promise_text(r)} was broken, so escalated one step "
                          f"from {old} to {new}")
            else:
                purpose[i] = "overdue" if r["days_overdue"] > 0 else "pre_due"

    # Contact frequency: the log's last contact, then the list's own proposals, one per customer.
    last = names["last_contact"]
    window = pd.Timedelta(days=d.min_days_between_contacts)
    recent = (last.notna() & (facts.at - last < window)).to_numpy() if d.min_days_between_contacts else \
        np.zeros(len(out), bool)
    # Columns as Python values, read row by row below (``.at`` per row costs more than the rules).
    ids, customer_ids, docs, currencies = (out[c].tolist() for c in ("invoice_id", "customer_id", "amount_open_doc",
                                                                    "currency"))
    dues, lasts = info[Inv.DUE].tolist(), last.tolist()
    primary: dict[str, int] = {}
    others: dict[int, list[int]] = {}
    for i in range(len(out)):
        if action[i] in NOT_CHASED:
            continue
        cust = customer_ids[i]
        if recent[i]:
            nxt = lasts[i] + window
            why[i] = (f"Customer last contacted {lasts[i]:%Y-%m-%d}; at most one contact every "
                      f"{d.min_days_between_contacts} days, so next from {nxt:%Y-%m-%d}; then: {action[i]}")
            action[i], gain[i], purpose[i] = WAIT, 0.0, ""
        elif d.min_days_between_contacts and cust in primary:
            first = primary[cust]
            others[first].append(i)
            why[i] = (f"Raised in the same contact as invoice {ids[first]} (one contact per "
                      f"customer every {d.min_days_between_contacts} days); on its own: {action[i]}")
            gain[first] += gain[i]  # the one contact brings in what chasing each invoice would
            action[i], gain[i], purpose[i] = SAME_CONTACT, 0.0, ""
        else:
            primary[cust] = i
            others[i] = []

    templates = getattr(d.messages, d.language)
    message = np.full(len(out), "", dtype=object)
    for i in np.flatnonzero(purpose != "").tolist():
        r = rec[i]
        more = [f"{ids[j]} ({_money(docs[j])} {currencies[j]})" for j in others.get(i, [])]
        message[i] = getattr(templates, purpose[i]).format_map({
            "customer": r["customer_name"] or r["customer_id"], "invoice": r["invoice_id"],
            "amount": _money(r["amount_open_doc"]), "currency": r["currency"], "due": _day(dues[i]),
            "days": int(r["days_overdue"]), "action": action[i], "promise": _promise_text(r),
            "others": (", as are invoices " if d.language == "en" else ", liksom fakturorna ") + ", ".join(more)
            if more else ""})
    out["action"], out["why"], out["expected_gain"], out["message"] = action, why, gain, message
    out["_acting"] = is_actionable(out["action"])
    out["expected_gain"] = out["expected_gain"].round(2)
    out = out.sort_values(["_acting", "expected_gain", "rank"], ascending=[False, False, True],
                          kind="stable").reset_index(drop=True)
    if top is not None:
        out = out.head(top)
    out["rank"] = np.arange(1, len(out) + 1)
    return out[[c for c in ranked.columns] + LOG_COLUMNS]
