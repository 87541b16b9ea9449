"""Editing over HTTP: every status of the write path, and what each write leaves in git."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import git
from flask.testing import FlaskClient

from cms.service import ContentService

WORKSHOP = "/api/v1/workshops/terrabytes-icml25"
PERSON = "/api/v1/people/valentin-barriere"


def head(repo: Path, ref: str = "main") -> str:
    return git(repo, "rev-parse", ref).strip()


def commit_count(repo: Path) -> int:
    return int(git(repo, "rev-list", "--count", "main"))


def etag_of(client: FlaskClient, url: str, auth: dict[str, str]) -> str:
    return client.get(url + "?ref=main", headers=auth).headers["ETag"]


def patch(
    client: FlaskClient, url: str, body: Any, auth: dict[str, str], etag: str | None, **headers: str
) -> Any:
    h = {**auth, **headers}
    if etag is not None:
        h["If-Match"] = etag
    return client.patch(url, json=body, headers=h)


def test_fix_the_location_typo(client: FlaskClient, editor: dict[str, str], repo: Path) -> None:
    before = head(repo)
    etag = etag_of(client, WORKSHOP, editor)
    r = patch(
        client, WORKSHOP, {"location": "Vancouver, Canada"}, editor, etag,
        **{"X-Change-Reason": "Fix the typo in the city's name"},
    )  # fmt: skip
    assert r.status_code == 200
    assert r.get_json()["location"] == "Vancouver, Canada"
    new_etag = r.headers["ETag"]
    assert new_etag != etag and r.get_json()["etag"] == new_etag.strip('"')
    commit = r.headers["X-Content-Revision"]
    assert commit == head(repo)
    # exactly one commit, by the editor, changing exactly one file, with the reason
    assert git(repo, "rev-parse", f"{commit}^").strip() == before
    assert git(repo, "log", "-1", "--format=%an <%ae>", commit).strip() == (
        "Valentin Barriere <editor@example.org>"
    )
    assert git(repo, "log", "-1", "--format=%cn", commit).strip() == "TerraBytes CMS"
    message = git(repo, "log", "-1", "--format=%B", commit)
    assert message.startswith(
        "Update workshops/terrabytes-icml25\n\nFix the typo in the city's name\n"
    )
    trailers = git(repo, "log", "-1", "--format=%(trailers:only,unfold)", commit)
    assert "CMS-Action: update" in trailers and "CMS-Token-Id: " in trailers
    assert git(repo, "diff-tree", "--no-commit-id", "--name-only", "-r", commit).split() == [
        "workshops/terrabytes-icml25.yaml"
    ]
    blob = git(repo, "rev-parse", f"{commit}:workshops/terrabytes-icml25.yaml").strip()
    assert new_etag == f'"{blob}"'
    assert "location: Vancouver, Canada\n" in git(repo, "cat-file", "-p", blob)
    # drafts: the public site is unchanged until it is published
    assert client.get(WORKSHOP).get_json()["location"] == "Vancouvert, Canada"
    assert client.get(WORKSHOP + "?ref=main", headers=editor).get_json()["location"] == (
        "Vancouver, Canada"
    )


def test_identical_write_makes_no_commit(
    client: FlaskClient, editor: dict[str, str], repo: Path
) -> None:
    etag = etag_of(client, WORKSHOP, editor)
    count = commit_count(repo)
    r = patch(client, WORKSHOP, {"location": "Vancouvert, Canada"}, editor, etag)
    assert r.status_code == 200 and r.headers["ETag"] == etag
    body = client.get(WORKSHOP + "?ref=main", headers=editor).get_json()
    body.pop("slug"), body.pop("etag")
    r = client.put(WORKSHOP, json=body, headers={**editor, "If-Match": etag})
    assert r.status_code == 200 and r.headers["ETag"] == etag
    assert commit_count(repo) == count


def test_if_match_rules(client: FlaskClient, editor: dict[str, str], repo: Path) -> None:
    etag = etag_of(client, PERSON, editor)
    count = commit_count(repo)
    r = patch(client, PERSON, {"bio": "x"}, editor, None)
    assert r.status_code == 428
    assert patch(client, PERSON, {"bio": "x"}, editor, "*").status_code == 428
    assert patch(client, PERSON, {"bio": "x"}, editor, "W/" + etag).status_code == 412
    assert patch(client, PERSON, {"bio": "x"}, editor, '"' + "0" * 40 + '"').status_code == 412
    assert client.delete(PERSON, headers=editor).status_code == 428
    assert commit_count(repo) == count
    # the 412 body carries the current item and its ETag: merge and retry without a GET
    ok = patch(client, PERSON, {"bio": "First"}, editor, etag)
    assert ok.status_code == 200
    stale = patch(client, PERSON, {"bio": "Second"}, editor, etag)
    assert stale.status_code == 412
    body = stale.get_json()
    assert body["current"]["bio"] == "First"
    assert f'"{body["etag"]}"' == ok.headers["ETag"]
    retry = patch(client, PERSON, {"bio": "Second"}, editor, body["etag"])
    assert retry.status_code == 200 and retry.get_json()["bio"] == "Second"
    # an unquoted ETag is accepted too
    unquoted = patch(client, PERSON, {"bio": "Third"}, editor, retry.get_json()["etag"])
    assert unquoted.status_code == 200


def test_if_match_may_list_several_tags(
    client: FlaskClient, editor: dict[str, str], repo: Path
) -> None:
    """RFC 9110: the write goes ahead when any listed (strong) tag is the current one."""
    etag = etag_of(client, PERSON, editor)
    other = '"' + "1" * 40 + '"'
    listed = patch(client, PERSON, {"bio": "listed"}, editor, f"{other}, {etag}")
    assert listed.status_code == 200
    new = listed.headers["ETag"]
    # the current tag only as a weak one: strong comparison, no match
    assert patch(client, PERSON, {"bio": "x"}, editor, f"{other}, W/{new}").status_code == 412
    assert patch(client, PERSON, {"bio": "y"}, editor, f"{new}, {other}").status_code == 200


def test_create_derives_the_slug_and_answers_201(
    client: FlaskClient, editor: dict[str, str], repo: Path
) -> None:
    r = client.post(
        "/api/v1/people",
        json={"name": "Ève Lefèvre-Durand", "affiliation": "Inria"},
        headers={**editor, "X-Change-Reason": "New co-organizer"},
    )
    assert r.status_code == 201
    assert r.headers["Location"].endswith("/api/v1/people/eve-lefevre-durand")
    blob = git(repo, "rev-parse", "main:people/eve-lefevre-durand.yaml").strip()
    assert r.headers["ETag"] == f'"{blob}"'
    assert (
        git(repo, "log", "-1", "--format=%s", "main").strip() == "Create people/eve-lefevre-durand"
    )
    got = client.get(r.headers["Location"] + "?ref=main", headers=editor)
    assert got.status_code == 200 and got.get_json()["name"] == "Ève Lefèvre-Durand"
    assert (
        client.post(
            "/api/v1/people", json={"name": "Ève Lefèvre-Durand"}, headers=editor
        ).status_code
        == 409
    )
    explicit = client.post(
        "/api/v1/people", json={"name": "X", "slug": "custom-slug"}, headers=editor
    )
    assert explicit.status_code == 201 and explicit.get_json()["slug"] == "custom-slug"


def test_delete_and_recreate(client: FlaskClient, editor: dict[str, str], repo: Path) -> None:
    url = "/api/v1/references/rolf-et-al-2024"
    etag = etag_of(client, url, editor)
    r = client.delete(url, headers={**editor, "If-Match": etag, "X-Change-Reason": "Duplicate"})
    assert r.status_code == 204
    assert r.headers["X-Content-Revision"] == head(repo)
    assert (
        git(repo, "log", "-1", "--format=%s", "main").strip() == "Delete references/rolf-et-al-2024"
    )
    assert client.get(url + "?ref=main", headers=editor).status_code == 404
    assert client.delete(url, headers={**editor, "If-Match": etag}).status_code == 404
    again = client.post(
        "/api/v1/references", json={"key": "Rolf et al., 2024", "year": 2024}, headers=editor
    )
    assert again.status_code == 201 and again.get_json()["slug"] == "rolf-et-al-2024"


def test_references_between_items_are_checked(
    client: FlaskClient, editor: dict[str, str], repo: Path
) -> None:
    count = commit_count(repo)
    r = patch(
        client, WORKSHOP, {"organizers": ["nobody"]}, editor, etag_of(client, WORKSHOP, editor)
    )
    assert r.status_code == 422
    assert "organizers" in r.get_json()["errors"]["json"]
    r = client.delete(PERSON, headers={**editor, "If-Match": etag_of(client, PERSON, editor)})
    assert r.status_code == 409
    assert "workshops/terrabytes-icml25" in r.get_json()["message"]
    assert commit_count(repo) == count


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"bio": 5}, "bio"),
        ({"bio": True}, "bio"),
        ({"bio": {"nested": "object"}}, "bio"),
        ({"links": "https://example.org"}, "links"),
        ({"links": [{"label": "x", "url": "javascript:alert(1)"}]}, "links"),
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"slug": "other"}, "slug"),
        ({"etag": "0" * 40}, "etag"),
        ({"author": "me"}, "author"),
        ({"id": 1}, "id"),
        ({"bio": "x" * 100_001}, "bio"),
    ],
)
def test_invalid_patches_are_422_per_field(
    client: FlaskClient, editor: dict[str, str], repo: Path, body: dict[str, Any], field: str
) -> None:
    count = commit_count(repo)
    r = patch(client, PERSON, body, editor, etag_of(client, PERSON, editor))
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["errors"]["json"]
    assert commit_count(repo) == count


def test_workshop_type_rules(client: FlaskClient, editor: dict[str, str]) -> None:
    etag = etag_of(client, WORKSHOP, editor)
    for body, field in [
        ({"start": "2025-07-19"}, "start"),
        ({"start": "2025-07-19T09:00:00"}, "start"),  # no time zone
        ({"start": 20250719}, "start"),
        ({"end": "2025-07-18T09:00:00-07:00"}, "end"),  # before start
        ({"website": "not a url"}, "website"),
    ]:
        r = patch(client, WORKSHOP, body, editor, etag)
        assert r.status_code == 422, (body, r.get_json())
        assert field in r.get_json()["errors"]["json"], (body, r.get_json())
    r = patch(client, WORKSHOP, {"start": "2025-07-19T16:00:00Z"}, editor, etag)
    assert r.status_code == 200 and r.get_json()["start"] == "2025-07-19T16:00:00+00:00"


def test_merge_patch_null_removes_an_optional_field(
    client: FlaskClient, editor: dict[str, str]
) -> None:
    etag = etag_of(client, WORKSHOP, editor)
    r = client.patch(
        WORKSHOP,
        data=json.dumps({"website": "https://example.org/terrabytes"}),
        headers={**editor, "If-Match": etag, "Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200 and r.get_json()["website"] == "https://example.org/terrabytes"
    r = patch(client, WORKSHOP, {"website": None}, editor, r.headers["ETag"])
    assert r.status_code == 200 and r.get_json()["website"] is None


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ('{"bio": "a", "bio": "b"}', "application/json", 400),
        ("[" * 100_000 + "]" * 100_000, "application/json", 400),
        (b'{"bio": "\xff\xfe"}', "application/json", 400),
        ('{"bio": "x"}', "text/plain", 415),
        ('{"bio": "x"}', "application/x-www-form-urlencoded", 415),
        ("bio=x", "multipart/form-data; boundary=x", 415),
        ('{"bio": ' + "1" * 5000 + "}", "application/json", 400),
        ("[1, 2]", "application/json", 422),
        ('"text"', "application/json", 422),
    ],
)
def test_malformed_bodies(
    client: FlaskClient,
    editor: dict[str, str],
    repo: Path,
    data: str | bytes,
    content_type: str,
    status: int,
) -> None:
    count = commit_count(repo)
    r = client.patch(
        PERSON,
        data=data,
        headers={
            **editor,
            "If-Match": etag_of(client, PERSON, editor),
            "Content-Type": content_type,
        },
    )
    assert r.status_code == status, r.get_json()
    assert r.get_json()["code"] == status
    assert commit_count(repo) == count


def test_oversized_body_is_413(client: FlaskClient, editor: dict[str, str]) -> None:
    r = client.post(
        "/api/v1/people",
        data=json.dumps({"name": "x", "bio": "y" * (2 * 1024 * 1024)}),
        headers={**editor, "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and r.get_json()["code"] == 413


def test_reason_cannot_forge_trailers_or_headers(
    client: FlaskClient, editor: dict[str, str], repo: Path
) -> None:
    etag = etag_of(client, PERSON, editor)
    forged = "Looks fine\n\nCMS-Token-Id: 999\nSigned-off-by: Mallory <m@evil>"
    r = patch(
        client, PERSON, {"bio": "a"}, editor, etag, **{"X-Change-Reason": forged.replace("\n", " ")}
    )
    assert r.status_code == 200
    commit = r.headers["X-Content-Revision"]
    trailers = git(repo, "log", "-1", "--format=%(trailers:only,unfold)", commit).split("\n")
    assert "CMS-Token-Id: 999" not in trailers
    assert not any(t.startswith("Signed-off-by") for t in trailers)
    r = patch(
        client,
        PERSON,
        {"bio": "b"},
        editor,
        r.headers["ETag"],
        **{"X-Change-Reason": "CMS-Token-Id: 7"},
    )
    commit = r.headers["X-Content-Revision"]
    trailers = git(repo, "log", "-1", "--format=%(trailers:only,unfold)", commit).split("\n")
    assert "CMS-Token-Id: 7" not in trailers
    r = patch(
        client, PERSON, {"bio": "c"}, editor, r.headers["ETag"], **{"X-Change-Reason": "x" * 1001}
    )
    assert r.status_code == 422
    # UTF-8 reasons survive the trip through latin-1 WSGI headers
    reason = "Corrigé l'accent"
    r = client.patch(
        PERSON,
        json={"bio": "d"},
        headers={
            **editor,
            "If-Match": etag_of(client, PERSON, editor),
            "X-Change-Reason": reason.encode().decode("latin-1"),
        },
    )
    assert r.status_code == 200
    assert reason in git(repo, "log", "-1", "--format=%B", r.headers["X-Content-Revision"])


@pytest.mark.parametrize("role", ["anonymous", "auditor"])
def test_writes_need_the_editor_role(
    client: FlaskClient, tokens: dict[str, dict[str, str]], repo: Path, role: str
) -> None:
    auth = tokens.get(role, {})
    count = commit_count(repo)
    etag = etag_of(client, PERSON, tokens["auditor"])
    for r in (
        client.post("/api/v1/people", json={"name": "X"}, headers=auth),
        client.patch(PERSON, json={"bio": "x"}, headers={**auth, "If-Match": etag}),
        client.put(PERSON, json={"name": "x"}, headers={**auth, "If-Match": etag}),
        client.delete(PERSON, headers={**auth, "If-Match": etag}),
        client.post("/api/v1/people", data="garbage", headers=auth),
        client.patch(PERSON, json={"nope": 1}, headers=auth),  # invalid, but who asks first
        client.put(PERSON, data="{", headers={**auth, "Content-Type": "application/json"}),
        client.post(PERSON + "/revert", json={}, headers={**auth, "If-Match": etag}),
        client.post(PERSON + "/publish", headers={**auth, "X-Change-Reason": "x" * 5000}),
        client.post("/api/v1/publish", headers={**auth, "X-Change-Reason": "x" * 5000}),
        client.post("/api/v1/releases", json={}, headers=auth),
        client.post("/api/v1/releases", data="garbage", headers=auth),
    ):
        expected = 401 if role == "anonymous" else 403
        assert r.status_code == expected
        if expected == 401:
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert commit_count(repo) == count


def test_put_replaces_the_whole_item(client: FlaskClient, editor: dict[str, str]) -> None:
    etag = etag_of(client, PERSON, editor)
    r = client.put(PERSON, json={"name": "Valentin Barriere"}, headers={**editor, "If-Match": etag})
    assert r.status_code == 200
    assert r.get_json()["role"] == "" and r.get_json()["name"] == "Valentin Barriere"
    r = client.put(PERSON, json={"role": "x"}, headers={**editor, "If-Match": r.headers["ETag"]})
    assert r.status_code == 422 and "name" in r.get_json()["errors"]["json"]
    missing = client.put(
        "/api/v1/people/nobody", json={"name": "N"}, headers={**editor, "If-Match": etag}
    )
    assert missing.status_code == 404


def test_every_write_is_indexed_at_once(
    client: FlaskClient, editor: dict[str, str], svc: ContentService
) -> None:
    etag = etag_of(client, PERSON, editor)
    patch(client, PERSON, {"affiliation": "Somewhere"}, editor, etag)
    assert svc.check() == []


# --- the write path works the new version out before the lock: what lands in between -------


def _meanwhile(monkeypatch: pytest.MonkeyPatch, svc: ContentService, other_write: Any) -> list[str]:
    """Run other_write once, after the next write has planned (unlocked) and before it locks."""
    original = svc._plan_unlocked
    done: list[str] = []

    def plan_then_interleave(*args: Any, **kwargs: Any) -> Any:
        plan = original(*args, **kwargs)
        if not done:
            done.append("x")
            other_write()
        return plan

    monkeypatch.setattr(svc, "_plan_unlocked", plan_then_interleave)
    return done


def test_an_edit_of_another_item_in_between_is_kept(
    client: FlaskClient, editor: dict[str, str], repo: Path, svc: ContentService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    person_etag = etag_of(client, PERSON, editor)
    workshop_etag = etag_of(client, WORKSHOP, editor)
    _meanwhile(monkeypatch, svc, lambda: patch(client, PERSON, {"bio": "B"}, editor, person_etag))
    r = patch(client, WORKSHOP, {"location": "Vancouver, Canada"}, editor, workshop_etag)
    assert r.status_code == 200
    # both commits, in order, each changing its own file; the index agrees with git
    subjects = git(repo, "log", "-2", "--format=%s", "main").split("\n")[:2]
    assert subjects == ["Update workshops/terrabytes-icml25", "Update people/valentin-barriere"]
    assert "bio: B" in git(repo, "show", "main:people/valentin-barriere.yaml")
    assert "Vancouver, Canada" in git(repo, "show", "main:workshops/terrabytes-icml25.yaml")
    assert svc.check() == []


def test_an_edit_of_the_same_item_in_between_wins(
    client: FlaskClient, editor: dict[str, str], repo: Path, svc: ContentService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    etag = etag_of(client, PERSON, editor)
    _meanwhile(monkeypatch, svc, lambda: patch(client, PERSON, {"bio": "first"}, editor, etag))
    r = patch(client, PERSON, {"bio": "second"}, editor, etag)
    assert r.status_code == 412
    assert r.get_json()["current"]["bio"] == "first"
    assert "bio: first" in git(repo, "show", "main:people/valentin-barriere.yaml")
    assert git(repo, "log", "-1", "--format=%s", "main").strip() == (
        "Update people/valentin-barriere"
    )
    assert svc.check() == []


def test_a_link_removed_in_between_is_refused(
    client: FlaskClient, editor: dict[str, str], repo: Path, svc: ContentService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    r = client.post("/api/v1/people", json={"name": "Eve"}, headers=editor)
    assert r.status_code == 201
    eve_etag = r.headers["ETag"]
    before = head(repo)
    organizers = client.get(WORKSHOP + "?ref=main", headers=editor).get_json()["organizers"]
    _meanwhile(
        monkeypatch, svc,
        lambda: client.delete("/api/v1/people/eve", headers={**editor, "If-Match": eve_etag}),
    )  # fmt: skip
    r = patch(
        client, WORKSHOP, {"organizers": [*organizers, "eve"]}, editor,
        etag_of(client, WORKSHOP, editor),
    )  # fmt: skip
    assert r.status_code == 422
    assert "eve" in json.dumps(r.get_json()["errors"])
    # the delete landed, the workshop did not change
    assert git(repo, "log", "-1", "--format=%s", "main").strip() == "Delete people/eve"
    assert git(repo, "rev-parse", "main^").strip() == before
    assert svc.check() == []


@pytest.mark.parametrize("role", ["anonymous", "auditor", "editor"])
def test_admin_operations_authenticate_before_they_validate(
    client: FlaskClient, tokens: dict[str, dict[str, str]], role: str
) -> None:
    auth = tokens.get(role, {})
    expected = 401 if role == "anonymous" else 403
    for r in (
        client.post("/api/v1/releases", json={}, headers=auth),
        client.post("/api/v1/releases", json={"name": "../x"}, headers=auth),
        client.post("/api/v1/publish", headers={**auth, "X-Change-Reason": "x" * 5000}),
        client.post(PERSON + "/publish", headers={**auth, "X-Change-Reason": "x" * 5000}),
    ):
        assert r.status_code == expected, r.get_json()
    if role == "anonymous":  # reads that need a role, with bad parameters: 401 first too
        for url in ("/api/v1/history?page=0", PERSON + "/history?page=x", PERSON + "/diff"):
            assert client.get(url).status_code == 401


def test_head_answers_carry_the_gets_cache_headers(
    client: FlaskClient, tokens: dict[str, dict[str, str]]
) -> None:
    for headers in ({}, tokens["auditor"]):
        get, head = client.get(PERSON, headers=headers), client.head(PERSON, headers=headers)
        assert head.status_code == 200 and head.data == b""
        for name in ("Cache-Control", "Vary", "ETag"):
            assert head.headers.get(name) == get.headers.get(name), name
    assert "private" in client.head(PERSON, headers=tokens["auditor"]).headers["Cache-Control"]
