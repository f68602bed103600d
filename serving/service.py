"""The likvid HTTP service on BentoML 1.4 (CONTRACT.md section 3): the service class and its endpoints.

It answers with the same rows as the command line, from what ``serving.state`` loaded at start-up (settings from
the environment, the four champions, the data, the policy, the served history), and from the score rows of the
served data's open invoices, made once then (``_scored_open``). ``serving.auth`` guards it with
a bearer token, then ``serving.guard`` bounds bodies, limits heavy endpoints and counts requests by route;
``serving.bento`` builds the deployable bento. Every request body is a strict pydantic model
(``serving.schemas``): an unknown key, a wrong type or a value out of its limit is a 400 naming the field.

It runs ``LIKVID_WORKERS`` worker processes (default: one per core), each with ``THREADS`` threads for the
endpoints, so that a cheap call finds a free thread while heavy ones run. The heavy answers themselves
(forecasts, worklists, KPIs, customer rows, big score batches) are computed by ``serving.heavy``'s service, in
processes of their own, so that they never hold an API worker's GIL. With ``LIKVID_RELOAD_ON_PROMOTE`` each
process checks the registry that often and swaps in a newly promoted champion without stopping.
"""

from __future__ import annotations

import gc
import json
import logging
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable
from datetime import date
from importlib.metadata import version

import bentoml
import pandas as pd
from fastapi import FastAPI
from pydantic import ConfigDict, Field, ValidationError
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response

from features.asof import as_of as view_as_of
from features.contract import Cust, Inv
from features.limits import TOP_N, WEEKS
from serving.auth import ENV_TOKEN, HEALTH_PATHS, BearerAuth
from serving.combine import Combined
from serving.guard import METRICS_PATH, RETRY_AFTER_SECONDS, SMALL_BATCH_ROWS, UNTRACED, Guard, install_log_filter
from serving.heavy import OUTPUTS as heavy_outputs
from serving.heavy import LikvidHeavy, score_rows
from serving.heavy import ask as ask_heavy
from serving.heavy import run as run_heavy
from serving.protocol import install as install_protocol
from serving.schemas import (
    AsOf,
    ByCustomer,
    CallRow,
    CreditAmount,
    CreditCheckRow,
    CustomerId,
    CustomerIds,
    CustomerRow,
    DiscountRow,
    ForecastRow,
    InvoiceIn,
    Invoices,
    KpiRow,
    LiquidityAnswer,
    ModelInfo,
    OptionalVersionId,
    Owner,
    ProvisionRow,
    ScoreRow,
    ShocksIn,
    TopN,
    VarianceRow,
    VersionId,
    Weeks,
    WorklistRow,
    bad_request,
    records,
)
from serving.state import (
    ENV_AS_OF,
    ENV_CONFIG,
    ENV_DATA,
    Settings,
    StartupError,
    State,
    load_state,
    max_connections,
    moved,
    registry_champions,
    reload_seconds,
    watch_registry,
    workers,
)

__all__ = ["ENV_AS_OF", "ENV_CONFIG", "ENV_DATA", "ENV_TOKEN", "EXAMPLE_INPUT", "Likvid", "StartupError",
           "curl_examples", "serve"]

logger = logging.getLogger("likvid.serving")

# The endpoints whose calls take seconds (a forecast, a worklist over every open invoice): ``serving.guard``
# runs one call of each at a time per worker and answers more with a 503 and Retry-After. BATCHED endpoints are
# cheap for a few rows and heavy for a big batch.
HEAVY = frozenset({"/forecast_cash", "/collection_worklist", "/discounts", "/forecast_variance", "/provision",
                   "/liquidity", "/kpis", "/dashboard/data"})
BATCHED = frozenset({"/score_invoices", "/customer_risk"})
# Threads per worker for the endpoints: one for each heavy call that may run, and two for cheap ones.
THREADS = len(HEAVY) + len(BATCHED) + 2
# Requests in flight in the whole service (a half-sent body counts until its 408); more get BentoML's 429.
MAX_IN_FLIGHT = 256

