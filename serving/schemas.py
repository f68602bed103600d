"""Pydantic models of the HTTP service's requests and answers (CONTRACT.md section 3).

Each answer row has the same columns as the matching command's output file. Every field carries a
description and an example, so that the OpenAPI page documents the service by itself.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

MAX_BATCH = 10_000

# Dates are ISO strings (YYYY-MM-DD) only: a number is not silently read as a Unix time.
Day = Annotated[date, Field(strict=True, ge=date(1900, 1, 1), le=date(2199, 12, 31))]
Id = Annotated[str, Field(min_length=1, max_length=200)]
Money = Annotated[float, Field(allow_inf_nan=False)]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class InvoiceIn(_In):
    """One invoice as in the ``invoices`` table; extra columns are ignored, as in a data folder."""

    invoice_id: Id = Field(description="The invoice's id (kept as text, leading zeros too).", examples=["INV-000123"])
    customer_id: Id = Field(description="A customer the service knows (in the served data's `customers`).",
                            examples=["C0042"])
    issue_date: Day = Field(description="Issue date, YYYY-MM-DD; not after the service's as-of date.",
                            examples=["2025-06-02"])
    due_date: Day = Field(description="Due date, YYYY-MM-DD; not before the issue date.", examples=["2025-07-02"])
    # ge=0 plus the check below (not gt=0): OpenAPI 3.0 has no numeric exclusiveMinimum.
    amount: Money = Field(ge=0, description="Invoiced amount in the row's currency (> 0).", examples=[12500.0])
    currency: Optional[str] = Field(None, max_length=10, description="Currency code; informational.",
                                    examples=["EUR"])
    dispute_date: Optional[Day] = Field(None, description="When the customer disputed it, if they did.",
                                        examples=["2025-06-20"])
    delivery: Optional[Literal["electronic", "paper"]] = Field(None, description="How the invoice was sent.",
                                                               examples=["electronic"])
    order_id: Optional[str] = Field(None, max_length=200, description="The sales order it invoices, if any.",
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


Invoices = Annotated[list[InvoiceIn], Field(min_length=1, max_length=MAX_BATCH,
                                            description=f"1 to {MAX_BATCH:,} invoices to score.")]
CustomerIds = Annotated[list[Id], Field(min_length=1, max_length=MAX_BATCH,
                                        description=f"1 to {MAX_BATCH:,} customer ids.",
                                        examples=[["C0001", "C0002"]])]
Weeks = Annotated[int, Field(ge=1, le=104, description="Weeks to forecast (1 to 104).", examples=[13])]
TopN = Annotated[int, Field(strict=True, ge=1, le=MAX_BATCH, description=f"How many invoices to list, best first "
                            f"(1 to {MAX_BATCH:,}).", examples=[50])]
AsOf = Annotated[Optional[Day], Field(description="As-of date YYYY-MM-DD, not after the service's "
                                      "(default: the service's).", examples=["2025-06-29"])]


class ShocksIn(_In):
    """Driver shocks applied to the forecast; zero means none."""

    customer_delay_days: float = Field(0.0, allow_inf_nan=False,
                                       description="Every customer pays this many days later (negative: earlier).",
                                       examples=[10.0])
    sales_change_pct: float = Field(0.0, allow_inf_nan=False,
                                    description="Change of future sales in percent (-20 = a fifth fewer).",
                                    examples=[-10.0])
    supplier_lead_time_days: float = Field(0.0, allow_inf_nan=False,
                                           description="Suppliers deliver (and so bill) this many days later.",
                                           examples=[0.0])


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
    amount_open: float = Field(description="Amount still open.", examples=[12500.0])
    due_date: date = Field(description="Due date.", examples=["2025-07-02"])
    p_late: float = Field(description="Calibrated probability of being paid after the due date (1 when it "
                                      "already is).", examples=[0.37])
    expected_days_late: Optional[float] = Field(description="Expected days paid after the due date.",
                                                examples=[4.2])
    predicted_pay_date: Optional[date] = Field(description="Median predicted pay date (null: may never be paid).",
                                               examples=["2025-07-05"])
    pay_date_p10: Optional[date] = Field(description="10th percentile of the pay date.", examples=["2025-06-28"])
    pay_date_p90: Optional[date] = Field(description="90th percentile of the pay date.", examples=["2025-07-30"])
    risk_band: str = Field(description="low, medium, high, very high, or overdue.", examples=["medium"])
    reason_1: Optional[str] = Field(description="Strongest reason, as a sentence naming the fact and direction.",
                                    examples=["customer paid 6 of its last 10 invoices late (raises risk)"])
    reason_2: Optional[str] = Field(description="Second reason.", examples=["invoice is due in 30 days "
                                                                             "(lowers risk)"])
    reason_3: Optional[str] = Field(description="Third reason.", examples=["invoice was sent on paper "
                                                                            "(raises risk)"])


class CustomerRow(_Out):
    customer_id: str = Field(description="The customer's id.", examples=["C0042"])
    segment: Optional[str] = Field(description="Behaviour segment.", examples=["steady payer"])
    credit_grade: Optional[str] = Field(description="AAA, AA, A, B or C.", examples=["A"])
    p_late_next: Optional[float] = Field(description="Probability that its next invoice is paid late.",
                                         examples=[0.22])
    recommended_credit_limit: Optional[float] = Field(description="Recommended credit limit.", examples=[50000.0])
    open_amount: Optional[float] = Field(description="Open receivables.", examples=[18000.0])
    overdue_amount: Optional[float] = Field(description="Open receivables past due.", examples=[2500.0])
    dso_days: Optional[float] = Field(description="The customer's days sales outstanding.", examples=[41.5])
    trend: Optional[str] = Field(description="Direction of its payment behaviour.", examples=["stable"])
    warning: Optional[str] = Field(description="Empty, or what changed.", examples=[""])
    headroom: Optional[float] = Field(None, description="Credit limit less open amount (when the data has "
                                      "credit limits).", examples=[32000.0])


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


class KpiRow(_Out):
    name: str = Field(description="Figure name.", examples=["DSO"])
    value: Optional[float] = Field(description="Its value (null when it cannot be computed).", examples=[38.2])
    unit: Optional[str] = Field(description="Unit.", examples=["days"])
    definition: Optional[str] = Field(description="How it is computed, or why it is empty.",
                                      examples=["open AR / invoiced in the 90 days to as-of x 90"])


class ModelCard(BaseModel):
    name: str = Field(description="Registered model name.", examples=["likvid-late-payment"])
    version: str = Field(description="Registry version serving as champion.", examples=["3"])
    run_id: Optional[str] = Field(description="MLflow run that trained it.", examples=["5b1f..."])
    trained_as_of: Optional[str] = Field(description="The data's as-of date of its training run.",
                                         examples=["2025-06-30"])
    metrics: dict[str, float] = Field(description="Headline holdout metrics of its training run.",
                                      examples=[{"auc": 0.91, "brier": 0.12}])


class ModelInfo(BaseModel):
    service_as_of: str = Field(description="The as-of date of the history the service scores against.",
                               examples=["2025-06-30"])
    data: str = Field(description="The data folder the service loaded.", examples=["demo/company"])
    customers: int = Field(description="Customers known at the service's as-of.", examples=[300])
    open_invoices: int = Field(description="Invoices open at the service's as-of.", examples=[2400])
    endpoints: list[str] = Field(description="The endpoints this service answers.",
                                 examples=[["/score_invoices", "/model_info"]])
    models: list[ModelCard] = Field(description="The champion models the service loaded at start-up.")
