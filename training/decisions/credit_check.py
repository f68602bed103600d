"""Credit check of a new order or credit: approve, refer (to the approver of its size) or block, with reasons.

Headroom is the recommended credit limit (the customer's grade × its average monthly invoicing, never above
the ``credit_limit`` the data sets; grade C gets 0, prepayment) less what it owes now, less this amount. So a
grade-C customer never has positive headroom, whatever its old limit says. The rules, first match wins:

- **block** when the amount does not fit the headroom and the customer gets no credit at all (recommended
  limit 0) or has broken a promise to pay: nobody should approve more credit there;
- **refer** to ``approval_tiers``' approver for the amount when it does not fit the headroom, when the customer
  has an early warning, a broken promise, or an overdue share above ``alerts.overdue_share``, or when the
  amount reaches the first tier's ``up_to`` (large amounts always get a person's signature);
- **approve** otherwise, with no approver (an automated decision).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from features.load import Company
from features.policy import Policy
from training.decisions.dunning import log_facts, promise_state

CREDIT_CHECK_COLUMNS = ["customer_id", "amount", "decision", "approver", "grade", "headroom_after", "reasons"]
APPROVE, REFER, BLOCK = "approve", "refer", "block"


@dataclass(frozen=True)
class CreditFacts:
    """What a credit decision looks at for one customer, in the base currency."""

    customer_id: str
    grade: str
    recommended_limit: float
    open_amount: float
    overdue_amount: float
    warning: str
    broken_promises: int


def decide(facts: CreditFacts, amount: float, policy: Policy) -> dict:
    """The ``credit-check`` row for ``amount`` (> 0) on ``facts``, by the rules in the module docstring."""
    if not amount > 0:
        raise ValueError(f"amount must be above 0, got {amount}")
    headroom_after = round(facts.recommended_limit - facts.open_amount - amount, 2)
    overdue_share = facts.overdue_amount / facts.open_amount if facts.open_amount > 0 else 0.0
    fits = headroom_after >= 0
    first_tier = policy.approval_tiers[0].up_to
    reasons = [f"headroom after this amount {headroom_after:,.0f} (recommended limit {facts.recommended_limit:,.0f}"
               f" less {facts.open_amount:,.0f} open less {amount:,.0f})",
               f"grade {facts.grade}" + (" (no credit: prepayment)" if facts.recommended_limit <= 0 else "")]
    flags = []
    if overdue_share > policy.alerts.overdue_share:
        flags.append(f"{overdue_share:.0%} of the open amount is overdue (above {policy.alerts.overdue_share:.0%})")
    if facts.warning:
        flags.append(f"warning: {facts.warning}")
    if facts.broken_promises:
        flags.append(f"{facts.broken_promises} broken promise{'s' if facts.broken_promises > 1 else ''} to pay")
    if not fits and (facts.recommended_limit <= 0 or facts.broken_promises):
        decision, approver = BLOCK, ""
    elif not fits or flags or amount >= first_tier:
        decision, approver = REFER, policy.approver(amount)
        if amount >= first_tier and fits and not flags:
            flags.append(f"amount of {amount:,.0f} reaches the approval tier of {first_tier:,.0f}")
    else:
        decision, approver = APPROVE, ""
    return {"customer_id": facts.customer_id, "amount": float(amount), "decision": decision, "approver": approver,
            "grade": facts.grade, "headroom_after": headroom_after, "reasons": "; ".join([*reasons, *flags])}


def broken_promises(company: Company, at: pd.Timestamp, policy: Policy) -> pd.Series:
    """Per customer, how many of its open invoices carry a broken promise to pay at ``at``."""
    inv = log_facts(company, at).invoices
    _, broken = promise_state(inv, at, policy.dunning.promise_grace_days)
    return broken.groupby(inv["customer_id"]).sum()


def credit_check(company: Company, customer_id: str, amount: float, at: pd.Timestamp, customers: pd.DataFrame,
                 policy: Policy = Policy()) -> pd.DataFrame:
    """The one ``credit-check`` row (``CREDIT_CHECK_COLUMNS``) for ``customer_id`` and ``amount`` at ``at``, from
    the ``customers`` rows (``training.customers.customer_risk`` at the same as-of). ``ValueError`` naming the
    customer when it is unknown at that date."""
    rows = customers.set_index("customer_id")
    if customer_id not in rows.index:
        raise ValueError(f"customer_id {customer_id!r} is not a customer known at {at:%Y-%m-%d}")
    row = rows.loc[customer_id]
    facts = CreditFacts(customer_id=customer_id, grade=str(row["credit_grade"]),
                        recommended_limit=float(row["recommended_credit_limit"]),
                        open_amount=float(row["open_amount"]), overdue_amount=float(row["overdue_amount"]),
                        warning=str(row["warning"] or ""),
                        broken_promises=int(broken_promises(company, at, policy).get(customer_id, 0)))
    return pd.DataFrame([decide(facts, amount, policy)], columns=CREDIT_CHECK_COLUMNS)
