"""The company's credit and cash policies in one validated configuration (``likvid.yaml``).

A data folder may hold a ``likvid.yaml``; ``--config FILE`` names another. Anything left out takes
the defaults below, so an empty file is a valid policy. A bad value is a ``PolicyError`` that
names the setting and the problem.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

POLICY_FILE = "likvid.yaml"
GRADES = ("AAA", "AA", "A", "B", "C")


def month_end(due: pd.Series, days: int) -> pd.Series:
    """Due dates in the last ``days`` days of their month: the one definition of "falls at a month-end"."""
    return (due.dt.days_in_month - due.dt.day) < days


def quarter_end(due: pd.Series, days: int) -> pd.Series:
    """Month-end due dates in March, June, September or December."""
    return month_end(due, days) & due.dt.month.isin([3, 6, 9, 12])


class PolicyError(ValueError):
    """A configuration that cannot be used; the message names the setting."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DunningStep(_Frozen):
    from_days_overdue: int = Field(ge=1, description="First day overdue on which this step applies.")
    action: str = Field(min_length=1, description="What to do, in the controller's words.")


MESSAGE_FIELDS = ("customer", "invoice", "amount", "currency", "due", "days", "action", "promise", "others")


class MessageSet(_Frozen):
    """Drafts for one language; ``{placeholders}`` from ``MESSAGE_FIELDS`` are filled in per row."""

    pre_due: str = Field(min_length=1, description="Before due, to a customer likely to pay late.")
    overdue: str = Field(min_length=1, description="An overdue invoice, at the ladder's step {action}.")
    broken_promise: str = Field(min_length=1, description="A promise to pay that was not kept (escalated).")
    dispute: str = Field(min_length=1, description="A disputed invoice: resolve, do not chase.")

    @field_validator("pre_due", "overdue", "broken_promise", "dispute")
    @classmethod
    def _known_placeholders(cls, text: str) -> str:
        try:
            text.format_map(dict.fromkeys(MESSAGE_FIELDS, ""))
        except (KeyError, ValueError, IndexError) as e:
            raise ValueError(f"unknown or bad placeholder {e} (known: {', '.join(MESSAGE_FIELDS)})") from None
        return text


class Messages(_Frozen):
    """Message drafts per language (English ``en`` and Swedish ``sv``)."""

    en: MessageSet = MessageSet(
        pre_due="Dear {customer}, a friendly reminder that invoice {invoice} of {amount} {currency} falls due on "
                "{due}. Thank you for paying on time.",
        overdue="Dear {customer}, invoice {invoice} of {amount} {currency}, due on {due}, is {days} days "
                "overdue{others}. This is our {action}: please pay it or tell us when you will.",
        broken_promise="Dear {customer}, you promised {promise} for invoice {invoice} ({amount} {currency}, due "
                       "{due}), and we have not received it. As a next step this is our {action}: please pay "
                       "now{others}.",
        dispute="Dear {customer}, about your query on invoice {invoice} of {amount} {currency} (due {due}): we "
                "would like to resolve it with you. Please tell us what is wrong so we can correct it.",
    )
    sv: MessageSet = MessageSet(
        pre_due="Hej {customer}, en vänlig påminnelse om att faktura {invoice} på {amount} {currency} förfaller "
                "{due}. Tack för att ni betalar i tid.",
        overdue="Hej {customer}, faktura {invoice} på {amount} {currency} förföll {due} och är {days} dagar "
                "försenad{others}. Detta är vår {action}: betala gärna eller meddela när ni kan betala.",
        broken_promise="Hej {customer}, ni lovade {promise} för faktura {invoice} ({amount} {currency}, förföll "
                       "{due}), men vi har inte fått betalningen. Som nästa steg är detta vår {action}: betala "
                       "snarast{others}.",
        dispute="Hej {customer}, angående er fråga om faktura {invoice} på {amount} {currency} (förföll {due}): "
                "vi vill gärna lösa den med er. Berätta vad som är fel så rättar vi det.",
    )


