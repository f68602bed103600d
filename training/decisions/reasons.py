"""Reasons: each invoice's strongest SHAP contributions as structured facts, and their words.

A ``Reason`` is a fact (feature, value, whether it raises or lowers risk, and what the value is compared with),
chosen by ``reasons`` from the model's contributions; ``Reason.sentence`` renders it with the feature's declared
template (``features.invoices.CATALOG``), e.g. "customer has 36,283 overdue, less than its usual 80,000 (lowers
risk)". A fact that sounds bad but lowers risk (or sounds good but raises it) is shown only with a comparison
that says why; otherwise the next reason takes its place.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.invoices import BY_NAME, columns


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


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while some 100,000s of small objects (reasons, their rows, lists) are
    built: otherwise they set off full collections over every live object, about 0.9 s of the 100k-open ``likvid
    score`` (measured). They form no cycles, so nothing waits for the collector meanwhile."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Rows:
    """The rows of a frame as mappings for the reasons' templates, without building a dict per row: ``rows[i]``
    reads row ``i`` (by position) column by column, with the values ``DataFrame.to_dict("records")`` gives
    (Python floats, ints, Timestamps). A column is converted once, when a template first reads it."""

    def __init__(self, frame: pd.DataFrame):
        self._frame = frame
        self._columns: dict[str, list] = {}

    def column(self, name: str) -> list:
        """Column ``name`` as a list of Python values; ``KeyError`` when the frame has none."""
        if name not in self._columns:
            col = self._frame[name]
            numeric = isinstance(col.dtype, np.dtype) and col.dtype.kind in "fiub"
            self._columns[name] = col.to_numpy().tolist() if numeric else col.astype(object).tolist()
        return self._columns[name]

    def __len__(self) -> int:
        return len(self._frame)

    def __getitem__(self, i: int) -> Row:
        return Row(self, i)


class Row(Mapping):
    """Row ``i`` of ``Rows``: a read-only mapping from column to value."""

    __slots__ = ("_rows", "_i")

    def __init__(self, rows: Rows, i: int):
        self._rows, self._i = rows, i

    def __getitem__(self, name: str):
        try:  # the columns already listed, without a call (a reason's words read two or three of them)
            return self._rows._columns[name][self._i]
        except KeyError:
            return self._rows.column(name)[self._i]

    def get(self, name: str, default=None):
        """``Mapping.get``, without its generic path (0.43 s of 307,779 sentences' 2.6 s)."""
        try:
            return self[name]
        except KeyError:
            return default

    def __iter__(self):
        return iter(self._rows._frame.columns)

    def __len__(self) -> int:
        return len(self._rows._frame.columns)


def _floats(x: pd.DataFrame, names: list[str | None]) -> np.ndarray:
    """Columns as floats, one matrix (NaN where missing; all NaN where ``x`` lacks the column or there is none)."""
    out = np.full((len(x), len(names)), np.nan)
    have = [j for j, name in enumerate(names) if name is not None and name in x.columns]
    if have:
        out[:, have] = x[columns([names[j] for j in have])].to_numpy(dtype=float, na_value=np.nan)
    return out


def _visible_gaps(names: list[str], feature: np.ndarray, value: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Whether each value and the one it is compared with read differently as shown ("less than its usual 4"
    needs a visible gap)."""
    out = np.zeros(len(feature), bool)
    for j in np.unique(feature):
        at = np.nonzero(feature == j)[0]
        shown = BY_NAME[names[j]].shown
        out[at] = [shown(a) != shown(b) for a, b in zip(value[at].tolist(), other[at].tolist())]
    return out


@_gc_paused()
def reasons(x: pd.DataFrame, contributions: pd.DataFrame, k: int = 3, rows: Rows | None = None) -> list[list[Reason]]:
    """Each row's ``k`` strongest contributions that can be shown, strongest first: for every row, what
    ``reason`` gives for its contributions in order of strength until ``k`` are shown or one is zero, decided
    for all rows at once, strength rank by strength rank. ``rows`` are ``Rows(x)`` when the caller has them."""
    values = contributions.to_numpy(dtype=float)
    n, m = values.shape
    rows = Rows(x) if rows is None else rows
    out: list[list[Reason]] = [[] for _ in range(n)]
    if n == 0 or m == 0:
        return out
    names = [str(c) for c in contributions.columns]
    specs = [BY_NAME[f] for f in names]
    own = _floats(x, names)
    compare = _floats(x, [s.compare.column if s.compare is not None else None for s in specs])
    sense = np.array([s.sense for s in specs])
    what = [s.compare.what if s.compare is not None else None for s in specs]
    order = np.argsort(-np.abs(values), axis=1, kind="stable")
    shown = np.zeros(n, int)
    going = np.ones(n, bool)  # not yet stopped at a zero contribution
    picks = []
    for rank in range(m):
        j = order[:, rank]
        effect = values[np.arange(n), j]
        going &= effect != 0
        at = np.nonzero(going & (shown < k))[0]
        if len(at) == 0:
            break
        j, effect = j[at], effect[at]
        value, other = own[at, j], compare[at, j]
        raises = effect > 0
        # The comparison, where it agrees with the effect and the gap shows.
        cmp = ~np.isnan(other) & ~np.isnan(value) & np.where(raises, value > other, value < other)
        cmp[cmp] = _visible_gaps(names, j[cmp], value[cmp], other[cmp])
        # ``against_reading``, for all of them: a fact that reads the other way is shown only with its comparison.
        against = ~np.isnan(value) & (((sense[j] > 0) & (((value > 0) & ~raises) | ((value <= 0) & raises)))
                                      | ((sense[j] < 0) & (value < 0) & ~raises))
        ok = cmp | ~against
        shown[at[ok]] += 1
        picks.append((at[ok], j[ok], value[ok], effect[ok], np.where(cmp, other, np.nan)[ok], cmp[ok]))
    mapped = [rows[i] for i in range(n)]  # one mapping a row, shared by its reasons
    names_of, what_of = np.array(names, dtype=object), np.array(what, dtype=object)
    for at, j, value, effect, other, cmp in picks:
        at = at.tolist()
        made = map(Reason, names_of[j].tolist(), value.tolist(), effect.tolist(), np.where(cmp, other, None).tolist(),
                   np.where(cmp, what_of[j], None).tolist(), [mapped[i] for i in at])
        for i, fact in zip(at, made):
            out[i].append(fact)
    return out


@_gc_paused()
def sentences(facts: list[list[Reason]], index: pd.Index, k: int = 3) -> pd.DataFrame:
    """Facts as the contract's ``reason_1..reason_k`` sentences (empty when fewer can be shown)."""
    rows = [[r.sentence() for r in row[:k]] + [None] * (k - len(row[:k])) for row in facts]
    return pd.DataFrame(rows, columns=[f"reason_{j + 1}" for j in range(k)], index=index)


def top_reasons(x: pd.DataFrame, contributions: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """The ``k`` strongest showable contributions of each row as sentences (columns reason_1..reason_k)."""
    return sentences(reasons(x, contributions, k), x.index, k)
