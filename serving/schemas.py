"""Pydantic models of the HTTP service's requests and answers (CONTRACT.md section 3), and the two
translations at the edge: request invoices to an ``invoices`` table, output frames to answer rows.

Each answer row has the same columns as the matching command's output file. Every field carries a
description and an example, so that the OpenAPI page documents the service by itself. Bounds come from
``features.limits``.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Literal, Optional

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, create_model, field_validator
from starlette.responses import JSONResponse

from features.contract import TABLES, Inv, dtype_of
from features.limits import BATCH, CURRENCY_LENGTH, EARLIEST_DATE, ID_LENGTH, LATEST_DATE, MAX_AMOUNT, TOP_N, WEEKS
from training.cash.shocks import SHOCKS

# Dates are ISO strings (YYYY-MM-DD) only: a number is not silently read as a Unix time.
Day = Annotated[date, Field(strict=True, ge=EARLIEST_DATE, le=LATEST_DATE)]
Id = Annotated[str, Field(min_length=1, max_length=ID_LENGTH)]
Money = Annotated[float, Field(allow_inf_nan=False)]


class _In(BaseModel):
    """A request part: unknown fields are refused (a typo must not silently mean the default) and types are
    strict (``true`` is not a number, ``"5"`` is not an amount)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class InvoiceIn(_In):
    """One invoice as in the ``invoices`` table (its columns only)."""

    invoice_id: Id = Field(description="The invoice's id (kept as text, leading zeros too).", examples=["INV-000123"])
    customer_id: Id = Field(description="A customer the service knows (in the served data's `customers`).",
                            examples=["C0042"])
    issue_date: Day = Field(description="Issue date, YYYY-MM-DD; not after the service's as-of date.",
                            examples=["2025-06-02"])
    due_date: Day = Field(description="Due date, YYYY-MM-DD; not before the issue date.", examples=["2025-07-02"])
    # ge=0 plus the check below (not gt=0): OpenAPI 3.0 has no numeric exclusiveMinimum.
    amount: Money = Field(ge=0, description="Invoiced amount in the row's currency (> 0).", examples=[12500.0])
    currency: Optional[str] = Field(None, max_length=CURRENCY_LENGTH, description="Currency code (empty: the base "
                                    "currency); converted at the latest fx_rates rate on or before the service's "
                                    "as-of, and a 400 when there is none.", examples=["EUR"])
    dispute_date: Optional[Day] = Field(None, description="When the customer disputed it, if they did.",
                                        examples=["2025-06-20"])
    delivery: Optional[Literal["electronic", "paper"]] = Field(None, description="How the invoice was sent.",
                                                               examples=["electronic"])
    order_id: Optional[str] = Field(None, max_length=ID_LENGTH, description="The sales order it invoices, if any.",
                                    examples=["ORD-0042"])

    @field_validator("amount")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError(f"amount must be greater than 0, got {v:g}")
        return v

    @field_validator("due_date", "dispute_date")
    @classmethod
    def _not_before_issue(cls, v: date | None, info: ValidationInfo) -> date | None:
        issue = info.data.get("issue_date")
        if v is not None and issue is not None and v < issue:
            raise ValueError(f"{info.field_name} {v} is before issue_date {issue}")
        return v


Invoices = Annotated[list[InvoiceIn], Field(min_length=BATCH.low, max_length=BATCH.high,
                                            description=f"{BATCH.low} to {BATCH.high:,} invoices to score.")]
CustomerIds = Annotated[list[Id], Field(min_length=BATCH.low, max_length=BATCH.high,
                                        description=f"{BATCH.low} to {BATCH.high:,} customer ids.",
                                        examples=[["C0001", "C0002"]])]
Weeks = Annotated[int, Field(strict=True, ge=WEEKS.low, le=WEEKS.high, examples=[WEEKS.default],
                             description=f"{WEEKS.description} ({WEEKS.low} to {WEEKS.high}).")]
TopN = Annotated[int, Field(strict=True, ge=TOP_N.low, le=TOP_N.high, description=f"{TOP_N.description} "
                            f"({TOP_N.low} to {TOP_N.high:,}).", examples=[TOP_N.default])]
AsOf = Annotated[Optional[Day], Field(description="As-of date YYYY-MM-DD, not after the service's "
                                      "(default: the service's).", examples=["2025-06-29"])]
Owner = Annotated[Optional[str], Field(min_length=1, max_length=ID_LENGTH, description="Only the customers of this "
                                       "owner (the customers' owner column; case does not matter).",
                                       examples=["Anna Berg"])]