TITLE = "likvid"
DESCRIPTION = (
    "Working-capital intelligence over a company's own ledgers: the risk that each open invoice is paid late, "
    "with the three facts behind it; each customer's segment, credit grade and limit; the collection worklist; "
    "early-payment discounts worth taking; working-capital figures (DSO, DPO, DIO, CCC, aging); and a weekly "
    "Monte Carlo cash forecast with what-if shocks.\n\n"
    "Every answer is computed from the champion models and the history known at the service's as-of date "
    "(`GET /model_info` names both). The rows have the same columns as the `likvid` command's output files. "
    "A request with an unknown field, a wrong type or a value outside its documented range gets a 400 naming "
    f"the field. When `{ENV_TOKEN}` is set, every endpoint but /livez, /readyz and /healthz needs "
    "`Authorization: Bearer <token>`."
)

EXAMPLE_INPUT = {
    "invoices": [{
        "invoice_id": "NEW-0001", "customer_id": "C0001", "issue_date": "2025-06-02", "due_date": "2025-07-02",
        "amount": 12500.0, "currency": "EUR", "delivery": "electronic", "order_id": "ORD-0001",
    }],
}


class ServedModelInfo(ModelInfo):
    """``/model_info``: what the service loaded, and what the registry holds now."""

    registry_champions: dict[str, str] | None = Field(
        description="Each family's champion version in the registry now (null when the models come from a "
                    "bento); when one differs from the served version, `champion_moved` is true.",
        examples=[{"likvid-late-payment": "3"}])
    champion_moved: bool = Field(description="The registry has promoted a champion other than the one served: "
                                             "restart the service, or start it with --reload-on-promote.")
    reload_on_promote: float | None = Field(description="Seconds between the service's checks for a newly "
                                                        "promoted champion (null: it never reloads).",
                                            examples=[30])


def _endpoint(route: str) -> Callable:
    """``bentoml.api`` whose body model (one field per parameter, as BentoML infers it) refuses unknown top-level
    keys and loose types: BentoML's own inferred model ignores them, so ``{"week": 20}`` would mean 13 weeks."""
    def wrap(func: Callable) -> bentoml.api:
        inferred = bentoml.IODescriptor.from_input(func, skip_self=True)
        body = type("Input", (inferred,), {"__module__": __name__,
                                           "model_config": ConfigDict(extra="forbid", strict=True)})
        api = bentoml.api(route=route, input_spec=body)(func)
        # BentoML finds a root model's media type from its whole JSON schema on every answer (``IOMixin.mime_type``,
        # about 2 ms of a single invoice's 14 ms in a worker under load, by py-spy): found once, here, instead.
        api.output_spec.media_type = api.output_spec.mime_type()
        return api
    return wrap


def _first_problems(values: list, bad: set, loc: str, field_: str | None, msg: str) -> list[tuple[list, str]]:
    """The first 20 items in ``bad``, each located as ``[loc, index, field]``."""
    return [([loc, i] + ([field_] if field_ else []), msg.format(v)) for i, v in enumerate(values) if v in bad][:20]


app = FastAPI(title=TITLE, version=version("likvid"), description=DESCRIPTION)




@bentoml.service(name="likvid", workers=workers(), threads=THREADS, metrics={"enabled": False}, tracing=UNTRACED,
                 traffic={"timeout": 300, "max_concurrency": MAX_IN_FLIGHT})
