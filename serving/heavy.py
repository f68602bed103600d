"""The service's heavy answers (forecasts, worklists, KPIs, customer rows, big score batches), and the BentoML
service that computes them in processes of their own.

Why a service of their own: a heavy answer is seconds of CPU in Python, and holds the GIL of the process it runs
in. Run in an API worker, every single-invoice call that worker took meanwhile waited behind it (single-invoice
p99 2.8 s while heavy endpoints ran, against a 150 ms target). ``Likvid`` declares ``LikvidHeavy`` as a
dependency (``bentoml.depends``), so ``likvid serve`` starts it as processes of its own (``--heavy-workers``,
``LIKVID_HEAVY_WORKERS``, default 1), reached over a Unix socket: the API workers check a request, pass it on and
wait without holding their GIL, and cheap calls keep their latency. Started any other way (a ``TestClient`` on
``Likvid.to_asgi()``, ``Likvid()`` made by hand) there is no second process, and the same ``Answers`` run
in-process over the API's own state.

What goes to an answer and back is plain data (dates, numbers, strings, their lists and dicts; the shocks and
request invoices as the dicts of their fields), the same in both cases. Every answer comes back as ``("rows",
value)``, as ``("json", body)`` when the API names the endpoint it answers (the endpoint's JSON body, made here:
``encode``), or, for a request the data cannot answer (an owner nobody has, an unknown saved forecast),
``("problem", field, message)``, which the API turns into a 400 naming the field: a heavy call never answers 500
for a request the data refuses.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import bentoml
import pandas as pd
from bentoml.exceptions import BentoMLException

from features.invoices import invoice_features
from serving.guard import UNTRACED, install_log_filter
from serving.schemas import InvoiceIn, invoice_frame, records
from serving.state import (
    Settings,
    State,
    heavy_workers,
    load_state,
    moved,
    registry_champions,
    reload_seconds,
    watch_registry,
)
from training.scoring import SCORE_COLUMNS, score_features

logger = logging.getLogger("likvid.serving")

HEAVY_NAME = "likvid-heavy"
TIMEOUT_SECONDS = 300  # as the API's own traffic timeout
# The heavy processes' niceness: when cheap calls and heavy answers want the same cores, the cheap calls get them
# first (a forecast takes seconds either way; a single invoice should take milliseconds). The lowest there is: in
# the soak beside two heavy callers (100 new invoices a second), 19 gave 0 errors in two runs of 180 s (p99 267 and
# 229 ms), 10 once 0 errors (p99 176 ms) and once 797 backlogged (p99 2.2 s); heavy calls were answered as often.
HEAVY_NICE = 19


def lower_priority(nice: int) -> None:
    """This process at ``nice``: its threads from here on, and its autogroup where Linux groups tasks by session
    (``sched_autogroup``). Each BentoML worker runs in a session of its own, and between groups only the group's
    niceness counts, so with the threads' niceness alone the heavy process kept an equal share of the cores beside
    each API worker (in the soak it had what the API workers and the load generator left, by their CPU figures about
    0.6 of the 2 cores, while single invoices went unanswered)."""
    os.nice(nice)
    if os.getsid(0) != os.getpid():  # the group is a session's: lowered only when it is this process's own
        return
    try:
        Path("/proc/self/autogroup").write_text(f"{nice}\n")
    except OSError:  # no autogroups (another kernel, or it is off): the threads' niceness is what counts
        pass


class Problem(ValueError):
    """A request the data cannot answer: the field at fault and why (a 400)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


