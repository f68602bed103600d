"""The one as-of rule: what a company knew at the end of a day.

Every path that looks at history (features, training, scoring, forecasts, backtests) calls
``as_of``. A row whose birth date (issue, order, transaction, snapshot, onboarding) is later
does not exist yet; a fact learned later (payment, dispute, delivery) reads as not yet
happened. Planned dates (due, promised, expected delivery) are known from the row's birth.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from features.contract import TABLES, Inv, Ord
from features.load import Company


def to_date(value: str | pd.Timestamp | None) -> pd.Timestamp | None:
    """A day as a normalised timestamp (``None`` stays ``None``)."""
    return None if value is None else pd.Timestamp(value).normalize()


def last_known_date(company: Company) -> pd.Timestamp:
    """The default as-of: the last date on which anything in the data happened.

    Planned dates (due dates, promised dates) are not events and do not count.
    """
    dates = []
    for name, frame in company.tables.items():
        table = TABLES[name]
        for column in [table.born, *table.learned]:
            if column and len(frame) and frame[column].notna().any():
                dates.append(frame[column].max())
    if not dates:
        raise ValueError("the data holds no dated rows, so there is no default as-of date; pass --as-of")
    return max(dates)


@dataclass
class View(Company):
    """A company as known at the end of ``date``: what ``as_of`` returns."""

    date: pd.Timestamp | None = None


def as_of(company: Company, date: str | pd.Timestamp | None = None) -> View:
    """The company as known at the end of ``date`` (default: the last known date)."""
    date = to_date(date) if date is not None else last_known_date(company)
    if isinstance(company, View) and company.date == date:
        # Already this very view (as_of is idempotent): new frame objects over the same data, so a
        # caller that changes its tables changes only its own (copy-on-write), as with a fresh view.
        return View({name: frame.copy(deep=False) for name, frame in company.tables.items()},
                    company.supplied, date)
    tables = {}
    for name, frame in company.tables.items():
        table = TABLES[name]
        if table.born:
            frame = frame[~(frame[table.born] > date)]
        frame = frame.copy()
        for column in table.learned:
            frame.loc[frame[column] > date, column] = pd.NaT
        tables[name] = _table_rules(name, frame, date)
    return View(tables, company.supplied, date)


def _table_rules(name: str, frame: pd.DataFrame, date: pd.Timestamp) -> pd.DataFrame:
    """Values that follow a learned fact are unknown with it."""
    if name == Inv.TABLE:
        frame.loc[frame[Inv.PAID].isna(), Inv.PAID_AMOUNT] = float("nan")
    elif name == Ord.TABLE:
        # The contract dates no cancellation. It is taken as known once the promised date has
        # passed (an order not delivered by then and flagged cancelled), or at the order date
        # when no promise is given.
        revealed = frame[Ord.PROMISED].fillna(frame[Ord.DATE])
        frame.loc[revealed > date, Ord.CANCELLED] = False
    return frame
