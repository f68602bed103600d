"""What a cash forecast learns from a company's history beyond the invoice models.

``CashModel`` fits, as known at a date: the weekly invoicing (and billing) model, how orders turn
into invoices (lead time, cancellations), how the company pays its bills (discount take-up, offsets
from due, payment runs), how purchase orders arrive and are billed, and the recurring bank lines.
``ForecastModels`` pairs it with the payment-timing model a forecast draws invoice payments from.

``CommonShocks`` is what ties invoices' payment days together: the timing model gives each invoice its own
distribution, but invoices due in the same week, or of one customer in the same month, are paid earlier or
later together. Left out, a path's weekly receipts are sums of independent draws and the band is far too
narrow. The shares are learned from the history's dispersion (``fit_common_shocks``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy.special import ndtri

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
    common_shocks: bool = True  # tie payment days together as the history shows (False: independent draws)

    def params(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "series"},
                **{f"series.{k}": v for k, v in self.series.params().items()}}


@dataclass(frozen=True)
class CommonShocks:
    """How invoices' payment days move together, as shares of the variance of each invoice's normal score
    (the normal quantile of where its payment day falls in its own distribution). ``company``: shared by all
    invoices due in one week, correlated ``company_ar`` from one week to the next; ``customer``: shared by one
    customer's invoices due in one ``CUSTOMER_WEEKS`` period, correlated ``customer_ar`` between periods."""

    company: float = 0.0
    company_ar: float = 0.0
    customer: float = 0.0
    customer_ar: float = 0.0

    CUSTOMER_WEEKS = 4


NO_COMMON_SHOCKS = CommonShocks()
_TRAILING = 10  # a customer's usual delay: the mean of its last invoices before this one
_HISTORY_WEEKS = 104  # shocks are measured on invoices due in the last two years


def _between_share(score: pd.Series, group: pd.Series, min_size: int) -> tuple[float, float, pd.Series]:
    """One-way random effects of ``score`` by ``group`` (groups of at least ``min_size``): the between-group
    variance, the within-group variance, and each group's mean."""
    g = score.groupby(group)
    n, mean = g.size(), g.mean()
    keep = n >= min_size
    if keep.sum() < 3:
        return 0.0, float(score.var()) if len(score) > 1 else 1.0, mean[keep]
    within = float(((score - g.transform("mean")) ** 2)[group.map(keep).to_numpy(bool)].sum()
                   / max(int((n[keep] - 1).sum()), 1))
    between = float(mean[keep].var() - (within / n[keep]).mean())
    return max(between, 0.0), within, mean[keep]


def _lag_correlation(means: pd.Series, between: float, step: int = 1) -> float:
    """Correlation of a shock with the next period's (indexed by integer period, optionally within the first
    index level), corrected for the noise in each period's mean; 0 when there is no shock."""
    if between <= 0 or len(means) < 4:
        return 0.0
    centred = means - means.mean()
    nxt = centred.copy()
    if isinstance(centred.index, pd.MultiIndex):
        nxt.index = pd.MultiIndex.from_arrays([centred.index.get_level_values(0),
                                               centred.index.get_level_values(1) - step])
    else:
        nxt.index = centred.index - step
    pairs = pd.concat([centred, nxt], axis=1, join="inner").dropna()
    if len(pairs) < 3:
        return 0.0
    return float(np.clip((pairs.iloc[:, 0] * pairs.iloc[:, 1]).mean() / between, 0.0, 0.95))


def fit_common_shocks(inv: pd.DataFrame, at: pd.Timestamp) -> CommonShocks:
    """What ties paid invoices' delays together in the history known at ``at``. Each delay is measured against
    the customer's usual one (the mean of its previous invoices, scaled by their spread, as the timing model
    sees a customer) and turned into a normal score; the variance of those scores shared by the invoices due
    in one week, and by one customer's invoices in one period beyond that, are the shocks' shares."""
    paid = inv[inv[Inv.PAID].notna() & inv[Inv.DUE].notna()]
    paid = paid.sort_values([Inv.CUSTOMER, Inv.DUE], kind="stable")
    delay = pd.Series((paid[Inv.PAID] - paid[Inv.DUE]).dt.days.to_numpy(float), index=paid.index)
    customer = paid[Inv.CUSTOMER].astype(object)
    before = delay.groupby(customer).shift()
    rolling = before.groupby(customer).rolling(_TRAILING, min_periods=3)
    usual = rolling.mean().reset_index(level=0, drop=True).reindex(delay.index)
    spread = rolling.std().reset_index(level=0, drop=True).reindex(delay.index).clip(lower=2.0)
    week = np.floor((paid[Inv.DUE] - at).dt.days.to_numpy(float) / 7.0)
    r = (delay - usual) / spread
    keep = r.notna().to_numpy() & (week >= -_HISTORY_WEEKS)
    if keep.sum() < 50:
        return NO_COMMON_SHOCKS
    r = r[keep]
    score = pd.Series(ndtri(r.rank(method="average").to_numpy() / (len(r) + 1)), index=r.index)
    week = pd.Series(week[keep].astype(int), index=r.index)
    company, within, weekly = _between_share(score, week, 5)
    rest = score - week.map(weekly).fillna(0.0)
    period = week // CommonShocks.CUSTOMER_WEEKS
    codes, pairs = pd.factorize(pd.MultiIndex.from_arrays([customer[keep].to_numpy(), period.to_numpy()]))
    own, _, by_customer = _between_share(rest, pd.Series(codes, index=rest.index), 2)
    by_customer.index = pairs[by_customer.index.to_numpy()]
    total = company + within
    share_company = float(np.clip(company / total, 0.0, 0.5)) if total > 0 else 0.0
    share_customer = float(np.clip(own / total, 0.0, 0.9 - share_company)) if total > 0 else 0.0
    return CommonShocks(share_company, _lag_correlation(weekly, company), share_customer,
                        _lag_correlation(by_customer, own))


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
        self.common_shocks_ = (fit_common_shocks(view[Inv.TABLE], at) if self.config.common_shocks
                               else NO_COMMON_SHOCKS)
        return self

    def common_shocks(self) -> CommonShocks:
        """The learned common shocks (none for a model pickled before they were learned)."""
        return getattr(self, "common_shocks_", NO_COMMON_SHOCKS)

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


def load_forecast_models(company: str, policy=None) -> ForecastModels:
    """``company``'s champion forecast pair (cash model and the timing model it was registered with). Here, not
    in ``family`` with the training recipe, so that a forecast imports neither MLflow's training side nor the
    backtest's plots."""
    from training import tracking

    champion = tracking.load_champion(tracking.CASH_FORECAST, company, policy)
    models: ForecastModels = champion.model
    return ForecastModels(models.timing, models.cash, {**models.versions, tracking.CASH_FORECAST: champion.version},
                          models.features)