ByCustomer = Annotated[bool, Field(description="One row per call (a customer to contact, its invoices listed) "
                                   "instead of one per invoice; top_n then counts calls.", examples=[False])]


class _Shocks(_In):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# One field a shock of the registry, with its range: an unknown shock or a non-number is a 4xx naming it.
ShocksIn = create_model(
    "ShocksIn", __base__=_Shocks,
    __doc__="Driver shocks applied to the forecast; zero (the default) means none. Unknown shocks are refused.",
    **{s.name: (float, Field(0.0, ge=s.low, le=s.high, allow_inf_nan=False, examples=[s.example],
                             description=f"{s.description}; {s.low:g} to {s.high:g} {s.unit}."))
       for s in SHOCKS.values()},
)


# ---- answers: one model per output row, the columns of the matching command's file ----


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="before")
    @classmethod
    def _missing_is_null(cls, v):
        """NaN and NaT from a frame are JSON null."""
        if isinstance(v, float) and math.isnan(v):
            return None
        if v.__class__.__name__ == "NaTType":
            return None
        return v


class ScoreRow(_Out):
    invoice_id: str = Field(description="The invoice's id.", examples=["INV-000123"])
    customer_id: str = Field(description="The customer's id.", examples=["C0042"])
    amount_open: float = Field(description="Amount still open, net of payments and credit notes, in the base "
                               "currency at the as-of rate.", examples=[12500.0])
    due_date: date = Field(description="Due date.", examples=["2025-07-02"])
    p_late: float = Field(description="Calibrated probability of being paid after the due date (1 when it "
                                      "already is).", examples=[0.37])
    expected_days_late: Optional[float] = Field(description="Expected days paid after the due date.",
                                                examples=[4.2])
    predicted_pay_date: Optional[date] = Field(description="The most likely pay day: the centre of the week holding "
                                               "most of the pay-date distribution, the customer's next payment run "
                                               "for a run payer (null: may never be paid).",
                                               examples=["2025-07-05"])
    pay_date_p10: Optional[date] = Field(description="Early end of the calibrated 80 % pay-date band.",
                                          examples=["2025-06-28"])
    pay_date_p90: Optional[date] = Field(description="Late end of the calibrated 80 % pay-date band.",
                                          examples=["2025-07-30"])
    risk_band: str = Field(description="low, medium, high, very high, or overdue.", examples=["medium"])
    reason_1: Optional[str] = Field(description="Strongest reason, as a sentence naming the fact and direction.",
                                    examples=["customer paid 6 of its last 10 invoices late (raises risk)"])
    reason_2: Optional[str] = Field(description="Second reason.", examples=["invoice is due in 30 days "
                                                                             "(lowers risk)"])
    reason_3: Optional[str] = Field(description="Third reason.", examples=["invoice was sent on paper "
                                                                            "(raises risk)"])
    customer_name: Optional[str] = Field(None, description="The customer's name (empty: none given).",
                                         examples=["Acme AB"])
    currency: Optional[str] = Field(None, description="The invoice's currency.", examples=["EUR"])
    amount_open_doc: Optional[float] = Field(None, description="Amount still open in the invoice's currency.",
                                             examples=[12500.0])


class CustomerRow(_Out):
    customer_id: str = Field(description="The customer's id.", examples=["C0042"])
    segment: Optional[str] = Field(description="Behaviour segment.", examples=["steady payer"])
    credit_grade: Optional[str] = Field(description="AAA, AA, A, B or C.", examples=["A"])
    p_late_next: Optional[float] = Field(description="Probability that its next invoice is paid late.",
                                         examples=[0.22])
    recommended_credit_limit: Optional[float] = Field(description="Recommended credit limit.", examples=[50000.0])
    open_amount: Optional[float] = Field(description="Open receivables net of payments and credit notes, less "
                                         "credit on the account, in the base currency.", examples=[18000.0])
    overdue_amount: Optional[float] = Field(description="Open receivables past due, net of payments and credit "
                                            "notes applied to them, in the base currency.", examples=[2500.0])
    dso_days: Optional[float] = Field(description="The customer's days sales outstanding.", examples=[41.5])
    trend: Optional[str] = Field(description="Direction of its payment behaviour.", examples=["stable"])
    warning: Optional[str] = Field(description="Empty, or what changed.", examples=[""])
    headroom: Optional[float] = Field(None, description="Credit limit less open amount (when the data has "
                                      "credit limits).", examples=[32000.0])
    customer_name: Optional[str] = Field(None, description="The customer's name (empty: none given).",
                                         examples=["Acme AB"])


