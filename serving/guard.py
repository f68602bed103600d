"""What stands between the network and the service's endpoints, behind the bearer token (``serving.auth``).

``Guard`` is ASGI middleware that, before an endpoint sees a request:

- reads the whole body, bounded: more than ``MAX_BODY_BYTES`` (a full batch of ``MAX_BATCH`` invoices and a
  margin) is a 413, a body that stops arriving for ``BODY_IDLE_SECONDS`` is a 408, a client that goes away
  while sending is one log line (and a 499 nobody reads, no traceback);
- refuses multipart and form bodies with a 415 (every endpoint takes JSON);
- lets at most ``HEAVY_IN_FLIGHT`` calls of each heavy endpoint (forecasts, worklists, big batches) run in a
  worker at once and answers more with a 503 and ``Retry-After``, so that cheap single-invoice calls are not
  queued behind them;
- counts requests and their durations by route template (``likvid_http_*``): a path that is not a route is
  counted as ``other``, so unknown paths cost nothing; ``GET /metrics`` exposes them (every worker's, from the
  service's own ``PROMETHEUS_MULTIPROC_DIR``).

``OneLineClientErrors`` turns BentoML's log of a refused request (a body that fails its pydantic model, with a
25-line traceback at ERROR) into one WARNING line naming the fields.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Mapping

from starlette.responses import JSONResponse, Response

from features.limits import MAX_BATCH

ROW_BYTES = 1024  # one request invoice with every field, generously (a typical one is about 250 bytes)
MAX_BODY_BYTES = MAX_BATCH * ROW_BYTES + (1 << 20)  # a full batch, and a megabyte for the rest
SMALL_BATCH_ROWS = 64  # a batch of up to this many rows is a cheap call; more is scored as a heavy one
SMALL_BODY_BYTES = SMALL_BATCH_ROWS * ROW_BYTES  # up to this a call counts as cheap; more makes a batch a heavy call
BODY_IDLE_SECONDS = 10.0  # a body that stops arriving for this long is a 408
HEADER_SECONDS = 10.0  # request headers not in this long after a connection is ready for them: a 408 (serving.protocol)
MAX_CONNECTIONS = 512  # open connections per API worker by default; a request beyond them is a 503 (serving.protocol)
HEAVY_IN_FLIGHT = 1  # calls of one heavy endpoint running at once in one worker
RETRY_AFTER_SECONDS = 2
METRICS_PATH = "/metrics"
OTHER_ROUTE = "other"  # the one label of every path that is not a route
BATCH_SUFFIX = " (batch)"  # the heavy key of a cheap endpoint's big bodies
REFUSED_MEDIA = ("multipart/", "application/x-www-form-urlencoded")
BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})  # methods whose requests come without a body (when they declare none)
DISCONNECTED = 499  # the status a request is counted under when its client went away (nginx's convention)

# BentoML's own HTTP metrics are off: they label by the raw path and run before the token is checked, so every
# random path would grow them; this module counts by route template behind the token instead. Tracing is
# off (BentoML's default, no exporter), but its middleware still made a span per request, and BentoML's request
# timer kept each one for the whole traffic timeout (4.5 kB a request, 20,000 requests: 90 MB); no URL is traced
# unless a BentoML configuration file sets an exporter and its own ``tracing.excluded_urls``.
UNTRACED = {"excluded_urls": ["."]}

logger = logging.getLogger("likvid.serving")


def route_of(path: str, routes: frozenset[str]) -> str:
    """The route template a path is counted under: itself when it is a route, else ``OTHER_ROUTE``."""
    return path if path in routes else OTHER_ROUTE


class Guard:
    """ASGI middleware: bounded bodies, JSON only, per-endpoint limits for heavy calls, metrics by route."""

    def __init__(self, app, routes: frozenset[str], heavy: frozenset[str], batch: frozenset[str] = frozenset()):
        self.app = app
        self.routes = routes | {METRICS_PATH}
        self.heavy = heavy  # routes whose every call is heavy
        self.batch = batch  # routes whose calls with a body over SMALL_BODY_BYTES are heavy
        self.in_flight: dict[str, int] = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        route, started, status = route_of(scope["path"], self.routes), time.perf_counter(), [DISCONNECTED]

        async def counted(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            if route == METRICS_PATH:
                return await _metrics_page(scope, receive, counted)
            await self._guarded(scope, receive, counted, route)
        finally:
            if route != METRICS_PATH:
                duration, total = _metrics()
                duration.labels(route, str(status[0])).observe(time.perf_counter() - started)
                total.labels(route, str(status[0])).inc()

    async def _guarded(self, scope, receive, send, route: str) -> None:
        if scope["method"] in BODILESS and not _header(scope, b"content-length") \
                and not _header(scope, b"transfer-encoding"):
            return await self.app(scope, receive, send)  # nothing to read or bound
        refused = _refused_media(scope)
        if refused:
            return await _refuse(scope, receive, send, 415, refused)
        declared = _header(scope, b"content-length")
        if declared and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            return await _refuse(scope, receive, send, 413, _too_large(declared))
        body, problem = await _read_body(receive)
        if problem == "disconnect":
            logger.info("client went away while sending %s %.200s", scope["method"], scope["path"])
            # An answer nobody reads (the server drops it), but one: BentoML's request timer waits for the first
            # message of every answer, and a request without one held the worker's shutdown for its 300 s.
            await JSONResponse({"error": "client closed the request"}, status_code=DISCONNECTED)(scope, receive, send)
            return None
        if problem == "timeout":
            return await _refuse(scope, receive, send, 408, f"the request body stopped arriving for "
                                 f"{BODY_IDLE_SECONDS:g} s; send it whole")
        if problem == "size":
            return await _refuse(scope, receive, send, 413, _too_large())
        key = route if route in self.heavy else (
            route + BATCH_SUFFIX if route in self.batch and len(body) > SMALL_BODY_BYTES else None)
        if key is not None and self.in_flight.get(key, 0) >= HEAVY_IN_FLIGHT:
            return await _refuse(scope, receive, send, 503, f"{key} is busy ({HEAVY_IN_FLIGHT} call at a time per "
                                 f"worker); retry in {RETRY_AFTER_SECONDS} s",
                                 headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        if key is None:
            return await self.app(scope, replay, send)
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        try:
            await self.app(scope, replay, send)
        finally:
            self.in_flight[key] -= 1


def _header(scope, name: bytes) -> str:
    return next((v for k, v in scope["headers"] if k == name), b"").decode("latin-1").strip()


def _refused_media(scope) -> str | None:
    """Why the request's content type is refused (every endpoint takes JSON), or ``None``."""
    media = _header(scope, b"content-type").split(";")[0].strip().lower()
    if scope["method"] == "POST" and media.startswith(REFUSED_MEDIA):
        return f"Content-Type {media} is not accepted: send a JSON body with Content-Type: application/json"
    return None


