"""Field-level merge of concurrent edits (X-Merge-Base): different fields just work, the same
field changed differently is a 409 with the three values, nothing is ever silently lost."""

from __future__ import annotations

import concurrent.futures
import signal
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Server, git, new_token
from flask.testing import FlaskClient

from cms.app import create_app
from cms.service import ContentService

WORKSHOP = "/api/v1/workshops/terrabytes-icml25"
PERSON = "/api/v1/people/valentin-barriere"


def etag_of(client: FlaskClient, url: str, auth: dict[str, str]) -> str:
    return str(client.get(url + "?ref=main", headers=auth).headers["ETag"])


def merge_patch(client: FlaskClient, url: str, body: dict[str, Any], auth: dict[str, str],
                base: str, reason: str = "") -> Any:  # fmt: skip
    headers = {**auth, "X-Merge-Base": base}
    if reason:
        headers["X-Change-Reason"] = reason
    return client.patch(url, json=body, headers=headers)


def commits(repo: Path) -> int:
    return int(git(repo, "rev-list", "--count", "main"))


def test_two_editors_on_different_fields_both_keep_their_work(
    client: FlaskClient, editor: dict[str, str], repo: Path, svc: ContentService
) -> None:
    base = etag_of(client, WORKSHOP, editor)
    first = merge_patch(client, WORKSHOP, {"location": "Vancouver, Canada"}, editor, base, "Typo")
    assert first.status_code == 200 and first.headers["X-Merged"] == "false"
    second = merge_patch(client, WORKSHOP, {"website_note": "Soon"}, editor, base, "Note")
    assert second.status_code == 200 and second.headers["X-Merged"] == "true"
    item = second.get_json()
    assert item["location"] == "Vancouver, Canada" and item["website_note"] == "Soon"
    message = git(repo, "log", "-1", "--format=%B", "main")
    assert f"CMS-Merge-Base: {base.strip(chr(34))}" in message and "Note" in message
    assert "CMS-Merge-Base" not in git(repo, "log", "-1", "--format=%B", "main~1")
    # the file changed only in the merged field
    diff = git(repo, "diff", "main~1", "main", "--", "workshops/terrabytes-icml25.yaml")
    assert [line for line in diff.splitlines() if line.startswith(("+", "-")) and
            not line.startswith(("+++", "---"))] == ["-website_note: More info in our website!", "+website_note: Soon"]  # fmt: skip
    assert svc.check() == []


def test_the_same_field_changed_differently_is_a_conflict_with_three_values(
    client: FlaskClient, editor: dict[str, str], repo: Path
) -> None:
    base = etag_of(client, WORKSHOP, editor)
    assert merge_patch(client, WORKSHOP, {"location": "Vancouver"}, editor, base).status_code == 200
    count = commits(repo)
    r = merge_patch(client, WORKSHOP, {"location": "Vancouver, BC", "event": "ICML"}, editor, base)
    assert r.status_code == 409
    body = r.get_json()
    assert body["conflicts"] == {
        "location": {"base": "Vancouvert, Canada", "theirs": "Vancouver", "yours": "Vancouver, BC"}
    }
    assert body["current"]["location"] == "Vancouver" and f'"{body["etag"]}"' == etag_of(
        client, WORKSHOP, editor
    )
    assert commits(repo) == count  # nothing written, not even the field without a conflict
    # resolve: retry from the current version
    retry = merge_patch(
        client, WORKSHOP, {"location": "Vancouver, BC"}, editor, f'"{body["etag"]}"'
    )
    assert retry.status_code == 200 and retry.get_json()["location"] == "Vancouver, BC"


def test_equal_changes_are_no_conflict(
    client: FlaskClient, editor: dict[str, str], repo: Path
) -> None:
    base = etag_of(client, WORKSHOP, editor)
    assert merge_patch(client, WORKSHOP, {"location": "Vancouver"}, editor, base).status_code == 200
    count = commits(repo)
    same = merge_patch(client, WORKSHOP, {"location": "Vancouver"}, editor, base)
    assert same.status_code == 200 and same.get_json()["location"] == "Vancouver"
    assert commits(repo) == count  # nothing left to change: no commit


