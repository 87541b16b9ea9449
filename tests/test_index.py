"""The SQL index is derived from git: rebuilt at will, caught up when git moves by any means."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import git
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select, update
from test_write_api import etag_of

from cms.app import create_app
from cms.index import INDEX_SCHEMA, ChangeRow, CommitRow, RefHead, SchemaRow
from cms.service import MAIN, PUBLISHED, ContentService

ALL_TYPES = ("workshops", "people", "talks", "references")


def every_response(client: FlaskClient, auth: dict[str, str]) -> list[tuple[str, int, bytes, str]]:
    out = []
    for ref in ("published", "main"):
        for type_name in ALL_TYPES:
            r = client.get(f"/api/v1/{type_name}?ref={ref}&page_size=100", headers=auth)
            out.append((r.request.url, r.status_code, r.data, r.headers.get("ETag", "")))
            for item in r.get_json():
                url = f"/api/v1/{type_name}/{item['slug']}?ref={ref}"
                one = client.get(url, headers=auth)
                out.append((url, one.status_code, one.data, one.headers.get("ETag", "")))
    return out


def test_reindex_answers_byte_identically(
    client: FlaskClient, svc: ContentService, editor: dict[str, str]
) -> None:
    client.patch(
        "/api/v1/people/valentin-barriere",
        json={"bio": "Researcher"},
        headers={**editor, "If-Match": etag_of(client, "/api/v1/people/valentin-barriere", editor)},
    )
    client.post("/api/v1/talks", json={"title": "Keynote"}, headers=editor)
    before = every_response(client, editor)
    assert svc.reindex() == 3 + 1  # main: seed + 2 edits; published: seed
    svc._snapshots.clear()
    assert every_response(client, editor) == before
    assert svc.check() == []


def test_index_rows_per_commit_and_change(
    svc: ContentService, client: FlaskClient, editor: dict[str, str]
) -> None:
    client.post("/api/v1/talks", json={"title": "Keynote"}, headers=editor)
    with svc.read_session() as s:
        assert (
            s.scalar(select(func.count()).select_from(CommitRow).where(CommitRow.ref == MAIN)) == 2
        )
        assert (
            s.scalar(select(func.count()).select_from(CommitRow).where(CommitRow.ref == PUBLISHED))
            == 1
        )
        changes = s.scalars(
            select(ChangeRow).where(ChangeRow.ref == MAIN).order_by(ChangeRow.seq, ChangeRow.id)
        ).all()
        assert len(changes) == 9  # 8 seed files + the talk
        assert (changes[-1].type, changes[-1].slug, changes[-1].action) == (
            "talks",
            "keynote",
            "create",
        )
        assert s.get(RefHead, MAIN).sha == svc.store.read_ref(MAIN)


def hand_commit(repo: Path, tmp_path: Path, path: str, content: str, message: str) -> str:
    """An admin fixes something with plain git: clone, edit, commit, push."""
    work = tmp_path / "work"
    if not work.exists():
        subprocess.run(["git", "clone", "-q", str(repo), str(work)], check=True)
    env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin"}
    (work / path).parent.mkdir(parents=True, exist_ok=True)
    (work / path).write_text(content)
    for args in (
        ["add", path],
        ["-c", "user.name=Admin", "-c", "user.email=admin@example.org", "commit", "-qm", message],
        ["push", "-q", "origin", "main"],
    ):
        subprocess.run(["git", "-C", str(work), *args], check=True, env=env)
    return git(repo, "rev-parse", "main").strip()


def test_a_plain_git_commit_is_caught_up_on_the_next_read(
    client: FlaskClient, repo: Path, tmp_path: Path, editor: dict[str, str], svc: ContentService
) -> None:
    person = "people/jane-doe.yaml"
    hand_commit(repo, tmp_path, person, "name: Jane Doe\n", "Add Jane by hand\n\nShe joined.")
    r = client.get("/api/v1/people/jane-doe?ref=main", headers=editor)
    assert r.status_code == 200
    assert r.get_json()["name"] == "Jane Doe" and r.get_json()["role"] == ""
    assert svc.check() == []
    with svc.read_session() as s:
        row = s.scalar(
            select(CommitRow).where(CommitRow.ref == MAIN).order_by(CommitRow.seq.desc())
        )
        assert (row.author_name, row.subject, row.reason) == (
            "Admin",
            "Add Jane by hand",
            "She joined.",
        )


def test_catch_up_on_start(
    config: dict[str, object], app: Flask, repo: Path, tmp_path: Path
) -> None:
    head = hand_commit(repo, tmp_path, "talks/opening.yaml", "title: Opening\n", "By hand")
    again = create_app(config)
    svc: ContentService = again.extensions["cms"]
    with svc.read_session() as s:
        assert s.get(RefHead, MAIN).sha == head
    svc.dispose()


def test_a_rewritten_ref_is_rebuilt(
    client: FlaskClient, repo: Path, editor: dict[str, str], svc: ContentService
) -> None:
    seed = git(repo, "rev-parse", "main").strip()
    client.post("/api/v1/talks", json={"title": "Keynote"}, headers=editor)
    git(repo, "update-ref", "refs/heads/main", seed)  # history rewritten behind the CMS's back
    assert client.get("/api/v1/talks/keynote?ref=main", headers=editor).status_code == 404
    assert svc.check() == []


def test_an_invalid_file_is_reported_never_a_traceback(
    client: FlaskClient, repo: Path, tmp_path: Path, editor: dict[str, str], svc: ContentService
) -> None:
    hand_commit(repo, tmp_path, "people/broken.yaml", "name: [unclosed\n", "Oops")
    hand_commit(repo, tmp_path, "people/wrong.yaml", "name: 5\nextra: field\n", "Oops again")
    for slug in ("broken", "wrong"):
        r = client.get(f"/api/v1/people/{slug}?ref=main", headers=editor)
        assert r.status_code == 409
        assert "invalid" in r.get_json()["message"] and "Traceback" not in r.get_data(as_text=True)
    slugs = [p["slug"] for p in client.get("/api/v1/people?ref=main", headers=editor).get_json()]
    assert slugs == ["valentin-barriere"]
    problems = svc.check()
    assert any("people/broken.yaml is invalid" in p for p in problems)
    assert any("people/wrong.yaml is invalid" in p for p in problems)
    # an editor can repair it over the API with the ETag the error gives
    etag = client.get("/api/v1/people/wrong?ref=main", headers=editor).get_json()["etag"]
    r = client.put(
        "/api/v1/people/wrong", json={"name": "Right"}, headers={**editor, "If-Match": etag}
    )
    assert r.status_code == 200


def test_files_outside_the_content_layout_are_ignored(
    client: FlaskClient, repo: Path, tmp_path: Path, editor: dict[str, str], svc: ContentService
) -> None:
    hand_commit(repo, tmp_path, "README.md", "# content\n", "Readme")
    hand_commit(repo, tmp_path, "people/Not A Slug.yaml", "name: x\n", "Odd name")
    hand_commit(repo, tmp_path, "unknown/x.yaml", "a: 1\n", "Unknown type")
    assert len(client.get("/api/v1/people?ref=main", headers=editor).get_json()) == 1
    assert svc.check() == []


def _history_total(client: FlaskClient, url: str, auth: dict[str, str], **params: int) -> int:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    r = client.get(f"{url}/history?ref=main&{query}", headers=auth)
    assert r.status_code == 200, r.get_json()
    return int(json.loads(r.headers["X-Pagination"])["total"])


def test_history_totals_match_git_however_the_commits_came(
    client: FlaskClient, repo: Path, tmp_path: Path, editor: dict[str, str], svc: ContentService
) -> None:
    person = "/api/v1/people/valentin-barriere"
    for n in range(3):
        etag = etag_of(client, person, editor)
        client.patch(person, json={"bio": f"v{n}"}, headers={**editor, "If-Match": etag})
        client.post("/api/v1/talks", json={"title": f"Talk {n}"}, headers=editor)
    # by hand, then through the API again: the catch-up numbers the hand commit too
    hand_commit(repo, tmp_path, "people/valentin-barriere.yaml",
                git(repo, "show", "main:people/valentin-barriere.yaml").replace("v2", "hand"),
                "Edit by hand")  # fmt: skip
    talk = "/api/v1/talks/talk-0"
    r = client.delete(talk, headers={**editor, "If-Match": etag_of(client, talk, editor)})
    assert r.status_code == 204

    def from_git(path: str) -> int:
        return len(git(repo, "log", "--first-parent", "--format=%H", "main", "--", path).split())

    def totals() -> list[int]:
        return [
            _history_total(client, person, editor),
            _history_total(client, person, editor, page=2, page_size=2),
            _history_total(client, talk, editor),  # a deleted item keeps its history
        ]

    expected = [from_git("people/valentin-barriere.yaml")] * 2 + [from_git("talks/talk-0.yaml")]
    assert expected == [5, 5, 2]  # seed, 3 edits, by hand; created, deleted
    assert totals() == expected
    svc.reindex()
    assert totals() == expected


def test_an_index_of_another_layout_is_rebuilt_on_start(
    config: dict[str, object], app: Flask, svc: ContentService, editor: dict[str, str]
) -> None:
    client = app.test_client()
    client.post("/api/v1/talks", json={"title": "Keynote"}, headers=editor)
    with svc.write_session() as s:  # as an older CMS would have left it
        s.execute(delete(SchemaRow))
        s.execute(update(ChangeRow).values(item_seq=0))
    svc.dispose()
    again = create_app(config)
    svc2: ContentService = again.extensions["cms"]
    with svc2.read_session() as s:
        assert s.scalar(select(SchemaRow.version)) == INDEX_SCHEMA
        assert s.scalar(select(func.min(ChangeRow.item_seq))) == 1
    assert svc2.check() == []
    # the tokens survived the rebuild
    r = again.test_client().get("/api/v1/talks/keynote?ref=main", headers=editor)
    assert r.status_code == 200
    svc2.dispose()
