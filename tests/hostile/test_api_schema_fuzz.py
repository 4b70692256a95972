"""Schema-driven fuzz of the API (notifications, categories, webhook endpoints) from its own
OpenAPI description (issues 12, 17):
schemathesis generates valid and invalid requests for every operation; any 5xx, an
undocumented status or content type, a body that does not match the documented schema, or
invalid data accepted fails the test.

The operations are driven from inside one test (schemathesis' pytest plugin does not run on
pytest 9): each mode of each operation is its own hypothesis run with a bounded number of
examples, against the app under test through WSGI.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)


@schemathesis.check
def rejects_negative_data(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' negative-data check, also taking 413 as a refusal: an invalid body
    generated past the 64 KB limit is refused for its size before its fields are read."""
    if response.status_code == 413:
        return None
    return negative_data_rejection(ctx, response, case)  # type: ignore[no-any-return]


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    rejects_negative_data,
]
EXAMPLES = 120


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda mode: mode.value)
def test_api_answers_as_documented(
    app: Flask, api_key: str, tenants: dict[str, Any], mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == {
        "/notifications",
        "/notifications/{id}",
        "/categories",
        "/webhook-endpoints",
        "/webhook-endpoints/{id}",
        "/webhook-endpoints/{id}/rotate-secret",
        "/webhook-endpoints/{id}/test",
    }
    calls = 0
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(headers={"Authorization": f"Bearer {api_key}"}, checks=CHECKS)

        run()
    assert calls >= len(operations)
