"""The Monte Carlo simulation of a cash forecast: every component's weekly sums on every path.

Each path draws every open invoice's payment day from the payment-timing model (write-offs
included: a draw may be "never"), turns open orders into invoices after the learned lead time
(some are cancelled), adds sales not yet ordered from the weekly invoicing model with its errors,
pays open bills and the bills of open purchase orders the way this company pays, and adds the
recurring bank lines. Shocks act on the draws where ``Shocks.apply`` is called (one ``Draw`` each).
Invoices' payment days are not drawn independently: a Gaussian copula ties them by the learned
``CommonShocks`` (on each path, one factor a week shared by the invoices due in it, one a period per
customer), which keeps each invoice's own distribution and widens the weekly sums as the history shows.
Work is done in blocks of rows x paths that stay in the CPU's cache; ``_Uniforms`` hands out one
stream's numbers block by block, so the result is that of drawing the whole arrays at once. The loops over
rows x paths are compiled (numba, cached on disk) and compute what the numpy expressions they stand for would,
to the last bit: the same draws, the same float32 or float64 operations, sums added in numpy's order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache

import numba
import numpy as np
import pandas as pd
from scipy.special import ndtr

from features import cash, ledger
from features.asof import View
from features.asof import as_of as view_as_of
from features.contract import PO, Bill, Fx, Inv, Ord
from features.invoices import history, invoice_features, open_mask
from features.load import Company
from training import cores
from training.cash.model import BandCalibration, CashModel, CommonShocks, ForecastModels, one_series
from training.cash.shocks import Draw, Shocks
from training.examples import INVOICE_COLUMNS
from training.payment_timing import PaymentTimingModel

COMPONENTS = ("ar_open", "ar_future", "ap_open", "ap_future", "other")


# Elements (rows x paths) worked on at a time. Whole rows x paths temporaries (tens of MB each) cost
# more in fresh memory pages than in arithmetic; blocks this small stay in the CPU's cache.
_BLOCK = 1 << 17


def _blocks(n: int, width: int) -> Iterator[slice]:
    """Consecutive slices of ``n`` rows, each about ``_BLOCK`` elements of ``width`` columns."""
    step = max(1, _BLOCK // max(width, 1))
    return (slice(s, min(s + step, n)) for s in range(0, n, step))


class _Uniforms:
    """``rng.random((rows, paths))`` handed out a block of rows at a time, in order: the same numbers
    without the whole array. Their place in ``rng``'s stream is taken at once (``rng`` jumps past
    them), so what ``rng`` draws next is what it would draw after the whole array."""

    def __init__(self, rng: np.random.Generator, rows: int, paths: int):
        self.paths, self._next, self._all = paths, 0, None
        bits = rng.bit_generator
        if type(bits) is not np.random.PCG64:  # no known jump: draw them all now
            self._all = rng.random((rows, paths))
            return
        state = bits.state
        self._rng = np.random.Generator(np.random.PCG64())
        self._rng.bit_generator.state = state
        ahead = np.random.PCG64()
        ahead.state = state
        ahead.advance(rows * paths)  # one 64-bit step a number
        moved = ahead.state
        # advance() drops the half word kept for 32-bit draws; random() never uses it, so it is still due
        moved["has_uint32"], moved["uinteger"] = state["has_uint32"], state["uinteger"]
        bits.state = moved

    def rows(self, part: slice) -> np.ndarray:
        if self._all is not None:
            return self._all[part]
        if part.start != self._next:
            raise ValueError("uniforms are handed out in order")
        self._next = part.stop
        return self._rng.random((part.stop - part.start, self.paths))


class _Paths:
    """Per-path weekly sums of each component; column ``weeks + 1`` collects what falls later."""

    def __init__(self, weeks: int, paths: int):
        self.weeks, self.paths = weeks, paths
        self.sums = {c: np.zeros((paths, weeks + 2)) for c in COMPONENTS}

    def add(self, component: str, week: np.ndarray, amount: np.ndarray) -> None:
        """Add amounts (per row, or per row and path) falling in weeks (rows x paths, 0 to ``weeks + 1``)."""
        amount = amount[:, None] if amount.ndim == 1 else amount
        _add_weeks(self.sums[component], week, np.broadcast_to(amount, week.shape))

    def weekly(self, component: str) -> np.ndarray:
        return self.sums[component][:, 1: self.weeks + 1]


@numba.njit(cache=True)
def _add_weeks(sums, week, amount):
    """Add amounts (rows x paths) on to their weeks' sums: each path's sums in row order, on zeros, then added to
    ``sums``, the sums one ``np.bincount`` of the rows x paths gives (the order of summing sets the last bits)."""
    rows, paths = week.shape
    block = np.zeros((paths, sums.shape[1]))
    for r in range(rows):
        for j in range(paths):
            block[j, week[r, j]] += amount[r, j]
    for j in range(paths):
        for k in range(sums.shape[1]):
            sums[j, k] += block[j, k]


def _weeks_of_days(days: np.ndarray, weeks: int) -> np.ndarray:
    """Week numbers of day offsets from as-of (inf: never, beyond the horizon)."""
    w = np.ceil(np.where(np.isfinite(days), days, 7.0 * (weeks + 1)) / 7.0)
    return np.clip(w, 1, weeks + 1)


def _uniforms(values: np.ndarray, rng: np.random.Generator, rows: int, paths: int) -> _Uniforms | None:
    """The uniforms ``_draw`` needs from ``values`` for rows x paths (none from an empty history)."""
    return _Uniforms(rng, rows, paths) if len(values) else None


def _draw(sorted_values: np.ndarray, floor: np.ndarray, uniforms: _Uniforms | None, part: slice,
          paths: int) -> np.ndarray:
    """Draws from an empirical distribution for a block of rows, each row conditioned on being at
    least ``floor`` (the floor itself when no history reaches it)."""
    shape = (part.stop - part.start, paths)
    if len(sorted_values) == 0:
        return np.broadcast_to(floor[:, None], shape).astype(float)
    return _draw_rows(sorted_values, np.searchsorted(sorted_values, floor, side="left"), floor,
                      uniforms.rows(part))


@numba.njit(cache=True, nogil=True)
def _draw_rows(sorted_values, lo, floor, uniforms):
    """``_draw``'s draws: each row's uniforms scaled to the ``n - lo`` values from its ``lo`` on and truncated
    (draws are >= 0, so truncation is the floor), as numpy does; a row beyond the history takes its floor."""
    rows, paths = uniforms.shape
    n = len(sorted_values)
    out = np.empty((rows, paths))
    for r in range(rows):
        span = np.float64(max(n - lo[r], 0))
        start = min(lo[r], n - 1)
        for j in range(paths):
            out[r, j] = floor[r] if lo[r] >= n else sorted_values[np.intp(uniforms[r, j] * span) + start]
    return out


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], ar: float) -> np.ndarray:
    """Standard normal factors along the last axis, correlated ``ar`` from one step to the next (float32)."""
    out = rng.standard_normal(shape, dtype=np.float32)
    keep = np.float32(np.sqrt(1.0 - ar * ar))
    for t in range(1, shape[-1]):
        out[..., t] = ar * out[..., t - 1] + keep * out[..., t]
    return out


def _levels_of(score: np.ndarray, levels: int) -> np.ndarray:
    """The quantile level (0 to ``levels - 1``) of float32 normal scores: their normal CDF in ``levels`` steps."""
    return np.minimum(ndtr(score) * levels, levels - 1).astype(np.int16)


def _float32_of(key: np.ndarray) -> np.ndarray:
    """The float32 numbers of ordered keys (``_key_of``'s inverse)."""
    return np.where(key < 0, 0x80000000 - key, key).astype(np.uint32).view(np.float32)


def _key_of(x: np.ndarray) -> np.ndarray:
    """Integers in the order of the float32 numbers ``x`` (-0 and 0 alike), one apart from one float to the next."""
    bits = x.astype(np.float32).view(np.int32).astype(np.int64)
    return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)


