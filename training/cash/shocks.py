"""What-if shocks, each declared once: name, range, unit, description and how it acts on the draws.

``SHOCKS`` is the registry. ``Shocks`` (the value a forecast takes), the HTTP request model
``serving.schemas.ShocksIn`` and the options of ``likvid forecast`` are all built from it, so a new
shock is one more ``Shock(...)`` entry below. The simulation offers a few points where a shock can
act (``Draw``) and calls ``Shocks.apply`` there; a shock acting somewhere new also needs a ``Draw``
member and that one call in ``training.cash.engine``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np


class Draw(Enum):
    """The simulated quantities a shock can move; the engine applies shocks to each once."""

    CUSTOMER_PAY_DAY = "day each customer payment arrives (days after as-of)"
    UNORDERED_SALES = "weekly sales not yet ordered (amount)"
    DELIVERY_DAY = "day each open purchase order arrives (days after as-of)"


def later(value: float, days: np.ndarray) -> np.ndarray:
    """Move days ``value`` days later (negative: earlier)."""
    return days + value


def change_pct(value: float, amount: np.ndarray) -> np.ndarray:
    """Change amounts by ``value`` percent."""
    return amount * (1 + value / 100.0)


@dataclass(frozen=True)
class Shock:
    """One what-if driver: its bounds (inclusive), unit, what it means, and its effect ``acts(value,
    draws)`` on the simulated ``draws`` of ``on``. Zero means no shock."""

    name: str
    low: float
    high: float
    unit: str
    description: str
    on: Draw
    acts: Callable[[float, np.ndarray], np.ndarray]
    example: float = 0.0  # a typical value, shown on the OpenAPI page

    def check(self, value: object) -> float:
        """The value, or a ``ValueError`` naming the shock and its range."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{self.name} must be a finite number, got {value!r}")
        if not self.low <= value <= self.high:
            raise ValueError(f"{self.name} must be between {self.low:g} and {self.high:g} {self.unit}, got {value:g}")
        return value


SHOCKS: dict[str, Shock] = {s.name: s for s in (
    Shock("customer_delay_days", -60, 365, "days", "What if every customer pays this many days later "
          "(negative: earlier)", Draw.CUSTOMER_PAY_DAY, later, example=10),
    Shock("sales_change_pct", -100, 1000, "%", "What if sales not yet ordered change by this many percent "
          "(-20: a fifth fewer)", Draw.UNORDERED_SALES, change_pct, example=-10),
    Shock("supplier_lead_time_days", -60, 365, "days", "What if purchase orders arrive (and so are billed) this "
          "many days later", Draw.DELIVERY_DAY, later, example=7),
)}
SHOCK_FIELDS = tuple(SHOCKS)


def _check(self: Shocks) -> None:
    for shock in SHOCKS.values():
        shock.check(getattr(self, shock.name))


def _apply(self: Shocks, on: Draw, draws: np.ndarray) -> np.ndarray:
    """``draws`` of ``on`` moved by every shock that acts on them, in the registry's order."""
    for shock in SHOCKS.values():
        if shock.on is on:
            draws = shock.acts(getattr(self, shock.name), draws)
    return draws


Shocks = dataclasses.make_dataclass(
    "Shocks", [(s.name, float, dataclasses.field(default=0.0)) for s in SHOCKS.values()], frozen=True, kw_only=True,
    namespace={"__post_init__": _check, "apply": _apply, "__module__": __name__,
               "__doc__": "What-if drivers applied inside the simulation, one field a shock of ``SHOCKS`` "
                          "(keyword arguments; zero: none): " + "; ".join(
                              f"``{s.name}`` ({s.low:g} to {s.high:g} {s.unit})" for s in SHOCKS.values())},
)
