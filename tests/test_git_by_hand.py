"""The repository is a real git repository: people rewind refs, commit and tag by hand. What
the CMS derives from it follows, in every worker, and never serves what is no longer there."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
from conftest import git, new_token
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.exc import OperationalError

from cms import index
from cms.app import create_app
from cms.index import CommitRecord, OutOfStep
from cms.service import MAIN, PUBLISHED, ContentService
from cms.service.core import ServiceBase

PERSON = "/api/v1/people/valentin-barriere"


def patch_bio(client: FlaskClient, auth: dict[str, str], bio: str) -> Any:
    etag = client.get(PERSON + "?ref=main", headers=auth).headers["ETag"]
    return client.patch(PERSON, json={"bio": bio}, headers={**auth, "If-Match": etag})


@pytest.fixture
def second_worker(config: dict[str, Any], app: Flask) -> Any:
    """Another process on the same repository and index (a second gunicorn worker)."""
    other = create_app(config)
    yield other
    other.extensions["cms"].dispose()


def test_a_rewind_by_hand_is_noticed_by_a_worker_that_cached_the_commit(
    app: Flask, second_worker: Flask, tokens: dict[str, dict[str, str]], repo: Path,
    svc: ContentService,
) -> None:  # fmt: skip
    admin, auditor = tokens["admin"], tokens["auditor"]
    this, other = app.test_client(), second_worker.test_client()
    seed = git(repo, "rev-parse", "published").strip()
    # the other worker reads the public site at the seed commit (and caches it)
    assert other.get(PERSON).status_code == 200
    assert patch_bio(this, tokens["editor"], "withdrawn").status_code == 200
    withdrawn = this.post("/api/v1/publish", headers=admin).get_json()["commit"]
    assert this.get(PERSON).get_json()["bio"] == "withdrawn"
    git(repo, "update-ref", "refs/heads/published", seed, withdrawn)  # wound back by hand
    for client in (other, this):  # whichever worker answers
        assert client.get(f"/api/v1/changes?since={withdrawn}").status_code == 410
        listed = client.get("/api/v1/history?ref=published", headers=auditor).get_json()
        assert withdrawn not in [entry["commit"] for entry in listed]
        assert client.get(f"{PERSON}?at={withdrawn}").status_code == 404
        assert client.get(PERSON).get_json()["bio"] != "withdrawn"
        assert client.get("/api/v1/site").headers["ETag"] == f'"{seed}"'
    assert svc.check() == []
    # forward again by hand: the same commit comes back everywhere
    git(repo, "update-ref", "refs/heads/published", withdrawn, seed)
    for client in (other, this):
        assert client.get(PERSON).get_json()["bio"] == "withdrawn"
        assert client.get(f"/api/v1/changes?since={seed}").status_code == 200
    assert svc.check() == []


def test_a_hand_commit_between_the_catch_up_and_the_swap_is_kept_and_indexed(
    client: FlaskClient, editor: dict[str, str], repo: Path, tmp_path: Path,
    svc: ContentService, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from test_index import hand_commit

    original = ServiceBase.sync_ref
    done: list[str] = []

    def sync_then_someone_commits(self: ServiceBase, session: Any, ref: str, *a: Any) -> Any:
        result = original(self, session, ref, *a)
        if ref == MAIN and not done:  # lands after the catch-up, before the swap
            done.append(hand_commit(repo, tmp_path, "talks/by-hand.yaml", "title: By hand\n", "X"))
        return result

    monkeypatch.setattr(ServiceBase, "sync_ref", sync_then_someone_commits)
    r = patch_bio(client, editor, "through the API")
    assert r.status_code == 200, r.get_json()
    monkeypatch.undo()
    log = git(repo, "log", "--first-parent", "--format=%s", "main").splitlines()
    assert log[:2] == ["Update people/valentin-barriere", "X"]  # both kept, in order
    assert client.get("/api/v1/talks/by-hand?ref=main", headers=editor).status_code == 200
    assert client.get(PERSON + "?ref=main", headers=editor).get_json()["bio"] == "through the API"
    assert svc.check() == []


def test_the_index_refuses_a_commit_that_does_not_follow_its_head(svc: ContentService) -> None:
    stray = CommitRecord("1" * 40, ("2" * 40,), "A", "a@x", 0, 0, "s", "", "s\n", None)
    with svc.write_session() as session, pytest.raises(OutOfStep):
        index.record(session, MAIN, [stray], lambda _t, _b: (None, None))


def test_an_edit_that_landed_is_acknowledged_when_indexing_fails(
    client: FlaskClient, editor: dict[str, str], repo: Path, svc: ContentService,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    def index_down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("INSERT", {}, Exception("the database went away"))

    monkeypatch.setattr(ServiceBase, "record", index_down)
    with caplog.at_level(logging.ERROR, logger="cms"):
        r = patch_bio(client, editor, "durable")
    assert r.status_code == 200, r.get_json()
    assert (
        r.headers["ETag"]
        == f'"{git(repo, "rev-parse", "main:people/valentin-barriere.yaml").strip()}"'
    )
    assert "indexing it failed" in caplog.text
    monkeypatch.undo()
    # the catch-up indexes it: the editor's own ETag is current, no 412 for their own edit
    again = client.patch(
        PERSON, json={"bio": "next"}, headers={**editor, "If-Match": r.headers["ETag"]}
    )
    assert again.status_code == 200
    assert svc.check() == []


def test_a_bug_is_a_logged_500_and_an_outage_a_503(
    client: FlaskClient, editor: dict[str, str], svc: ContentService,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    from cms.store.errors import StoreError

    def broken(*args: Any, **kwargs: Any) -> None:
        raise StoreError("git cat-file: something no client can cause")

    monkeypatch.setattr(svc.store, "update_ref_if_equals", broken)
    with caplog.at_level(logging.ERROR, logger="cms"):
        r = patch_bio(client, editor, "bug")
    assert r.status_code == 500 and r.get_json()["code"] == 500
    assert "Traceback" not in r.get_data(as_text=True) and "Traceback" in caplog.text


def test_hand_made_tags_are_no_releases_and_never_leak_drafts(
    client: FlaskClient, tokens: dict[str, dict[str, str]], repo: Path, svc: ContentService
) -> None:
    assert patch_bio(client, tokens["editor"], "a draft").status_code == 200
    draft = git(repo, "rev-parse", "main").strip()
    tree = git(repo, "rev-parse", "main^{tree}").strip()
    git(repo, "tag", "leak", draft)  # a tag on a draft commit
    git(repo, "tag", "tree-tag", tree)  # a tag on a tree
    assert client.get(f"{PERSON}?at={draft}").status_code == 404
    assert client.get(f"{PERSON}?at=leak").status_code == 404  # not by its tag either
    assert client.get("/api/v1/site?at=leak").status_code == 404
    assert client.get(f"{PERSON}?ref=main&at=leak", headers=tokens["auditor"]).status_code == 200
    listed = client.get("/api/v1/releases")
    assert listed.status_code == 200 and listed.get_json() == []
    for name in ("leak", "tree-tag"):
        assert client.get(f"/api/v1/releases/{name}").status_code == 404
    problems = svc.check()
    assert any("refs/tags/leak" in p for p in problems)
    assert any("refs/tags/tree-tag" in p for p in problems)


@pytest.mark.parametrize("name", ["%00", "a" * 300, "..", "x%2Fy", "v1.lock"])
def test_a_release_name_no_tag_can_have_is_404(client: FlaskClient, name: str) -> None:
    r = client.get(f"/api/v1/releases/{name}")
    assert r.status_code == 404 and r.get_json()["code"] == 404


def test_readiness_shows_draft_heads_to_auditors_only(
    client: FlaskClient, tokens: dict[str, dict[str, str]]
) -> None:
    anonymous = client.get("/readyz").get_json()["checks"]["repository"]["heads"]
    assert list(anonymous) == [PUBLISHED]
    audited = client.get("/readyz", headers=tokens["auditor"]).get_json()
    assert set(audited["checks"]["repository"]["heads"]) == {MAIN, PUBLISHED}
    bad = client.get("/readyz", headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 200 and list(bad.get_json()["checks"]["repository"]["heads"]) == [
        PUBLISHED
    ]


def test_a_deletions_json_patch_applies(
    client: FlaskClient, editor: dict[str, str], tokens: dict[str, dict[str, str]]
) -> None:
    created = client.post("/api/v1/talks", json={"title": "Gone soon"}, headers=editor)
    etag = created.headers["ETag"]
    assert (
        client.delete("/api/v1/talks/gone-soon", headers={**editor, "If-Match": etag}).status_code
        == 204
    )
    versions = client.get("/api/v1/talks/gone-soon/history", headers=tokens["auditor"]).get_json()
    for version in versions:
        detail = client.get(f"/api/v1/history/{version['commit']}", headers=tokens["auditor"])
        ops = detail.get_json()["items"][0]["operations"]
        before = None if version["action"] == "create" else {"title": "Gone soon"}
        after = jsonpatch.apply_patch(before, ops)  # a JSON Patch library applies it
        assert (after is None) == (version["action"] == "delete")


def test_the_git_http_body_limit_counts_decompressed_bytes(
    client: FlaskClient, svc: ContentService
) -> None:
    _, secret = new_token(svc, "auditor")
    bomb = gzip.compress(b"0" * (65 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 200_000
    r = client.post(
        "/git/content.git/git-upload-pack",
        data=bomb,
        headers={
            "Authorization": f"Bearer {secret}",
            "Content-Encoding": "gzip",
            "Content-Type": "application/x-git-upload-pack-request",
        },
    )
    assert r.status_code == 413 and r.get_json()["code"] == 413
    broken = client.post(
        "/git/content.git/git-upload-pack",
        data=b"not gzip at all",
        headers={"Authorization": f"Bearer {secret}", "Content-Encoding": "gzip"},
    )
    assert broken.status_code == 400
