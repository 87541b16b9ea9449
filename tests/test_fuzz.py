"""Schemathesis fuzzes every operation of the spec against the app, with real tokens.

Any 5xx, any status, content type, header or body the spec does not document is a failure.
`make fuzz` runs the same test with a deeper budget (CMS_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
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


def test_fuzz_every_operation(
    schema: Any, tokens: dict[str, dict[str, str]], svc: ContentService
) -> None:
    auths = st.sampled_from([tokens["editor"], tokens["admin"], tokens["auditor"], {}])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    failures: list[str] = []
    for operation in operations:
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=cases, auth=auths)
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
    assert not failures, "\n\n".join(failures)
    assert svc.check() == []