class Dunning(_Frozen):
    """The collections ladder, from the first day overdue upwards, plus the friendly pre-due reminder, and the
    rules the collections log imposes on it (contact frequency, promises, the control group, no-chase list)."""

    steps: tuple[DunningStep, ...] = (
        DunningStep(from_days_overdue=1, action="reminder"),
        DunningStep(from_days_overdue=31, action="formal warning"),
        DunningStep(from_days_overdue=61, action="hold new orders and final notice"),
        DunningStep(from_days_overdue=91, action="legal or collection agency"),
    )
    pre_due_action: str = "friendly reminder before due"
    pre_due_min_p_late: float = Field(0.5, ge=0, le=1, description="A not-yet-due invoice this risky gets the "
                                      "pre-due reminder.")
    pre_due_days: int = Field(14, ge=0, description="How many days before its due date the pre-due reminder goes.")
    good_standing_max_p_late: float = Field(0.25, ge=0, le=1, description="A customer with nothing overdue whose "
                                            "recent late share is at most this is in good standing: never chased "
                                            "before due.")
    min_days_between_contacts: int = Field(7, ge=0, le=365, description="A customer is contacted at most once "
                                           "in this many days (the log's contacts and the list's own).")
    promise_grace_days: int = Field(3, ge=0, le=60, description="An open promise to pay pauses chasing until its "
                                    "date plus this many days; after that, unpaid, it is broken.")
    control_share: float = Field(0.0, ge=0, le=0.5, description="Share of eligible invoices held back unchased, at "
                                 "random by invoice id, to measure what chasing brings.")
    no_dunning: tuple[str, ...] = Field((), description="Customer ids never chased.")
    language: str = Field("en", pattern=r"^(en|sv)$", description="Language of the message drafts.")
    messages: Messages = Messages()

    @field_validator("steps")
    @classmethod
    def _ordered(cls, steps: tuple[DunningStep, ...]) -> tuple[DunningStep, ...]:
        starts = [s.from_days_overdue for s in steps]
        if not steps or starts[0] != 1:
            raise ValueError("the first step must start at from_days_overdue: 1")
        if any(b <= a for a, b in zip(starts, starts[1:])):
            raise ValueError(f"from_days_overdue must rise step by step, got {starts}")
        return steps

    def action(self, days_overdue: int) -> str:
        """The ladder's step for an invoice this many days past due (empty when not yet due)."""
        chosen = ""
        for step in self.steps:
            if days_overdue >= step.from_days_overdue:
                chosen = step.action
        return chosen


class GradeBand(_Frozen):
    grade: str
    max_p_late: float = Field(ge=0, le=1, description="Highest next-quarter late probability in this grade.")
    limit_months: float = Field(ge=0, description="Recommended credit limit as months of average invoicing; "
                                "0 means prepayment or no credit.")


class Grades(_Frozen):
    """Credit grades from ``p_late_next`` and the limit policy that goes with them."""

    bands: tuple[GradeBand, ...] = (
        GradeBand(grade="AAA", max_p_late=0.10, limit_months=3.0),
        GradeBand(grade="AA", max_p_late=0.25, limit_months=2.0),
        GradeBand(grade="A", max_p_late=0.45, limit_months=1.5),
        GradeBand(grade="B", max_p_late=0.70, limit_months=1.0),
        GradeBand(grade="C", max_p_late=1.00, limit_months=0.0),
    )

    @field_validator("bands")
    @classmethod
    def _all_grades_in_order(cls, bands: tuple[GradeBand, ...]) -> tuple[GradeBand, ...]:
        names = tuple(b.grade for b in bands)
        if names != GRADES:
            raise ValueError(f"bands must be the grades {', '.join(GRADES)} in that order, got {', '.join(names)}")
        cuts = [b.max_p_late for b in bands]
        if any(b <= a for a, b in zip(cuts, cuts[1:])) or cuts[-1] != 1.0:
            raise ValueError(f"max_p_late must rise from grade to grade and end at 1.0, got {cuts}")
        return bands

    def grade(self, p_late_next: float) -> str:
        for band in self.bands:
            if p_late_next <= band.max_p_late:
                return band.grade
        return self.bands[-1].grade

    def limit_months(self, grade: str) -> float:
        return next(b.limit_months for b in self.bands if b.grade == grade)


