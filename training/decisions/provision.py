"""Expected credit loss on open receivables, two ways side by side.

The loss-rate matrix is the IFRS 9 simplified approach for trade receivables: from the company's own history,
for each aging bucket, the share of the amount that reached that bucket (was still open that many days past
due) and was never collected: short of its amount when paid (``paid_amount`` below ``amount``: written off or
short-paid), or all of it when still open ``provision.write_off_days`` past due. Only invoices whose outcome is
known at as-of count (due at least ``write_off_days`` before it). A bucket's rate is never below a younger
bucket's (an older debt is not safer), and a bucket the history never reached takes the rate before it. The
provision of a bucket is its open amount at as-of times its rate.

The model's expected loss is, per open invoice, the payment-timing champion's chance that it is never paid
(``PaymentTimingModel.never_paid``, given it is unpaid so far) times its open amount; summed by bucket too.

Layout: one long table with a ``method`` column (``loss_rate_matrix``, ``model``) and a ``level`` column
(``bucket``, ``total``, ``invoice``), because the two methods share their bucket and total rows (a reader puts
them side by side by bucket) while only the model has per-invoice figures; a wide table would leave half its
cells empty and hide that the totals are sums of the bucket rows above them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.asof import as_of
from features.contract import Fx, Inv
from features.invoices import FeatureConfig, invoice_features
from features.ledger import base_of, lost_amounts, open_amounts, to_base
from features.load import Company
from features.policy import Policy
from training.payment_timing import PaymentTimingModel

PROVISION_COLUMNS = ["method", "level", "bucket", "invoice_id", "customer_id", "amount_open", "loss_rate",
                     "provision", "history_amount"]
MATRIX, MODEL = "loss_rate_matrix", "model"
TOTAL = "total"


def _bucket_starts(policy: Policy) -> list[float]:
    """First day overdue of each bucket of ``policy.bucket_names()`` (current: every invoice)."""
    return [-np.inf, 1, *[c + 1 for c in policy.aging_buckets]]


def loss_rates(company: Company, at: pd.Timestamp, policy: Policy = Policy()) -> pd.DataFrame:
    """Per aging bucket: the history's amount that reached it, what of that was lost, and the loss rate."""
    view = as_of(company, at)
    inv = view[Inv.TABLE]
    mature = inv[inv[Inv.DUE] + pd.Timedelta(days=policy.provision.write_off_days) <= at]
    amount = mature[Inv.AMOUNT].astype(float)
    lost_doc = lost_amounts(mature, at, policy.provision.write_off_days)  # known for every mature invoice
    rate = to_base(pd.Series(1.0, index=mature.index), mature[Inv.CURRENCY], mature[Inv.ISSUE],
                   view.get(Fx.TABLE), base_of(view)).to_numpy()
    amount_base, lost_base = amount.to_numpy() * rate, lost_doc * rate
    late = (mature[Inv.PAID] - mature[Inv.DUE]).dt.days.to_numpy(float)
    late = np.where(mature[Inv.PAID].isna(), np.inf, late)
    rows = []
    for name, start in zip(policy.bucket_names(), _bucket_starts(policy)):
        reached = late >= start
        history, lost = float(np.nansum(amount_base[reached])), float(np.nansum(lost_base[reached]))
        rows.append({"bucket": name, "history_amount": history, "lost_amount": lost,
                     "loss_rate": lost / history if history > 0 else np.nan})
    out = pd.DataFrame(rows)
    out["loss_rate"] = out["loss_rate"].ffill().fillna(0.0).cummax()
    return out


def provision(company: Company, at: pd.Timestamp, policy: Policy = Policy(),
              timing: PaymentTimingModel | None = None, company_key: str | None = None) -> pd.DataFrame:
    """The loss-rate matrix's provision per bucket and in total, and the model's expected loss per invoice, per
    bucket and in total (``PROVISION_COLUMNS``; the layout is explained in the module docstring)."""
    if timing is None:
        if company_key is None:
            raise ValueError("the provision needs the payment-timing model or the company key of its champion")
        from training import tracking

        timing = tracking.load_champion(tracking.PAYMENT_TIMING, company_key, policy).model
    names = policy.bucket_names()
    open_ = open_amounts(company, at)
    open_["bucket"] = [policy.bucket(int(d)) for d in (at - open_[Inv.DUE]).dt.days]
    by_bucket = open_.groupby("bucket")["amount_open"].sum().reindex(names, fill_value=0.0)
    rates = loss_rates(company, at, policy).set_index("bucket")
    matrix = pd.DataFrame({"method": MATRIX, "level": "bucket", "bucket": names, "amount_open": by_bucket.to_numpy(),
                           "loss_rate": rates["loss_rate"].to_numpy(),
                           "provision": (by_bucket * rates["loss_rate"]).round(2).to_numpy(),
                           "history_amount": rates["history_amount"].round(2).to_numpy()})

    x = invoice_features(company, at, FeatureConfig(grace_days=policy.grace_days)).reset_index(drop=True)
    owed = open_.set_index(Inv.ID)["amount_open"]
    never = timing.never_paid(x) if len(x) else np.zeros(0)
    days = (at - x[Inv.DUE]).dt.days if len(x) else pd.Series([], dtype=int)
    per_invoice = pd.DataFrame({"method": MODEL, "level": "invoice", "bucket": [policy.bucket(int(d)) for d in days],
                                "invoice_id": x[Inv.ID].to_numpy() if len(x) else [],
                                "customer_id": x[Inv.CUSTOMER].to_numpy() if len(x) else [],
                                # the ledger's open amount in the base (the features' is the document amount)
                                "amount_open": owed.reindex(x[Inv.ID]).fillna(0.0).to_numpy(float) if len(x) else [],
                                "loss_rate": np.round(never, 4)})
    per_invoice["provision"] = (per_invoice["amount_open"] * never).round(2)
    sums = per_invoice.groupby("bucket")[["amount_open", "provision"]].sum().reindex(names, fill_value=0.0)
    model = pd.DataFrame({"method": MODEL, "level": "bucket", "bucket": names, "amount_open": sums["amount_open"],
                          "provision": sums["provision"].round(2)}).reset_index(drop=True)
    parts = []
    for frame in (matrix, model):
        total = {"method": frame["method"].iloc[0], "level": TOTAL, "bucket": TOTAL,
                 "amount_open": frame["amount_open"].sum(), "provision": round(frame["provision"].sum(), 2)}
        total["loss_rate"] = total["provision"] / total["amount_open"] if total["amount_open"] > 0 else 0.0
        parts += [frame, pd.DataFrame([total])]
    model_rates = np.where(model["amount_open"] > 0, model["provision"] / model["amount_open"].where(
        model["amount_open"] > 0, 1.0), 0.0)
    parts[2] = parts[2].assign(loss_rate=model_rates)
    out = pd.concat([*parts, per_invoice], ignore_index=True).reindex(columns=PROVISION_COLUMNS)
    out["amount_open"] = out["amount_open"].astype(float).round(2)
    out["loss_rate"] = out["loss_rate"].astype(float).round(4)
    return out