class ForecastRow(_Out):
    week: int = Field(description="Week k covers as_of + 7(k-1) + 1 to as_of + 7k.", examples=[1])
    week_start: date = Field(description="First day of the week.", examples=["2025-06-30"])
    week_end: date = Field(description="Last day of the week.", examples=["2025-07-06"])
    inflow_p10: float = Field(description="Customer receipts, downside.", examples=[90000.0])
    inflow_p50: float = Field(description="Customer receipts, base.", examples=[110000.0])
    inflow_p90: float = Field(description="Customer receipts, upside.", examples=[125000.0])
    outflow_p10: float = Field(description="Supplier payments and other net outflows, p10.", examples=[80000.0])
    outflow_p50: float = Field(description="Outflows, p50.", examples=[95000.0])
    outflow_p90: float = Field(description="Outflows, p90.", examples=[110000.0])
    net_p10: float = Field(description="Net flow, p10.", examples=[-15000.0])
    net_p50: float = Field(description="Net flow, p50.", examples=[15000.0])
    net_p90: float = Field(description="Net flow, p90.", examples=[40000.0])
    balance_p10: Optional[float] = Field(description="Closing balance, p10.", examples=[480000.0])
    balance_p50: Optional[float] = Field(description="Closing balance, p50.", examples=[515000.0])
    balance_p90: Optional[float] = Field(description="Closing balance, p90.", examples=[545000.0])
    ar_open: float = Field(description="Receipts from invoices open at as-of (p50).", examples=[70000.0])
    ar_future: float = Field(description="Receipts from invoices not yet issued (p50).", examples=[40000.0])
    ap_open: float = Field(description="Payments of bills open at as-of (p50).", examples=[60000.0])
    ap_future: float = Field(description="Payments of bills not yet received (p50).", examples=[25000.0])
    other: float = Field(description="Other net bank flows (p50).", examples=[-10000.0])
    below_floor: Optional[bool] = Field(None, description="The p10 balance falls below the configured cash floor.",
                                        examples=[False])
    opening_balance: Optional[float] = Field(None, description="Cash at as-of the balances start from; empty when "
                                             "the data has no cash_balances (see opening_note).", examples=[450000.0])
    opening_note: str = Field("", description="Empty, or 'no opening balance: ...' when the data has no "
                              "cash_balances and the balances are cumulative net flows from 0.", examples=[""])


class WorklistRow(_Out):
    rank: int = Field(description="1 = act first.", examples=[1])
    invoice_id: str = Field(description="The invoice's id.", examples=["INV-000123"])
    customer_id: str = Field(description="The customer's id.", examples=["C0042"])
    amount_open: float = Field(description="Amount still open.", examples=[12500.0])
    days_overdue: int = Field(description="Days past due (negative: not yet due).", examples=[12])
    aging_bucket: str = Field(description="Aging bucket of the days overdue.", examples=["1-30"])
    action: str = Field(description="The dunning step to take.", examples=["reminder"])
    p_late: float = Field(description="Probability of being paid late.", examples=[0.8])
    expected_gain: float = Field(description="Expected cash brought in by acting.", examples=[1800.0])
    why: str = Field(description="Why it ranks here.", examples=["12 days overdue, customer usually pays "
                                                                  "after a reminder"])
    customer_name: Optional[str] = Field(None, description="The customer's name.", examples=["Acme AB"])
    currency: Optional[str] = Field(None, description="The invoice's currency.", examples=["EUR"])
    amount_open_doc: Optional[float] = Field(None, description="Amount still open in the invoice's currency.",
                                             examples=[12500.0])
    last_contact: Optional[str] = Field(None, description="Last logged contact with the customer, YYYY-MM-DD "
                                        "(empty: none).", examples=["2025-06-20"])
    promise: Optional[str] = Field(None, description="The customer's promise to pay, if any (open, kept or "
                                   "broken).", examples=[""])
    message: Optional[str] = Field(None, description="A ready-to-send draft for the action.",
                                   examples=["Dear Acme AB, our invoice INV-000123 ..."])
    owner: Optional[str] = Field(None, description="Who is responsible for the customer (empty: nobody named).",
                                 examples=["Anna Berg"])


