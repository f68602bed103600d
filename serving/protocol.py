"""The HTTP connection below ASGI: a deadline for a request's headers and a limit on a worker's connections.

``serving.guard`` sees a request only once its headers are in, so neither can live there. Uvicorn has no timeout
for headers (its ``timeout_keep_alive`` starts only after an answer, and any byte cancels it), and BentoML 1.4
builds each worker's ``uvicorn.Config`` itself (``_bentoml_impl.worker.service``) without ``limit_concurrency``
or a protocol class, and has no service setting for either. So ``install()``, run when a worker imports the
service (before uvicorn loads its configuration), makes ``HeadersInTime`` uvicorn's ``auto`` HTTP protocol:
uvicorn's own h11 protocol, plus

- a deadline of ``HEADER_SECONDS`` from a connection's start, or from the end of its previous answer, to the end
  of the next request's headers. Past it a half-sent request gets a 408 and the connection is closed; one that
  sent nothing is closed, as uvicorn closes an idle keep-alive connection. (h11 cannot answer a request it has
  not read, so the 408 is written as bytes.) A body that stops arriving is ``serving.guard``'s 408;
- in the API's workers, uvicorn's own ``limit_concurrency``: a request on a connection beyond a worker's
  ``LIKVID_MAX_CONNECTIONS`` open ones (half-sent and idle keep-alive ones count) gets a 503 with ``Retry-After``
  (``serving.guard.RETRY_AFTER_SECONDS``, as a busy heavy endpoint's) and a JSON error, and the connection is
  closed. Uvicorn answers that case from ``h11_impl.service_unavailable`` (a bare text 503); ``install()`` puts
  ``connections_full`` in its place.
"""

from __future__ import annotations

import functools
import json
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from serving.guard import HEADER_SECONDS, RETRY_AFTER_SECONDS
from serving.state import max_connections

ENTRY_SERVICE = "entry_service"  # BentoML's name for the service that takes the clients' requests (the API)

logger = logging.getLogger("likvid.serving")


def _answer(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n")
    return head.encode("ascii") + body


TIMED_OUT = _answer(408, "Request Timeout", f"the request headers did not arrive within {HEADER_SECONDS:g} s")


async def connections_full(scope, receive, send) -> None:
    """Uvicorn's answer past ``limit_concurrency``, with ``Retry-After`` and the error in JSON like every other."""
    body = json.dumps({"error": f"this worker holds its limit of {max_connections()} connections; "
                                f"retry in {RETRY_AFTER_SECONDS} s"}).encode()
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"retry-after", str(RETRY_AFTER_SECONDS).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class HeadersInTime(H11Protocol):
    """Uvicorn's h11 protocol with a deadline for each request's headers and, in the API, a connection limit."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if (limit := _api_limit()) is not None:
            self.limit_concurrency = limit
        self._deadline = None  # the timer of the request being waited for
        self._waiting_since = None  # the request cycle in progress when the wait began
        self._partial = False  # bytes of the awaited request arrived

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._deadline is not None:
            self._partial = True
        super().data_received(data)
        self._check()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # a pipelined request may start in it
        if not self.transport.is_closing() and self._deadline is None and self.cycle.response_complete:
            self._arm()

    def handle_websocket_upgrade(self, event) -> None:
        self._disarm()  # the connection is the WebSocket protocol's from here
        super().handle_websocket_upgrade(event)

    def _check(self) -> None:
        """Disarm once the awaited request's headers are in: uvicorn then starts a new request cycle."""
        if self._deadline is not None and self.cycle is not self._waiting_since:
            self._disarm()

    def _arm(self) -> None:
        self._waiting_since, self._partial = self.cycle, False
        self._deadline = self.loop.call_later(HEADER_SECONDS, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        # A 408 only to a request that began and has no answer yet; a silent connection is just closed.
        if self._partial and self.conn.our_state is h11.IDLE:
            logger.info("408: the request headers from %s did not arrive within %g s; connection closed",
                        (self.client or ("?",))[0], HEADER_SECONDS)
            self.transport.write(TIMED_OUT)
        self.transport.close()


@functools.cache
def _api_limit() -> int | None:
    """Uvicorn's ``limit_concurrency`` in a worker of the API (it answers 503 when it holds that many connections
    counting the new one); ``None`` in the heavy answers' service, whose only client is the API."""
    from bentoml._internal.context import server_context

    return max_connections() + 1 if server_context.service_type == ENTRY_SERVICE else None


def install() -> None:
    """``HeadersInTime`` as uvicorn's ``auto`` HTTP protocol in this process (the one BentoML's workers use), and
    ``connections_full`` as its answer past the connection limit."""
    from uvicorn import config
    from uvicorn.protocols.http import h11_impl

    config.HTTP_PROTOCOLS["auto"] = f"{__name__}:{HeadersInTime.__name__}"
    h11_impl.service_unavailable = connections_full