@bentoml.asgi_app(app, path="/")
class Likvid:
    """Late-payment risk with reasons, customer risk and cash forecasts, from the champion models."""

    heavy = bentoml.depends(LikvidHeavy)

    def __init__(self) -> None:
        install_log_filter()
        max_connections()  # a bad LIKVID_MAX_CONNECTIONS stops the start-up (serving.protocol reads it)
        self.state = load_state(Settings.from_env())
        self._scored = (self.state, _scored_open(self.state))  # the served data's open invoices' score rows
        _freeze_loaded()
        self._lock = threading.Lock()
        # The cheap calls' own pandas work (scoring, customer rows, credit checks), one at a time in a worker:
        # threads taking turns on the GIL through pandas' many short steps cost about twice the CPU (in process,
        # 12 threads scoring single new invoices: 23.6 ms of CPU a call, 10.6 ms one at a time), and at the rate
        # where that matters the cores are the limit. The invoices of the scoring calls that wait for it meanwhile
        # are scored next as one batch (``serving.combine``); a request's checks, the heavy answers and their
        # waits are outside it.
        self._own_work = threading.Lock()
        self._score = Combined(score_rows, SMALL_BATCH_ROWS, self._own_work)
        self._customers: tuple[State, pd.DataFrame] | None = None  # the served as-of's customer rows
        self.reload_every = reload_seconds() if _from_registry() else None
        self._refused: dict[str, str] | None = None  # champions that failed to load: tried again when they change
        if self.reload_every:
            threading.Thread(target=watch_registry, args=(weakref.ref(self), self.reload_every, "_reload_if_promoted"),
                             name="likvid-reload", daemon=True).start()

    def _customer_rows(self, s: State, at: pd.Timestamp) -> pd.DataFrame:
        """Every customer's risk row at ``at`` (``likvid customers``), from the heavy answers; those at the served
        as-of are fetched once and kept."""
        if at != s.at:
            return self._heavy("customer_rows", at=at)
        with self._lock:  # the first callers wait for one computation rather than each making their own
            if self._customers is None or self._customers[0] is not s:
                self._customers = (s, self._heavy("customer_rows", at=at))
            return self._customers[1]

    def _heavy(self, name: str, endpoint: str | None = None, **kwargs):
        """A heavy answer (``serving.heavy``): from the heavy service's processes when ``likvid serve`` runs one,
        else in this process over the served state; a request the data cannot answer is the 400 naming why. With
        ``endpoint`` (the API method answering), the answer is that endpoint's JSON body, made where the answer is
        (``serving.heavy.encode``), and passed on as it is."""
        from _bentoml_impl.client import RemoteProxy

        heavy = self.heavy
        if isinstance(heavy, RemoteProxy):
            answer = ask_heavy(lambda: heavy.answer(name=name, params=kwargs, endpoint=endpoint), name)
            if answer is None:
                return JSONResponse({"error": "the service's heavy answers are unavailable for a moment; try again"},
                                    status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        else:
            answer = run_heavy(heavy.attach(self.state), name, kwargs, endpoint)
        if answer[0] == "problem":
            return bad_request(([answer[1]], answer[2]))
        if answer[0] == "json":
            return Response(answer[1], media_type=heavy_outputs[endpoint].media_type)
        return answer[1]

    def _reload_if_promoted(self) -> None:
        """When the registry's champions moved past the served ones, load them and the served history anew, then
        swap them in; requests keep the old ones until the swap. A failure keeps them, and says so once."""
        s, now = self.state, None
        try:
            now = registry_champions(s.company_key)
            if not moved(s, now) or now == self._refused:
                return
            fresh = load_state(Settings.from_env())
            scored = (fresh, _scored_open(fresh))
        except Exception as e:  # noqa: BLE001 - a failed check or load keeps the served models, and says so
            logger.warning("checking the registry for a newly promoted champion failed, still serving %s: %s",
                           _versions(s), e)
            self._refused = now
            return
        self._scored, self.state = scored, fresh
        logger.info("a newly promoted champion is now served: %s (was %s)", _versions(fresh), _versions(s))

    @_endpoint("/score_invoices")
    def score_invoices(self, invoices: Invoices) -> list[ScoreRow]:
        """Score invoices against their customers' history known to the service, with three reasons each."""
        s = self.state
        # An invoice open in the served data, asked about as the data holds it, has its row from start-up; any
        # other request (a new invoice, a changed field, a duplicate id) is checked and scored below.
        known = self._scored[1] if self._scored[0] is s else {}  # {} for a request that began before a reload
        rows = [known.get(_invoice_key(inv)) for inv in invoices]
        if None not in rows and len({inv.invoice_id for inv in invoices}) == len(invoices):
            return rows
        problems = _problems(s, invoices)
        if problems:
            return bad_request(*problems)
        if len(invoices) <= SMALL_BATCH_ROWS:  # scored with the other cheap calls waiting meanwhile
            return self._score(s, invoices)
        # a big batch is a heavy call: scored away from the cheap ones
        return self._heavy("score", "score_invoices", invoices=[inv.model_dump() for inv in invoices])

    @_endpoint("/customer_risk")
    def customer_risk(self, customer_ids: CustomerIds) -> list[CustomerRow]:
        """Segment, credit grade, limit and warnings of each customer, the rows of ``likvid customers``."""
        s = self.state
        problems = _first_problems(customer_ids, set(customer_ids) - s.customers, "customer_ids", None,
                                   "unknown customer id {!r}: not in the served data's customers")
        if problems:
            return bad_request(*problems)
        frame = self._customer_rows(s, s.at)
        with self._own_work:
            frame = frame.set_index(Cust.ID, drop=False).loc[list(dict.fromkeys(customer_ids))]
            return records(frame, list(frame.columns))

    @_endpoint("/forecast_cash")
    def forecast_cash(self, as_of: AsOf = None, weeks: Weeks = WEEKS.default,
                      shocks: ShocksIn = ShocksIn()) -> list[ForecastRow]:
        """Weekly cash forecast (p10/p50/p90 inflows, outflows, balance) from as-of, under optional shocks."""
        at, problem = _forecast_request(as_of, shocks, self.state)
        if problem is not None:
            return problem
        return self._heavy("forecast_cash", "forecast_cash", at=at, weeks=weeks, shocks=shocks.model_dump())

    @_endpoint("/kpis")
    def kpis(self, as_of: AsOf = None) -> list[KpiRow]:
        """Working-capital figures (DSO, DPO, DIO, CCC, aging, overdue and bad-debt shares) at as-of."""
        at, problem = _request_as_of(as_of, self.state)
        return bad_request((["as_of"], problem)) if problem else self._heavy("kpis", "kpis", at=at)

    @_endpoint("/collection_worklist")
    def collection_worklist(self, top_n: TopN = TOP_N.default, as_of: AsOf = None, owner: Owner = None,
                            by_customer: ByCustomer = False) -> list[WorklistRow] | list[CallRow]:
        """The open invoices to act on first, with the dunning step and why: the rows of ``likvid worklist``; only
        ``owner``'s customers when given; with ``by_customer``, one row per call (``likvid worklist
        --by-customer``)."""
        at, problem = _request_as_of(as_of, self.state)
        if problem:
            return bad_request((["as_of"], problem))
        return self._heavy("collection_worklist", "collection_worklist", at=at, top_n=top_n, owner=owner,
                           by_customer=by_customer)

    @_endpoint("/discounts")
    def discounts(self, as_of: AsOf = None) -> list[DiscountRow]:
        """Each open bill with early-payment terms: take the discount or not, and what it earns (``likvid
        discounts``)."""
        at, problem = _request_as_of(as_of, self.state)
        return bad_request((["as_of"], problem)) if problem else self._heavy("discounts", "discounts", at=at)

    @_endpoint("/forecast_variance")
    def forecast_variance(self, version: VersionId, against: OptionalVersionId = None,
                          as_of: AsOf = None) -> list[VarianceRow]:
        """A saved forecast against what happened up to as-of (one row a passed week), or with ``against`` (a later
        saved forecast) the bridge: how much each cause moved each week's p50 balance (``likvid variance``)."""
        at, problem = _request_as_of(as_of, self.state)
        if problem:
            return bad_request((["as_of"], problem))
        return self._heavy("forecast_variance", "forecast_variance", at=at, version=version, against=against)

    @app.get("/dashboard", response_class=HTMLResponse, summary="The treasury and credit dashboard (a web page)")
    def dashboard(self) -> HTMLResponse:
        """The page (no data in it; it asks for the token and fetches ``/dashboard/data``)."""
        from serving.dashboard import PAGE

        return HTMLResponse(PAGE)

    @app.get("/dashboard/chart.umd.min.js", include_in_schema=False)
    def dashboard_chart_js(self) -> FileResponse:
        from serving.dashboard import CHART_JS, STATIC

        return FileResponse(STATIC / CHART_JS, media_type="text/javascript")

    @app.get("/dashboard/api", response_class=HTMLResponse, summary="The API docs page, usable with the token")
    def api_docs_page(self) -> HTMLResponse:
        from serving.dashboard import API_PAGE

        return HTMLResponse(API_PAGE)

    @app.get("/dashboard/data", summary="Everything the dashboard shows, at the service's as-of")
    def dashboard_data(self) -> dict:
        """The forecast and its components, forecast against actual, the bridge, aging, KPIs over time, the top of
        the worklist and the customers at risk."""
        return self._heavy("dashboard_data")

    @_endpoint("/credit_check")
    def credit_check(self, customer_id: CustomerId, amount: CreditAmount, as_of: AsOf = None) -> list[CreditCheckRow]:
        """Approve, refer (to whom, by the approval tiers) or block a new order or credit: ``likvid credit-check``."""
        from training.decisions.credit_check import CREDIT_CHECK_COLUMNS
        from training.decisions.credit_check import credit_check as check

        s = self.state
        at, problem = _request_as_of(as_of, s)
        if problem:
            return bad_request((["as_of"], problem))
        if customer_id not in s.customers:
            return bad_request((["customer_id"], f"unknown customer id {customer_id!r}: not in the served data's "
                                                 "customers"))
        rows = self._customer_rows(s, at)
        with self._own_work:
            try:
                frame = check(s.company, customer_id, amount, at, rows, s.policy)
            except ValueError as e:  # a customer not yet known at that as-of
                return bad_request((["customer_id"], str(e)))
            return records(frame, CREDIT_CHECK_COLUMNS)

    @_endpoint("/provision")
    def provision(self, as_of: AsOf = None) -> list[ProvisionRow]:
        """Expected credit loss on open receivables: the loss-rate matrix by aging bucket and the model's expected
        loss per invoice, side by side (``likvid provision``)."""
        at, problem = _request_as_of(as_of, self.state)
        return bad_request((["as_of"], problem)) if problem else self._heavy("provision", "provision", at=at)

    @app.get("/model_info", response_model=ServedModelInfo, summary="The champion models and the served data")
    def model_info(self) -> ServedModelInfo:
        """The company, the four champions (registry versions, training as-of, headline holdout metrics) and the
        data and as-of the service answers from; and whether the registry has promoted newer champions since."""
        s = self.state
        endpoints = [api.route for api in Likvid.apis.values()] + ["/model_info"]
        now = registry_champions(s.company_key) if _from_registry() else None
        return ServedModelInfo(company=s.company_key, service_as_of=f"{s.at:%Y-%m-%d}", data=s.data,
                               customers=len(s.customers), open_invoices=s.open_invoices,
                               endpoints=sorted(endpoints), models=list(s.models.cards), registry_champions=now,
                               champion_moved=bool(now) and moved(s, now), reload_on_promote=self.reload_every)

    @_endpoint("/liquidity")
    def liquidity(self, as_of: AsOf = None, weeks: Weeks = WEEKS.default,
                  shocks: ShocksIn = ShocksIn()) -> LiquidityAnswer:
        """Surplus and gaps of the cash forecast: each week's headroom above floor plus buffer and what can be placed,
        and what closes a gap below the floor, cheapest first (``likvid liquidity``)."""
        at, problem = _forecast_request(as_of, shocks, self.state)
        if problem is not None:
            return problem
        return self._heavy("liquidity", "liquidity", at=at, weeks=weeks, shocks=shocks.model_dump())


heavy_outputs.update({name: api.output_spec for name, api in Likvid.apis.items()})  # what ``heavy.encode`` writes


# At most this many open invoices of the served data are scored at start-up (the latest issued first): a
# lookup table of about 2 kB an invoice per worker; the rest are scored when asked, as any new invoice is.
KNOWN_SCORES_MAX = 20_000


def _invoice_key(inv: InvoiceIn) -> tuple:
    return tuple(getattr(inv, name) for name in InvoiceIn.model_fields)


def _problems(s: State, invoices: list[InvoiceIn]) -> list[tuple[list, str]]:
    """What is wrong with request invoices against the served data, each problem located (20 of a kind at most)."""
    ids = [inv.invoice_id for inv in invoices]
    dupes = {i for i in ids if ids.count(i) > 1} if len(set(ids)) < len(ids) else set()
    customers = [inv.customer_id for inv in invoices]
    problems = _first_problems(customers, set(customers) - s.customers, "invoices", "customer_id",
                               "unknown customer id {!r}: not in the served data's customers")
    problems += _first_problems(ids, dupes, "invoices", "invoice_id", "invoice_id {!r} appears more than once")
    problems += [(["invoices", i, "issue_date"], f"issue_date {inv.issue_date} is after the service's as-of "
                  f"date {s.at:%Y-%m-%d}, the history it scores against")
                 for i, inv in enumerate(invoices) if pd.Timestamp(inv.issue_date) > s.at][:20]
    # Money is scored in the base currency at the rate known at the service's as-of (features.ledger).
    rates = s.rates([inv.currency for inv in invoices])
    problems += [(["invoices", i, "currency"], f"no fx_rates rate for currency {inv.currency!r} on or before "
                  f"the service's as-of date {s.at:%Y-%m-%d}, so the amount cannot be given in the base currency "
                  f"{s.known.base or 'of the data'}")
                 for i, inv in enumerate(invoices) if pd.isna(rates[i])][:20]
    return problems


def _scored_open(s: State) -> dict[tuple, dict]:
    """Score rows of the invoices open in the served data at the served as-of (the latest ``KNOWN_SCORES_MAX``
    issued), keyed by the request invoice that names one exactly as the data holds it. They are scored in one
    batch through the request path, which gives a batch the very rows one invoice at a time gets, so that asking
    about a known open invoice is a lookup."""
    inv = view_as_of(s.company, s.at)[Inv.TABLE]
    inv = inv[inv[Inv.PAID].isna()].sort_values(Inv.ISSUE, ascending=False, kind="stable").head(KNOWN_SCORES_MAX)
    invoices = []
    for row in inv.to_dict("records"):
        fields = {name: row[name] for name in InvoiceIn.model_fields if name in row and pd.notna(row[name])}
        for name in (Inv.ISSUE, Inv.DUE, Inv.DISPUTE):
            if name in fields:
                fields[name] = fields[name].date()
        try:
            invoices.append(InvoiceIn.model_validate({**fields, Inv.AMOUNT: float(row[Inv.AMOUNT])}))
        except ValidationError:
            continue  # a row no request could send as it is: nothing to look up
    bad = {loc[1] for loc, _ in _problems(s, invoices)} if invoices else set()
    while bad:  # a row a request could not send either (20 problems of a kind are named at a time)
        invoices = [inv for i, inv in enumerate(invoices) if i not in bad]
        bad = {loc[1] for loc, _ in _problems(s, invoices)} if invoices else set()
    try:
        rows = score_rows(s, invoices) if invoices else []
    except Exception as e:  # noqa: BLE001 - without the table every request is scored when asked, as before
        logger.warning("scoring the served data's open invoices at start-up failed, each is scored when asked: %s", e)
        return {}
    return {_invoice_key(inv): row for inv, row in zip(invoices, rows)}

def _freeze_loaded() -> None:
    """Move what start-up loaded out of the garbage collector's sight (``gc.freeze``): it lives as long as the
    worker, and with millions of objects in the oldest generation the collector seldom runs a full pass, so each
    request's short-lived cycles piled up (a worker grew by 35-47 MB per 10,000 refused requests without this)."""
    gc.collect()
    gc.freeze()


def _from_registry() -> bool:
    """Whether the service's models come from the MLflow registry (not from a bento's model store)."""
    return Settings.from_env().source == "registry"


def _versions(s: State) -> str:
    return ", ".join(f"{c.name} v{c.version}" for c in s.models.cards)


def _forecast_request(as_of: date | None, shocks: ShocksIn, s: State) -> tuple[pd.Timestamp, JSONResponse | None]:
    """A forecast request's as-of, and the 400 that names the field at fault (an as-of out of range, shocks that
    ``Shocks`` refuses) or ``None``."""
    from training.cash.shocks import Shocks

    at, problem = _request_as_of(as_of, s)
    if problem:
        return at, bad_request((["as_of"], problem))
    try:
        Shocks(**shocks.model_dump())
    except ValueError as e:
        return at, bad_request((["shocks", str(e).split(" ")[0]], str(e)))
    return at, None


def _request_as_of(value: date | None, s: State) -> tuple[pd.Timestamp, str | None]:
    """The as-of of a request (the one rule for every endpoint): the service's when not given, else a date from
    the data's first invoice to the service's as-of (it knows nothing later); the second item is the problem."""
    if value is None:
        return s.at, None
    at = pd.Timestamp(value)
    first = s.company[Inv.TABLE][Inv.ISSUE].min()
    if at < first:
        return s.at, f"as_of {at:%Y-%m-%d} is before the data's first invoice ({first:%Y-%m-%d})"
    if at > s.at:
        return s.at, f"as_of {at:%Y-%m-%d} is after the service's as-of {s.at:%Y-%m-%d}; it knows nothing later"
    return at, None


class OpenApiInfo:
    """ASGI middleware: the OpenAPI document (``/docs.json``) names likvid, its version and what it does, where
    BentoML would put its own boilerplate (it takes them from a bento's tag and README)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/docs.json":
            return await self.app(scope, receive, send)
        start, chunks = {}, []

        async def keep(message):
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, keep)
        body = b"".join(chunks)
        if start.get("status") == 200:
            spec = json.loads(body)
            spec["info"] = {"title": TITLE, "version": version("likvid"), "description": DESCRIPTION}
            body = json.dumps(spec).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def example_invoice(state: State) -> dict:
    """A real invoice open at the service's as-of, as a request row (the latest issued, for the demo), with its
    currency, so that the call scores it as the data holds it."""
    inv = view_as_of(state.company, state.at)[Inv.TABLE]
    row = inv[inv[Inv.PAID].isna()].sort_values([Inv.ISSUE, Inv.ID], ascending=False, kind="stable").iloc[0]
    out = {c: row[c] for c in (Inv.ID, Inv.CUSTOMER, Inv.ISSUE, Inv.DUE, Inv.AMOUNT, Inv.CURRENCY, Inv.DELIVERY,
                               Inv.ORDER) if pd.notna(row[c])}
    for c in (Inv.ISSUE, Inv.DUE):
        out[c] = f"{out[c]:%Y-%m-%d}"
    out[Inv.AMOUNT] = float(out[Inv.AMOUNT])
    return {k: str(v) if not isinstance(v, float) else v for k, v in out.items()}


def curl_examples(base_url: str, state: State) -> list[str]:
    """Ready-made calls against a running service; they send the token when one is set."""
    auth = f'-H "Authorization: Bearer ${ENV_TOKEN}"'
    post = f"curl -s {auth} -H 'Content-Type: application/json' {base_url}"
    invoice = example_invoice(state)
    return [f"curl -s {auth} {base_url}/model_info",
            f"{post}/score_invoices -d '{json.dumps({'invoices': [invoice]})}'",
            f"{post}/kpis -d '{{}}'",
            f"{post}/customer_risk -d '{json.dumps({'customer_ids': [invoice[Inv.CUSTOMER]]})}'",
            f"{post}/forecast_cash -d '" + json.dumps(
                {"weeks": WEEKS.default, "shocks": {"customer_delay_days": 10, "sales_change_pct": -10}}) + "'",
            f"{post}/collection_worklist -d '{{\"top_n\": 10}}'",
            f"{post}/discounts -d '{{}}'"]


def serve(host: str, port: int) -> None:
    """Run the BentoML server for ``Likvid`` (blocks until stopped); settings come from the environment.

    Its workers write their metrics to a folder of this service's own, so that a second service on the machine
    neither wipes nor mixes with them (BentoML's default is one folder under BENTOML_HOME, emptied at each
    start); the folder goes when the server stops."""
    from bentoml._internal.configuration.containers import BentoMLContainer  # the setting BentoML's tests set

    folder = tempfile.mkdtemp(prefix="likvid-metrics-")
    BentoMLContainer.prometheus_multiproc_dir.set(folder)
    try:
        Likvid.serve_http(host=host, port=port)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _route_paths(routes) -> set[str]:
    """The paths of a FastAPI app's routes, its included routers' too (BentoML includes the class's pages)."""
    paths = set()
    for route in routes:
        router = getattr(route, "original_router", None)
        paths |= _route_paths(router.routes) if router is not None else {getattr(route, "path", "")}
    return paths - {""}


# Every route the service answers, for the metrics' labels: its endpoints, its pages and BentoML's own.
ROUTES = frozenset({api.route for api in Likvid.apis.values()} | _route_paths(app.routes)
                   | HEALTH_PATHS | {"/", "/docs.json", "/schema.json", METRICS_PATH})
# Below ASGI: a deadline for request headers and a connection limit (serving.protocol), in every worker that
# imports the service, before uvicorn loads its configuration.
install_protocol()
# The first added runs first: the token, before anything that keeps state.
Likvid.add_asgi_middleware(BearerAuth)
Likvid.add_asgi_middleware(Guard, routes=ROUTES, heavy=HEAVY, batch=BATCHED)
Likvid.add_asgi_middleware(OpenApiInfo)
