"""Single-invoice calls scored together: the calls of a worker that wait while one is scored are scored next as
one batch, and each gets its own rows.

Why: scoring one new invoice is about 10 ms of CPU, nearly all of it pandas' fixed cost per call (a batch of 1,000
costs about 0.1 ms an invoice), and at 100 calls a second on two cores those fixed costs are what fills the cores.
A batch gives each invoice the very rows scoring it alone gives (``features.invoices.invoice_features``, against
the history built once), so joining the calls that queue anyway changes no answer, and the more calls queue the
less each costs. BentoML's own adaptive batching does not fit: it batches a ``batchable`` endpoint whose request
body is the batch itself, while ``/score_invoices`` takes a list of invoices, checks each request on its own (a 400
names its own fields) and answers known invoices from the start-up table; only the scoring of checked invoices is
joined, here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class _Call:
    key: Any  # calls are joined only with calls of the same key (the served state they began with)
    items: list
    done: threading.Event = field(default_factory=threading.Event)
    rows: list | None = None
    error: BaseException | None = None


class Combined:
    """``fn(key, items) -> rows`` (one row per item, in order) made one call at a time under ``lock``; the calls
    that arrive meanwhile are made as one, their items joined (at most ``max_items``, oldest first), and each
    caller gets its own rows. When a joined call fails, its calls are made again one by one, so an error stays
    with the call that caused it."""

    def __init__(self, fn: Callable[[Any, list], list], max_items: int, lock: threading.Lock):
        self._fn, self._max, self._lock = fn, max_items, lock
        self._queue: list[_Call] = []
        self._queued = threading.Lock()

    def __call__(self, key: Any, items: list) -> list:
        call = _Call(key, list(items))
        with self._queued:
            self._queue.append(call)
        while not call.done.is_set():
            with self._lock:
                if not call.done.is_set():
                    self._run(self._next())
        if call.error is not None:
            raise call.error
        return call.rows

    def _next(self) -> list[_Call]:
        """The oldest waiting call and those after it with its key, up to ``max_items`` items (always one call)."""
        with self._queued:
            first = self._queue[0]
            batch, n = [], 0
            for c in self._queue:
                if c.key is first.key and (not batch or n + len(c.items) <= self._max):
                    batch.append(c)
                    n += len(c.items)
            self._queue = [c for c in self._queue if c not in batch]
        return batch

    def _run(self, batch: list[_Call]) -> None:
        items = [item for c in batch for item in c.items]
        try:
            rows = self._fn(batch[0].key, items)
            if len(rows) != len(items):
                raise ValueError(f"{len(rows)} rows for {len(items)} items")
        except Exception as e:  # noqa: BLE001 - told to its own caller below, or to each on its own
            if len(batch) == 1:
                batch[0].error = e
                batch[0].done.set()
                return
            for c in batch:  # which call failed: each alone
                self._run([c])
            return
        start = 0
        for c in batch:
            c.rows, start = rows[start:start + len(c.items)], start + len(c.items)
            c.done.set()
