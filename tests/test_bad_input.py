"""The bad-input catalogue: every case gets its status and a JSON error, and changes nothing.

"Nothing" is checked with plain git (every ref) and against the index (every item of every
ref), before and after each request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import git
from flask.testing import FlaskClient

from cms import auth
from cms.index import indexed_items
from cms.service import ContentService

P = "/api/v1/people/valentin-barriere"
W = "/api/v1/workshops/terrabytes-icml25"
R = "/api/v1/references/rolf-et-al-2024"
LOOKALIKE = "v\u0430lentin-barriere"  # Cyrillic a


@dataclass
class Case:
    id: str
    method: str
    url: str
    status: int
    role: str = "editor"  # editor, admin, auditor, anonymous, revoked, malformed
    json: Any = None
    data: bytes | str | None = None
    content_type: str | None = None
    if_match: str | None = "current"  # "current": the item's ETag, None: no header
    headers: dict[str, str] = field(default_factory=dict)


def deep(n: int) -> str:
    return "[" * n + "]" * n


CASES = [
    # paths: traversal and odd slugs never reach a view
    Case("dotdot", "GET", "/api/v1/people/..", 404),
    Case("encoded-traversal", "GET", "/api/v1/people/%2e%2e%2f%2e%2e%2fetc", 404),
    Case("encoded-slash", "GET", "/api/v1/people/..%2f..%2fetc%2fpasswd", 404),
    Case("dot-git", "GET", "/api/v1/people/.git", 404),
    Case("dot-GIT", "PATCH", "/api/v1/people/.GIT", 404, json={"bio": "x"}),
    Case("nul", "GET", "/api/v1/people/valentin%00barriere", 404),
    Case("lookalike", "PATCH", f"/api/v1/people/{LOOKALIKE}", 404, json={"bio": "x"}),
    Case("101-chars", "GET", "/api/v1/people/" + "a" * 101, 404),
    Case("trailing-dash", "DELETE", "/api/v1/people/valentin-barriere-", 404),
    Case("uppercase", "GET", "/api/v1/people/Valentin-Barriere", 404),
    Case("unknown-type", "POST", "/api/v1/secrets", 404, json={"name": "x"}),
    # slugs given in bodies
    Case("slug-dotdot", "POST", "/api/v1/people", 422, json={"name": "X", "slug": ".."}),
    Case("slug-upper", "POST", "/api/v1/people", 422, json={"name": "X", "slug": "Jane"}),
    Case("slug-lookalike", "POST", "/api/v1/people", 422, json={"name": "X", "slug": LOOKALIKE}),
    Case("slug-101", "POST", "/api/v1/people", 422, json={"name": "X", "slug": "a" * 101}),
    Case("slug-trailing-dash", "POST", "/api/v1/people", 422, json={"name": "X", "slug": "jane-"}),
    Case("slug-path", "POST", "/api/v1/people", 422, json={"name": "X", "slug": "a/b"}),
    Case("slug-untitled", "POST", "/api/v1/people", 422, json={"name": "!!!"}),
    # mass assignment
    Case("mass-slug", "PATCH", P, 422, json={"slug": "other"}),
    Case("mass-id", "PATCH", P, 422, json={"id": 1}),
    Case("mass-etag", "PUT", P, 422, json={"name": "X", "etag": "0" * 40}),
    Case("mass-author-person", "PATCH", P, 422, json={"author": "mallory"}),
    Case("mass-create-id", "POST", "/api/v1/people", 422, json={"name": "X", "id": 7}),
    # type coercion
    Case("year-string", "PATCH", R, 422, json={"year": "2024"}),
    Case("year-true", "PATCH", R, 422, json={"year": True}),
    Case("year-float", "PATCH", R, 422, json={"year": 2024.5}),
    Case("name-number", "PATCH", P, 422, json={"name": 5}),
    Case("name-true", "PATCH", P, 422, json={"name": True}),
    Case("name-object", "PATCH", P, 422, json={"name": {"first": "V"}}),
    Case("date-number", "PATCH", W, 422, json={"start": 20250719}),
    Case("date-naive", "PATCH", W, 422, json={"start": "2025-07-19T09:00:00"}),
    Case("organizers-string", "PATCH", W, 422, json={"organizers": "valentin-barriere"}),
    Case("organizers-unknown", "PATCH", W, 422, json={"organizers": ["mallory"]}),
    # sizes
    Case("huge-string", "PATCH", P, 422, json={"bio": "x" * 200_000}),
    Case("huge-array", "PATCH", W, 422, json={"organizers": ["valentin-barriere"] * 10_000}),
    Case(
        "oversized-body",
        "PATCH",
        P,
        413,
        data=json.dumps({"bio": "x" * 1_200_000}),
        content_type="application/json",
    ),
    Case("deep-json", "PATCH", P, 400, data=deep(100_000), content_type="application/json"),
    Case(
        "deep-json-object",
        "POST",
        "/api/v1/people",
        400,
        data='{"a":' * 50_000 + "1" + "}" * 50_000,
        content_type="application/json",
    ),
    # encodings and syntax
    Case(
        "invalid-utf8",
        "PATCH",
        P,
        400,
        data=b'{"bio": "\xc3\x28"}',
        content_type="application/json",
    ),
    Case(
        "duplicate-keys",
        "PATCH",
        P,
        400,
        data='{"bio": "a", "bio": "b"}',
        content_type="application/json",
    ),
    Case(
        "truncated-json",
        "POST",
        "/api/v1/people",
        400,
        data='{"name": "x"',
        content_type="application/json",
    ),
    Case("json-array-body", "POST", "/api/v1/people", 422, json=[{"name": "x"}]),
    Case("json-null-body", "PATCH", P, 422, data="null", content_type="application/json"),
    Case("nan", "PATCH", R, 400, data='{"year": NaN}', content_type="application/json"),
    Case(
        "huge-int",
        "PATCH",
        R,
        400,
        data='{"year": ' + "9" * 5000 + "}",
        content_type="application/json",
    ),
    # media types
    Case("text-plain", "PATCH", P, 415, data='{"bio": "x"}', content_type="text/plain"),
    Case(
        "form",
        "POST",
        "/api/v1/people",
        415,
        data="name=x",
        content_type="application/x-www-form-urlencoded",
    ),
    Case("no-content-type", "POST", "/api/v1/people", 415, data='{"name": "x"}'),
    Case("xml", "PUT", P, 415, data="<name>x</name>", content_type="application/xml"),
    # the reason header
    Case(
        "reason-too-long",
        "PATCH",
        P,
        422,
        json={"bio": "x"},
        headers={"X-Change-Reason": "y" * 1001},
    ),
    Case(
        "reason-not-utf8",
        "PATCH",
        P,
        422,
        json={"bio": "x"},
        headers={"X-Change-Reason": "\xc3\x28"},
    ),
    # preconditions
    Case("if-match-star", "PATCH", P, 428, json={"bio": "x"}, if_match="*"),
    Case("if-match-missing", "PATCH", P, 428, json={"bio": "x"}, if_match=None),
    Case("if-match-weak", "PATCH", P, 412, json={"bio": "x"}, if_match="weak"),
    Case("if-match-garbage", "DELETE", R, 412, if_match='"not-an-etag"'),
    Case(
        "if-match-list-stale",
        "PATCH",
        P,
        412,
        json={"bio": "x"},
        if_match='"' + "1" * 40 + '", W/"' + "2" * 40 + '"',
    ),
    Case("if-match-empty-tag", "DELETE", R, 412, if_match='""'),
    Case("if-match-empty-in-list", "PATCH", P, 412, json={"bio": "x"}, if_match='"", W/"x"'),
    Case("delete-referenced", "DELETE", P, 409),
    Case("create-existing", "POST", "/api/v1/people", 409, json={"name": "Valentin Barriere"}),
    # pagination
    Case("page-zero", "GET", "/api/v1/people?page=0", 422),
    Case("page-negative", "GET", "/api/v1/people?page=-1", 422),
    Case("page-size-huge", "GET", "/api/v1/people?page_size=100000", 422),
    Case("page-size-zero", "GET", "/api/v1/people?page_size=0", 422),
    Case("page-text", "GET", "/api/v1/people?page=abc", 422),
    Case("sort-unknown", "GET", "/api/v1/people?sort=__class__", 422),
    # revisions
    Case("at-reflog", "GET", P + "?ref=main&at=HEAD@%7B1%7D", 400, role="auditor"),
    Case("at-ancestry", "GET", P + "?ref=main&at=main~1", 400, role="auditor"),
    Case("at-option", "GET", P + "?ref=main&at=--output=/tmp/x", 400, role="auditor"),
    Case("at-41-hex", "GET", P + "?ref=main&at=" + "a" * 41, 400, role="auditor"),
    Case("diff-from-traversal", "GET", P + "/diff?from=../../x", 400, role="auditor"),
    Case(
        "diff-to-option",
        "GET",
        P + "/diff?from=2100-01-01T00:00:00Z&to=--upload-pack=x",
        400,
        role="auditor",
    ),
    Case("diff-from-missing", "GET", P + "/diff", 422, role="auditor"),
    Case("revert-bad-rev", "POST", P + "/revert", 400, json={"to": "HEAD~1"}),
    Case("revert-unknown", "POST", P + "/revert", 404, json={"to": "0" * 40}),
    Case("release-bad-name", "POST", "/api/v1/releases", 422, role="admin", json={"name": "../x"}),
    # tokens and roles
    Case("revoked-token", "PATCH", P, 401, role="revoked", json={"bio": "x"}),
    Case("malformed-token", "PATCH", P, 401, role="malformed", json={"bio": "x"}),
    Case("unknown-token", "PATCH", P, 401, role="unknown", json={"bio": "x"}),
    Case("anonymous-write", "POST", "/api/v1/people", 401, role="anonymous", json={"name": "X"}),
    Case("auditor-write", "PATCH", P, 403, role="auditor", json={"bio": "x"}),
    Case("editor-publish", "POST", "/api/v1/publish", 403),
    Case("editor-release", "POST", "/api/v1/releases", 403, json={"name": "v9"}),
    Case("anonymous-drafts", "GET", P + "?ref=main", 401, role="anonymous"),
    Case("anonymous-history", "GET", "/api/v1/history", 401, role="anonymous"),
]


@pytest.fixture
def credentials(
    svc: ContentService, tokens: dict[str, dict[str, str]]
) -> dict[str, dict[str, str]]:
    with svc.accounts_session() as session:
        token, secret = auth.create_token(session, "Gone", "gone@example.org", "editor")
        auth.revoke_token(session, token.id)
    return {
        **tokens,
        "anonymous": {},
        "revoked": {"Authorization": f"Bearer {secret}"},
        "malformed": {"Authorization": "Bearer not a token"},
        "unknown": {"Authorization": "Bearer cms_" + "A" * 43},
    }


def state(svc: ContentService, repo: Path) -> tuple[str, dict[str, Any]]:
    with svc.read_session() as session:
        items = {
            ref: indexed_items(session, ref) for ref in ("refs/heads/main", "refs/heads/published")
        }
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)"), items


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(
    client: FlaskClient, svc: ContentService, repo: Path,
    credentials: dict[str, dict[str, str]], case: Case,
) -> None:  # fmt: skip
    headers = {**credentials[case.role], **case.headers}
    if case.if_match is not None and case.method in ("PUT", "PATCH", "DELETE", "POST"):
        current = client.get(case.url.split("?")[0] + "?ref=main", headers=credentials["editor"])
        etag = current.headers.get("ETag", '"' + "0" * 40 + '"')
        headers["If-Match"] = {
            "current": etag,
            "weak": "W/" + etag,
            "list": f'"{"1" * 40}", {etag}',
        }.get(case.if_match, case.if_match)
    if case.content_type:
        headers["Content-Type"] = case.content_type
    before = state(svc, repo)
    kwargs: dict[str, Any] = {"headers": headers}
    if case.json is not None:
        kwargs["json"] = case.json
    elif case.data is not None:
        kwargs["data"] = case.data
    r = client.open(case.url, method=case.method, **kwargs)
    assert r.status_code == case.status, r.get_data(as_text=True)[:500]
    body = r.get_json()
    assert body["code"] == case.status and body["message"], body
    assert "Traceback" not in r.get_data(as_text=True)
    assert state(svc, repo) == before, "a rejected request changed git or the index"


def test_the_catalogue_is_long_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/publish/schedule/29251582065",
        "/api/v1/webhooks/2147483648",
        "/api/v1/webhooks/1/deliveries/99999999999/redeliver",
        "/api/v1/previews/99999999999",
    ],
)
def test_an_id_beyond_32_bits_names_nothing(
    client: FlaskClient, tokens: dict[str, dict[str, str]], path: str
) -> None:
    """Found by the fuzzer on PostgreSQL: such an id reached the database as 'integer out
    of range' and came back as a 503."""
    method = "POST" if path.endswith("redeliver") else "DELETE" if "previews" in path else "GET"
    r = client.open(path, method=method, headers=tokens["admin"])
    assert r.status_code == 404 and r.is_json
