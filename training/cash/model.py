"""What a cash forecast learns from a company's history beyond the invoice models.

``CashModel`` fits, as known at a date: the weekly invoicing (and billing) model, how orders turn
into invoices (lead time, cancellations), how the company pays its bills (discount take-up, offsets
from due, payment runs), how purchase orders arrive and are billed, and the recurring bank lines.
``ForecastModels`` pairs it with the payment-timing model a forecast draws invoice payments from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from features import cash, ledger
from features.asof import as_of as view_as_of
from features.asof import to_date
from features.contract import PO, Bill, Inv, Ord
from features.invoices import FeatureConfig
from features.load import Company
from training.cash.series import SeriesConfig, build_weekly_series
from training.payment_timing import PaymentTimingModel


@dataclass(frozen=True)
class CashForecastConfig:
    series: SeriesConfig = field(default_factory=SeriesConfig)
    levels: int = 100  # quantile levels of each invoice's pay-day distribution the paths draw from
    max_customers: int = 150  # customers that carry the sales not yet ordered (the rest pro rata)
    max_suppliers: int = 60
    share_weeks: int = 13  # customers' and suppliers' shares come from these last weeks
    chunk: int = 4000  # invoices per simulation block (memory: chunk x paths)

    def params(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "series"},
                **{f"series.{k}": v for k, v in self.series.params().items()}}


def _sorted_days(values: pd.Series) -> np.ndarray:
    return np.sort(values.dropna().to_numpy(float))


class CashModel:
    """What a cash forecast learns from a company's history beyond the invoice models."""

    def __init__(self, config: CashForecastConfig = CashForecastConfig()):
        self.config = config

    def fit(self, company: Company, date: str | pd.Timestamp) -> CashModel:
        """Learn from the company as known at the end of ``date``."""
        at = to_date(date)
        view = view_as_of(company, at)
        series = cash.weekly_series(view, at)
        self.as_of_ = at
        self.invoicing_ = build_weekly_series(self.config.series).fit(one_series(series, cash.INVOICED))
        billed = one_series(series, cash.BILLED)
        self.billing_ = build_weekly_series(self.config.series).fit(billed) if billed.sum() > 0 else None
        self._fit_sales(view)
        self._fit_purchases(view)
        self.lines_ = cash.recurring_lines(view.get("cash_transactions"), at)
        return self

    def _fit_sales(self, view: Company) -> None:
        inv, orders = view[Inv.TABLE], view.get(Ord.TABLE)
        paid = inv[inv[Inv.PAID].notna()]
        # The share of what is invoiced that is collected, in the base currency (both at the issue-date rate).
        rate = (ledger.base_amounts(view, Inv.TABLE) / inv[Inv.AMOUNT])[paid.index]
        self.collect_ratio_ = (float((cash.received_amount(paid) * rate).sum() / (paid[Inv.AMOUNT] * rate).sum())
                               if len(paid) else 1.0)
        linked = inv.dropna(subset=[Inv.ORDER]).merge(orders[[Ord.ID, Ord.DATE]], left_on=Inv.ORDER,
                                                      right_on=Ord.ID)
        lead = (linked[Inv.ISSUE] - linked[Ord.DATE]).dt.days
        self.order_lead_ = lead.groupby(linked[Inv.CUSTOMER]).median()
        self.order_lead_global_ = float(lead.median()) if len(lead) else 7.0
        invoiced = orders[Ord.ID].astype(object).isin(linked[Ord.ID].astype(object))
        known = orders[orders[Ord.CANCELLED].fillna(False).astype(bool) | invoiced]
        self.cancel_share_ = float(known[Ord.CANCELLED].fillna(False).astype(bool).mean()) if len(known) else 0.0

    def _fit_purchases(self, view: Company) -> None:
        bills, pos = view.get(Bill.TABLE), view.get(PO.TABLE)
        paid = bills[bills[Bill.PAID].notna()]
        offers = paid[paid[Bill.DISCOUNT_PCT].fillna(0) > 0]
        window = offers[Bill.ISSUE] + pd.to_timedelta(offers[Bill.DISCOUNT_DAYS].fillna(0), unit="D")
        taken = offers[offers[Bill.PAID] <= window]
        self.take_share_ = float(len(taken) / len(offers)) if len(offers) else 0.0
        self.discount_days_ = _sorted_days((taken[Bill.PAID] - taken[Bill.ISSUE]).dt.days)
        regular = paid[~paid.index.isin(taken.index)]
        self.due_offsets_ = _sorted_days((regular[Bill.PAID] - regular[Bill.DUE]).dt.days)
        terms = (bills[Bill.DUE] - bills[Bill.ISSUE]).dt.days
        self.supplier_terms_ = terms.groupby(bills[Bill.SUPPLIER]).median()
        self.terms_global_ = float(terms.median()) if len(terms) else 30.0
        last_offer = bills[bills[Bill.DISCOUNT_PCT].fillna(0) > 0].groupby(Bill.SUPPLIER).tail(1)
        self.supplier_discount_ = last_offer.set_index(Bill.SUPPLIER)[[Bill.DISCOUNT_PCT, Bill.DISCOUNT_DAYS]]
        delivered = pos[pos[PO.DELIVERED].notna()]
        self.delivery_slip_ = _sorted_days((delivered[PO.DELIVERED] - delivered[PO.EXPECTED]).dt.days)
        lead = (delivered[PO.DELIVERED] - delivered[PO.DATE]).dt.days
        self.po_lead_ = float(lead.median()) if len(delivered) else 14.0
        billed = bills.dropna(subset=[Bill.PO]).merge(delivered[[PO.ID, PO.DELIVERED]], left_on=Bill.PO, right_on=PO.ID)
        self.bill_lag_ = _sorted_days((billed[Bill.ISSUE] - billed[PO.DELIVERED]).dt.days.clip(lower=0))
        runs = cash.payment_runs(regular[Bill.PAID], pd.Series("company", index=regular.index))
        self.bill_run_ = tuple(int(v) for v in runs.iloc[0]) if len(runs) else (cash.RUN_NONE, 0, 1)


def build_cash_model(config: CashForecastConfig = CashForecastConfig()) -> CashModel:
    return CashModel(config)


def one_series(series: pd.DataFrame, name: str) -> pd.Series:
    return series[series[cash.UID] == name].set_index(cash.DS)[cash.Y]


@dataclass
class ForecastModels:
    """The fitted parts a forecast needs: the payment-timing model, the cash model, and the invoice features'
    settings the timing model was fitted on (the definition of late it learned: grace, month end)."""

    timing: PaymentTimingModel
    cash: CashModel
    versions: dict[str, str] = field(default_factory=dict)
    features: FeatureConfig = field(default_factory=FeatureConfig)
