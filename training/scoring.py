"""Contract ``score`` rows from feature rows and the two fitted models: p_late, pay dates, risk band, reasons.

Shared by ``likvid score``, both HTTP scoring paths and the collections worklist, so they cannot disagree.
Reasons leave the models as facts (``training.decisions.reasons.Reason``) and become words only here, at the
edge; ``facts=True`` hands the facts themselves to decision code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import Inv
from features.invoices import CURRENCY, CUSTOMER_NAME, DAYS_OVERDUE, OPEN_AMOUNT, OPEN_AMOUNT_DOC
from features.policy import Policy
from training.decisions.reasons import Reason, reasons, sentences
from training.late_payment import LatePaymentModel
from training.payment_timing import PaymentTimingModel

SCORE_COLUMNS = ["invoice_id", "customer_id", "amount_open", "due_date", "p_late", "expected_days_late",
                 "predicted_pay_date", "pay_date_p10", "pay_date_p90", "risk_band",
                 "reason_1", "reason_2", "reason_3",
                 # CONTRACT "Currencies": amount_open is in the base; the document's currency and open amount beside
                 "customer_name", "currency", "amount_open_doc"]
N_REASONS = 3


def score_facts(x: pd.DataFrame, late: LatePaymentModel) -> list[list[Reason]]:
    """Each row's reasons, strongest first. A past-due invoice is late whatever the model says
    (``predict_proba`` gives it 1.0), so its first fact is how late it is."""
    contributions = late.contributions(x)
    overdue = (x[DAYS_OVERDUE] > 0).to_numpy()
    contributions.loc[overdue, "days_to_due"] = 0.0
    facts = reasons(x, contributions, N_REASONS)
    if overdue.any():
        rows = x.to_dict("records")
        for i in np.nonzero(overdue)[0]:
            first = Reason("days_to_due", float(rows[i]["days_to_due"]), float("inf"), row=rows[i])
            facts[i] = [first, *facts[i][:N_REASONS - 1]]
    return facts


def score_features(x: pd.DataFrame, late: LatePaymentModel, timing: PaymentTimingModel, policy: Policy = Policy(),
                   facts: bool = False) -> pd.DataFrame | tuple[pd.DataFrame, list[list[Reason]]]:
    """Contract ``score`` rows for feature rows (see ``invoice_features``), in their order; with ``facts``,
    also each row's reasons as facts (the same ones the sentences say)."""
    if x.empty:
        empty = pd.DataFrame(columns=SCORE_COLUMNS)
        return (empty, []) if facts else empty
    p = late.predict_proba(x)
    q = timing.pay_days(x)  # days after due: band's low end, most likely day, band's high end
    due = x[Inv.DUE]

    def _date(days: np.ndarray) -> pd.Series:
        finite = np.isfinite(days)
        out = due + pd.to_timedelta(np.where(finite, days, 0), unit="D")
        return out.where(finite)

    why = score_facts(x, late)
    out = pd.DataFrame({
        "invoice_id": x[Inv.ID].to_numpy(),
        "customer_id": x[Inv.CUSTOMER].to_numpy(),
        "amount_open": x[OPEN_AMOUNT].to_numpy(),
        "due_date": due.to_numpy(),
        "p_late": np.round(p, 4),
        "expected_days_late": np.round(timing.expected_days_late(x), 1),
        "predicted_pay_date": _date(q[:, 1]).to_numpy(),
        "pay_date_p10": _date(q[:, 0]).to_numpy(),
        "pay_date_p90": _date(q[:, 2]).to_numpy(),
        "risk_band": policy.risk_band(p, x[DAYS_OVERDUE].to_numpy()),
        "customer_name": x[CUSTOMER_NAME].to_numpy(),
        "currency": x[CURRENCY].to_numpy(),
        "amount_open_doc": x[OPEN_AMOUNT_DOC].to_numpy(),
    })
    scored = pd.concat([out, sentences(why, out.index, N_REASONS)], axis=1)[SCORE_COLUMNS]
    return (scored, why) if facts else scored