@cache
def _level_bounds(levels: int) -> np.ndarray:
    """The least float32 score of each level 1 to ``levels - 1`` of ``_levels_of`` (bisected over every float32):
    a score's level is the number of bounds at or below it, found without the CDF, as scipy's float32 ``ndtr``
    never decreases (checked over all 2**32 - 2**24 + 1 floats from -inf to inf with scipy 1.17)."""
    k = np.arange(1, levels)
    lo = np.full(len(k), _key_of(np.array([-np.inf]))[0])  # level 0 < k
    hi = np.full(len(k), _key_of(np.array([np.inf]))[0])  # level levels - 1 >= k
    while (hi - lo > 1).any():
        mid = (lo + hi) // 2
        up = _levels_of(_float32_of(mid), levels) >= k
        hi, lo = np.where(up, mid, hi), np.where(up, lo, mid)
    return _float32_of(hi)


_CELLS = 1 << 12  # cells of equal width between the least and the greatest level bound: about one bound a cell


@numba.njit(cache=True)
def _cell(score, origin, width):
    """The cell of a score (0 to ``_CELLS - 1``), non-decreasing in the score."""
    x = (np.float64(score) - origin) * width
    return 0 if x < 0.0 else (_CELLS - 1 if x >= _CELLS - 1 else int(x))


@numba.njit(cache=True, nogil=True)
def _pick_levels(out, start, stop, normal, scale, week, week_factor, week_share, customer, period, customer_factor,
                 customer_share, bounds):
    """``_Common.picks``'s levels of rows ``start`` to ``stop`` into ``out``, in one pass: each row's own normal
    draws x ``scale``, plus its due week's factor (``week`` -1: none) and its customer's of its period (``customer``
    -1: none) times their shares, in float32 and in numpy's order of operations; the level is the number of
    ``bounds`` at or below the score. The bounds of the cells below a score's cell are all below it, so the count
    starts from theirs."""
    paths = normal.shape[1]
    n = len(bounds)
    origin = np.float64(bounds[0]) if n else 0.0
    width = (_CELLS - 1) / (np.float64(bounds[-1]) - origin) if n > 1 and bounds[-1] > bounds[0] else 1.0
    below = np.zeros(_CELLS + 1, dtype=np.int64)  # the number of bounds in the cells before each
    for b in bounds:
        below[_cell(b, origin, width) + 1] += 1
    below = np.cumsum(below)
    for r in range(start, stop):
        w, c, p = week[r], customer[r], period[r]
        for j in range(paths):
            score = normal[r, j] * scale[r]
            if w >= 0:
                score = score + week_share * week_factor[w, j]
            if c >= 0:
                score = score + customer_share * customer_factor[c, p, j]
            level = below[_cell(score, origin, width)]
            while level < n and bounds[level] <= score:
                level += 1
            out[r, j] = level


@numba.njit(cache=True, nogil=True)
def _add_picked(sums, first, pick, rows, grid, levels, amount, share, scaled):
    """``_add_weeks`` of each of ``rows``' amounts (rows of ``amount``, x ``share`` when ``scaled``) on the paths from
    ``first`` in the week of its picked quantile (``grid``: ``levels`` weeks a row, in ``rows``' order)."""
    width = sums.shape[1]
    cols = amount.shape[1]
    block = np.zeros((cols, width))
    for i in range(len(rows)):
        r = rows[i]
        base = i * levels
        for j in range(cols):
            value = amount[r, j] * share if scaled else amount[r, j]
            block[j, grid[base + pick[r, first + j]]] += value
    for j in range(cols):
        for k in range(width):
            sums[first + j, k] += block[j, k]