def test_a_base_that_was_never_this_items_version_is_412(
    client: FlaskClient, editor: dict[str, str]
) -> None:
    other = etag_of(client, "/api/v1/references/rolf-et-al-2024", editor)
    assert (
        merge_patch(client, WORKSHOP, {"location": "x"}, editor, '"' + "1" * 40 + '"').status_code
        == 412
    )
    assert merge_patch(client, WORKSHOP, {"location": "x"}, editor, other).status_code == 412
    both = client.patch(WORKSHOP, json={"location": "x"},
                        headers={**editor, "If-Match": other, "X-Merge-Base": other})  # fmt: skip
    assert both.status_code == 400
    bad = merge_patch(client, WORKSHOP, {"location": "x"}, editor, "W/yesterday")
    assert bad.status_code == 422 and "X-Merge-Base" in bad.get_json()["errors"]["headers"]


def test_markdown_edits_to_different_paragraphs_merge_line_by_line(
    client: FlaskClient, editor: dict[str, str]
) -> None:
    text = "First paragraph.\n\nSecond paragraph.\n\nThird paragraph.\n"
    put = client.patch(WORKSHOP, json={"initiative": text},
                       headers={**editor, "If-Match": etag_of(client, WORKSHOP, editor)})  # fmt: skip
    base = put.headers["ETag"]
    one = text.replace("First paragraph.", "First paragraph, revised.")
    two = text.replace("Third paragraph.", "Third paragraph, revised.")
    assert merge_patch(client, WORKSHOP, {"initiative": one}, editor, base).status_code == 200
    merged = merge_patch(client, WORKSHOP, {"initiative": two}, editor, base)
    assert merged.status_code == 200 and merged.headers["X-Merged"] == "true"
    assert merged.get_json()["initiative"] == (
        "First paragraph, revised.\n\nSecond paragraph.\n\nThird paragraph, revised.\n"
    )
    # the same line changed on both sides: a conflict, reported like any other
    clash = merge_patch(client, WORKSHOP, {"initiative": text.replace("First", "Premier")},
                        editor, base)  # fmt: skip
    assert clash.status_code == 409 and set(clash.get_json()["conflicts"]) == {"initiative"}


def test_put_merges_too_and_deletes_never_do(client: FlaskClient, editor: dict[str, str]) -> None:
    base = etag_of(client, PERSON, editor)
    current = client.get(PERSON + "?ref=main", headers=editor).get_json()
    assert (
        merge_patch(client, PERSON, {"affiliation": "Somewhere"}, editor, base).status_code == 200
    )
    whole = {k: v for k, v in current.items() if k not in ("slug", "etag")}
    r = client.put(
        PERSON, json={**whole, "bio": "New bio"}, headers={**editor, "X-Merge-Base": base}
    )
    assert r.status_code == 200 and r.headers["X-Merged"] == "true"
    assert r.get_json()["affiliation"] == "Somewhere" and r.get_json()["bio"] == "New bio"
    gone = client.delete(PERSON, headers={**editor, "X-Merge-Base": base})
    assert gone.status_code == 428  # a delete needs the current ETag, always


@pytest.mark.slow
def test_ten_editors_on_ten_fields_at_once_all_land(
    config: dict[str, Any], instance: Path, db_url: str, repo: Path
) -> None:
    """10 concurrent clients, one base, 10 fields of one item, 4 gunicorn workers."""
    app = create_app(config)
    svc: ContentService = app.extensions["cms"]
    auth = {"Authorization": f"Bearer {new_token(svc, 'editor')[1]}"}
    srv = Server(instance, db_url, workers=4)
    srv.start()
    try:
        url = srv.url + WORKSHOP
        base = requests.get(url + "?ref=main", headers=auth, timeout=10).headers["ETag"]
        before = commits(repo)
        edits = {"event": "ICML 2025", "location": "Vancouver, Canada", "abstract": "A.",
                 "introduction": "I.", "motivation": "M.", "initiative": "N.",
                 "invited_talks": "Soon", "website_note": "W", "title": "TerraBytes 2025",
                 "announced_on": "2025-03-01"}  # fmt: skip

        def send(field: str) -> int:
            r = requests.patch(url, json={field: edits[field]},
                               headers={**auth, "X-Merge-Base": base}, timeout=60)  # fmt: skip
            return r.status_code

        with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
            statuses = list(pool.map(send, edits))
        assert statuses == [200] * 10
        assert commits(repo) == before + 10
        final = requests.get(url + "?ref=main", headers=auth, timeout=10).json()
        assert {field: final[field] for field in edits} == edits
    finally:
        srv.kill(signal.SIGTERM)
    assert svc.check() == []
    svc.dispose()