class Alerts(_Frozen):
    overdue_share: float = Field(0.08, ge=0, le=1, description="Alert when overdue open AR / open AR passes this.")
    bad_debt_share: float = Field(0.01, ge=0, le=1, description="Alert when written-off / invoiced (365 days) "
                                  "passes this.")


class Inventory(_Frozen):
    """ABC classes of stock by value and what counts as a slow mover."""

    abc_shares: tuple[float, float] = Field((0.80, 0.95), description="Cumulative shares of stock value where "
                                            "class A and class B end (SKUs sorted by value, largest first).")
    slow_lookback_days: int = Field(180, ge=1, description="Window of inventory snapshots over which movement "
                                    "is measured.")
    slow_max_movement: float = Field(0.10, ge=0, description="A SKU in stock whose quantity moved (rises and falls "
                                     "together) by less than this share of its average quantity over the window "
                                     "is a slow mover.")

    @field_validator("abc_shares")
    @classmethod
    def _abc_order(cls, shares: tuple[float, float]) -> tuple[float, float]:
        if not 0 < shares[0] < shares[1] <= 1:
            raise ValueError(f"must be 0 < A < B <= 1, got {list(shares)}")
        return shares


class RiskBand(_Frozen):
    name: str = Field(min_length=1, description="What ``score`` calls an invoice in this band.")
    below: float = Field(gt=0, le=1.01, description="The band holds invoices whose p_late is below this.")


class Collections(_Frozen):
    """What acting on an invoice is assumed to bring in, and the horizon it is counted over."""

    horizon_days: int = Field(30, ge=1, le=365, description="Cash counts when it arrives within this many days.")
    action_effect: float = Field(0.30, ge=0, le=1, description="Share of the cash still unpaid at the horizon that "
                                 "a ladder step brings in.")
    pre_due_effect: float = Field(0.30, ge=0, le=1, description="Share of would-be-late payments a pre-due reminder "
                                  "makes punctual.")


class ApprovalTier(_Frozen):
    up_to: float | None = Field(None, gt=0, description="Amounts up to this go to this approver; the last tier "
                                "has none.")
    approver: str = Field(min_length=1, description="Who approves a referred order or credit of this size.")


class Provision(_Frozen):
    """Expected credit loss (IFRS 9 simplified approach) on open receivables."""

    write_off_days: int = Field(180, ge=30, le=1095, description="An invoice still open this many days past due "
                                "counts as lost in the loss-rate history.")


