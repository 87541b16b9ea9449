"""Real processes: several gunicorn workers on one repository, concurrent writers, SIGKILL.

Every server listens on 127.0.0.1 only; every loop is bounded in count and time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Server, assert_fsck_clean, git, new_token

from cms.app import create_app
from cms.service import ContentService

pytestmark = pytest.mark.slow


@pytest.fixture
def prepared(config: dict[str, Any]) -> Iterator[tuple[ContentService, dict[str, str]]]:
    """A repository with the seed, and an editor token, before any server runs."""
    app = create_app(config)
    svc: ContentService = app.extensions["cms"]
    _, secret = new_token(svc, "editor", name="Load Tester")
    yield svc, {"Authorization": f"Bearer {secret}"}
    svc.dispose()
    assert_fsck_clean(svc.store.path)


@pytest.fixture
def server(
    prepared: tuple[ContentService, dict[str, str]], instance: Path, db_url: str
) -> Iterator[Server]:
    srv = Server(instance, db_url, workers=4)
    srv.start()
    yield srv
    srv.kill(signal.SIGTERM)


def create_people(url: str, auth: dict[str, str], n: int, prefix: str) -> list[str]:
    slugs = []
    for i in range(n):
        r = requests.post(
            f"{url}/api/v1/people", json={"name": f"{prefix} {i}"}, headers=auth, timeout=30
        )
        assert r.status_code == 201, r.text
        slugs.append(r.json()["slug"])
    return slugs


def test_distinct_items_no_write_is_lost(
    server: Server, prepared: tuple[ContentService, dict[str, str]]
) -> None:
    svc, auth = prepared
    slugs = create_people(server.url, auth, 8, "Writer")
    before = int(git(svc.store.path, "rev-list", "--count", "main"))
    acknowledged: list[str] = []
    failures: list[str] = []

    def writer(slug: str) -> None:
        with requests.Session() as http:
            url = f"{server.url}/api/v1/people/{slug}"
            etag = http.get(url + "?ref=main", headers=auth, timeout=30).headers["ETag"]
            for n in range(25):
                r = http.patch(
                    url, json={"bio": f"edit {n}"}, headers={**auth, "If-Match": etag}, timeout=30
                )
                if r.status_code != 200:
                    failures.append(f"{slug} {n}: {r.status_code} {r.text}")
                    return
                etag = r.headers["ETag"]
                acknowledged.append(r.headers["X-Content-Revision"])

    threads = [threading.Thread(target=writer, args=(slug,)) for slug in slugs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failures == []  # no spurious failure on distinct items
    assert len(acknowledged) == 200 == len(set(acknowledged))
    reachable = set(git(svc.store.path, "rev-list", "main").split())
    assert set(acknowledged) <= reachable
    assert int(git(svc.store.path, "rev-list", "--count", "main")) == before + 200
    for slug in slugs:
        r = requests.get(f"{server.url}/api/v1/people/{slug}?ref=main", headers=auth, timeout=30)
        assert r.json()["bio"] == "edit 24"
    assert svc.check() == []


def test_same_if_match_exactly_one_wins(
    server: Server, prepared: tuple[ContentService, dict[str, str]]
) -> None:
    svc, auth = prepared
    url = f"{server.url}/api/v1/people/valentin-barriere"
    etag = requests.get(url + "?ref=main", headers=auth, timeout=30).headers["ETag"]
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def contender(n: int) -> None:
        with requests.Session() as http:
            barrier.wait(timeout=30)
            r = http.patch(
                url, json={"bio": f"contender {n}"}, headers={**auth, "If-Match": etag}, timeout=30
            )
            statuses.append(r.status_code)

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(statuses) == [200] + [412] * 9
    assert svc.check() == []


def test_sigkill_mid_burst_loses_no_acknowledged_write(
    prepared: tuple[ContentService, dict[str, str]], instance: Path, db_url: str
) -> None:
    svc, auth = prepared
    srv = Server(instance, db_url, workers=2)
    srv.start()
    slugs = create_people(srv.url, auth, 3, "Crash")
    srv.kill()
    acknowledged: list[str] = []
    for _cycle in range(20):
        srv.start()
        stop = threading.Event()

        def writer(slug: str, stop: threading.Event = stop) -> None:
            url = f"{srv.url}/api/v1/people/{slug}"
            n = 0
            try:
                with requests.Session() as http:
                    etag = http.get(url + "?ref=main", headers=auth, timeout=10).headers["ETag"]
                    while not stop.is_set() and n < 500:
                        n += 1
                        r = http.patch(
                            url,
                            json={"bio": f"{time.time()}"},
                            headers={**auth, "If-Match": etag},
                            timeout=10,
                        )
                        if r.status_code == 200:
                            acknowledged.append(r.headers["X-Content-Revision"])
                            etag = r.headers["ETag"]
                        elif r.status_code == 412:
                            etag = r.json()["etag"]
            except requests.RequestException:
                pass  # the server died under us: what it acknowledged must survive

        threads = [threading.Thread(target=writer, args=(slug,)) for slug in slugs]
        for t in threads:
            t.start()
        time.sleep(0.15 + 0.05 * (_cycle % 5))
        srv.kill()  # SIGKILL the master and every worker at once
        stop.set()
        for t in threads:
            t.join(timeout=30)
    srv.start()
    try:
        # the next write goes through within 5 s: no stale lock
        url = f"{srv.url}/api/v1/people/{slugs[0]}"
        start = time.monotonic()
        etag = requests.get(url + "?ref=main", headers=auth, timeout=5).headers["ETag"]
        r = requests.patch(
            url, json={"bio": "after the crashes"}, headers={**auth, "If-Match": etag}, timeout=5
        )
        assert r.status_code == 200, r.text
        assert time.monotonic() - start < 5
        reachable = set(git(svc.store.path, "rev-list", "main").split())
        assert acknowledged and set(acknowledged) <= reachable
        for slug in slugs:  # what git has is what the API serves
            served = requests.get(
                f"{srv.url}/api/v1/people/{slug}?ref=main", headers=auth, timeout=5
            )
            blob = git(svc.store.path, "rev-parse", f"main:people/{slug}.yaml").strip()
            assert served.headers["ETag"] == f'"{blob}"'
    finally:
        srv.kill(signal.SIGTERM)
    assert_fsck_clean(svc.store.path)
    assert svc.check() == []


def test_a_revoked_token_stops_in_every_worker(server: Server, instance: Path, db_url: str) -> None:
    env = {**os.environ, "CMS_INSTANCE_PATH": str(instance), "CMS_DATABASE_URL": db_url}

    def cli(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "cms.cli", *args], env=env, check=True,
                              capture_output=True, text=True).stdout  # fmt: skip

    secret = cli(
        "tokens", "create", "--name", "Temp", "--email", "t@example.org", "--role", "auditor"
    ).strip()
    auth = {"Authorization": f"Bearer {secret}"}
    url = f"{server.url}/api/v1/people/valentin-barriere?ref=main"
    assert all(requests.get(url, headers=auth, timeout=10).status_code == 200 for _ in range(8))
    token_id = next(
        line.split()[0] for line in cli("tokens", "list").splitlines() if "Temp" in line
    )
    cli("tokens", "revoke", token_id)
    statuses = [requests.get(url, headers=auth, timeout=10).status_code for _ in range(12)]
    assert statuses == [401] * 12  # 12 requests over 4 workers: none still accepts it
