"""Reasons: each invoice's strongest SHAP contributions as structured facts, and their words.

A ``Reason`` is a fact (feature, value, whether it raises or lowers risk, and what the value is compared with),
chosen by ``reasons`` from the model's contributions; ``Reason.sentence`` renders it with the feature's declared
template (``features.invoices.CATALOG``), e.g. "customer has 36,283 overdue, less than its usual 80,000 (lowers
risk)". A fact that sounds bad but lowers risk (or sounds good but raises it) is shown only with a comparison
that says why; otherwise the next reason takes its place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.invoices import BY_NAME


@dataclass(frozen=True)
class Reason:
    """One fact behind a score. ``effect`` is its contribution to the log-odds of late payment (> 0 raises
    risk; ``inf`` for a past-due invoice, which is late by definition)."""

    feature: str
    value: float
    effect: float
    compared_with: float | None = None  # the value it is compared with, or None
    compared_to: str | None = None  # what that value is: "its usual", "similar customers'"
    row: Mapping[str, float] = field(default_factory=dict, repr=False, compare=False)  # for the template

    @property
    def raises(self) -> bool:
        return self.effect > 0

    def sentence(self, direction: bool = True) -> str:
        """The fact in words, with its comparison and, unless ``direction`` is False, "(raises risk)"."""
        feature = BY_NAME[self.feature]
        text = feature.words(self.row)
        if self.compared_with is not None:
            word = "more" if self.value > self.compared_with else "less"
            text += f", {word} than {self.compared_to} {feature.shown(self.compared_with)}"
        return text + (f" ({'raises' if self.raises else 'lowers'} risk)" if direction else "")


def against_reading(feature: str, value: float, raises: bool) -> bool:
    """A fact that reads the other way from its effect: some of a bad thing lowering risk, none of it raising
    risk (or, for a feature where more is better, a negative value lowering risk)."""
    sense = BY_NAME[feature].sense
    if sense == 0 or value != value:
        return False
    if sense > 0:
        return (value > 0 and not raises) or (value <= 0 and raises)
    return value < 0 and not raises


def reason(feature: str, row: Mapping[str, float], effect: float) -> Reason | None:
    """The fact for one contribution, with its comparison where it agrees with the effect; None when the
    fact would read as a contradiction and no comparison explains it."""
    spec, value = BY_NAME[feature], row.get(feature, np.nan)
    compared = None
    if spec.compare is not None and not pd.isna(row.get(spec.compare.column, np.nan)) and not pd.isna(value):
        other = float(row[spec.compare.column])
        agrees = value > other if effect > 0 else value < other
        if agrees and spec.shown(value) != spec.shown(other):  # "less than its usual 4" needs a visible gap
            compared = other
    if compared is None and against_reading(feature, value, effect > 0):
        return None
    return Reason(feature, float(value), float(effect), compared,
                  spec.compare.what if compared is not None else None, row)


def reasons(x: pd.DataFrame, contributions: pd.DataFrame, k: int = 3) -> list[list[Reason]]:
    """Each row's ``k`` strongest contributions that can be shown, strongest first."""
    values = contributions.to_numpy()
    order = np.argsort(-np.abs(values), axis=1, kind="stable")
    names = np.asarray(contributions.columns)
    out = []
    for i, row in enumerate(x.to_dict("records")):
        chosen = []
        for j in order[i]:
            if values[i, j] == 0:
                break
            r = reason(names[j], row, values[i, j])
            if r is not None:
                chosen.append(r)
                if len(chosen) == k:
                    break
        out.append(chosen)
    return out


def sentences(facts: list[list[Reason]], index: pd.Index, k: int = 3) -> pd.DataFrame:
    """Facts as the contract's ``reason_1..reason_k`` sentences (empty when fewer can be shown)."""
    rows = [[r.sentence() for r in row[:k]] + [None] * (k - len(row[:k])) for row in facts]
    return pd.DataFrame(rows, columns=[f"reason_{j + 1}" for j in range(k)], index=index)


def top_reasons(x: pd.DataFrame, contributions: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """The ``k`` strongest showable contributions of each row as sentences (columns reason_1..reason_k)."""
    return sentences(reasons(x, contributions, k), x.index, k)
