"""Operations: rate limits, request ids, security headers, health."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cms.app import create_app


def test_rate_limits_answer_429_with_retry_after(config: dict[str, Any]) -> None:
    app: Flask = create_app(
        {**config, "RATELIMIT_AUTH_FAILURES": "3/minute", "RATELIMIT_WRITES": "2/minute"}
    )
    client = app.test_client()
    try:
        bad = {"Authorization": "Bearer cms_" + "x" * 43}
        statuses = [client.get("/api/v1/people", headers=bad).status_code for _ in range(5)]
        assert statuses == [401, 401, 401, 429, 429]
        limited = client.get("/api/v1/people", headers=bad)
        assert limited.get_json()["code"] == 429 and int(limited.headers["Retry-After"]) > 0
        # anonymous readers are not punished for someone else's bad tokens... from elsewhere
        assert (
            client.get("/api/v1/people", environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code
            == 200
        )
        editor = app.extensions["cms"]
        from conftest import new_token

        _, secret = new_token(editor, "editor")
        auth = {"Authorization": f"Bearer {secret}"}
        writes = [client.post("/api/v1/people", json={"name": f"P {n}"}, headers=auth,
                              environ_base={"REMOTE_ADDR": "10.0.0.7"}).status_code for n in range(3)]  # fmt: skip
        assert writes == [201, 201, 429]
        assert (
            client.get(
                "/api/v1/people?ref=main", headers=auth, environ_base={"REMOTE_ADDR": "10.0.0.7"}
            ).status_code
            == 200
        )
    finally:
        app.extensions["cms"].dispose()


REDIS_URL = os.environ.get("CMS_TEST_REDIS", "redis://127.0.0.1:6379/0")


def test_rate_limits_are_shared_through_redis(config: dict[str, Any]) -> None:
    """Two processes (two apps; in memory each would count alone) with one Redis count failed
    authentications together."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"Redis at {REDIS_URL} is unreachable under CI: {exc}")
        pytest.skip(f"Redis is not reachable at {REDIS_URL} (CI=true makes this fail)")
    shared = {
        **config,
        "RATELIMIT_STORAGE_URI": REDIS_URL,
        "RATELIMIT_KEY_PREFIX": f"cms-test-{uuid.uuid4().hex}",  # this test's counters only
        "RATELIMIT_AUTH_FAILURES": "4/minute",
    }
    first = create_app(shared)
    second = create_app(shared)
    bad = {"Authorization": "Bearer cms_" + "x" * 43}
    try:
        statuses = [
            app.test_client().get("/api/v1/people", headers=bad).status_code
            for app in (first, second, first, second, first, second)
        ]
        assert statuses == [401, 401, 401, 401, 429, 429]
        assert second.test_client().get("/api/v1/people").status_code == 200  # no token: free
    finally:
        for app in (first, second):
            app.extensions["cms"].dispose()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(f"{shared['RATELIMIT_KEY_PREFIX']}*"))
        if keys:
            client.delete(*keys)


def test_request_ids_and_security_headers(client: FlaskClient) -> None:
    r = client.get("/api/v1/people", headers={"X-Request-Id": "trace-42"})
    assert r.headers["X-Request-Id"] == "trace-42"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    generated = client.get("/api/v1/people", headers={"X-Request-Id": "bad id\u00e9"}).headers[
        "X-Request-Id"
    ]
    assert generated != "bad id\u00e9" and len(generated) == 32
    assert "Retry-After" not in r.headers
    page = client.get("/")
    assert "Content-Security-Policy" in page.headers and page.headers["X-Frame-Options"] == "DENY"


def test_health(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz").get_json()
    assert ready["status"] == "ok"
    assert ready["checks"]["index"]["behind"] == {
        "refs/heads/main": False,
        "refs/heads/published": False,
    }