class _Common:
    """Each path's common factors: one for every week of due dates after as-of and one for every customer in
    ``customers`` (the largest, which carry the sales not yet ordered) and ``CommonShocks.CUSTOMER_WEEKS`` period.
    An invoice's quantile level on a path is the normal CDF of its factors and its own normal draw, weighted by
    the learned shares (another customer's own draw takes the customer factor's share).

    An overdue invoice (due by as-of) has no week factor: the shock of the week it fell due in, which the shares
    measure (by due week), has played out, and the invoice is still open after it. Its own draw takes that share.
    Before, every overdue invoice shared week 1's factor, which made week 1's band half as wide again as independent
    draws (0.24 against 0.16 of the median at 7 origins of development seed 11) while its actual receipts spread
    about 0.19 wide. Pooled over development seeds 11-13 (``benchmarks/backtest_coverage.py``, and the README) the
    band was 0.253 wide; with the factor of the week each overdue invoice fell due in, 0.222; without, 0.211."""

    def __init__(self, shares: CommonShocks, customers: np.ndarray, weeks: int, paths: int,
                 rng: np.random.Generator):
        self.shares, self.customers, self.weeks, self.paths = shares, customers, weeks, paths
        self.periods = (weeks + 1) // CommonShocks.CUSTOMER_WEEKS + 1
        self.week = _ar1(rng, (paths, weeks + 2), shares.company_ar).T.copy() if shares.company > 0 else None
        self.customer = (_ar1(rng, (len(customers), paths, self.periods), shares.customer_ar).transpose(0, 2, 1).copy()
                         if shares.customer > 0 and len(customers) else None)
        alone, customer = 1.0 - shares.company, shares.customer if self.customer is not None else 0.0
        self.own = np.float32(np.sqrt(max(alone - customer, 0.0)))
        self.own_alone = np.float32(np.sqrt(max(alone, 0.0)))
        self.own_overdue = np.float32(np.sqrt(max(1.0 - customer, 0.0)))  # with the week factor's share too

    def scales(self, has: np.ndarray, overdue: np.ndarray) -> np.ndarray:
        """Each row's weight of its own draw: ``has`` a customer factor, ``overdue`` (no week factor)."""
        return np.where(overdue, np.where(has, self.own_overdue, np.float32(1.0)),
                        np.where(has, self.own, self.own_alone)).astype(np.float32)

    def normals(self, rng: np.random.Generator, rows: int) -> np.ndarray:
        """The own normal draws ``picks`` takes for ``rows`` rows (drawn apart, so that they can be drawn ahead)."""
        return rng.standard_normal((rows, self.paths), dtype=np.float32)

    def picks(self, customer: np.ndarray, due_day: np.ndarray, normal: np.ndarray, levels: int) -> np.ndarray:
        """Each row's quantile level (0 to ``levels - 1``) on every path; ``customer`` is each row's place in
        ``customers`` (-1: none), ``normal`` its own draws (``normals``)."""
        has, overdue = customer >= 0, due_day <= 0  # without week factors an overdue row's weight is the same
        week = (np.where(overdue, -1, _weeks_of_days(due_day, self.weeks)).astype(np.intp) if self.week is not None
                else np.full(len(customer), -1))
        place = customer if self.customer is not None else np.full(len(customer), -1)
        period = np.zeros(len(customer), dtype=np.intp)
        if self.customer is not None and has.any():
            period[has] = np.clip(np.floor(np.maximum(due_day[has], 0) / (7 * CommonShocks.CUSTOMER_WEEKS)), 0,
                                  self.periods - 1)
        none = np.zeros((1, 1, self.paths), dtype=np.float32)
        out = np.empty(normal.shape, dtype=np.int16)
        args = (normal, self.scales(has, overdue), week, self.week if self.week is not None else none[0],
                np.float32(np.sqrt(self.shares.company)), place, period,
                self.customer if self.customer is not None else none, np.float32(np.sqrt(self.shares.customer)),
                _level_bounds(levels))
        cores.by_rows(lambda start, stop: _pick_levels(out, start, stop, *args), len(out), self.paths)
        return out

    def index(self, ids: pd.Series) -> np.ndarray:
        """Each id's place in ``customers``, -1 where it is not one of them."""
        ids = ids.astype(str).to_numpy()
        if not len(self.customers):
            return np.full(len(ids), -1)
        place = np.minimum(np.searchsorted(self.customers, ids), len(self.customers) - 1)
        return np.where(self.customers[place] == ids, place, -1)


