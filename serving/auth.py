"""The service's bearer token: with ``LIKVID_API_TOKEN`` set, every endpoint but the health checks needs
``Authorization: Bearer <token>``."""

from __future__ import annotations

import hmac
import os

from starlette.responses import JSONResponse

ENV_TOKEN = "LIKVID_API_TOKEN"
HEALTH_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
# The dashboard's page shells (no data; their data requests carry the token): serving.dashboard.PUBLIC_PATHS.
PUBLIC_PATHS = frozenset({"/dashboard", "/dashboard/chart.umd.min.js", "/dashboard/api"})


class BearerAuth:
    """ASGI middleware: with a token configured, every path but the health checks needs it.

    The token is ``token`` or else ``LIKVID_API_TOKEN``, read per request, so that it can be set or
    rotated without rebuilding the app; it is compared in constant time.
    """

    def __init__(self, app, token: str | None = None):
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        token = self.token if self.token is not None else os.environ.get(ENV_TOKEN)
        if not token or scope["type"] != "http" or scope["path"] in HEALTH_PATHS or scope["path"] in PUBLIC_PATHS:
            return await self.app(scope, receive, send)
        given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        if hmac.compare_digest(given, f"Bearer {token}".encode()):
            return await self.app(scope, receive, send)
        response = JSONResponse({"error": "missing or wrong token: send the header Authorization: Bearer <token>"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return await response(scope, receive, send)
