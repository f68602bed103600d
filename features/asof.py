"""The one as-of rule: what a company knew at the end of a day.

Every path that looks at history (features, training, scoring, forecasts, backtests) calls
``as_of``. A row whose birth date (issue, order, transaction, snapshot, onboarding) is later
does not exist yet; a fact learned later (payment, dispute, delivery) reads as not yet
happened. Planned dates (due, promised, expected delivery) are known from the row's birth.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import pandas as pd

from features.company import Company
from features.contract import TABLES, Bill, Inv, Ord


def to_date(value: str | pd.Timestamp | None) -> pd.Timestamp | None:
    """A day as a normalised timestamp (``None`` stays ``None``)."""
    return None if value is None else pd.Timestamp(value).normalize()


def parse_as_of(value: str | pd.Timestamp | None, name: str = "as_of") -> pd.Timestamp | None:
    """The as-of of a request or command: ``None`` or empty means "the last known date" (``None``);
    anything else must be one day pandas can compute with, else a ``ValueError`` naming ``name`` and the value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    day = pd.NaT
    if isinstance(value, str | datetime.date):  # a number is not a day (pandas would read it as nanoseconds)
        try:
            day = pd.Timestamp(value.strip() if isinstance(value, str) else value)
        except (ValueError, TypeError, OverflowError):
            day = pd.NaT
    if pd.isna(day) or not pd.Timestamp.min <= day <= pd.Timestamp.max:
        raise ValueError(f"{name} must be a date YYYY-MM-DD between 1677 and 2262, not {value!r}")
    return day.as_unit("ns").normalize()


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


def why_none_open(company: Company, date: pd.Timestamp | None, table: str = Inv.TABLE) -> str:
    """Why nothing in ``table`` (invoices, or bills) is open at the end of ``date``, with an as-of to try:
    the latest day before it on which something was open, or the first issue date when nothing was issued yet."""
    date = to_date(date) if date is not None else last_known_date(company)
    frame = company.get(table)
    name = table.removesuffix("s")
    if frame.empty:
        return f"the data holds no {table}"
    issued, paid = frame[TABLES[table].born], frame[{Inv.TABLE: Inv.PAID, Bill.TABLE: Bill.PAID}[table]]
    if not (issued <= date).any():
        return f"no {name} was issued by {date:%Y-%m-%d}; the first is dated {issued.min():%Y-%m-%d}"
    # Open at the end of a day: issued by then and paid later. The last such day before ``date`` is the
    # day before a payment, for an invoice paid at least a day after its issue.
    last_open = (paid - pd.Timedelta(days=1)).where(paid - pd.Timedelta(days=1) >= issued)
    last_open = last_open[(issued <= date) & (last_open < date)].max()
    hint = f"; try --as-of {last_open:%Y-%m-%d}, the last day on which one was open" if pd.notna(last_open) else ""
    return f"every {name} issued by {date:%Y-%m-%d} was paid by then{hint}"


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
                    company.supplied, company.base_currency, date=date)
    tables = {}
    for name, frame in company.tables.items():
        table = TABLES[name]
        if table.born:
            frame = _born_by(frame, table.born, date)
        for column in table.learned:
            frame.loc[frame[column] > date, column] = pd.NaT
        tables[name] = _table_rules(name, frame, date)
    return View(tables, company.supplied, company.base_currency, date=date)


def _born_by(frame: pd.DataFrame, born: str, date: pd.Timestamp) -> pd.DataFrame:
    """The rows born by ``date`` (or undated). A ledger exported in date order keeps a leading run of its rows:
    that run is taken as a slice, which copies nothing (copy-on-write keeps the company's frame as it is when the
    view's is changed), where picking rows copies every column."""
    keep = ~(frame[born] > date).to_numpy(bool)
    n = int(keep.sum())
    return frame.iloc[:n] if keep[:n].all() else frame[keep]


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
