"""Versioning and audit over HTTP: history, ?at=, diffs, revert, blame, audit log, change feed."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import git
from flask.testing import FlaskClient

from cms.service import ContentService

TALK = "/api/v1/talks/keynote"


def write(client: FlaskClient, method: str, url: str, auth: dict[str, str], **kw: Any) -> Any:
    r = client.open(url, method=method, headers=auth, **kw)
    assert r.status_code in (200, 201, 204), r.get_json()
    return r


@pytest.fixture
def story(client: FlaskClient, tokens: dict[str, dict[str, str]], repo: Path) -> dict[str, Any]:
    """Create + 3 edits + revert of one item, by two editors, with a pause between edits 1 and 2."""
    ed = tokens["editor"]
    admin = tokens["admin"]
    commits, times = [], []

    def record(r: Any) -> Any:
        commits.append(r.headers["X-Content-Revision"])
        times.append(int(git(repo, "log", "-1", "--format=%ct", commits[-1])))
        return r

    r = record(write(client, "POST", "/api/v1/talks", {**ed, "X-Change-Reason": "Announce"},
                     json={"title": "Keynote", "status": "tba"}))  # fmt: skip
    etag = r.headers["ETag"]
    r = record(write(client, "PATCH", TALK, {**ed, "If-Match": etag, "X-Change-Reason": "Speaker confirmed"},
                     json={"status": "confirmed"}))  # fmt: skip
    time.sleep(1.1)  # commit times have one-second resolution
    r = record(write(client, "PATCH", TALK, {**admin, "If-Match": r.headers["ETag"], "X-Change-Reason": "Real title"},
                     json={"title": "Keynote: data at scale", "abstract": "On *petabytes*."}))  # fmt: skip
    r = record(write(client, "PATCH", TALK, {**ed, "If-Match": r.headers["ETag"], "X-Change-Reason": "Typo"},
                     json={"abstract": "On *petabytes* of EO data."}))  # fmt: skip
    r = record(write(client, "POST", TALK + "/revert", {**admin, "If-Match": r.headers["ETag"], "X-Change-Reason": "Back to the announcement"},
                     json={"to": commits[1]}))  # fmt: skip
    return {"commits": commits, "times": times, "etag": r.headers["ETag"]}


def test_history_has_every_version(
    client: FlaskClient, story: dict[str, Any], tokens: dict[str, dict[str, str]]
) -> None:
    r = client.get(TALK + "/history", headers=tokens["auditor"])
    assert r.status_code == 200
    versions = r.get_json()
    assert [v["commit"] for v in versions] == story["commits"][::-1]
    assert [v["action"] for v in versions] == ["revert", "update", "update", "update", "create"]
    assert [v["reason"] for v in versions] == [
        "Back to the announcement", "Typo", "Real title", "Speaker confirmed", "Announce",
    ]  # fmt: skip
    assert [v["author_name"] for v in versions] == [
        "Test Admin", "Valentin Barriere", "Test Admin", "Valentin Barriere", "Valentin Barriere",
    ]  # fmt: skip
    assert versions[0]["etag"] == story["etag"].strip('"')
    assert versions[0]["message"].startswith("Revert talks/keynote to ")
    page = client.get(TALK + "/history?page=2&page_size=2", headers=tokens["auditor"])
    assert [v["commit"] for v in page.get_json()] == story["commits"][::-1][2:4]
    assert '"total": 5' in page.headers["X-Pagination"]


def test_at_each_commit_returns_that_version(
    client: FlaskClient, story: dict[str, Any], tokens: dict[str, dict[str, str]]
) -> None:
    auditor = tokens["auditor"]
    seen = []
    for commit in story["commits"]:
        for rev in (commit, commit[:7]):
            r = client.get(f"{TALK}?ref=main&at={rev}", headers=auditor)
            assert r.status_code == 200 and r.headers["X-Content-Revision"] == commit
        seen.append((r.get_json()["title"], r.get_json()["status"]))
    assert seen[0] == ("Keynote", "tba") and seen[1] == ("Keynote", "confirmed")
    assert seen[3][0] == "Keynote: data at scale" and seen[4] == seen[1]
    # a time between edits 1 and 2 gives version 1 (the one in force then)
    between = datetime.fromtimestamp(story["times"][1], UTC).isoformat()
    r = client.get(f"{TALK}?ref=main&at={between}", headers=auditor)
    assert r.get_json()["status"] == "confirmed" and r.get_json()["title"] == "Keynote"
    assert r.headers["X-Content-Revision"] == story["commits"][1]
    # before the item existed: a 404 that says so
    seed = git_seed(client, auditor)
    r = client.get(f"{TALK}?ref=main&at={seed}", headers=auditor)
    assert r.status_code == 404 and "did not exist" in r.get_json()["message"]
    # lists too
    r = client.get(f"/api/v1/talks?ref=main&at={story['commits'][0]}", headers=auditor)
    assert [t["title"] for t in r.get_json()] == ["Keynote"]
    assert r.headers["X-Content-Revision"] == story["commits"][0]


def git_seed(client: FlaskClient, auth: dict[str, str]) -> str:
    return client.get("/api/v1/history?page_size=100", headers=auth).get_json()[-1]["commit"]


def test_diff_lists_exactly_the_changed_fields(
    client: FlaskClient, story: dict[str, Any], tokens: dict[str, dict[str, str]]
) -> None:
    c = story["commits"]
    r = client.get(f"{TALK}/diff?from={c[1]}&to={c[3]}", headers=tokens["auditor"])
    assert r.status_code == 200
    body = r.get_json()
    assert body["operations"] == [
        {"op": "replace", "path": "/title", "value": "Keynote: data at scale"},
        {"op": "replace", "path": "/abstract", "value": "On *petabytes* of EO data."},
    ]
    assert (
        "-title: Keynote\n" in body["patch"]
        and "+title: 'Keynote: data at scale'\n" in body["patch"]
    )
    assert body["from"]["commit"] == c[1] and body["to"]["commit"] == c[3]
    current = client.get(f"{TALK}/diff?from={c[1]}", headers=tokens["auditor"]).get_json()
    assert current["operations"] == [] and current["to"]["commit"] == c[4]


def test_revert_is_a_new_commit_and_rewrites_nothing(
    client: FlaskClient, story: dict[str, Any], repo: Path
) -> None:
    c = story["commits"]
    assert git(repo, "rev-parse", f"{c[4]}^").strip() == c[3]
    for old in c:
        git(repo, "merge-base", "--is-ancestor", old, "main")
    assert (
        git(repo, "log", "-1", "--format=%s", c[4]).strip()
        == f"Revert talks/keynote to {c[1][:12]}"
    )
    assert f"CMS-Reverted-To: {c[1]}" in git(repo, "log", "-1", "--format=%B", c[4])
    assert git(repo, "rev-parse", f"{c[4]}:talks/keynote.yaml") == git(
        repo, "rev-parse", f"{c[1]}:talks/keynote.yaml"
    )


def test_reverting_a_delete_recreates_the_item(
    client: FlaskClient, story: dict[str, Any], tokens: dict[str, dict[str, str]]
) -> None:
    ed = tokens["editor"]
    write(client, "DELETE", TALK, {**ed, "If-Match": story["etag"]})
    assert client.get(TALK + "?ref=main", headers=ed).status_code == 404
    stale = client.post(
        TALK + "/revert",
        json={"to": story["commits"][3]},
        headers={**ed, "If-Match": story["etag"]},
    )
    assert stale.status_code == 412 and stale.get_json()["etag"] == "0" * 40
    assert (
        client.post(TALK + "/revert", json={"to": story["commits"][3]}, headers=ed).status_code
        == 428
    )
    r = client.post(
        TALK + "/revert", json={"to": story["commits"][3]}, headers={**ed, "If-Match": "0" * 40}
    )
    assert r.status_code == 200 and r.get_json()["title"] == "Keynote: data at scale"
    history = client.get(TALK + "/history", headers=ed).get_json()
    assert [v["action"] for v in history[:2]] == ["revert", "delete"] and len(history) == 7


def test_blame_attributes_each_field(
    client: FlaskClient, story: dict[str, Any], tokens: dict[str, dict[str, str]]
) -> None:
    c = story["commits"]
    r = client.get(TALK + "/blame", headers=tokens["auditor"])
    assert r.status_code == 200
    fields = r.get_json()["fields"]
    assert fields["status"]["commit"] == c[1] and fields["status"]["reason"] == "Speaker confirmed"
    assert fields["status"]["value"] == "confirmed"
    # the revert set the title and abstract back
    assert fields["title"]["commit"] == c[4] and fields["title"]["author_name"] == "Test Admin"
    assert fields["abstract"]["commit"] == c[4]
    assert fields["speakers"]["commit"] == c[0] and fields["speakers"]["action"] == "create"


def test_audit_log_filters(
    client: FlaskClient, story: dict[str, Any], tokens: dict[str, dict[str, str]]
) -> None:
    auditor = tokens["auditor"]
    log = client.get("/api/v1/history", headers=auditor).get_json()
    assert [e["commit"] for e in log[:5]] == story["commits"][::-1]
    assert log[0]["changes"] == [
        {"type": "talks", "slug": "keynote", "action": "revert", "etag": story["etag"].strip('"')}
    ]
    by_admin = client.get("/api/v1/history?author=TEST%20ADMIN", headers=auditor).get_json()
    assert [e["commit"] for e in by_admin] == [story["commits"][4], story["commits"][2]]
    by_email = client.get("/api/v1/history?author=admin@example.org", headers=auditor).get_json()
    assert len(by_email) == 2
    people = client.get("/api/v1/history?type=people", headers=auditor).get_json()
    assert len(people) == 1 and people[0]["message"] == "Import seed content"
    assert len(client.get("/api/v1/history?slug=keynote", headers=auditor).get_json()) == 5
    t = story["times"]
    since = datetime.fromtimestamp(t[2], UTC).isoformat()
    assert all(
        e["commit"] in story["commits"][2:]
        for e in client.get(f"/api/v1/history?since={since}", headers=auditor).get_json()
    )
    until = datetime.fromtimestamp(t[1], UTC).isoformat()
    assert story["commits"][4] not in [
        e["commit"]
        for e in client.get(f"/api/v1/history?until={until}", headers=auditor).get_json()
    ]
    assert client.get("/api/v1/history?since=yesterday", headers=auditor).status_code == 422
    assert client.get("/api/v1/history?type=nothing", headers=auditor).status_code == 422


def test_one_commit_in_detail(
    client: FlaskClient, story: dict[str, Any], tokens: dict[str, dict[str, str]]
) -> None:
    c = story["commits"]
    r = client.get(f"/api/v1/history/{c[2][:10]}", headers=tokens["auditor"])
    assert r.status_code == 200
    d = r.get_json()
    assert d["commit"] == c[2] and d["parents"] == [c[1]]
    assert (d["author_name"], d["reason"], d["subject"]) == (
        "Test Admin",
        "Real title",
        "Update talks/keynote",
    )
    assert d["items"][0]["operations"] == [
        {"op": "replace", "path": "/title", "value": "Keynote: data at scale"},
        {"op": "replace", "path": "/abstract", "value": "On *petabytes*."},
    ]
    assert d["patch"].startswith("--- a/talks/keynote.yaml\n+++ b/talks/keynote.yaml\n")
    assert client.get("/api/v1/history/" + "0" * 40, headers=tokens["auditor"]).status_code == 404
    assert client.get("/api/v1/history/xyz", headers=tokens["auditor"]).status_code == 422


def test_change_feed_lists_every_change_once_in_order(
    client: FlaskClient,
    story: dict[str, Any],
    tokens: dict[str, dict[str, str]],
    svc: ContentService,
) -> None:
    auditor = tokens["auditor"]
    seed = git_seed(client, auditor)
    r = client.get(f"/api/v1/changes?ref=main&since={seed}", headers=auditor).get_json()
    assert [ch["commit"] for ch in r["changes"]] == story["commits"]
    assert r["next"] == story["commits"][-1] and r["complete"] is True
    # page by page with limit, following next
    since, seen = seed, []
    for _ in range(10):
        page = client.get(
            f"/api/v1/changes?ref=main&since={since}&limit=2", headers=auditor
        ).get_json()
        seen += [ch["commit"] for ch in page["changes"]]
        since = page["next"]
        if page["complete"]:
            break
    assert seen == story["commits"]
    # anonymous readers follow the published site, and from the start without since
    public = client.get("/api/v1/changes").get_json()
    assert {ch["type"] for ch in public["changes"]} == {"workshops", "people", "references"}
    gone = client.get(f"/api/v1/changes?since={story['commits'][0]}")
    assert gone.status_code == 410 and "resync" in gone.get_json()["message"]
    assert client.get("/api/v1/changes?ref=main").status_code == 401


@pytest.mark.parametrize(
    "rev",
    [
        "--upload-pack=x",
        "HEAD@{1}",
        "main~1",
        "../../x",
        "a" * 41,
        "",
        "HEAD",
        "main^",
        "-1",
        "v1..v2",
        "2025-13-45",
    ],
)
def test_malicious_revisions_are_400(
    client: FlaskClient, tokens: dict[str, dict[str, str]], rev: str
) -> None:
    auditor = tokens["auditor"]
    for url in (
        f"/api/v1/people/valentin-barriere?ref=main&at={rev}",
        f"/api/v1/people?ref=main&at={rev}",
        f"/api/v1/people/valentin-barriere/diff?from={rev}",
    ):
        r = client.get(url, headers=auditor)
        assert r.status_code == 400, (url, r.get_json())
        assert (
            "fatal" not in r.get_data(as_text=True) and "git" not in r.get_json()["message"].lower()
        )


def test_unknown_revisions_are_404(client: FlaskClient, tokens: dict[str, dict[str, str]]) -> None:
    auditor = tokens["auditor"]
    for rev in ("0" * 40, "deadbeef00", "v9", "1999-01-01T00:00:00Z"):
        r = client.get(f"/api/v1/people/valentin-barriere?ref=main&at={rev}", headers=auditor)
        assert r.status_code == 404, rev


def test_anonymous_readers_only_travel_the_published_line(
    client: FlaskClient, story: dict[str, Any]
) -> None:
    assert client.get(f"{TALK}?at={story['commits'][0]}").status_code == 404
    seed = client.get("/api/v1/workshops/terrabytes-icml25").headers["X-Content-Revision"]
    assert client.get(f"/api/v1/workshops/terrabytes-icml25?at={seed[:8]}").status_code == 200
    for url in (TALK + "/history", TALK + "/blame", f"{TALK}/diff?from={seed}", "/api/v1/history"):
        assert client.get(url).status_code == 401


def test_history_survives_delete_and_recreate(
    client: FlaskClient, tokens: dict[str, dict[str, str]]
) -> None:
    ed = tokens["editor"]
    url = "/api/v1/references/mai-et-al-2022"
    etag = client.get(url).headers["ETag"]
    write(client, "DELETE", url, {**ed, "If-Match": etag})
    write(client, "POST", "/api/v1/references", ed, json={"key": "Mai et al., 2022", "year": 2022})
    actions = [v["action"] for v in client.get(url + "/history", headers=ed).get_json()]
    assert actions == ["create", "delete", "create"]