class Liquidity(_Frozen):
    """Surplus and gaps (``likvid liquidity``): the buffer kept above the cash floor, when idle cash is placed, and
    the terms of what closes a gap (credit line, factoring, delaying discretionary suppliers' bills)."""

    buffer_share_of_monthly_outflows: float = Field(0.10, ge=0, le=1, description="Cash kept above the floor, as a "
                                                    "share of a month's operating outflows (seed 003: 5-15 %).")
    placement_min_weeks: int = Field(2, ge=1, le=52, description="Cash above floor plus buffer is placed only when it "
                                     "stays there this many weeks in a row.")
    placement_rate: float = Field(0.03, ge=0, le=1, description="Annual rate placed cash earns, as a fraction.")
    credit_line_limit: float = Field(0.0, ge=0, description="The credit line's limit in the base currency; 0: none.")
    credit_line_rate: float = Field(0.07, ge=0, le=1, description="Annual interest on what is drawn, as a fraction.")
    factoring_advance_rate: float = Field(0.80, gt=0, le=1, description="Share of an invoice's open amount the factor "
                                          "pays in advance.")
    factoring_fee: float = Field(0.02, ge=0, le=1, description="The factor's fee, as a share of the invoice's open "
                                 "amount.")
    factoring_max_p_late: float = Field(0.25, ge=0, le=1, description="Only invoices the late-payment model gives a "
                                        "p_late below this are offered for factoring.")
    discretionary_suppliers: tuple[str, ...] = Field((), description="Supplier ids whose bills may be paid late.")
    bill_delay_days: int = Field(14, ge=1, le=90, description="How many days a discretionary bill may be delayed.")
    bill_delay_fee: float = Field(0.0, ge=0, le=1, description="Late fee of a delayed bill, as a share of it.")

    @model_validator(mode="after")
    def _advance_and_fee_fit(self) -> Liquidity:
        if self.factoring_advance_rate + self.factoring_fee > 1:
            raise ValueError("factoring_advance_rate plus factoring_fee must not exceed 1 (the factor cannot pay and "
                             "charge more than the invoice)")
        return self