class Answers:
    """The heavy answers over one ``State``, with what they remember: the customer rows at the served as-of, and
    variance and bridge answers per request (saved forecasts are immutable, so are their answers)."""

    def __init__(self, state: State):
        self.state = state
        self._lock = threading.Lock()
        self._customers: pd.DataFrame | None = None
        self._variance: dict[tuple, list[dict]] = {}

    def customer_rows(self, at: pd.Timestamp) -> pd.DataFrame:
        """Every customer's risk row at ``at`` (``likvid customers``), computed once for the served as-of."""
        from training import customers

        s = self.state
        if at != s.at:
            return customers.customer_risk(s.company, at, models=s.models.customers, policy=s.policy)
        with self._lock:  # the first callers wait for one computation rather than each making their own
            if self._customers is None:
                self._customers = customers.customer_risk(s.company, at, models=s.models.customers, policy=s.policy)
            return self._customers

    def score(self, invoices: list[dict]) -> list[dict]:
        """Score rows of checked request invoices (``InvoiceIn`` fields)."""
        return score_rows(self.state, [InvoiceIn.model_validate(inv) for inv in invoices])

    def forecast_cash(self, at: pd.Timestamp, weeks: int, shocks: dict) -> list[dict]:
        from training.cash.forecast import FORECAST_COLUMNS, forecast
        from training.cash.shocks import Shocks

        s = self.state
        frame = forecast(s.company, at, weeks=weeks, shocks=Shocks(**shocks), models=s.models.forecast,
                         policy=s.policy)
        return records(frame, FORECAST_COLUMNS)

    def kpis(self, at: pd.Timestamp) -> list[dict]:
        from features.working_capital import KPI_COLUMNS, kpis

        s = self.state
        return records(kpis(s.company, at, policy=s.policy), KPI_COLUMNS)

    def collection_worklist(self, at: pd.Timestamp, top_n: int, owner: str | None, by_customer: bool) -> list[dict]:
        from training.collections import CALL_COLUMNS, WORKLIST_COLUMNS, worklist

        s = self.state
        try:
            frame = worklist(s.company, at, top_n, s.policy, models=(s.models.late, s.models.timing), owner=owner,
                             by_customer=by_customer)
        except ValueError as e:
            if owner is None:
                raise
            raise Problem("owner", str(e)) from None  # an owner nobody has, or no owners at all
        return records(frame, CALL_COLUMNS if by_customer else WORKLIST_COLUMNS)

    def discounts(self, at: pd.Timestamp) -> list[dict]:
        from training.cash.forecast import forecast as cash_forecast
        from training.collections import DISCOUNT_COLUMNS, CollectionsConfig, discounts

        s = self.state
        # The forecast the command asks for, from the cash-forecast models loaded at start-up.
        forecast = cash_forecast(s.company, at, weeks=CollectionsConfig().forecast_weeks,
                                 models=s.models.forecast, policy=s.policy)
        return records(discounts(s.company, at, s.policy, forecast=forecast), DISCOUNT_COLUMNS)

    def forecast_variance(self, at: pd.Timestamp, version: str, against: str | None) -> list[dict]:
        try:
            return self._variance_rows("bridge" if against else "variance", version, against, at)
        except (LookupError, ValueError) as e:
            raise Problem("against" if against and str(against) in str(e) else "version", str(e)) from None

    def _variance_rows(self, kind: str, version: str, against: str | None,
                       at: pd.Timestamp | None = None) -> list[dict]:
        """Variance or bridge rows, remembered per request."""
        from training.cash import versions as saved
        from training.cash.bridge import BRIDGE_COLUMNS, bridge
        from training.cash.variance import VARIANCE_COLUMNS, variance

        s = self.state
        at = s.at if at is None else at
        key = (kind, version, against, at)
        if key not in self._variance:
            first = saved.load_version(s.company_key, version)
            if kind == "bridge":
                later = saved.load_version(s.company_key, against)
                rows = bridge(s.company, first, later, saved.load_models(s.company_key, first.models),
                              saved.load_models(s.company_key, later.models))
                self._variance[key] = records(rows, BRIDGE_COLUMNS)
            else:
                self._variance[key] = records(variance(s.company, first, at), VARIANCE_COLUMNS)
        return self._variance[key]

    def provision(self, at: pd.Timestamp) -> list[dict]:
        from training.decisions.provision import PROVISION_COLUMNS
        from training.decisions.provision import provision as expected_loss

        s = self.state
        return records(expected_loss(s.company, at, s.policy, timing=s.models.timing), PROVISION_COLUMNS)

    def liquidity(self, at: pd.Timestamp, weeks: int, shocks: dict) -> dict:
        from training.cash.liquidity import OPTION_COLUMNS, WEEK_COLUMNS, plan_liquidity, summary
        from training.cash.shocks import Shocks

        s = self.state
        _, plan = plan_liquidity(s.company, at, weeks, Shocks(**shocks), models=s.models.forecast,
                                 late=s.models.late, policy=s.policy)
        return {"weeks": records(plan.weeks, WEEK_COLUMNS), "options": records(plan.options, OPTION_COLUMNS),
                "opening_known": plan.opening_known, "notes": list(plan.notes), "summary": summary(plan, s.policy)}

    def dashboard_data(self) -> dict:
        from serving.dashboard import dashboard_data
        from training.cash.versions import list_versions

        return dashboard_data(self.state, list_versions, lambda kind, v, w: self._variance_rows(kind, v, w))


def score_rows(s: State, invoices: list[InvoiceIn]) -> list[dict]:
    """Score rows of checked request invoices: the one feature path, as ``likvid score``, against the history
    built once at start-up."""
    x = invoice_features(s.company, s.at, s.cfg, invoices=invoice_frame(invoices), known=s.known)
    return records(score_features(x, s.models.late, s.models.timing, s.policy), SCORE_COLUMNS)


ANSWERS = frozenset(name for name in vars(Answers) if not name.startswith("_"))  # what ``run`` may call
# Threads of a heavy process: one for each answer, so that a forecast does not wait for a worklist (they share
# the process's CPU, as they did in an API worker), and two to spare.
HEAVY_THREADS = len(ANSWERS) + 2


