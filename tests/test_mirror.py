"""Mirroring to a git remote (a local bare repository here), including the remote being away."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_fsck_clean, git, new_token
from flask import Flask

from cms.app import create_app
from cms.service import ContentService

PERSON = "/api/v1/people/valentin-barriere"


@pytest.fixture
def mirrored(config: dict[str, Any], tmp_path: Path) -> Iterator[Callable[[Path], Flask]]:
    apps: list[Flask] = []

    def make(remote: Path) -> Flask:
        app = create_app({**config, "MIRROR_URL": str(remote), "MIRROR_RETRY_MAX": 0.5})
        apps.append(app)
        return app

    yield make
    for app in apps:
        svc: ContentService = app.extensions["cms"]
        assert svc.mirror is not None
        svc.mirror.close()
        svc.dispose()


def refs(repo: Path) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split() for line in out.splitlines())


def wait_until(check: Callable[[], bool], seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def edit(app: Flask, auth: dict[str, str], bio: str) -> None:
    client = app.test_client()
    etag = client.get(PERSON + "?ref=main", headers=auth).headers["ETag"]
    started = time.monotonic()
    r = client.patch(PERSON, json={"bio": bio}, headers={**auth, "If-Match": etag})
    assert r.status_code == 200
    assert time.monotonic() - started < 2  # the push never blocks an edit


def mirrored_to_a_bare_remote(
    mirrored: Callable[[Path], Flask], remote: Path
) -> tuple[Flask, ContentService, dict[str, str]]:
    """An app mirroring to a new bare repository, and an editor's Authorization header."""
    subprocess.run(["git", "init", "--bare", "-q", str(remote)], check=True)
    app = mirrored(remote)
    svc: ContentService = app.extensions["cms"]
    return app, svc, {"Authorization": f"Bearer {new_token(svc, 'editor')[1]}"}


def test_every_commit_and_release_reaches_the_mirror(
    mirrored: Callable[[Path], Flask], tmp_path: Path
) -> None:
    remote = tmp_path / "mirror.git"
    app, svc, editor = mirrored_to_a_bare_remote(mirrored, remote)
    _, admin = new_token(svc, "admin")
    for n in range(3):
        edit(app, editor, f"edit {n}")
    client = app.test_client()
    assert (
        client.post("/api/v1/publish", headers={"Authorization": f"Bearer {admin}"}).status_code
        == 200
    )
    r = client.post(
        "/api/v1/releases", json={"name": "v1"}, headers={"Authorization": f"Bearer {admin}"}
    )
    assert r.status_code == 201
    assert wait_until(lambda: refs(remote) == refs(svc.store.path)), (
        refs(remote),
        refs(svc.store.path),
    )
    assert set(refs(remote)) == {"refs/heads/main", "refs/heads/published", "refs/tags/v1"}
    assert_fsck_clean(remote)
    assert wait_until(lambda: client.get("/readyz").get_json()["checks"]["mirror"]["behind"] == [])
    status = client.get("/readyz").get_json()["checks"]["mirror"]
    assert status["lag_seconds"] == 0 and status["last_error"] is None


def test_an_unreachable_remote_delays_nothing_and_catches_up(
    mirrored: Callable[[Path], Flask], tmp_path: Path
) -> None:
    remote = tmp_path / "later.git"  # does not exist yet: every push fails
    app = mirrored(remote)
    svc: ContentService = app.extensions["cms"]
    _, editor = new_token(svc, "editor")
    for n in range(3):
        edit(app, {"Authorization": f"Bearer {editor}"}, f"offline {n}")
    client = app.test_client()
    assert wait_until(
        lambda: client.get("/readyz").get_json()["checks"]["mirror"]["last_error"] is not None
    )
    status = client.get("/readyz").get_json()
    assert status["status"] == "ok"  # a lagging mirror does not make the CMS unready
    assert "refs/heads/main" in status["checks"]["mirror"]["behind"]
    subprocess.run(["git", "init", "--bare", "-q", str(remote)], check=True)  # the remote is back
    assert wait_until(lambda: remote.exists() and refs(remote) == refs(svc.store.path))
    assert wait_until(lambda: client.get("/readyz").get_json()["checks"]["mirror"]["behind"] == [])


def test_a_rewind_by_hand_never_wipes_the_mirrors_history(
    mirrored: Callable[[Path], Flask], tmp_path: Path
) -> None:
    remote = tmp_path / "mirror.git"
    app, svc, editor = mirrored_to_a_bare_remote(mirrored, remote)
    seed = git(svc.store.path, "rev-parse", "main").strip()
    edit(app, editor, "kept off-site")
    edited = git(svc.store.path, "rev-parse", "main").strip()
    assert wait_until(lambda: refs(remote).get("refs/heads/main") == edited)
    git(svc.store.path, "update-ref", "refs/heads/main", seed, edited)  # rewound by hand
    assert svc.mirror is not None
    assert not svc.mirror.push_once()  # refused: not a fast-forward, and not forced
    assert refs(remote)["refs/heads/main"] == edited  # the off-site copy keeps its history
    status = app.test_client().get("/readyz").get_json()
    assert status["status"] == "ok"
    assert status["checks"]["mirror"]["rejected"] == ["refs/heads/main"]
