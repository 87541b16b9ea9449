"""Schemathesis fuzzes every operation of the spec against the app, with real tokens.

Any 5xx, any status, content type, header or body the spec does not document is a failure.
`make fuzz` runs the same test with a deeper budget (CMS_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from conftest import Server, new_token
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cms.app import create_app
from cms.service import ContentService

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
EXAMPLES = int(os.environ.get("CMS_FUZZ_EXAMPLES", "12"))


@pytest.fixture
def schema(app: Flask) -> Any:
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


# Operations every content type has in the very same shape (no body or query of the type's
# own): fuzzed in full on workshops, and lightly on the other types (`make fuzz` goes deep).
SAME_FOR_EVERY_TYPE = re.compile(
    r"^/api/v1/(?!workshops/)[a-z-]+/\{slug\}/(history|diff|blame|revert|publish)$"
)


def budget(operation: Any, examples: int) -> int:
    same = SAME_FOR_EVERY_TYPE.match(operation.path) or (
        operation.method.upper() == "DELETE" and not operation.path.startswith("/api/v1/workshops/")
    )
    return max(2, examples // 4) if same else examples


def fuzz(schema: Any, auths: list[dict[str, str]], examples: int) -> list[str]:
    """Every operation with positive and negative cases under every role; the failures."""
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    failures: list[str] = []
    for operation in operations:
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @settings(
            max_examples=budget(operation, examples),
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=cases, auth=st.sampled_from(auths))
        def run(case: Any, auth: dict[str, str]) -> None:
            headers = {
                k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"
            }
            case.headers = {**headers, **auth}
            case.call_and_validate(checks=CHECKS)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:3000])
    return failures


def test_fuzz_every_operation(
    schema: Any, tokens: dict[str, dict[str, str]], svc: ContentService
) -> None:
    auths = [tokens["editor"], tokens["admin"], tokens["auditor"], {}]
    failures = fuzz(schema, auths, EXAMPLES)
    assert not failures, "\n\n".join(failures)
    assert svc.check() == []


@pytest.mark.slow
def test_a_live_server_conforms_to_its_spec(
    config: dict[str, Any], instance: Path, db_url: str
) -> None:
    """The same checks over HTTP against `cms serve` (gunicorn, its own limits in front of
    the app), with the rate limits set high rather than switched off."""
    app = create_app(config)
    svc: ContentService = app.extensions["cms"]
    auths = [
        {"Authorization": f"Bearer {new_token(svc, role)[1]}"} for role in ("editor", "admin")
    ] + [{}]
    env = {"CMS_RATELIMIT_WRITES": "100000/minute", "CMS_RATELIMIT_AUTH_FAILURES": "100000/minute"}
    srv = Server(instance, db_url, workers=2, env=env)
    srv.start()
    try:
        too_long = requests.get(
            srv.url + "/api/v1/people?name=" + "x" * 9000, timeout=10
        )  # past gunicorn's request-line limit: still the API's JSON error
        assert too_long.status_code == 414
        assert too_long.headers["Content-Type"] == "application/json"
        assert too_long.json()["code"] == 414
        schema = schemathesis.openapi.from_url(srv.url + "/openapi.json")
        failures = fuzz(schema, auths, max(2, EXAMPLES // 4))
        assert not failures, "\n\n".join(failures)
    finally:
        srv.kill(signal.SIGTERM)
    assert svc.check() == []
    svc.dispose()
