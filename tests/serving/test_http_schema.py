"""The OpenAPI schema, fuzzed with schemathesis over every likvid endpoint: no input, in the schema's range or
just outside it, causes a 5xx."""

from __future__ import annotations

import pytest

from tests.serving.test_service import client, registry  # noqa: F401 - the served app, as a pytest fixture

ENDPOINTS = {"/score_invoices", "/customer_risk", "/forecast_cash", "/kpis", "/collection_worklist", "/discounts",
             "/model_info"}


def test_no_request_from_the_openapi_schema_or_just_outside_it_causes_a_5xx(client, monkeypatch):  # noqa: F811
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.generation import GenerationMode

    from serving import auth

    monkeypatch.delenv(auth.ENV_TOKEN, raising=False)
    schema = schemathesis.openapi.from_asgi("/docs.json", client.app)
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    seen, runs = set(), []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path not in ENDPOINTS:  # BentoML's own probes and metrics, left as they are
            continue
        seen.add(operation.path)

        @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def no_5xx(case):
            response = case.call()
            runs.append((case.path, response.status_code))
            assert response.status_code < 500, (case.path, case.body, response.text[:300])

        no_5xx()
    assert seen == ENDPOINTS
    assert len(runs) >= 5 * len(ENDPOINTS)
    assert {code for _, code in runs if code >= 400} <= {400, 404, 405, 415, 422}
    print(f"schemathesis: {len(runs)} requests over {len(seen)} endpoints, "
          f"{sum(code < 400 for _, code in runs)} answered, {sum(code >= 400 for _, code in runs)} refused")


if __name__ == "__main__":
    pytest.main([__file__, "-q", "-s"])
