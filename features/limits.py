"""Every limit a user can meet, declared once. The command line's options, the HTTP request models and the
functions all take their bounds from here (a shock's range lives with the shock, in ``training.cash.shocks``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Limit:
    """A whole-number setting's bounds and default, with what it means."""

    name: str
    low: int
    high: int
    default: int
    description: str

    def check(self, value: int) -> int:
        """The value, or a ``ValueError`` naming the setting and its bounds."""
        if isinstance(value, bool) or not isinstance(value, int) or not self.low <= value <= self.high:
            raise ValueError(f"{self.name} must be a whole number from {self.low} to {self.high}, got {value!r}")
        return value


MAX_BATCH = 10_000
WEEKS = Limit("weeks", 1, 52, 13, "Weeks to forecast")
MONTHS = Limit("months", 1, 12, 12, "Months of the monthly view")
PATHS = Limit("paths", 20, 10_000, 1000, "Monte Carlo paths")
TOP_N = Limit("top_n", 1, MAX_BATCH, 50, "How many invoices to list, best first")
BATCH = Limit("batch", 1, MAX_BATCH, MAX_BATCH, "Invoices or customer ids in one request")

# Dates accepted anywhere, in files and in requests: outside this window a date is an ERP placeholder
# ("no date" = 9999-12-31, 0001-01-01) or a typo, never a fact (a file's row is rejected, a request gets a 422).
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2199, 12, 31)
ID_LENGTH = 200  # characters of an invoice, customer or order id in a request
CURRENCY_LENGTH = 10  # characters of a currency code in a request (ISO codes have 3; some ERPs write more)
MAX_AMOUNT = 1e12  # the largest amount a credit check is asked about