class Policy(_Frozen):
    """Everything a finance team sets once: the company, grace, month end, aging, the ladder, capital cost,
    floor, grades, risk bands, collections, alerts, stock, liquidity."""

    company: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                                description="The company's key in the model registry (default: the data "
                                "folder's name).")
    base_currency: str | None = Field(None, min_length=3, max_length=3, pattern=r"^[A-Z]{3}$",
                                      description="The currency every output is given in (ISO 4217); default: "
                                      "the one currency the data uses.")
    grace_days: int = Field(0, ge=0, le=60, description="Days after due before an invoice counts as late.")
    month_end_days: int = Field(5, ge=1, le=15, description="A due date in the last this-many days of its month "
                                "falls at a month-end (and in March, June, September or December at a quarter-end).")
    risk_bands: tuple[RiskBand, ...] = (
        RiskBand(name="low", below=0.25), RiskBand(name="medium", below=0.5),
        RiskBand(name="high", below=0.75), RiskBand(name="very high", below=1.01),
    )
    collections: Collections = Collections()
    aging_buckets: tuple[int, ...] = Field((30, 60, 90), description="Upper ends of the overdue aging buckets; "
                                           "the default gives current, 1-30, 31-60, 61-90 and 90+.")
    dunning: Dunning = Dunning()
    cost_of_capital: float = Field(0.08, ge=0, le=1, description="Annual cost of capital, as a fraction.")
    cash_floor: float = Field(0.0, description="The balance the p10 forecast must stay above.")
    grades: Grades = Grades()
    alerts: Alerts = Alerts()
    inventory: Inventory = Inventory()
    approval_tiers: tuple[ApprovalTier, ...] = (
        ApprovalTier(up_to=100_000, approver="sales manager"),
        ApprovalTier(up_to=500_000, approver="sales director"),
        ApprovalTier(approver="CFO"),
    )
    provision: Provision = Provision()
    liquidity: Liquidity = Liquidity()

    @field_validator("approval_tiers")
    @classmethod
    def _tiers_rise(cls, tiers: tuple[ApprovalTier, ...]) -> tuple[ApprovalTier, ...]:
        cuts = [t.up_to for t in tiers]
        if not tiers or cuts[-1] is not None or any(c is None for c in cuts[:-1]):
            raise ValueError("every tier but the last needs up_to, and the last must have none")
        if any(b <= a for a, b in zip(cuts[:-1], cuts[1:-1])):
            raise ValueError(f"up_to must rise from tier to tier, got {cuts[:-1]}")
        return tiers

    def approver(self, amount: float) -> str:
        """Who approves a referred amount: the first tier whose ``up_to`` it is below (seed 003: "below 100k")."""
        return next(t.approver for t in self.approval_tiers if t.up_to is None or amount < t.up_to)

    @field_validator("risk_bands")
    @classmethod
    def _bands_rise(cls, bands: tuple[RiskBand, ...]) -> tuple[RiskBand, ...]:
        cuts = [b.below for b in bands]
        if not bands or any(b <= a for a, b in zip(cuts, cuts[1:])) or cuts[-1] <= 1.0:
            raise ValueError(f"below must rise from band to band and the last must exceed 1.0, got {cuts}")
        return bands

    @field_validator("aging_buckets")
    @classmethod
    def _rising(cls, cuts: tuple[int, ...]) -> tuple[int, ...]:
        if not cuts or cuts[0] < 1 or any(b <= a for a, b in zip(cuts, cuts[1:])):
            raise ValueError(f"must be rising whole days of at least 1, got {list(cuts)}")
        return cuts

    @model_validator(mode="after")
    def _pre_due_reminder_is_for_risky_customers(self) -> Policy:
        if self.dunning.pre_due_min_p_late < self.dunning.good_standing_max_p_late:
            raise ValueError("dunning.pre_due_min_p_late must not be below dunning.good_standing_max_p_late")
        return self

    def company_key(self, data: Path | str | None) -> str:
        """The company's key: ``company`` when set, else the data folder's name."""
        if self.company:
            return self.company
        if data is None:
            raise PolicyError("no company: set `company:` in likvid.yaml or give the data folder")
        return Path(data).resolve().name

    def is_month_end(self, due: pd.Series) -> pd.Series:
        """Due dates in the last ``month_end_days`` days of their month (the one definition of month end)."""
        return month_end(due, self.month_end_days)

    def is_quarter_end(self, due: pd.Series) -> pd.Series:
        return quarter_end(due, self.month_end_days)

    def risk_band(self, p_late: np.ndarray, days_overdue: np.ndarray) -> np.ndarray:
        """``risk_bands`` by p_late; an invoice already past due is ``overdue``."""
        names = [b.name for b in self.risk_bands]
        bands = np.select([np.asarray(p_late) < b.below for b in self.risk_bands], names, names[-1])
        return np.where(np.asarray(days_overdue) > 0, "overdue", bands)

    def bucket_names(self) -> list[str]:
        """``current``, then one name per bucket: ``1-30``, ``31-60``, ``61-90``, ``90+``."""
        lows = [1, *[c + 1 for c in self.aging_buckets[:-1]]]
        return ["current", *[f"{lo}-{hi}" for lo, hi in zip(lows, self.aging_buckets)], f"{self.aging_buckets[-1]}+"]

    def bucket(self, days_overdue: int) -> str:
        names = self.bucket_names()
        if days_overdue <= 0:
            return names[0]
        for name, hi in zip(names[1:], self.aging_buckets):
            if days_overdue <= hi:
                return name
        return names[-1]


def _describe(error: ValidationError, source: str) -> str:
    lines = []
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"{source}: {where}: {e['msg']}")
    return "\n".join(lines)


def parse_policy(values: dict | None, source: str = POLICY_FILE) -> Policy:
    """A policy from already-read settings; ``PolicyError`` names each bad setting."""
    if values is None:
        return Policy()
    if not isinstance(values, dict):
        raise PolicyError(f"{source}: expected a mapping of settings, got {type(values).__name__}")
    try:
        return Policy.model_validate(values)
    except ValidationError as e:
        raise PolicyError(_describe(e, source)) from None


def load_policy(data: Path | None = None, config: Path | None = None) -> Policy:
    """``config`` if given, else ``DATA/likvid.yaml`` if present, else the defaults."""
    path = config if config is not None else (Path(data) / POLICY_FILE if data is not None else None)
    if path is None or (config is None and not path.exists()):
        return Policy()
    if not path.exists():
        raise PolicyError(f"{path}: no such configuration file")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise PolicyError(f"{path}: not valid YAML ({e})") from None
    return parse_policy(values, str(path))
