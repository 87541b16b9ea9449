"""Scheduled publishing: at the set time the published ref moves to exactly the commit that
was scheduled, whatever main has become; cancelled or orphaned schedules publish nothing."""

from __future__ import annotations

import fcntl
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Server, git, new_token
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from cms.app import create_app
from cms.service import ContentService
from cms.service.runner import ADVISORY_KEY

WORKSHOP = "/api/v1/workshops/terrabytes-icml25"


@pytest.fixture
def fast(config: dict[str, Any]) -> Iterator[Flask]:
    app = create_app({**config, "RUNNER_INTERVAL": 0.2})
    yield app
    app.extensions["cms"].dispose()


def auth(app: Flask, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_token(app.extensions['cms'], role)[1]}"}


def set_location(client: FlaskClient, editor: dict[str, str], location: str) -> str:
    etag = client.get(WORKSHOP + "?ref=main", headers=editor).headers["ETag"]
    r = client.patch(WORKSHOP, json={"location": location}, headers={**editor, "If-Match": etag})
    assert r.status_code == 200
    return str(r.headers["X-Content-Revision"])


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def wait_for(client: FlaskClient, url: str, headers: dict[str, str], status: str) -> Any:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        client.get("/healthz")  # any request starts this process's runner
        row = client.get(url, headers=headers).get_json()
        if row["status"] == status:
            return row
        time.sleep(0.1)
    raise AssertionError(f"still {row['status']}: {row}")


def test_the_scheduled_commit_is_published_although_main_moved(fast: Flask) -> None:
    client, editor, admin = fast.test_client(), auth(fast, "editor"), auth(fast, "admin")
    repo = fast.extensions["cms"].store.path
    reviewed = set_location(client, editor, "Vancouver, Canada")
    r = client.post("/api/v1/publish/schedule", headers=admin, json={
        "at": in_seconds(1.5), "zone": "America/Vancouver", "reason": "Camera-ready",
    })  # fmt: skip
    assert r.status_code == 201, r.get_json()
    created = r.get_json()
    assert created["commit"] == reviewed and created["status"] == "pending"
    assert created["at_local"].endswith(("-07:00", "-08:00"))  # shown in the venue's zone
    later = set_location(client, editor, "Not reviewed yet")  # main moves on meanwhile
    done = wait_for(client, r.headers["Location"], admin, "done")
    published = git(repo, "rev-parse", "published").strip()
    assert done["result"] == published
    assert git(repo, "rev-parse", "published^{tree}") == git(
        repo, "rev-parse", f"{reviewed}^{{tree}}"
    )
    assert git(repo, "rev-parse", "published^2").strip() == reviewed != later
    message = git(repo, "log", "-1", "--format=%an%n%B", "published")
    assert "Camera-ready" in message and f"CMS-Schedule-Id: {created['id']}" in message
    assert client.get(WORKSHOP).get_json()["location"] == "Vancouver, Canada"


def test_cancelled_and_orphaned_schedules_publish_nothing(fast: Flask) -> None:
    client, editor, admin = fast.test_client(), auth(fast, "editor"), auth(fast, "admin")
    repo = fast.extensions["cms"].store.path
    seed = git(repo, "rev-parse", "main").strip()
    before = git(repo, "rev-parse", "published").strip()
    orphan = set_location(client, editor, "Withdrawn")
    cancelled = client.post("/api/v1/publish/schedule", headers=admin,
                            json={"at": in_seconds(1), "commit": orphan}).get_json()  # fmt: skip
    url = f"/api/v1/publish/schedule/{cancelled['id']}"
    assert client.delete(url, headers=editor).status_code == 403
    assert client.delete(url, headers=admin).get_json()["status"] == "cancelled"
    assert client.delete(url, headers=admin).status_code == 409
    failing = client.post("/api/v1/publish/schedule", headers=admin,
                          json={"at": in_seconds(1), "commit": orphan[:10]}).get_json()  # fmt: skip
    git(repo, "update-ref", "refs/heads/main", seed, orphan)  # the commit leaves main by hand
    row = wait_for(client, f"/api/v1/publish/schedule/{failing['id']}", admin, "failed")
    assert "not on main" in row["result"]
    time.sleep(1)
    assert client.get(url, headers=admin).get_json()["status"] == "cancelled"
    assert git(repo, "rev-parse", "published").strip() == before
    listed = client.get("/api/v1/publish/schedule", headers=auth(fast, "auditor")).get_json()
    assert {r["id"]: r["status"] for r in listed} == {
        cancelled["id"]: "cancelled",
        failing["id"]: "failed",
    }


