"""Contract ``score`` rows from feature rows and the two fitted models: p_late, pay dates, risk band, reasons.

Shared by ``likvid score``, both HTTP scoring paths and the collections worklist, so they cannot disagree; ``score``
itself lives here (not in ``training.pipeline``) so that scoring imports none of the training machinery.
Reasons leave the models as facts (``training.decisions.reasons.Reason``) and become words only here, at the
edge; ``facts=True`` hands the facts themselves to decision code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.asof import last_known_date
from features.company import Company
from features.contract import Inv
from features.invoices import (
    CURRENCY,
    CUSTOMER_NAME,
    DAYS_OVERDUE,
    OPEN_AMOUNT,
    OPEN_AMOUNT_DOC,
    FeatureConfig,
    columns,
    invoice_features,
)
from features.policy import Policy
from training import tracking
from training.decisions.reasons import Reason, Rows, reasons, sentences
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
    rows = Rows(x)
    facts = reasons(x, contributions, N_REASONS, rows)
    days_to_due = x["days_to_due"].to_numpy(float)
    for i in np.nonzero(overdue)[0].tolist():
        first = Reason("days_to_due", float(days_to_due[i]), float("inf"), row=rows[i])
        facts[i] = [first, *facts[i][:N_REASONS - 1]]
    return facts


def score_features(x: pd.DataFrame, late: LatePaymentModel, timing: PaymentTimingModel, policy: Policy = Policy(),
                   facts: bool = False, pay: tuple[np.ndarray, np.ndarray] | None = None,
                   ) -> pd.DataFrame | tuple[pd.DataFrame, list[list[Reason]]]:
    """Contract ``score`` rows for feature rows (see ``invoice_features``), in their order; with ``facts``,
    also each row's reasons as facts (the same ones the sentences say). ``pay`` is ``timing.pay_summary(x)`` when
    the caller has it."""
    if x.empty:
        empty = pd.DataFrame(columns=SCORE_COLUMNS)
        return (empty, []) if facts else empty
    p = late.predict_proba(x)
    # days after due: band's low end, most likely day, band's high end
    q, expected = timing.pay_summary(x) if pay is None else pay
    due = x[Inv.DUE].to_numpy("datetime64[ns]")

    def _date(days: np.ndarray) -> np.ndarray:
        finite = np.isfinite(days)
        out = due + (np.where(finite, days, 0.0) * 86_400e9).astype("timedelta64[ns]")
        return np.where(finite, out, np.datetime64("NaT"))

    why = score_facts(x, late)
    out = pd.DataFrame({
        "invoice_id": x[Inv.ID].to_numpy(),
        "customer_id": x[Inv.CUSTOMER].to_numpy(),
        "amount_open": x[OPEN_AMOUNT].to_numpy(),
        "due_date": due,
        "p_late": np.round(p, 4),
        "expected_days_late": np.round(expected, 1),
        "predicted_pay_date": _date(q[:, 1]),
        "pay_date_p10": _date(q[:, 0]),
        "pay_date_p90": _date(q[:, 2]),
        "risk_band": policy.risk_band(p, x[DAYS_OVERDUE].to_numpy()),
        "customer_name": x[CUSTOMER_NAME].to_numpy(),
        "currency": x[CURRENCY].to_numpy(),
        "amount_open_doc": x[OPEN_AMOUNT_DOC].to_numpy(),
    })
    scored = pd.concat([out, sentences(why, out.index, N_REASONS)], axis=1)[columns(SCORE_COLUMNS)]
    return (scored, why) if facts else scored


def champion_pair(company_key: str, policy: Policy | None = None) -> tuple[LatePaymentModel, PaymentTimingModel]:
    """The company's late-payment and payment-timing champions (checked against the policy when given)."""
    return (tracking.load_champion(tracking.LATE_PAYMENT, company_key, policy).model,
            tracking.load_champion(tracking.PAYMENT_TIMING, company_key, policy).model)


def score(company: Company, as_of_date: str | pd.Timestamp | None = None,
          models: tuple[LatePaymentModel, PaymentTimingModel] | None = None,
          cfg: FeatureConfig | None = None, policy: Policy = Policy(), company_key: str | None = None) -> pd.DataFrame:
    """Risk for every invoice open at as-of, with ``company_key``'s champion models unless ``models`` is given
    (refused when they learned another definition of late than the ``policy``'s); the features follow the
    policy unless ``cfg`` is given."""
    _, models, x = score_inputs(company, as_of_date, models, cfg, policy, company_key)
    return in_score_order(score_features(x, *models, policy=policy))


def score_inputs(company: Company, as_of_date: str | pd.Timestamp | None,
                 models: tuple[LatePaymentModel, PaymentTimingModel] | None, cfg: FeatureConfig | None,
                 policy: Policy, company_key: str | None,
                 ) -> tuple[pd.Timestamp, tuple[LatePaymentModel, PaymentTimingModel], pd.DataFrame]:
    """What ``score`` scores, wherever it runs: (as-of, the models, the features of the invoices open then)."""
    at = pd.Timestamp(as_of_date).normalize() if as_of_date is not None else last_known_date(company)
    if models is None:
        if company_key is None:
            raise ValueError("score needs the models or the company key of their champions")
        models = champion_pair(company_key, policy)
    return at, models, invoice_features(company, at, cfg if cfg is not None else FeatureConfig.from_policy(policy))


def in_score_order(scored: pd.DataFrame) -> pd.DataFrame:
    """``score``'s rows riskiest first (largest open amount among equals)."""
    return scored.sort_values(["p_late", "amount_open"], ascending=False, kind="stable").reset_index(drop=True)