class CallRow(_Out):
    """One row of ``likvid worklist --by-customer``: a customer to contact and the invoices the call raises."""

    rank: int = Field(description="1 = call first.", examples=[1])
    customer_id: str = Field(description="The customer's id.", examples=["C0042"])
    customer_name: Optional[str] = Field(None, description="The customer's name.", examples=["Acme AB"])
    owner: Optional[str] = Field(None, description="Who is responsible for the customer (empty: nobody named).",
                                 examples=["Anna Berg"])
    action: str = Field(description="The most advanced step among the call's invoices.", examples=["formal warning"])
    invoices: str = Field(description="The invoices the call raises, best first, joined by ', '.",
                          examples=["INV-000123, INV-000140"])
    n_invoices: int = Field(description="How many invoices the call raises.", examples=[2])
    amount_open: float = Field(description="Their open amount, in the base currency.", examples=[18250.0])
    amount_overdue: float = Field(description="The open amount of those past due.", examples=[12500.0])
    earliest_due: date = Field(description="The earliest due date among them.", examples=["2025-05-02"])
    best_rank: int = Field(description="The best worklist rank among them.", examples=[1])
    expected_gain: float = Field(description="Expected cash the call brings in.", examples=[4100.0])
    last_contact: Optional[str] = Field(None, description="Last logged contact with the customer, YYYY-MM-DD "
                                        "(empty: none).", examples=["2025-06-20"])
    message: str = Field(description="One draft covering the call's invoices, in the policy's language.",
                         examples=["Dear Acme AB, invoice INV-000123 ... This also concerns invoice INV-000140 "
                                   "(5,750.00 EUR)."])


class DiscountRow(_Out):
    bill_id: str = Field(description="The bill's id.", examples=["B-0042"])
    supplier_id: str = Field(description="The supplier's id.", examples=["S007"])
    amount: float = Field(description="Bill amount.", examples=[20000.0])
    discount_pct: float = Field(description="Early-payment discount in percent.", examples=[1.0])
    pay_by: date = Field(description="Last day to pay with the discount.", examples=["2025-07-10"])
    annualized_return: float = Field(description="What taking the discount earns, per year.", examples=[0.18])
    cost_of_capital: float = Field(description="The configured cost of capital.", examples=[0.08])
    take: bool = Field(description="Take the discount.", examples=[True])
    cash_ok: Optional[bool] = Field(description="The forecast balance stays above the cash floor (null: not "
                                    "decided yet, or the discount window has closed).", examples=[True])
    reason: Optional[str] = Field(None, description="Why, in words: window closed, return below the cost of "
                                  "capital, cash would fall below the floor, beyond the horizon, taken.",
                                  examples=["taken: 36.9% a year beats the cost of capital 8.0%"])


class KpiRow(_Out):
    name: str = Field(description="Figure name.", examples=["DSO"])
    value: Optional[float] = Field(description="Its value (null when it cannot be computed).", examples=[38.2])
    unit: Optional[str] = Field(description="Unit.", examples=["days"])
    definition: Optional[str] = Field(description="How it is computed, or why it is empty.",
                                      examples=["open AR / invoiced in the 90 days to as-of x 90"])


class ModelCard(BaseModel):
    model_config = ConfigDict(frozen=True)

    family: str = Field(description="The model family: late payment, payment timing, segmentation or cash "
                        "forecast.", examples=["likvid-late-payment"])
    name: str = Field(description="Registered model name.", examples=["acme.likvid-late-payment"])
    version: str = Field(description="Registry version serving as champion.", examples=["3"])
    run_id: Optional[str] = Field(description="MLflow run that trained it.", examples=["5b1f..."])
    trained_as_of: Optional[str] = Field(description="The data's as-of date of its training run.",
                                         examples=["2025-06-30"])
    metrics: dict[str, float] = Field(description="Headline holdout metrics of its training run.",
                                      examples=[{"auc": 0.91, "brier": 0.12}])


class ModelInfo(BaseModel):
    company: str = Field(description="The company served: likvid.yaml's `company`, else the data folder's name.",
                         examples=["acme"])
    service_as_of: str = Field(description="The as-of date of the history the service scores against.",
                               examples=["2025-06-30"])
    data: str = Field(description="The data folder the service loaded.", examples=["demo/company"])
    customers: int = Field(description="Customers known at the service's as-of.", examples=[300])
    open_invoices: int = Field(description="Invoices open at the service's as-of.", examples=[2400])
    endpoints: list[str] = Field(description="The endpoints this service answers.",
                                 examples=[["/score_invoices", "/model_info"]])
    models: list[ModelCard] = Field(description="The champion models the service loaded at start-up.")