def test_bad_schedules_are_refused(client: FlaskClient, tokens: dict[str, dict[str, str]]) -> None:
    admin = tokens["admin"]
    url = "/api/v1/publish/schedule"
    for body in ({}, {"at": "2030-01-01T09:00:00"}, {"at": in_seconds(60), "zone": "Mars/Olympus"},
                 {"at": "2020-01-01T00:00:00Z"}, {"at": in_seconds(60), "commit": "HEAD~1"}):  # fmt: skip
        r = client.post(url, json=body, headers=admin)
        assert r.status_code in (400, 422), (body, r.get_json())
    assert (
        client.post(url, json={"at": in_seconds(60), "commit": "0" * 40}, headers=admin).status_code
        == 404
    )
    assert (
        client.post(url, json={"at": in_seconds(60)}, headers=tokens["editor"]).status_code == 403
    )
    assert client.post(url, json={}).status_code == 401
    assert client.get(url + "/999", headers=admin).status_code == 404


def test_one_runner_at_a_time(config: dict[str, Any]) -> None:
    """While another process holds the runner lock, a due publication waits; then it runs."""
    app = create_app({**config, "RUNNER_INTERVAL": 0})  # rounds are run by hand here
    svc: ContentService = app.extensions["cms"]
    assert svc.runner is not None
    client, admin = app.test_client(), auth(app, "admin")
    set_location(client, auth(app, "editor"), "Vancouver, Canada")
    due = client.post("/api/v1/publish/schedule", headers=admin,
                      json={"at": in_seconds(0)}).get_json()  # fmt: skip
    url = f"/api/v1/publish/schedule/{due['id']}"
    try:
        if svc.accounts_engine.dialect.name == "postgresql":
            with svc.accounts_engine.connect() as other:
                other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_KEY})
                other.commit()
                assert svc.runner.run_once() == 0
                other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                other.commit()
        else:
            fd = os.open(svc.runner.lock_path, os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                assert svc.runner.run_once() == 0
            finally:
                os.close(fd)
        assert client.get(url, headers=admin).get_json()["status"] == "pending"
        assert svc.runner.run_once() == 1  # the lock is free: this process does it
        assert client.get(url, headers=admin).get_json()["status"] == "done"
    finally:
        svc.dispose()


@pytest.mark.slow
def test_a_schedule_survives_a_killed_server(
    config: dict[str, Any], instance: Path, db_url: str
) -> None:
    app = create_app(config)
    svc: ContentService = app.extensions["cms"]
    admin = {"Authorization": f"Bearer {new_token(svc, 'admin')[1]}"}
    editor = {"Authorization": f"Bearer {new_token(svc, 'editor')[1]}"}
    reviewed = set_location(app.test_client(), editor, "Vancouver, Canada")
    srv = Server(instance, db_url, workers=2, env={"CMS_RUNNER_INTERVAL": "0.2"})
    srv.start()
    try:
        r = requests.post(srv.url + "/api/v1/publish/schedule", headers=admin,
                          json={"at": in_seconds(3)}, timeout=10)  # fmt: skip
        assert r.status_code == 201
        srv.kill(signal.SIGKILL)  # the whole server, long before the time comes
        time.sleep(3.5)
        srv.start()  # and back: the runner finds it due
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            row = requests.get(srv.url + r.headers["Location"], headers=admin, timeout=10).json()
            if row["status"] != "pending":
                break
            time.sleep(0.2)
        assert row["status"] == "done", row
        assert git(svc.store.path, "rev-parse", "published^2").strip() == reviewed
    finally:
        srv.kill(signal.SIGTERM)
    svc.dispose()
