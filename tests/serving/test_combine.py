"""The API worker's cheap calls and its calls of the heavy service: calls joined while one runs (``serving.combine``;
each caller gets its own rows, joined calls never mix served states or pass the item cap, and an error stays with
the call that caused it), and a heavy call cut off on its connection (``serving.heavy.ask``)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from serving.combine import Combined


class Recorder:
    """``fn`` that answers each item with (key, item), records each batch, and is held on its first call until
    the test lets it go (so the calls that arrive meanwhile queue)."""

    def __init__(self, fail_on=None):
        self.batches: list[tuple[object, list]] = []
        self.release, self.entered, self.fail_on = threading.Event(), threading.Event(), fail_on

    def __call__(self, key, items):
        self.batches.append((key, list(items)))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if self.fail_on in items:
            raise ValueError(f"bad item {self.fail_on}")
        return [(key, item) for item in items]


def _queued(combined: Combined, n: int, timeout: float = 10) -> None:
    """Until ``n`` calls wait in ``combined``'s queue."""
    for _ in range(int(timeout / 0.005)):
        with combined._queued:
            if len(combined._queue) >= n:
                return
        time.sleep(0.005)
    raise AssertionError(f"fewer than {n} calls queued")


def test_calls_waiting_while_one_runs_are_made_as_one_and_each_gets_its_rows():
    fn = Recorder()
    combined = Combined(fn, max_items=10, lock=threading.Lock())
    key = object()
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(combined, key, ["a"])
        assert fn.entered.wait(10)
        rest = [pool.submit(combined, key, items) for items in (["b", "c"], ["d"], ["e", "f", "g"])]
        _queued(combined, 3)
        fn.release.set()
        answers = [first.result(10)] + [f.result(10) for f in rest]
    assert answers == [[(key, "a")], [(key, "b"), (key, "c")], [(key, "d")], [(key, "e"), (key, "f"), (key, "g")]]
    assert len(fn.batches) == 2 and sorted(fn.batches[1][1]) == list("bcdefg")


def test_joined_calls_keep_to_the_cap_and_to_their_own_state():
    fn = Recorder()
    combined = Combined(fn, max_items=3, lock=threading.Lock())
    old, new = object(), object()
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(combined, old, ["a"])
        assert fn.entered.wait(10)
        calls = [(old, ["b", "c"]), (new, ["x"]), (old, ["d"]), (old, ["e", "f"]), (new, ["y"])]
        futures = []
        for i, (key, items) in enumerate(calls):
            futures.append(pool.submit(combined, key, items))
            _queued(combined, i + 1)  # in this order
        fn.release.set()
        assert first.result(10) == [(old, "a")]
        for (key, items), f in zip(calls, futures):
            assert f.result(10) == [(key, item) for item in items]
    later = fn.batches[1:]
    assert all(len(items) <= 3 for _, items in later)
    assert all(set(items) <= (set("abcdef") if key is old else {"x", "y"}) for key, items in later)  # no mixing
    assert later[0] == (old, ["b", "c", "d"])  # the oldest call first, then the ones after it with its state
    assert sorted(item for _, items in later for item in items) == list("bcdefxy")


def test_an_error_in_a_joined_call_stays_with_the_call_that_caused_it():
    fn = Recorder(fail_on="bad")
    combined = Combined(fn, max_items=10, lock=threading.Lock())
    key = object()
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(combined, key, ["a"])
        assert fn.entered.wait(10)
        good, bad, other = (pool.submit(combined, key, items) for items in (["b"], ["bad", "c"], ["d"]))
        _queued(combined, 3)
        fn.release.set()
        assert first.result(10) == [(key, "a")]
        assert good.result(10) == [(key, "b")] and other.result(10) == [(key, "d")]
        with pytest.raises(ValueError, match="bad item"):
            bad.result(10)


def test_a_call_alone_is_made_at_once():
    fn = Recorder()
    fn.release.set()
    combined = Combined(fn, max_items=10, lock=threading.Lock())
    assert combined("k", [1, 2]) == [("k", 1), ("k", 2)] and fn.batches == [("k", [1, 2])]


def test_a_heavy_call_cut_off_on_a_closed_kept_alive_connection_is_asked_once_more_and_a_failure_is_none():
    """``serving.heavy.ask``: the keep-alive race (the heavy service closed an idle connection as it was reused)
    is asked again; a second cut-off, or the heavy service failing, is ``None`` (the API's 503), never a raise."""
    import aiohttp
    from bentoml.exceptions import BentoMLException

    from serving.heavy import ask

    def calls(*outcomes):
        left = list(outcomes)

        def call():
            outcome = left.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        return call, left

    call, left = calls(aiohttp.ServerDisconnectedError(), ("rows", [1]))
    assert ask(call, "kpis") == ("rows", [1]) and not left
    call, left = calls(aiohttp.ServerDisconnectedError(), aiohttp.ServerDisconnectedError(), ("rows", [1]))
    assert ask(call, "kpis") is None and left == [("rows", [1])]
    for failure in (BentoMLException("restarting"), aiohttp.ClientConnectionError("refused"), TimeoutError()):
        call, left = calls(failure, ("rows", [1]))
        assert ask(call, "kpis") is None and left == [("rows", [1])]  # not asked again: it may be busy
