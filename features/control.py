"""The control group of the collections desk: which invoices are held back unchased, by invoice id.

One home for the draw, because two sides need the same invoices: the worklist (``training.decisions.dunning``)
marks them ``control``, and the synthetic company's credit team leaves them unchased, so that the measured
effect of chasing can be checked against the true one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np


def control_draw(invoice_ids: Iterable) -> np.ndarray:
    """A uniform draw in [0, 1) per invoice id, the same on every run and machine (seeded by the id)."""
    return np.array([int(hashlib.sha256(str(i).encode()).hexdigest()[:13], 16) / 16**13 for i in invoice_ids],
                    dtype=float)


def in_control(invoice_ids: Iterable, share: float) -> np.ndarray:
    """Whether each invoice belongs to the control group of a policy holding back ``share`` of them."""
    return control_draw(invoice_ids) < share