# ---- the edge: request rows in, answer rows out ----


def invoice_frame(invoices: list[InvoiceIn]) -> pd.DataFrame:
    """Request invoices as a typed ``invoices`` table (still open: no payment)."""
    columns = {}
    # Column by column from the models' attributes, as arrays (no dict, no object column, no Series per column:
    # a third of the time for one invoice)
    for c in TABLES[Inv.TABLE].columns:
        values = [getattr(inv, c.name, None) for inv in invoices]
        dtype = dtype_of(c)
        if dtype == "datetime64[ns]":
            days = [np.datetime64("NaT") if v is None else np.datetime64(v, "D") for v in values]
            columns[c.name] = np.array(days, "datetime64[D]").astype(dtype)
        elif dtype == "float64":
            columns[c.name] = np.array([np.nan if v is None else v for v in values], dtype)
        else:
            columns[c.name] = pd.array(values, dtype=dtype)
    return pd.DataFrame(columns, copy=False)


def records(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
    """Output rows as JSON-ready dicts: dates as dates, missing values as None."""
    values = []
    for col in columns:  # through numpy: pandas' frame-wide astype/where/to_dict costs ms per request
        a = frame[col].to_numpy()
        if a.dtype.kind == "M":
            values.append([None if v != v else v.item() for v in a.astype("datetime64[D]")])
        else:
            values.append([_plain(v) for v in a])
    return [dict(zip(columns, row)) for row in zip(*values)]


def _plain(v):
    """A numpy or pandas scalar as a plain Python value; NaN, NA and NaT as None."""
    if v is None or v is pd.NA or v is pd.NaT or v != v:
        return None
    return v.item() if hasattr(v, "item") else v


def bad_request(*problems: tuple[list, str]) -> JSONResponse:
    """A 400 shaped like BentoML's own validation errors: each problem names its field (``loc``)."""
    detail = [{"loc": loc, "msg": msg, "type": "value_error"} for loc, msg in problems]
    n = len(detail)
    return JSONResponse({"error": f"{n} validation error{'s' if n > 1 else ''}: "
                                  + "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in detail[:5]),
                         "detail": detail}, status_code=400)


VersionId = Annotated[str, Field(min_length=6, max_length=64, pattern=r"^[0-9a-f]+$",
                                 description="A saved forecast's id (from `likvid forecast --save` or `likvid "
                                 "variance --list`), or a unique prefix of at least 6 characters.",
                                 examples=["3f2a9c1d"])]
OptionalVersionId = Optional[VersionId]


class VarianceRow(_Out):
    """One row of ``likvid variance``: a passed week (forecast against actual), or with ``against`` a bridge row
    (``week_end, cause, amount``)."""

    model_config = ConfigDict(extra="allow")
    week_end: date = Field(description="Last day of the week.", examples=["2025-07-06"])


CustomerId = Annotated[Id, Field(description="The customer's id, as in the served data's customers.",
                                 examples=["000001"])]
CreditAmount = Annotated[float, Field(gt=0, le=MAX_AMOUNT, allow_inf_nan=False, description="The new order's or "
                                      "credit's amount, in the base currency.", examples=[25000.0])]


class CreditCheckRow(_Out):
    """The ``likvid credit-check`` answer."""

    customer_id: str = Field(description="The customer's id.", examples=["000001"])
    amount: float = Field(description="The amount checked.", examples=[25000.0])
    decision: str = Field(description="approve, refer or block.", examples=["refer"])
    approver: Optional[str] = Field(None, description="Who approves a referred amount (approval_tiers); empty "
                                    "otherwise.", examples=["sales manager"])
    grade: str = Field(description="The customer's credit grade.", examples=["A"])
    headroom_after: float = Field(description="Recommended limit less what is open less this amount.",
                                  examples=[-1200.0])
    reasons: str = Field(description="The facts behind the decision.", examples=["headroom after this amount "
                         "-1,200 (recommended limit 30,000 less 6,200 open less 25,000); grade A"])


class ProvisionRow(_Out):
    """A row of ``likvid provision``: a bucket or total of one method, or one invoice of the model."""

    method: str = Field(description="loss_rate_matrix or model.", examples=["loss_rate_matrix"])
    level: str = Field(description="bucket, total or invoice.", examples=["bucket"])
    bucket: str = Field(description="Aging bucket (or total).", examples=["31-60"])
    invoice_id: Optional[str] = Field(None, description="The invoice (model rows per invoice).", examples=[None])
    customer_id: Optional[str] = Field(None, description="The invoice's customer.", examples=[None])
    amount_open: float = Field(description="Open amount, base currency.", examples=[120000.0])
    loss_rate: Optional[float] = Field(None, description="Expected share lost.", examples=[0.015])
    provision: float = Field(description="Expected credit loss, base currency.", examples=[1800.0])
    history_amount: Optional[float] = Field(None, description="Loss-rate matrix: the history's amount that "
                                            "reached this bucket.", examples=[8400000.0])


class LiquidityWeekRow(_Out):
    """A week of ``likvid liquidity`` (``training.cash.liquidity.WEEK_COLUMNS``)."""

    week: int = Field(description="Week k covers as_of + 7(k-1) + 1 to as_of + 7k.", examples=[1])
    week_start: date = Field(description="First day of the week.", examples=["2025-06-30"])
    week_end: date = Field(description="Last day of the week.", examples=["2025-07-06"])
    balance_p10: float = Field(description="The forecast's downside (p10) closing balance.", examples=[480000.0])
    floor: float = Field(description="The policy's cash_floor.", examples=[100000.0])
    buffer: float = Field(description="Kept above the floor: liquidity.buffer_share_of_monthly_outflows of a "
                          "month's forecast outflows (p50, 52/12 weeks).", examples=[40000.0])
    headroom: Optional[float] = Field(description="balance_p10 - floor - buffer (null: no opening balance).",
                                      examples=[340000.0])
    status: str = Field(description="surplus, inside buffer, gap, or no opening balance.", examples=["surplus"])
    surplus_placeable: Optional[float] = Field(description="Placeable from this week: the least headroom over the "
                                               "run of weeks above floor plus buffer (0: the run is shorter than "
                                               "liquidity.placement_min_weeks).", examples=[300000.0])
    placeable_weeks: Optional[int] = Field(description="For how many weeks (to the horizon at most).",
                                           examples=[6])
    placement_earns: Optional[float] = Field(description="What placing it earns at liquidity.placement_rate.",
                                             examples=[1038.0])
    gap: Optional[float] = Field(description="floor - balance_p10 where positive (null: no opening balance).",
                                 examples=[0.0])
    opening_needed: float = Field(description="The opening balance at which this week's p10 just holds floor plus "
                                  "buffer.", examples=[260000.0])
    opening_note: str = Field("", description="Empty, or 'no opening balance: ...' (gap and surplus withheld).",
                              examples=[""])


class LiquidityOptionRow(_Out):
    """A way of closing the gap (``training.cash.liquidity.OPTION_COLUMNS``), cheapest first."""

    rank: int = Field(description="1 = cheapest per unit of gap closed for a week.", examples=[1])
    option: str = Field(description="credit line, factoring, skip discount or delay bill.", examples=["credit line"])
    item: str = Field(description="The invoice or bill (empty for the credit line).", examples=[""])
    amount: float = Field(description="Most cash it brings in any week.", examples=[50000.0])
    arrives_week: int = Field(description="The first week it brings cash.", examples=[3])
    until_week: int = Field(description="The last week the cash stays.", examples=[5])
    closes: float = Field(description="The largest weekly gap it closes.", examples=[50000.0])
    gap_weeks: int = Field(description="Gap weeks it closes some of.", examples=[2])
    cost: float = Field(description="Interest, fee, discount foregone or late fee.", examples=[67.0])
    cost_per_unit_week: float = Field(description="Cost / the weekly gaps it closes, summed.", examples=[0.00134])
    gap_left: float = Field(description="Largest weekly gap left using this and every option ranked above.",
                            examples=[0.0])
    note: str = Field(description="What it means, in words.", examples=["drawn in each gap week, up to the limit"])


class LiquidityAnswer(BaseModel):
    """``likvid liquidity``: the weeks, the options, why an option offers nothing, and the one-line summary."""

    weeks: list[LiquidityWeekRow] = Field(description="One row a forecast week.")
    options: list[LiquidityOptionRow] = Field(description="What closes the gap, cheapest first (empty: no gap, or "
                                              "no opening balance).")
    opening_known: bool = Field(description="False when the data has no cash_balances: gap and surplus withheld.",
                                examples=[True])
    notes: list[str] = Field(description="Why an option offers nothing, or why gaps are withheld.",
                             examples=[["no credit line: liquidity.credit_line_limit is 0"]])
    summary: str = Field(description="The treasurer's one line.", examples=["from week 1 300,000 can be placed for "
                                                                            "6 weeks (earns 1,038 at 3.0%)"])