def _invoice_receipts(paths: _Paths, component: str, timing: PaymentTimingModel, x: pd.DataFrame,
                      weights: Callable[[slice, slice], np.ndarray], paid_after: np.ndarray, due_day: np.ndarray,
                      first_day: np.ndarray, shocks: Shocks, runs: pd.DataFrame, at: pd.Timestamp, levels: int,
                      chunk: int, rng: np.random.Generator, common: _Common,
                      spread: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
    """Draw each invoice's payment day on every path and add its receipt to that week.

    A path draws one of ``levels`` equally likely quantiles of the invoice's pay-day distribution,
    conditioned on being unpaid ``paid_after`` days after due (the same distribution
    ``PaymentTimingModel.sample`` draws from, discretised so that 50k invoices x 1,000 paths fit
    in seconds). ``shocks`` move the payment days (``Draw.CUSTOMER_PAY_DAY``); a customer that
    pays in runs is then paid on its nearest run day. ``weights(rows, paths)`` gives the amounts of
    those rows on those paths (broadcastable). ``common`` picks the quantile of each invoice on each path.
    ``spread`` (rows, shifts, shares) issues each of those rows on several days instead, shifted from its own by
    ``shifts`` days in ``shares`` of its amount, with the same pick on every day: one draw of how the customer pays,
    the week's invoices spread over its days (their quantiles are the row's, moved with the due date)."""
    u = (np.arange(levels) + 0.5) / levels
    place = common.index(x[Inv.CUSTOMER])
    run = runs.reindex(x[Inv.CUSTOMER].to_numpy()).fillna(0).astype(int)
    kind, weekday, monthday = (run[c].to_numpy() for c in ("kind", "weekday", "monthday"))
    spread_rows = np.zeros(len(x), dtype=bool)
    if spread is not None:
        spread_rows[spread[0]] = True
    parts = [slice(s, s + chunk) for s in range(0, len(x), chunk)]
    quantiles = lambda part: timing.quantiles(x.iloc[part], u, paid_after[part])  # noqa: E731 (days after due)
    following = cores.ahead(lambda: quantiles(parts[0])) if parts else None
    for i, part in enumerate(parts):
        s = part.start
        # The chunk's own normal draws come next in ``rng``'s stream; nothing else draws until they are used, so
        # they are drawn on a second thread while the quantiles (which draw nothing) are found. The next chunk's
        # quantiles are found on another while this chunk's receipts are added: at 985,325 invoices the
        # quantiles were 1.0 of the receipts' 1.8 s, one chunk after the other.
        normal = cores.ahead(lambda n=len(place[part]): common.normals(rng, n))
        delay = following.result()  # inf = never paid
        following = cores.ahead(lambda p=parts[i + 1]: quantiles(p)) if i + 1 < len(parts) else None
        pick = common.picks(place[part], due_day[part], normal.result(), levels)
        spread_here = spread_rows[part]
        passes = [(np.ones(len(delay), dtype=bool), 0.0, 1.0)] if not spread_here.any() else (
            [(~spread_here, 0.0, 1.0)] + [(spread_here, shift, share) for shift, share in zip(*spread[1:])])
        weeks = []  # each pass's rows in the chunk, the week of each of their quantiles, and their share
        for rows, shift, share in passes:
            if not rows.any():
                continue
            sel = np.flatnonzero(rows) + s
            first = first_day[sel] + shift
            day = shocks.apply(Draw.CUSTOMER_PAY_DAY, due_day[sel, None] + shift + delay[rows])
            day = np.maximum(day, first[:, None])
            day = cash.snap_to_runs(day, at, kind[sel], weekday[sel], monthday[sel], first)
            weeks.append((sel - s, _weeks_of_days(day, paths.weeks).astype(np.uint8).ravel(), share))
        sums = paths.sums[component]
        for cols in _blocks(paths.paths, len(delay) * len(weeks)):  # each path's quantile of each invoice
            w = np.broadcast_to(weights(part, cols), (len(delay), cols.stop - cols.start))
            for rows, grid, share in weeks:
                _add_picked(sums, cols.start, pick, rows, grid, levels, w, share, share != 1.0)


_SALES_DAY = 4  # the day of its week a week's sales not yet ordered are scored as issued on


def _issue_spread(model: CashModel, at: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    """Where in its week a week's sales not yet ordered are issued: shifts from ``_SALES_DAY`` and their shares,
    the days of the week invoices are issued on in the history (all on ``_SALES_DAY`` for a model without them)."""
    weekdays = model.issue_weekdays()
    if weekdays is None:
        return np.zeros(1), np.ones(1)
    days = np.arange(1, 8)
    share = weekdays[(at + pd.to_timedelta(days, unit="D")).day_of_week]
    return (days - _SALES_DAY)[share > 0].astype(float), share[share > 0]


def _hypothetical_invoices(view: Company, at: pd.Timestamp, model: CashModel, weeks: int,
                           orders: pd.DataFrame, in_base: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Future invoices as invoice rows: open orders (issued after the learned lead) and one invoice a
    week per customer carrying its share of sales not yet ordered (scored on the week's ``_SALES_DAY``, paid
    as issued on the weekdays the company invoices on: ``_issue_spread``). ``in_base``: the invoices' amounts in the
    base, at issue-date rates."""
    inv = view[Inv.TABLE]
    terms = cash.customer_terms(inv)
    terms_global = float(terms.median()) if len(terms) else 30.0
    last = (inv[[Inv.CUSTOMER, Inv.ISSUE, Inv.DELIVERY]].sort_values(Inv.ISSUE, kind="stable")
            .drop_duplicates(Inv.CUSTOMER, keep="last").set_index(Inv.CUSTOMER))  # each customer's latest invoice
    inv = inv.assign(**{Inv.AMOUNT: in_base})
    typical = inv.groupby(Inv.CUSTOMER)[Inv.AMOUNT].median()

    lead = orders[Ord.CUSTOMER].map(model.order_lead_).fillna(model.order_lead_global_).to_numpy(float)
    issue = orders[Ord.DATE] + pd.to_timedelta(lead, unit="D")
    issue = issue.where(issue > at, at + pd.Timedelta(days=1))
    from_orders = pd.DataFrame({
        Inv.ID: "order:" + orders[Ord.ID].astype(str), Inv.CUSTOMER: orders[Ord.CUSTOMER],
        Inv.ISSUE: issue, Inv.AMOUNT: orders[Ord.AMOUNT], Inv.ORDER: orders[Ord.ID], "kind": "order",
    })

    recent = inv[inv[Inv.ISSUE] > at - pd.Timedelta(weeks=model.config.share_weeks)]
    share = recent.groupby(Inv.CUSTOMER)[Inv.AMOUNT].sum().sort_values(ascending=False)
    share = share.head(model.config.max_customers)
    share = share / share.sum() if share.sum() > 0 else share
    k = np.repeat(np.arange(1, weeks + 1), len(share))
    cust = np.tile(share.index.to_numpy(), weeks)
    future = pd.DataFrame({
        Inv.ID: [f"sales:{c}:{w}" for c, w in zip(cust, k)], Inv.CUSTOMER: cust,
        Inv.ISSUE: at + pd.to_timedelta(7 * (k - 1) + _SALES_DAY, unit="D"),
        Inv.AMOUNT: typical.reindex(cust).to_numpy(), Inv.ORDER: pd.NA, "kind": "sales",
        "share": np.tile(share.to_numpy(), weeks), "issue_week": k,
    })
    hyp = pd.concat([from_orders, future], ignore_index=True)
    hyp[Inv.CUSTOMER] = hyp[Inv.CUSTOMER].astype("string")
    hyp[Inv.ORDER] = hyp[Inv.ORDER].astype("string")
    hyp[Inv.DUE] = hyp[Inv.ISSUE] + pd.to_timedelta(
        hyp[Inv.CUSTOMER].map(terms).fillna(terms_global).to_numpy(float), unit="D")
    hyp[Inv.DELIVERY] = hyp[Inv.CUSTOMER].map(last[Inv.DELIVERY]).astype("string")
    hyp[Inv.DISPUTE] = pd.NaT
    hyp[Inv.PAID] = pd.NaT
    hyp[Inv.CURRENCY] = pd.Series(pd.NA, index=hyp.index, dtype="string")  # amounts in the base already
    return hyp, share.to_frame("share")


_PAYABLES_STREAM = 1  # the payables' random numbers: the stream seeded by (seed, this); the rest draw from seed's


def simulate(company: Company, at: pd.Timestamp, weeks: int, shocks: Shocks, models: ForecastModels,
             paths: int, seed: int = 0, calibrated: bool = True) -> tuple[_Paths, float]:
    """Simulated weekly sums of every component on every path, and the opening balance; the receipts widened
    by the cash model's learned ``BandCalibration`` (``widen_receipts``) unless ``calibrated`` is False."""
    cfg = models.cash.config
    model, timing = models.cash, models.timing
    rng = np.random.default_rng(seed)
    view = view_as_of(company, at)
    sim = _Paths(weeks, paths)
    day_of = lambda s: (pd.DatetimeIndex(s) - at).days.to_numpy(float)  # noqa: E731

    # One feature build for the open invoices and the future ones (open orders, sales not yet ordered).
    inv = view[Inv.TABLE]
    runs = cash.payment_runs(inv[Inv.PAID], inv[Inv.CUSTOMER])
    orders = cash.open_orders(company, at, view)
    in_base = ledger.base_amounts(view, Inv.TABLE)  # at issue-date rates: the future sales' and the series'
    hyp, shares = _hypothetical_invoices(view, at, model, weeks, orders, in_base)
    known = history(company, at, models.features)  # as of ``at`` either way; the company's may be kept (its cache)
    own = known.view[Inv.TABLE].index.equals(inv.index)  # the same view: what was paid on each, by position
    open_inv = inv[open_mask(inv, known.reduced_rows if own else
                             known.reduced.reindex(inv[Inv.ID].astype(object)).to_numpy())]
    both = invoice_features(view, at, models.features, known=known,
                            invoices=pd.concat([open_inv[INVOICE_COLUMNS], hyp[INVOICE_COLUMNS]], ignore_index=True))
    x, hx = both.iloc[: len(open_inv)], both.iloc[len(open_inv):]
    common = _Common(model.common_shocks(), np.unique(shares.index.astype(str)), weeks, paths, rng)
    flows = cash.daily_flows(view, at, in_base)  # summed once, for the series and the opening balance
    series = cash.weekly_series(view, at, flows=flows)
    # The payables draw from a stream of their own (the same whichever thread runs them, and whenever), on a second
    # thread while the receipts are simulated: their own components, compiled loops that release the GIL. At
    # 985,325 invoices `likvid forecast` took 4.21-4.74 s against 4.58-5.59 s with them after the receipts.
    payables = cores.ahead(lambda: _payables(sim, view, at, model, shocks, paths,
                                             np.random.default_rng([seed, _PAYABLES_STREAM]), day_of, series))

    # AR open: every invoice open at as-of, conditioned on being unpaid so far; only its open part is still to
    # come, in the base currency at the as-of rate (``amount_open``: net of payments and credit notes).
    if len(x):
        due_day = day_of(x[Inv.DUE])
        receipt = x["amount_open"].to_numpy(float) * model.collect_ratio_
        _invoice_receipts(sim, "ar_open", timing, x, lambda rows, cols: receipt[rows, None], -due_day, due_day,
                          np.ones(len(x)), shocks, runs, at, cfg.levels, cfg.chunk, rng, common)

    # AR future: open orders, then sales not yet ordered from the weekly invoicing model.
    issue_day, due_day = day_of(hyp[Inv.ISSUE]), day_of(hyp[Inv.DUE])
    is_order = (hyp["kind"] == "order").to_numpy()
    issue_week = _weeks_of_days(issue_day, weeks).astype(int)
    expected_from_orders = np.bincount(issue_week[is_order], weights=hyp.loc[is_order, Inv.AMOUNT].to_numpy(float)
                                       * (1 - model.cancel_share_), minlength=weeks + 2)[1: weeks + 1]
    invoiced = one_series(series, cash.INVOICED)
    total = model.invoicing_.predict(invoiced, weeks)[None, :] * model.invoicing_.multipliers(weeks, paths, rng)
    # Sales not yet ordered: the learned share of each week's invoicing that open orders do not show (orders
    # placed later are independent of those open now), else what the open orders leave of the total.
    share = model.unordered_share(weeks)
    not_ordered = total * share[None, :] if share is not None else np.maximum(total - expected_from_orders[None, :], 0)
    unordered = shocks.apply(Draw.UNORDERED_SALES, not_ordered)
    kept = np.empty((int(is_order.sum()), paths), dtype=bool)  # an order is invoiced on a path, or cancelled
    for rows in _blocks(len(kept), paths):
        kept[rows] = rng.random((rows.stop - rows.start, paths)) >= model.cancel_share_
    amount, sales = hyp[Inv.AMOUNT].to_numpy(float), ~is_order
    share, k = hyp.loc[sales, "share"].to_numpy(float), hyp.loc[sales, "issue_week"].to_numpy(int)
    order_row, sales_row = np.cumsum(is_order) - 1, np.cumsum(sales) - 1

    def future_weights(rows: slice, cols: slice) -> np.ndarray:
        """Open orders: their amount where not cancelled; sales not yet ordered: their share of the path's."""
        order = is_order[rows]
        w = np.empty((len(order), cols.stop - cols.start))
        w[order] = amount[rows][order][:, None] * kept[order_row[rows][order], cols]
        sale = sales_row[rows][~order]
        w[~order] = share[sale][:, None] * unordered[cols][:, k[sale] - 1].T
        return w * model.collect_ratio_

    if len(hyp):
        _invoice_receipts(sim, "ar_future", timing, hx, future_weights, issue_day - due_day, due_day,
                          np.maximum(issue_day + 1, 1), shocks, runs, at, cfg.levels,
                          cfg.chunk, rng, common, (np.flatnonzero(sales), *_issue_spread(model, at)))

    payables.result()
    _bank_lines(sim, model, at, weeks, paths, rng)
    if calibrated:
        widen_receipts(sim, model.bands())
    opening, _ = cash.opening_balance(view, at, flows=flows)
    return sim, opening


def widen_receipts(sim: _Paths, bands: BandCalibration) -> None:
    """Move each path's weekly receipts away from (or toward) their median across paths by the week's factor,
    never below 0: every quantile moves the same way, the median stays. The change is split between open and
    future receipts by their mean shares of that week, so the components still add up to the total."""
    factor = bands.factor(sim.weeks)
    if np.all(factor == 1.0):
        return
    cols = 1 + np.flatnonzero(factor != 1.0)
    ar_open, ar_future = sim.sums["ar_open"], sim.sums["ar_future"]
    total = ar_open[:, cols] + ar_future[:, cols]
    median = np.median(total, axis=0)
    change = np.maximum(median + factor[cols - 1] * (total - median), 0.0) - total
    mean_open, mean_total = ar_open[:, cols].mean(axis=0), total.mean(axis=0)
    share = np.divide(mean_open, mean_total, out=np.full_like(mean_total, 0.5), where=mean_total != 0)
    ar_open[:, cols] += change * share
    ar_future[:, cols] += change * (1.0 - share)


@numba.njit(cache=True, nogil=True)
def _maximum(a, b):
    """``np.maximum`` of two numbers (NaN wins)."""
    return a if a >= b or a != a else b


@numba.njit(cache=True, nogil=True)
def _minimum(a, b):
    """``np.minimum`` of two numbers (NaN wins)."""
    return a if a <= b or a != a else b


@numba.njit(cache=True, nogil=True)
def _week_of(day, weeks):
    """``_weeks_of_days`` of one day."""
    week = np.ceil((day if np.isfinite(day) else 7.0 * (weeks + 1)) / 7.0)
    return np.uint8(_minimum(_maximum(week, 1.0), weeks + 1.0))


@numba.njit(cache=True, nogil=True)
def _bill_weeks(week, taken, issue, due, offsets, run_week, before, beyond, weeks, draws, slot, window, picks,
                discount_days, take_share):
    """``_pay_bills``'s week of paying each of a block of bills on every path, and where a discount is taken.

    Around the due date: ``due + offsets``, never before ``max(issue, 1)``, moved to the run day after it (entry
    ``d`` of ``run_week``) or the one before it where that is nearer (``before``) and not too early (entry
    ``d + len(before)``), days from ``beyond`` on alike; no runs: ``run_week`` is empty. Inside the discount
    window instead where the bill offers one (``slot`` >= 0: its row of ``picks`` and ``taken``) and the draw
    takes it: its picked day of ``discount_days`` after issue (else the window's end), at most the window's end."""
    rows, paths = week.shape
    runs = len(run_week) > 0
    for r in range(rows):
        s, wnd = slot[r], window[r]
        for j in range(paths):
            earliest = _maximum(issue[r, j], 1.0)
            on_due = _maximum(due[r, j] + offsets[r, j], earliest)
            if runs:
                d = np.intp(_minimum(np.ceil(on_due), np.float64(beyond)))
                if before[d] >= earliest:
                    d += len(before)
                w = run_week[d]
            else:
                w = _week_of(on_due, weeks)
            if s >= 0:
                take = issue[r, j] + wnd >= 1 and draws[r, j] < take_share
                if take:
                    day = issue[r, j] + (discount_days[picks[s, j]] if len(discount_days) else wnd)
                    w = _week_of(_maximum(_minimum(day, issue[r, j] + wnd), earliest), weeks)
                taken[s, j] = take
            week[r, j] = w


@numba.njit(cache=True, nogil=True)
def _add_bills(sums, week, amount, slot, taken, factor):
    """``_add_weeks`` of bills' payments: less the discount (x ``factor`` of the bill's ``slot``) where it is taken."""
    rows, paths = week.shape
    block = np.zeros((paths, sums.shape[1]))
    for r in range(rows):
        s = slot[r]
        for j in range(paths):
            value = amount[r, j]
            if s >= 0:
                value *= factor[s] if taken[s, j] else 1.0
            block[j, week[r, j]] += value
    for j in range(paths):
        for k in range(sums.shape[1]):
            sums[j, k] += block[j, k]


def _pay_bills(sim: _Paths, component: str, model: CashModel, rows: int, days: Callable[[slice], tuple],
               amount: np.ndarray, pct: np.ndarray, window: np.ndarray, rng: np.random.Generator,
               at: pd.Timestamp, run: tuple[int, int, int]) -> None:
    """Pay bills as the company does: inside the discount window with its learned take-up, else
    around the due date as it usually pays (in its payment run, when it has one), never before
    tomorrow. ``days(part)`` gives a block of rows' issue and due days (rows x 1, broadcast over the
    paths, or rows x paths); amounts are per row, or rows x paths. Works a block of rows at a time,
    drawing what one rows x paths draw of each kind would."""
    paths, weeks = sim.paths, sim.weeks
    if not rows:
        return
    take_draws = _Uniforms(rng, rows, paths)
    slot = np.full(rows, -1)  # rows with a discount offer, the only ones that can take it: their picks are kept
    offered = np.flatnonzero(pct > 0)
    slot[offered] = np.arange(len(offered))
    choices = len(model.discount_days_)
    picks = np.empty((len(offered), paths), dtype=np.int32)
    if choices:
        for part in _blocks(rows, paths):
            pick = rng.integers(0, choices, (part.stop - part.start, paths))
            mine = slot[part] >= 0
            picks[slot[part][mine]] = pick[mine]
    offset_draws = _uniforms(model.due_offsets_, rng, rows, paths)
    if run[0] != cash.RUN_NONE:
        # The week of each day moved to the nearest run day (as cash.snap_to_runs moves it): the run
        # day after, or the one before where that is nearer and not too early. Days from
        # ``beyond`` on fall after the horizon either way.
        beyond = 7 * (weeks + 1) + 32
        after, before = cash.run_days(at, 0, beyond, run[0])
        row = run[1] if run[0] == cash.RUN_WEEKLY else min(max(run[2], 1), 31) - 1
        before = before[row]
        # day d's week: entry d when the run day after is taken, entry d + len(before) when the one before
        run_week = np.concatenate([_weeks_of_days(after[row], weeks), _weeks_of_days(before, weeks)]).astype(np.uint8)
    else:
        beyond, before, run_week = 0, np.zeros(0), np.zeros(0, dtype=np.uint8)

    week = np.empty((rows, paths), dtype=np.uint8)
    taken = np.zeros((len(offered), paths), dtype=bool)
    for part in _blocks(rows, paths):
        issue_day, due_day = days(part)
        # Around the due date: the learned offsets, conditioned on not being paid by as-of.
        floor = np.ceil(np.max(1 - due_day, axis=1))
        offsets = _draw(model.due_offsets_, floor.astype(float), offset_draws, part, paths)
        _bill_weeks(week[part], taken, np.broadcast_to(issue_day, offsets.shape),
                    np.broadcast_to(due_day, offsets.shape), offsets, run_week, before, beyond, weeks,
                    take_draws.rows(part), slot[part], window[part], picks, model.discount_days_,
                    model.take_share_)
    payable = np.broadcast_to(amount if amount.ndim == 2 else amount[:, None], week.shape)
    _add_bills(sim.sums[component], week, payable, slot, taken, 1 - pct[offered] / 100.0)


_PAIRWISE_BLOCK = 128  # numpy's PW_BLOCKSIZE: the most numbers its pairwise sum adds with eight running sums


@numba.njit(cache=True, nogil=True)
def _week_totals(week, amount, weeks):
    """For each week 1 to ``weeks``, the sum over the rows x paths ``week`` of each row's amount where its week is
    that week, else 0: ``(amount[:, None] * (week == k)).sum()`` to the last bit, by numpy's pairwise sum over
    the array in its order (``pairwise_sum`` in its loops: halves split at a multiple of eight down to blocks of
    at most 128, each added with eight running sums), its recursion kept on a stack here, all weeks at once."""
    paths = week.shape[1]
    flat = week.ravel()
    cost, value, lanes = np.empty(_PAIRWISE_BLOCK), np.empty(_PAIRWISE_BLOCK), np.empty(8)
    todo = np.empty((256, 2), dtype=np.int64)  # (start, n) to sum; n -1: add the last two sums
    sums = np.empty((weeks, 128))
    todo[0, 0], todo[0, 1] = 0, flat.size
    tasks, done = 1, 0
    while tasks:
        tasks -= 1
        start, n = todo[tasks, 0], todo[tasks, 1]
        if n < 0:
            done -= 1
            for k in range(weeks):
                sums[k, done - 1] = sums[k, done - 1] + sums[k, done]
            continue
        if n > _PAIRWISE_BLOCK:
            half = n // 2
            half -= half % 8
            todo[tasks, 0], todo[tasks, 1] = 0, -1
            todo[tasks + 1, 0], todo[tasks + 1, 1] = start + half, n - half
            todo[tasks + 2, 0], todo[tasks + 2, 1] = start, half  # the first half first
            tasks += 3
            continue
        row, col = divmod(start, paths)
        for i in range(n):
            cost[i] = amount[row]
            col += 1
            if col == paths:
                row, col = row + 1, 0
        for k in range(weeks):
            for i in range(n):
                value[i] = cost[i] * (1.0 if flat[start + i] == k + 1 else 0.0)
            if n < 8:
                total = 0.0
                for i in range(n):
                    total += value[i]
            else:
                lanes[:] = value[:8]
                i = 8
                while i < n - n % 8:
                    for lane in range(8):
                        lanes[lane] += value[i + lane]
                    i += 8
                total = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
                total += (lanes[4] + lanes[5]) + (lanes[6] + lanes[7])
                for j in range(i, n):
                    total += value[j]
            sums[k, done] = total
        done += 1
    out = np.empty(weeks)
    for k in range(weeks):
        out[k] = 0.0 + sums[k, 0]  # numpy's reduction starts from 0
    return out


def _payables(sim: _Paths, view: View, at: pd.Timestamp, model: CashModel, shocks: Shocks, paths: int,
              rng: np.random.Generator, day_of, series: pd.DataFrame) -> None:
    bills = cash.open_bills(view, at)
    if len(bills):
        issue, due = day_of(bills[Bill.ISSUE])[:, None], day_of(bills[Bill.DUE])[:, None]
        owed = ledger.to_base(bills[Bill.AMOUNT], bills[Bill.CURRENCY], at, view.get(Fx.TABLE), ledger.base_of(view))
        _pay_bills(sim, "ap_open", model, len(bills), lambda part: (issue[part], due[part]), owed.to_numpy(float),
                   bills[Bill.DISCOUNT_PCT].fillna(0).to_numpy(float),
                   bills[Bill.DISCOUNT_DAYS].fillna(0).to_numpy(float), rng, at, model.bill_run_)

    expected_bills = np.zeros(sim.weeks)
    pos = cash.open_purchase_orders(view, at)
    if len(pos):
        n = len(pos)
        delivered = day_of(pos[PO.DELIVERED])
        expected = day_of(pos[PO.EXPECTED])
        expected = np.where(np.isnan(expected), day_of(pos[PO.DATE]) + model.po_lead_, expected)
        known = ~np.isnan(delivered)
        slip_draws = _uniforms(model.delivery_slip_, rng, n, paths)
        lag_draws = _uniforms(model.bill_lag_, rng, n, paths)
        supplier = pos[PO.SUPPLIER]
        terms = pos[PO.TERMS].fillna(supplier.map(model.supplier_terms_)).fillna(model.terms_global_).to_numpy(float)
        pct = supplier.map(model.supplier_discount_[Bill.DISCOUNT_PCT]).fillna(0).to_numpy(float)
        window = supplier.map(model.supplier_discount_[Bill.DISCOUNT_DAYS]).fillna(0).to_numpy(float)
        amount = pos[PO.AMOUNT].to_numpy(float)
        bill_week = np.empty((n, paths), dtype=np.uint8)

        def po_bills(part: slice) -> tuple[np.ndarray, np.ndarray]:
            """Issue and due days of the bills of a block of open purchase orders, on every path."""
            shape, none = (part.stop - part.start, paths), np.full(part.stop - part.start, -np.inf)
            slip = _draw(model.delivery_slip_, none, slip_draws, part, paths) if slip_draws else np.zeros(shape)
            arrive = np.maximum(shocks.apply(Draw.DELIVERY_DAY, expected[part, None] + slip), 1)
            arrive = np.where(known[part, None], delivered[part, None], arrive)
            lag = _draw(model.bill_lag_, none, lag_draws, part, paths) if lag_draws else np.zeros(shape)
            issue = np.maximum(arrive + lag, 1)
            bill_week[part] = np.clip(np.ceil(issue / 7.0), 1, sim.weeks + 1)  # _weeks_of_days of finite days
            return issue, issue + terms[part, None]

        _pay_bills(sim, "ap_future", model, n, po_bills, amount, pct, window, rng, at, model.bill_run_)
        # Each week's bills summed over the whole orders x paths array (its order of summing sets the last bits).
        expected_bills = _week_totals(bill_week, amount, sim.weeks) / paths

    if model.billing_ is not None:
        billed = one_series(series, cash.BILLED)
        total = model.billing_.predict(billed, sim.weeks)[None, :] * model.billing_.multipliers(sim.weeks, paths, rng)
        unordered = np.maximum(total - expected_bills[None, :], 0.0)  # paths x weeks
        view_bills = view.get(Bill.TABLE)
        recent = view_bills[Bill.ISSUE] > at - pd.Timedelta(weeks=model.config.share_weeks)
        in_base = ledger.base_amounts(view, Bill.TABLE)[recent]  # at issue-date rates
        share = in_base.groupby(view_bills.loc[recent, Bill.SUPPLIER]).sum().sort_values(ascending=False)
        share = share.head(model.config.max_suppliers)
        if share.sum() > 0:
            share = share / share.sum()
            k = np.repeat(np.arange(1, sim.weeks + 1), len(share))
            supplier = pd.Series(np.tile(share.index.to_numpy(), sim.weeks))
            issue = (7 * (k - 1) + 4).astype(float)
            terms = supplier.map(model.supplier_terms_).fillna(model.terms_global_).to_numpy(float)
            pct = supplier.map(model.supplier_discount_[Bill.DISCOUNT_PCT]).fillna(0).to_numpy(float)
            window = supplier.map(model.supplier_discount_[Bill.DISCOUNT_DAYS]).fillna(0).to_numpy(float)
            amount = np.tile(share.to_numpy(), sim.weeks)[:, None] * unordered[:, k - 1].T
            due = issue + terms
            _pay_bills(sim, "ap_future", model, len(k), lambda part: (issue[part, None], due[part, None]), amount,
                       pct, window, rng, at, model.bill_run_)


def _bank_lines(sim: _Paths, model: CashModel, at: pd.Timestamp, weeks: int, paths: int,
                rng: np.random.Generator) -> None:
    lines = cash.project_lines(model.lines_, at, weeks)
    if lines.empty:
        return
    noise = 1 + rng.standard_normal((len(lines), paths)) * lines["amount_cv"].clip(upper=1.0).to_numpy()[:, None]
    amount = lines["amount"].to_numpy(float)[:, None] * noise
    week = np.broadcast_to(np.clip(lines["week"].to_numpy(int), 0, weeks + 1)[:, None], amount.shape)
    sim.add("other", week, amount)


def path_totals(sim: _Paths, opening: float) -> dict[str, np.ndarray]:
    """Per-path weekly totals (paths x weeks): inflow, outflow, net, balance, and supplier payments."""
    inflow = sim.weekly("ar_open") + sim.weekly("ar_future")
    payments = sim.weekly("ap_open") + sim.weekly("ap_future")
    outflow = payments - sim.weekly("other")
    net = inflow - outflow
    return {"inflow": inflow, "outflow": outflow, "net": net, "balance": opening + np.cumsum(net, axis=1),
            "payments": payments}
