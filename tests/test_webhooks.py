"""Webhooks derived from git: every commit on a followed ref is told, in order, at least once,
signed as Standard Webhooks says (checked with that project's own library), retried on
failures; a commit made by hand and a rewind are told too."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import git, new_token
from flask import Flask
from flask.testing import FlaskClient
from standardwebhooks.webhooks import Webhook

from cms.app import create_app

WORKSHOP = "/api/v1/workshops/terrabytes-icml25"


class Receiver:
    """A local endpoint that answers from a script of statuses, then 200, and keeps all."""

    def __init__(self, script: list[int]) -> None:
        self.script = list(script)
        self.received: list[tuple[int, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.script.pop(0) if receiver.script else 200
                receiver.received.append((status, dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> list[tuple[dict[str, str], dict[str, Any]]]:
        return [(h, json.loads(b)) for s, h, b in self.received if s == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fast(config: dict[str, Any]) -> Iterator[Flask]:
    app = create_app({**config, "RUNNER_INTERVAL": 0.05, "WEBHOOK_RETRY_BASE": 0.05})
    yield app
    app.extensions["cms"].dispose()


@pytest.fixture
def receiver() -> Iterator[Callable[[list[int]], Receiver]]:
    made: list[Receiver] = []

    def make(script: list[int]) -> Receiver:
        made.append(Receiver(script))
        return made[-1]

    yield make
    for r in made:
        r.close()


def headers_for(app: Flask, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_token(app.extensions['cms'], role)[1]}"}


def cast(app: Flask) -> tuple[FlaskClient, dict[str, str], dict[str, str], Path]:
    """A client, an editor's and an admin's headers, and the repository."""
    repo: Path = app.extensions["cms"].store.path
    return app.test_client(), headers_for(app, "editor"), headers_for(app, "admin"), repo


def edit(client: FlaskClient, editor: dict[str, str], location: str) -> str:
    etag = client.get(WORKSHOP + "?ref=main", headers=editor).headers["ETag"]
    r = client.patch(WORKSHOP, json={"location": location},
                     headers={**editor, "If-Match": etag, "X-Change-Reason": f"now {location}"})  # fmt: skip
    assert r.status_code == 200
    return str(r.headers["X-Content-Revision"])


def until(client: FlaskClient, check: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        client.get("/healthz")  # any request starts this process's runner
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("not in time")


def test_every_commit_is_told_in_order_signed_and_retried(
    fast: Flask, receiver: Callable[[list[int]], Receiver]
) -> None:
    client, editor, admin, repo = cast(fast)
    hook = receiver([503, 500, 429])  # three failures first
    made = client.post("/api/v1/webhooks", headers=admin,
                       json={"url": hook.url, "description": "Rebuild the site"})  # fmt: skip
    assert made.status_code == 201
    secret = made.get_json()["secret"]
    assert secret.startswith("whsec_")
    assert "secret" not in client.get("/api/v1/webhooks", headers=admin).get_json()[0]
    commits = [edit(client, editor, f"Place {n}") for n in range(3)]
    published = client.post("/api/v1/publish", headers=admin).get_json()["commit"]
    until(client, lambda: len(hook.delivered()) == 4)
    verifier = Webhook(secret)
    told = []
    for headers, payload in hook.delivered():
        body = json.dumps(payload, separators=(",", ":"))
        verified = verifier.verify(body, {k.lower(): v for k, v in headers.items()})
        told.append((verified["type"], verified["data"]["commit"]))
    assert told == [*(("content.changed", c) for c in commits), ("site.published", published)]
    first = hook.delivered()[0][1]["data"]
    assert first["reason"] == "now Place 0" and first["changes"] == [
        {"type": "workshops", "slug": "terrabytes-icml25", "action": "update",
         "etag": git(repo, "rev-parse", f"{commits[0]}:workshops/terrabytes-icml25.yaml").strip()}
    ]  # fmt: skip
    # the retries of the first message carried its one webhook-id
    ids = [{k.lower(): v for k, v in h.items()}["webhook-id"] for _, h, _ in hook.received]
    assert ids[:4] == [ids[0]] * 4 and len(set(ids)) == 4
    log = client.get(
        f"/api/v1/webhooks/{made.get_json()['id']}/deliveries", headers=admin
    ).get_json()
    oldest = log[-1]
    assert oldest["attempts"] == 4 and [a["status"] for a in oldest["log"]] == [503, 500, 429, 200]


def test_a_hand_commit_and_a_rewind_are_told(
    fast: Flask, receiver: Callable[[list[int]], Receiver], tmp_path: Path
) -> None:
    from test_index import hand_commit

    client, admin = fast.test_client(), headers_for(fast, "admin")
    repo = fast.extensions["cms"].store.path
    hook = receiver([])
    client.post("/api/v1/webhooks", headers=admin, json={"url": hook.url})
    seed = git(repo, "rev-parse", "main").strip()
    by_hand = hand_commit(repo, tmp_path, "talks/by-hand.yaml", "title: By hand\n", "Added by hand")
    until(client, lambda: len(hook.delivered()) == 1)
    event = hook.delivered()[0][1]
    assert event["type"] == "content.changed" and event["data"]["commit"] == by_hand
    assert event["data"]["author"]["name"] == "Admin"
    git(repo, "update-ref", "refs/heads/main", seed, by_hand)  # wound back by hand
    until(client, lambda: len(hook.delivered()) == 2)
    rewind = hook.delivered()[1][1]
    assert rewind["type"] == "ref.rewound"
    assert rewind["data"] == {"ref": "main", "from": by_hand, "to": seed}


def test_a_refusal_stops_one_message_is_shown_and_can_be_redelivered(
    fast: Flask, receiver: Callable[[list[int]], Receiver]
) -> None:
    client, editor, admin, _ = cast(fast)
    hook = receiver([400])
    hook_id = client.post("/api/v1/webhooks", headers=admin,
                          json={"url": hook.url, "events": ["content.changed"]}).get_json()["id"]  # fmt: skip
    refused = edit(client, editor, "Refused")
    until(client, lambda: bool(hook.received))
    until(
        client,
        lambda: client.get("/readyz").get_json()["checks"]["webhooks"]["failing"] == [hook_id],
    )
    deliveries = client.get(f"/api/v1/webhooks/{hook_id}/deliveries", headers=admin).get_json()
    assert deliveries[0]["status"] == "failed" and deliveries[0]["attempts"] == 1
    later = edit(client, editor, "Later")  # the next message is not held up by the refused one
    until(client, lambda: [p["data"]["commit"] for _, p in hook.delivered()] == [later])
    url = f"/api/v1/webhooks/{hook_id}/deliveries/{deliveries[0]['id']}/redeliver"
    assert client.post(url, headers=admin).get_json()["status"] == "pending"
    until(client, lambda: [p["data"]["commit"] for _, p in hook.delivered()] == [later, refused])
    assert client.get("/readyz").get_json()["checks"]["webhooks"]["failing"] == []


def test_webhook_administration(client: FlaskClient, tokens: dict[str, dict[str, str]]) -> None:
    admin = tokens["admin"]
    for body in ({}, {"url": "ftp://example.org/x"}, {"url": "http://127.0.0.1/h", "events": ["nope"]},
                 {"url": "http://127.0.0.1/h", "events": []}):  # fmt: skip
        assert client.post("/api/v1/webhooks", json=body, headers=admin).status_code == 422, body
    assert client.post("/api/v1/webhooks", json={"url": "http://x.test/h"},
                       headers=tokens["editor"]).status_code == 403  # fmt: skip
    made = client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/h"}, headers=admin)
    hook = made.get_json()
    rotated = client.post(f"/api/v1/webhooks/{hook['id']}/rotate", headers=admin).get_json()
    assert rotated["secret"] != hook["secret"]
    paused = client.patch(f"/api/v1/webhooks/{hook['id']}", json={"active": False}, headers=admin)
    assert paused.get_json()["active"] is False
    assert client.delete(f"/api/v1/webhooks/{hook['id']}", headers=admin).status_code == 204
    assert client.get(f"/api/v1/webhooks/{hook['id']}", headers=admin).status_code == 404


def _commits_since(repo: Path, start: str) -> list[str]:
    return git(repo, "rev-list", "--first-parent", "--reverse", f"{start}..main").split()


@pytest.mark.slow
def test_killed_servers_skip_no_event_and_two_servers_send_each_once(
    config: dict[str, Any], instance: Path, db_url: str,
    receiver: Callable[[list[int]], Receiver],
) -> None:  # fmt: skip
    """kill -9 mid-delivery, 10 times: every commit told at least once; then two servers on
    one repository and database: each message sent by one runner only."""
    import random
    import signal

    import requests
    from conftest import Server

    app = create_app(config)
    svc = app.extensions["cms"]
    admin = {"Authorization": f"Bearer {new_token(svc, 'admin')[1]}"}
    editor = {"Authorization": f"Bearer {new_token(svc, 'editor')[1]}"}
    hook = receiver([])
    app.test_client().post("/api/v1/webhooks", headers=admin,
                           json={"url": hook.url, "events": ["content.changed"]})  # fmt: skip
    start = git(svc.store.path, "rev-parse", "main").strip()
    env = {"CMS_RUNNER_INTERVAL": "0.05", "CMS_WEBHOOK_RETRY_BASE": "0.05"}
    servers = [Server(instance, db_url, workers=2, env=env) for _ in range(2)]
    url = WORKSHOP

    def edit_live(srv: Server, n: int) -> None:
        etag = requests.get(srv.url + url + "?ref=main", headers=editor, timeout=10).headers["ETag"]
        requests.patch(srv.url + url, json={"location": f"Kill {n}"},
                       headers={**editor, "If-Match": etag}, timeout=10).raise_for_status()  # fmt: skip

    try:
        for n in range(10):
            servers[0].start()
            edit_live(servers[0], n)
            time.sleep(random.uniform(0, 0.2))
            servers[0].kill(signal.SIGKILL)
        servers[0].start()
        servers[1].start()  # two servers, one repository, one database
        for n in range(10, 14):
            edit_live(servers[n % 2], n)
        expected = _commits_since(svc.store.path, start)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            told = {p["data"]["commit"] for _, p in hook.delivered()}
            if told >= set(expected):
                break
            time.sleep(0.1)
        assert told >= set(expected), set(expected) - told  # none skipped
        time.sleep(1)  # let any double send show
        sent = [p["data"]["commit"] for _, p in hook.delivered()]
        assert sent[-4:] == expected[-4:]  # in order
        assert all(sent.count(c) == 1 for c in expected[-4:])  # each once, with two servers
    finally:
        for srv in servers:
            srv.kill(signal.SIGTERM)
    svc.dispose()


def test_releases_failed_schedules_and_coalescing(
    fast: Flask, receiver: Callable[[list[int]], Receiver]
) -> None:
    client, editor, admin, repo = cast(fast)
    every = receiver([])
    client.post("/api/v1/webhooks", headers=admin,
                json={"url": every.url, "events": ["release.created", "schedule.failed"]})  # fmt: skip
    rebuild = receiver([])
    paused = client.post("/api/v1/webhooks", headers=admin, json={
        "url": rebuild.url, "events": ["content.changed"], "coalesce": True,
    }).get_json()  # fmt: skip
    client.patch(f"/api/v1/webhooks/{paused['id']}", json={"active": False}, headers=admin)
    seed = git(repo, "rev-parse", "main").strip()
    commits = [edit(client, editor, f"Step {n}") for n in range(3)]
    assert client.post("/api/v1/releases", json={"name": "v1"}, headers=admin).status_code == 201
    until(client, lambda: [p["type"] for _, p in every.delivered()] == ["release.created"])
    assert every.delivered()[0][1]["data"]["name"] == "v1"
    # a rebuild hook paused meanwhile: one message for everything pending, the newest first
    client.patch(f"/api/v1/webhooks/{paused['id']}", json={"active": True}, headers=admin)
    until(client, lambda: len(rebuild.delivered()) == 1)
    time.sleep(0.3)
    (only,) = rebuild.delivered()
    assert only[1]["data"]["commit"] == commits[-1] and only[1]["data"]["commits"] == commits
    # a scheduled commit that leaves main: the schedule fails, and says so
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()  # not past under load
    r = client.post(
        "/api/v1/publish/schedule", json={"at": soon, "commit": commits[0]}, headers=admin
    )
    assert r.status_code == 201, r.get_json()
    git(repo, "update-ref", "refs/heads/main", seed, commits[-1])
    until(client, lambda: any(p["type"] == "schedule.failed" for _, p in every.delivered()))