def ask(call: Callable[[], tuple], name: str) -> tuple | None:
    """``call()``, a heavy answer from the heavy service's processes, or ``None`` when they cannot give it (they
    are restarting, failed on it, or the connection broke; said in one log line). A call that went out on a
    kept-alive connection the heavy service closed as it was reused (its idle connections are closed after a
    while) is asked once more: the answers only read, so asking again is safe. Before, that answered 500, in
    three of nine 180 s soaks once (of 70 to 290 heavy calls each)."""
    for attempt in (1, 2):
        try:
            return call()
        except aiohttp.ServerDisconnectedError as e:
            if attempt == 2:
                logger.warning("the heavy service did not answer %s: %s", name, e)
        except (BentoMLException, aiohttp.ClientError, TimeoutError) as e:
            logger.warning("the heavy service did not answer %s: %s", name, str(e)[:200])
            return None
    return None


def run(answers: Answers, name: str, kwargs: dict[str, Any], endpoint: str | None = None) -> tuple:
    """``("rows", answer)``; with ``endpoint`` (an API method's name), ``("json", body)``: the answer checked
    against that endpoint's declared output and encoded (``encode``); or ``("problem", field, message)`` for a
    request the data cannot answer."""
    if name not in ANSWERS:
        raise ValueError(f"no heavy answer {name!r}")
    try:
        value = getattr(answers, name)(**kwargs)
    except Problem as e:
        return "problem", e.field, e.message
    return ("rows", value) if endpoint is None else ("json", encode(endpoint, value))


# Each API endpoint's declared output model (BentoML's ``output_spec``), by the endpoint's method name: filled
# by ``serving.service`` as it defines them (every process of ``likvid serve``, this one's too, imports it).
OUTPUTS: dict[str, Any] = {}


def encode(endpoint: str, value: Any) -> bytes:
    """The JSON body the API's ``endpoint`` answers for ``value``, as BentoML makes it from a returned value (its
    declared output model validates the value, then dumps it). Made here, the heavy process spends its own, lowly
    placed CPU on a big answer's rows and the API worker only passes the bytes on: checking and writing a few
    thousand provision rows in an API worker held its event loop, and every single-invoice call it had open."""
    return OUTPUTS[endpoint].model_validate(value).model_dump_json().encode()


@bentoml.service(name=HEAVY_NAME, workers=heavy_workers(), threads=HEAVY_THREADS, metrics={"enabled": False},
                 tracing=UNTRACED, traffic={"timeout": TIMEOUT_SECONDS})
class LikvidHeavy:
    """The heavy answers, in processes of their own (reached by ``Likvid`` only, over a Unix socket)."""

    def __init__(self) -> None:
        self._answers: Answers | None = None
        if _in_own_process():  # in one process, the API hands its own state over (``attach``) instead
            lower_priority(HEAVY_NICE)
            install_log_filter()
            self._answers = Answers(load_state(Settings.from_env()))
            self.reload_every = reload_seconds() if Settings.from_env().source == "registry" else None
            if self.reload_every:
                self._refused: dict[str, str] | None = None  # champions that failed to load: tried when they change
                threading.Thread(target=watch_registry, args=(weakref.ref(self), self.reload_every,
                                                             "reload_if_promoted"),
                                 name="likvid-heavy-reload", daemon=True).start()

    def attach(self, state: State) -> Answers:
        """The answers over ``state`` (in-process use: the API's state, kept while it is the same)."""
        if self._answers is None or self._answers.state is not state:
            self._answers = Answers(state)
        return self._answers

    @bentoml.api
    def answer(self, name: str, params: dict[str, Any], endpoint: str | None = None) -> tuple:
        """One heavy answer (``run``) over the champions and data this process loaded."""
        return run(self._answers, name, params, endpoint)

    def reload_if_promoted(self) -> None:
        """As the API workers do: serve a newly promoted champion once it is in the registry."""
        s, now = self._answers.state, None
        try:
            now = registry_champions(s.company_key)
            if not moved(s, now) or now == self._refused:
                return
            fresh = Answers(load_state(Settings.from_env()))
        except Exception as e:  # noqa: BLE001 - a failed check or load keeps the served models, and says so once
            logger.warning("the heavy service could not load a newly promoted champion, still serving the "
                           "loaded ones: %s", e)
            self._refused = now
            return
        self._answers = fresh
        logger.info("the heavy service now serves the newly promoted champions")


def _in_own_process() -> bool:
    """Whether this process is a worker of the heavy service itself (started by ``likvid serve``)."""
    from bentoml._internal.context import server_context

    return server_context.service_name == HEAVY_NAME
