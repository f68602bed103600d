"""Training examples: invoice snapshots through time, labelled with what is known at a date.

A model trained "as of" a date sees only ``as_of(company, date)``: snapshots up to that date, and
labels as they stood then (an invoice not yet due and still open is undecided and left out of the
classifier; for timing it is censored). Evaluation fits at an origin before the as-of date and
scores the snapshots after it, so the holdout is later in time than anything the model saw.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.asof import as_of, last_known_date
from features.contract import Inv
from features.invoices import (
    SNAPSHOT,
    FeatureConfig,
    history,
    invoice_features,
    label,
    pass_at,
    snapshot_dates,
    snapshots,
)
from features.load import Company

log = logging.getLogger("likvid.training")


@dataclass(frozen=True)
class ExampleConfig:
    every_days: int = 14  # spacing of snapshots
    warmup_days: int = 120  # history needed before the first snapshot
    max_snapshots: int = 80  # the most recent ones, to bound training time
    holdout_days: int = 91  # evaluation: the last 13 weeks are held out
    # Snapshot rows at most (about: the invoices open at the last date times the dates). Past it, every 2^k-th
    # date of the grid is kept, so that a big book trains on fewer snapshots of its many invoices: the fits and
    # the feature building are linear in rows. A bound on cost, not a measured point where the models settle: it
    # halves the dates of a 1,000-customer, 3-year company (about 590,000 rows) and keeps one in eight at 4,000.
    max_rows: int = 500_000


def examples(company: Company, at: pd.Timestamp, cfg: ExampleConfig = ExampleConfig(),
             features: FeatureConfig = FeatureConfig(), start: pd.Timestamp | None = None,
             workers: int | None = None, earlier: pd.DataFrame | None = None) -> pd.DataFrame:
    """Snapshots up to ``at`` (after ``start``), with outcomes as known at ``at``; built by ``workers``
    processes (default: one per core; the rows do not depend on it).

    ``earlier`` is what this function gave for the same company, settings and ``start`` at an earlier date (the
    training origin, before the refit on everything known): a snapshot's features depend on the facts known
    at its own date alone, so the snapshots of the dates both share are taken from it, and only the later
    dates are built; the rows are the same as without it (a test), relabelled as known at ``at``."""
    view = as_of(company, at)
    first = view[Inv.TABLE][Inv.ISSUE].min() + pd.Timedelta(days=cfg.warmup_days)
    if start is not None:
        first = max(first, start + pd.Timedelta(days=1))
    if pd.isna(first) or first > at:
        raise ValueError(f"not enough history before {at:%Y-%m-%d} to train "
                         f"(need {cfg.warmup_days} days of invoices)")
    # The grid starts on the weekday of ``at``, the date the fitted model's forecasts start from (training's origin
    # is 13 weeks before its as-of by default, the backtest's origins whole weeks apart, so with a spacing of whole
    # weeks the origin's snapshots are the refit's and every snapshot falls on the weekday its forecasts start on; a
    # holdout of other than whole weeks puts the origin's on its own weekday, and the refit builds its own). What a
    # payer in weekly runs pays in the week after a date depends on the weekday the week starts on: with first-week
    # calibration learned on Thursdays, weekly payers' invoices due in the week after a Monday were paid 1.26 x as
    # often as it gave (development seed 11, 14 backtest origins). The weekday is ``at``'s, not the company's last
    # known date's: rows dated after ``at`` change nothing (a test), and ``train --as-of`` a Wednesday trains on
    # Wednesdays.
    first = min(first + pd.Timedelta(days=(at.day_of_week - first.day_of_week) % 7), at)
    dates = _capped(view, at, snapshot_dates(view, first, at, cfg.every_days)[-cfg.max_snapshots:], cfg.max_rows)
    shared = _shared_snapshots(earlier, dates, at)
    new = [d for d in dates if d not in shared]
    ex = snapshots(view, new, features, workers, pass_at(company, at)) if new else None
    if shared:  # stacked in date order again, each date's rows in their own order
        old = earlier.loc[earlier[SNAPSHOT].isin(shared), [c for c in earlier.columns if c not in LABELS]]
        ex = old if ex is None else pd.concat([old, ex], ignore_index=True)
        ex = ex.iloc[np.argsort(ex[SNAPSHOT].to_numpy(), kind="stable")].reset_index(drop=True)
    return pd.concat([ex, label(ex, view, at, features)], axis=1)


LABELS = ("late", "delay", "censored", "deadline_passed")  # the columns ``label`` adds
ISSUED_LATER = "issued_later"  # True on a row of an invoice issued after its snapshot date (``issued_later``)
# What ``invoice_features`` reads of invoices it is given that a date's view does not hold yet (a forecast's future
# invoices, ``issued_later``'s rows).
INVOICE_COLUMNS = [Inv.ID, Inv.CUSTOMER, Inv.ISSUE, Inv.DUE, Inv.AMOUNT, Inv.CURRENCY, Inv.DELIVERY, Inv.DISPUTE,
                   Inv.ORDER, Inv.PAID]


def later_dates(dates, share: float) -> np.ndarray:
    """The latest ``share`` of the distinct snapshot ``dates`` (none when there is one date): the slice a model
    calibrates on, later than what it is fitted on."""
    d = np.sort(pd.unique(np.asarray(dates)))
    if len(d) < 2 or share <= 0:
        return d[:0]
    return d[d > d[max(1, int(round(len(d) * (1 - share)))) - 1]]


def issued_later(company: Company, at: pd.Timestamp, dates, days: int,
                 features: FeatureConfig = FeatureConfig()) -> pd.DataFrame:
    """For each of ``dates``, the invoices issued in the ``days`` after it (up to ``at``) as a cash forecast made
    on that date scores the invoices it has not seen issued yet: features as of the date, nothing of the invoice
    known but its terms (no payment, no dispute); labelled as known at ``at`` and flagged ``ISSUED_LATER``. A
    snapshot holds an invoice only once it is open at a date, so an invoice its customer pays on receipt is
    seldom in one: these rows are how the payment-timing model learns what such invoices pay in their first
    week (``PaymentTimingModel``'s not-yet-issued ratio)."""
    view = as_of(company, at)
    inv, passed = view[Inv.TABLE], pass_at(company, at)
    frames = []
    for d in pd.DatetimeIndex(dates):
        rows = inv[(inv[Inv.ISSUE] > d) & (inv[Inv.ISSUE] <= min(d + pd.Timedelta(days=days), at))]
        if len(rows):
            blank = rows[INVOICE_COLUMNS].assign(**{Inv.PAID: pd.NaT, Inv.DISPUTE: pd.NaT}).reset_index(drop=True)
            frames.append(invoice_features(view, d, features, invoices=blank,
                                           known=history(view, d, features, passed)))
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    return pd.concat([out, label(out, view, at, features)], axis=1).assign(**{ISSUED_LATER: True})


def issued_later_rows(company: Company, at: pd.Timestamp, ex: pd.DataFrame, share: float, days: int,
                      features: FeatureConfig = FeatureConfig()) -> pd.DataFrame:
    """``issued_later`` at the latest ``share`` of the dates of ``ex`` (snapshots as known at ``at``: the
    payment-timing model's calibration slice), ``days`` after each."""
    return issued_later(company, at, later_dates(ex[SNAPSHOT], share), days, features) if len(ex) else pd.DataFrame()


def with_rows(ex: pd.DataFrame, later: pd.DataFrame) -> pd.DataFrame:
    """``ex`` flagged not ``ISSUED_LATER``, then the ``later`` rows (``issued_later``) in its columns."""
    if not len(later):
        return ex
    return pd.concat([ex.assign(**{ISSUED_LATER: False}),
                      later[ex.columns.intersection(later.columns).tolist() + [ISSUED_LATER]]], ignore_index=True)


def _capped(view: Company, at: pd.Timestamp, dates: list[pd.Timestamp], max_rows: int) -> list[pd.Timestamp]:
    """``dates``, or every k-th of them (k a power of two counted from the grid's start, so that an earlier call's
    dates line up, and the last kept) when the snapshots would hold more than ``max_rows`` rows, estimated by
    the invoices open at ``at``; the cap is logged when it bites."""
    inv = view[Inv.TABLE]
    per_date = int((inv[Inv.PAID].isna() | (inv[Inv.PAID] > at)).sum())
    ratio = len(dates) * per_date / max_rows if max_rows > 0 else 1.0
    if ratio <= 1:
        return dates
    step = 2 ** math.ceil(math.log2(ratio))  # a power of two: a smaller step's dates hold a larger one's
    kept = [d for i, d in enumerate(dates[:-1]) if i % step == 0] + dates[-1:]
    log.info("snapshots as of %s: %d of %d dates kept (every %d-th; about %s open invoices a date, row cap %s)",
             f"{at:%Y-%m-%d}", len(kept), len(dates), step, f"{per_date:,}", f"{max_rows:,}")
    return kept


def _shared_snapshots(earlier: pd.DataFrame | None, dates: list[pd.Timestamp], at: pd.Timestamp) -> set:
    """The ``dates`` before ``at`` whose snapshots ``earlier`` holds (its rows for those dates are the same rows);
    none when ``earlier`` is None."""
    if earlier is None or not len(earlier):
        return set()
    theirs = set(pd.DatetimeIndex(pd.unique(earlier[SNAPSHOT])))
    return {d for d in dates if d in theirs and d < at}


def split(company: Company, as_of_date: pd.Timestamp | None, cfg: ExampleConfig = ExampleConfig(),
          features: FeatureConfig = FeatureConfig()) -> tuple[pd.Timestamp, pd.Timestamp, pd.DataFrame, pd.DataFrame]:
    """(as-of, origin, training examples known at origin, holdout examples after origin known at as-of)."""
    at = pd.Timestamp(as_of_date).normalize() if as_of_date is not None else last_known_date(company)
    origin = at - pd.Timedelta(days=cfg.holdout_days)
    train = examples(company, origin, cfg, features)
    holdout = examples(company, at, ExampleConfig(cfg.every_days, 0, 10**6, cfg.holdout_days), features,
                       start=origin)
    return at, origin, train, holdout


def not_yet_due(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows the classifier is about: open, not yet due, and past their deadline (due + grace) by the date the
    labels are known, so that the outcome is decided either way (``features.invoices.label``)."""
    return frame[(frame["days_to_due"] >= 0) & frame["late"].notna() & frame["deadline_passed"].to_numpy(bool)]
