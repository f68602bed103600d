"""A company's validated tables (``Company``) and the error that says a data folder cannot be used at all.

Its own module so that the as-of rule, the ledger and the loader can all name them without importing
each other (the loader reads and validates; the ledger and as-of work on what it returns).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.contract import TABLES, empty_frame

REJECT_COLUMNS = ["table", "row", "column", "problem"]


class ContractError(Exception):
    """The data cannot be used at all; ``problems`` lists why, one readable line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class Company:
    """A company's validated tables: only used rows, typed, every contract column present.

    ``supplied`` says which columns the data really had (the rest were filled with defaults),
    so that a feature can tell "no delivery channel given" from "all paper".
    The index of each table is the row's 1-based number in its file.
    """

    tables: dict[str, pd.DataFrame]
    supplied: dict[str, frozenset[str]] = field(default_factory=dict)
    base_currency: str | None = None  # what money is reported in (features.ledger); None: one unnamed currency
    # Where state derived from these very tables may be kept (``features.cache``: the validation's cache entry);
    # None for any other company, a view or a replaced one included.
    cache: Path | None = field(default=None, compare=False, repr=False)

    def has(self, table: str) -> bool:
        return table in self.tables

    def __getitem__(self, table: str) -> pd.DataFrame:
        return self.tables[table]

    def get(self, table: str) -> pd.DataFrame:
        """The table, or an empty typed table when the data has none."""
        return self.tables[table] if table in self.tables else empty_frame(TABLES[table])

    def replace(self, **tables: pd.DataFrame) -> Company:
        return Company({**self.tables, **tables}, self.supplied, self.base_currency)
