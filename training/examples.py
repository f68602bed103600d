"""Training examples: invoice snapshots through time, labelled with what is known at a date.

A model trained "as of" a date sees only ``as_of(company, date)``: snapshots up to that date, and
labels as they stood then (an invoice not yet due and still open is undecided and left out of the
classifier; for timing it is censored). Evaluation fits at an origin before the as-of date and
scores the snapshots after it, so the holdout is later in time than anything the model saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from features.asof import as_of, last_known_date
from features.contract import Inv
from features.invoices import FeatureConfig, label, snapshot_dates, snapshots
from features.load import Company


@dataclass(frozen=True)
class ExampleConfig:
    every_days: int = 14  # spacing of snapshots
    warmup_days: int = 120  # history needed before the first snapshot
    max_snapshots: int = 80  # the most recent ones, to bound training time
    holdout_days: int = 91  # evaluation: the last 13 weeks are held out


def examples(company: Company, at: pd.Timestamp, cfg: ExampleConfig = ExampleConfig(),
             features: FeatureConfig = FeatureConfig(), start: pd.Timestamp | None = None,
             workers: int | None = None) -> pd.DataFrame:
    """Snapshots up to ``at`` (after ``start``), with outcomes as known at ``at``; built by ``workers``
    processes (default: one per core; the rows do not depend on it)."""
    view = as_of(company, at)
    first = view[Inv.TABLE][Inv.ISSUE].min() + pd.Timedelta(days=cfg.warmup_days)
    if start is not None:
        first = max(first, start + pd.Timedelta(days=1))
    if pd.isna(first) or first > at:
        raise ValueError(f"not enough history before {at:%Y-%m-%d} to train "
                         f"(need {cfg.warmup_days} days of invoices)")
    dates = snapshot_dates(view, first, at, cfg.every_days)[-cfg.max_snapshots:]
    ex = snapshots(view, dates, features, workers)
    return pd.concat([ex, label(ex, view, at, features)], axis=1)


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
    """Rows the classifier is about: open, not yet due, outcome decided."""
    return frame[(frame["days_to_due"] >= 0) & frame["late"].notna()]