def _too_large(declared: str = "") -> str:
    size = f" ({declared} bytes)" if declared.isdigit() else ""
    return (f"the request body{size} is over the limit of {MAX_BODY_BYTES:,} bytes (a batch of {MAX_BATCH:,} "
            "invoices and a margin); send fewer invoices per request")


async def _read_body(receive) -> tuple[bytes, str | None]:
    """The whole request body, or what stopped it: ``"disconnect"``, ``"timeout"`` or ``"size"``."""
    chunks, size = [], 0
    while True:
        try:
            message = await asyncio.wait_for(receive(), BODY_IDLE_SECONDS)
        except TimeoutError:
            return b"", "timeout"
        if message["type"] == "http.disconnect":
            return b"", "disconnect"
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return b"", "size"
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), None


async def _refuse(scope, receive, send, status: int, message: str, headers: Mapping[str, str] | None = None):
    """A refusal with its reason, logged as one line."""
    logger.warning("%d on %s %.200s: %s", status, scope["method"], scope["path"], message)
    await JSONResponse({"error": message}, status_code=status, headers=dict(headers or {}))(scope, receive, send)


@functools.cache
def _metrics():
    """The request metrics, made once per process (in the multiprocess mode when the server set its folder)."""
    from prometheus_client import Counter, Histogram

    labels = ("route", "status")
    duration = Histogram("likvid_http_request_duration_seconds", "Request duration by route template", labels,
                         buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
    total = Counter("likvid_http_requests", "Requests by route template and status", labels)
    return duration, total


def _exposition() -> bytes:
    """Every worker's metrics in the Prometheus text format."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess

    _metrics()
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


async def _metrics_page(scope, receive, send) -> None:
    import anyio.to_thread
    from prometheus_client import CONTENT_TYPE_LATEST

    body = await anyio.to_thread.run_sync(_exposition)
    await Response(body, media_type=CONTENT_TYPE_LATEST)(scope, receive, send)


class OneLineClientErrors(logging.Filter):
    """BentoML logs a request body that fails its model with a traceback at ERROR; this makes it one WARNING
    line that names the fields (the client got a 400 saying the same)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from bentoml.exceptions import BentoMLException
        from pydantic import ValidationError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):
            reason = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:3])
            status = 400
        elif isinstance(exc, BentoMLException) and int(exc.error_code) < 500:
            status, reason = int(exc.error_code), str(exc)
        else:
            return True
        path, method = (record.args + ("", ""))[:2] if isinstance(record.args, tuple) else ("", "")
        record.msg, record.args = "%d on %s %.200s: %s", (status, method, path, reason[:500])
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


BENTOML_REQUEST_LOGGER = "bentoml._internal.server.http_app"  # where BentoML logs a request's exception


def install_log_filter() -> None:
    """``OneLineClientErrors`` on BentoML's request logger, once; and likvid's own lines at INFO (BentoML's
    server logging leaves other loggers at WARNING)."""
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    target = logging.getLogger(BENTOML_REQUEST_LOGGER)
    if not any(isinstance(f, OneLineClientErrors) for f in target.filters):
        target.addFilter(OneLineClientErrors())
