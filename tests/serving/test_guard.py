"""``serving.guard``: bounded bodies, JSON only, heavy endpoints' limits, metrics by route, one-line refusals."""

from __future__ import annotations

import asyncio
import logging
import secrets

import pytest

from serving import auth, guard
from tests.serving.test_service import TOKEN, client, registry  # noqa: F401 - the served app, as pytest fixtures

ROUTES = frozenset({"/score_invoices", "/forecast_cash", "/kpis"})


class Endpoint:
    """An ASGI app that records what it received and answers 200; ``hold`` keeps it busy until released."""

    def __init__(self, hold: asyncio.Event | None = None):
        self.bodies, self.hold = [], hold

    async def __call__(self, scope, receive, send):
        message = await receive()
        self.bodies.append(message["body"])
        if self.hold is not None:
            await self.hold.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _scope(path="/score_invoices", method="POST", headers=()):
    return {"type": "http", "path": path, "method": method,
            "headers": [(k.encode(), v.encode()) for k, v in headers]}


async def _call(app, scope, chunks=(b"{}",), then_wait=False):
    """Send ``chunks`` as the body (then block, or disconnect when ``then_wait`` is "disconnect"); the answer's
    status, headers and body."""
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1 or bool(then_wait)}
                for i, c in enumerate(chunks)]
    sent = []

    async def receive():
        if messages:
            return messages.pop(0)
        if then_wait == "disconnect":
            return {"type": "http.disconnect"}
        await asyncio.sleep(3600)

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], dict(sent[0]["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


def _guard(endpoint, **kw):
    return guard.Guard(endpoint, routes=ROUTES, heavy=frozenset({"/forecast_cash"}),
                       batch=frozenset({"/score_invoices"}), **kw)


def test_a_body_over_the_limit_is_a_413_declared_or_not_and_the_endpoint_never_sees_it():
    endpoint = Endpoint()
    app = _guard(endpoint)
    too_big = str(guard.MAX_BODY_BYTES + 1)
    status, _, body = asyncio.run(_call(app, _scope(headers=[("content-length", too_big)])))
    assert status == 413 and b"10,000 invoices" in body
    chunk = b" " * (1 << 20)
    status, _, _ = asyncio.run(_call(app, _scope(), chunks=[chunk] * (guard.MAX_BODY_BYTES // len(chunk) + 2)))
    assert status == 413 and endpoint.bodies == []
    assert guard.MAX_BODY_BYTES < 20_000_000  # the 20 MB body of the issue is refused


def test_a_full_batch_fits_in_the_limit():
    row = ('{"invoice_id": "INV-000000000", "customer_id": "C000000", "issue_date": "2025-06-02", "due_date": '
           '"2025-07-02", "amount": 1234567.89, "currency": "EUR", "delivery": "electronic", "order_id": '
           '"ORD-000000000", "dispute_date": "2025-06-20"}')
    assert len(row) * guard.MAX_BATCH + 20 < guard.MAX_BODY_BYTES


@pytest.mark.parametrize("media", ["multipart/form-data", "multipart/form-data; boundary=x",
                                   "application/x-www-form-urlencoded"])
def test_multipart_and_form_bodies_are_a_415_naming_json(media):
    endpoint = Endpoint()
    status, _, body = asyncio.run(_call(_guard(endpoint), _scope(headers=[("content-type", media)])))
    assert status == 415 and b"application/json" in body and endpoint.bodies == []


def test_a_body_that_stops_arriving_is_a_408(monkeypatch):
    monkeypatch.setattr(guard, "BODY_IDLE_SECONDS", 0.05)
    status, _, body = asyncio.run(_call(_guard(Endpoint()), _scope(), chunks=[b'{"invoices": ['], then_wait=True))
    assert status == 408 and b"stopped arriving" in body


def test_a_client_that_goes_away_is_one_line_and_the_endpoint_never_runs(caplog):
    endpoint = Endpoint()
    with caplog.at_level(logging.INFO, logger=guard.logger.name):
        answer = asyncio.run(_call(_guard(endpoint), _scope(), chunks=[b'{"inv'], then_wait="disconnect"))
    assert answer[0] == guard.DISCONNECTED  # an answer the server drops, so that nothing waits for one
    assert endpoint.bodies == []
    lines = [r for r in caplog.records if r.name == guard.logger.name]
    assert len(lines) == 1 and "went away" in lines[0].getMessage() and lines[0].exc_info is None


def test_the_endpoint_gets_the_whole_body_at_once():
    endpoint = Endpoint()
    status, _, _ = asyncio.run(_call(_guard(endpoint), _scope(), chunks=[b'{"invoi', b'ces": []}']))
    assert status == 200 and endpoint.bodies == [b'{"invoices": []}']


def test_a_busy_heavy_endpoint_is_a_503_with_retry_after_and_cheap_calls_still_pass():
    async def scenario():
        hold = asyncio.Event()
        app = _guard(Endpoint(hold))
        first = asyncio.create_task(_call(app, _scope("/forecast_cash")))
        await asyncio.sleep(0.01)
        busy = await _call(app, _scope("/forecast_cash"))
        big = asyncio.create_task(_call(app, _scope(), chunks=[b" " * (guard.SMALL_BODY_BYTES + 1)]))
        await asyncio.sleep(0.01)
        big_busy = await _call(app, _scope(), chunks=[b" " * (guard.SMALL_BODY_BYTES + 1)])
        cheap = asyncio.create_task(_call(app, _scope(), chunks=[b'{"invoices": []}']))
        await asyncio.sleep(0.01)
        hold.set()
        return await first, busy, await big, big_busy, await cheap

    first, busy, big, big_busy, cheap = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert first[0] == 200 and cheap[0] == 200 and big[0] == 200
    for refused in (busy, big_busy):
        assert refused[0] == 503 and refused[1][b"retry-after"] == str(guard.RETRY_AFTER_SECONDS).encode()


def test_unknown_paths_are_one_route():
    assert guard.route_of("/kpis", ROUTES) == "/kpis"
    assert guard.route_of("/kpis/x", ROUTES) == guard.route_of("/" + secrets.token_hex(8), ROUTES) == "other"


def test_a_refused_body_is_logged_as_one_warning_line_without_a_traceback():
    from pydantic import BaseModel, ValidationError

    class Weeks(BaseModel):
        weeks: int

    try:
        Weeks.model_validate_json(b'{"weeks": "many"}')
    except ValidationError:
        record = logging.getLogger(guard.BENTOML_REQUEST_LOGGER).makeRecord(
            guard.BENTOML_REQUEST_LOGGER, logging.ERROR, __file__, 1, "Exception on %s [%s]",
            ("/forecast_cash", "POST"), __import__("sys").exc_info())
    assert guard.OneLineClientErrors().filter(record)
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage().startswith("400 on POST /forecast_cash: weeks:") and "\n" not in record.getMessage()


# ---- through the served app ----

def test_metrics_do_not_grow_with_unknown_paths_nor_count_unauthenticated_calls(client, monkeypatch):  # noqa: F811
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    monkeypatch.setenv(auth.ENV_TOKEN, TOKEN)
    client.get("/" + secrets.token_hex(8), headers=bearer)  # the "other" label exists from here on
    before = client.get("/metrics", headers=bearer).text
    paths = ["/" + secrets.token_hex(8) for _ in range(40)]
    for path in paths:
        assert client.get(path, headers=bearer).status_code == 404
        assert client.get(path).status_code == 401
    after = client.get("/metrics", headers=bearer).text
    assert len(after.splitlines()) == len(before.splitlines())
    assert not any(path in after for path in paths)
    assert 'route="other",status="404"' in after and 'status="401"' not in after


def test_refusals_through_the_app_are_4xx_with_one_line_and_no_traceback(client, caplog):  # noqa: F811
    guard.install_log_filter()
    with caplog.at_level(logging.INFO):
        big = client.post("/score_invoices", content=b" " * 20_000_000, headers={"Content-Type": "application/json"})
        multipart = client.post("/score_invoices", content=b"x", headers={"Content-Type": "multipart/form-data"})
        weeks = client.post("/forecast_cash", json={"weeks": 99})
        bad_json = client.post("/kpis", content=b"{not json", headers={"Content-Type": "application/json"})
    assert (big.status_code, multipart.status_code, weeks.status_code, bad_json.status_code) == (413, 415, 400, 400)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    lines = [r.getMessage() for r in caplog.records if r.getMessage()[:3] in {"413", "415", "400"}]
    assert len(lines) == 4 and all("\n" not in line for line in lines)
