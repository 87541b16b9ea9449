"""Drafts and the public site, releases, the site bundle, rendered Markdown, CORS."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import git
from flask import Flask
from flask.testing import FlaskClient

from cms.app import create_app
from cms.delivery import render_markdown

WORKSHOP = "/api/v1/workshops/terrabytes-icml25"


def fix_location(client: FlaskClient, auth: dict[str, str]) -> Any:
    etag = client.get(WORKSHOP + "?ref=main", headers=auth).headers["ETag"]
    r = client.patch(
        WORKSHOP, json={"location": "Vancouver, Canada"}, headers={**auth, "If-Match": etag}
    )
    assert r.status_code == 200
    return r


def count(repo: Path, ref: str) -> int:
    return int(git(repo, "rev-list", "--count", ref))


def test_a_draft_is_invisible_until_published(
    client: FlaskClient, tokens: dict[str, dict[str, str]], repo: Path
) -> None:
    fix_location(client, tokens["editor"])
    assert client.get(WORKSHOP).get_json()["location"] == "Vancouvert, Canada"
    assert client.get("/api/v1/site").get_json()["workshops"][0]["location"] == "Vancouvert, Canada"
    pending = client.get("/api/v1/publish/pending", headers=tokens["auditor"]).get_json()
    assert pending == [
        {
            "type": "workshops",
            "slug": "terrabytes-icml25",
            "action": "update",
            "etag": git(repo, "rev-parse", "main:workshops/terrabytes-icml25.yaml").strip(),
            "published_etag": git(
                repo, "rev-parse", "published:workshops/terrabytes-icml25.yaml"
            ).strip(),
            "operations": [{"op": "replace", "path": "/location", "value": "Vancouver, Canada"}],
        }
    ]
    # an editor cannot publish; an admin can
    assert client.post("/api/v1/publish", headers=tokens["editor"]).status_code == 403
    assert client.post("/api/v1/publish").status_code == 401
    r = client.post("/api/v1/publish", headers={**tokens["admin"], "X-Change-Reason": "Typo fixed"})
    assert r.status_code == 200 and r.get_json()["changed"] is True
    commit = r.get_json()["commit"]
    assert client.get(WORKSHOP).get_json()["location"] == "Vancouver, Canada"
    # a merge commit of (published, main) whose message says who and why
    parents = git(repo, "log", "-1", "--format=%P", commit).split()
    assert parents == [
        git(repo, "rev-parse", "published^1").strip(),
        git(repo, "rev-parse", "main").strip(),
    ]
    message = git(repo, "log", "-1", "--format=%B", commit)
    assert message.startswith("Publish the site (by Test Admin)\n\nTypo fixed\n")
    assert git(repo, "log", "--first-parent", "--format=%s", "published").split("\n")[0] == (
        "Publish the site (by Test Admin)"
    )
    assert client.get("/api/v1/publish/pending", headers=tokens["auditor"]).get_json() == []
    # nothing pending: no commit
    before = count(repo, "published")
    again = client.post("/api/v1/publish", headers=tokens["admin"])
    assert again.status_code == 200 and again.get_json() == {"commit": commit, "changed": False}
    assert count(repo, "published") == before


def test_publishing_one_item_changes_one_file(
    client: FlaskClient, tokens: dict[str, dict[str, str]], repo: Path
) -> None:
    ed, admin = tokens["editor"], tokens["admin"]
    fix_location(client, ed)
    r = client.post("/api/v1/people", json={"name": "Jane Doe"}, headers=ed)
    assert r.status_code == 201
    r = client.post("/api/v1/people/jane-doe/publish", headers=admin)
    assert r.status_code == 200 and r.get_json()["changed"]
    commit = r.get_json()["commit"]
    assert git(repo, "diff-tree", "--no-commit-id", "--name-only", "-r", commit).split() == [
        "people/jane-doe.yaml"
    ]
    assert client.get("/api/v1/people/jane-doe").status_code == 200
    assert client.get(WORKSHOP).get_json()["location"] == "Vancouvert, Canada"  # still a draft
    assert (
        client.post("/api/v1/people/jane-doe/publish", headers=admin).get_json()["changed"] is False
    )
    assert client.post("/api/v1/people/nobody/publish", headers=admin).status_code == 404
    assert client.post("/api/v1/people/jane-doe/publish", headers=ed).status_code == 403


def test_publishing_an_item_that_refers_to_drafts_is_refused(
    client: FlaskClient, tokens: dict[str, dict[str, str]]
) -> None:
    ed, admin = tokens["editor"], tokens["admin"]
    client.post("/api/v1/people", json={"name": "Jane Doe"}, headers=ed)
    r = client.post(
        "/api/v1/talks", json={"title": "Keynote", "speakers": ["jane-doe"]}, headers=ed
    )
    assert r.status_code == 201
    refused = client.post("/api/v1/talks/keynote/publish", headers=admin)
    assert refused.status_code == 409 and "speakers" in refused.get_json()["errors"]["json"]
    client.post("/api/v1/people/jane-doe/publish", headers=admin)
    assert client.post("/api/v1/talks/keynote/publish", headers=admin).status_code == 200
    site = client.get("/api/v1/site").get_json()
    assert site["talks"][0]["speakers"][0]["name"] == "Jane Doe"


def test_release_and_site_at_release(
    client: FlaskClient, tokens: dict[str, dict[str, str]], repo: Path
) -> None:
    admin = tokens["admin"]
    bundle = client.get("/api/v1/site")
    r = client.post(
        "/api/v1/releases", json={"name": "v1", "message": "Camera ready"}, headers=admin
    )
    assert r.status_code == 201 and r.headers["Location"].endswith("/api/v1/releases/v1")
    assert r.get_json()["commit"] == git(repo, "rev-parse", "published").strip()
    assert git(repo, "cat-file", "-t", "v1").strip() == "tag"
    assert "Camera ready" in git(repo, "cat-file", "-p", "v1")
    fix_location(client, tokens["editor"])
    client.post("/api/v1/publish", headers=admin)
    assert client.get("/api/v1/site").get_json() != bundle.get_json()
    at = client.get("/api/v1/site?at=v1")
    assert at.status_code == 200 and at.get_json() == bundle.get_json()
    assert client.get(WORKSHOP + "?at=v1").get_json()["location"] == "Vancouvert, Canada"
    assert [x["name"] for x in client.get("/api/v1/releases").get_json()] == ["v1"]
    assert client.get("/api/v1/releases/v1").get_json()["message"] == "Camera ready"
    assert client.post("/api/v1/releases", json={"name": "v1"}, headers=admin).status_code == 409
    for bad in ("../x", "-v", "v 1", "HEAD", "deadbeef", "a..b", "v1.lock", "", "x" * 101, "main"):
        r = client.post("/api/v1/releases", json={"name": bad}, headers=admin)
        assert r.status_code == 422, bad
    assert (
        client.post("/api/v1/releases", json={"name": "v2"}, headers=tokens["editor"]).status_code
        == 403
    )
    assert client.get("/api/v1/releases/nope").status_code == 404


def test_site_bundle_expands_references_and_caches(client: FlaskClient, repo: Path) -> None:
    r = client.get("/api/v1/site")
    assert r.status_code == 200
    site = r.get_json()
    head = git(repo, "rev-parse", "published").strip()
    assert r.headers["ETag"] == f'"{head}"' and site["revision"] == head
    assert "public" in r.headers["Cache-Control"] and "max-age" in r.headers["Cache-Control"]
    w = site["workshops"][0]
    assert w["organizers"][0]["name"] == "Valentin Barriere"
    assert w["author"]["name"] == "Valentin Barriere"
    assert len(site["references"]) == 6 and site["talks"] == []
    assert (
        client.get("/api/v1/site", headers={"If-None-Match": r.headers["ETag"]}).status_code == 304
    )
    immutable = client.get(f"/api/v1/site?at={head}")
    assert "immutable" in immutable.headers["Cache-Control"]


def test_markdown_is_served_as_stored_and_rendered_on_request(client: FlaskClient) -> None:
    plain = client.get(WORKSHOP).get_json()
    assert "motivation_html" not in plain
    rendered = client.get(WORKSHOP + "?render=html")
    w = rendered.get_json()
    assert w["motivation"] == plain["motivation"]
    assert w["motivation_html"].startswith("<p>Earth Observation (EO) presents")
    assert rendered.headers["ETag"] != client.get(WORKSHOP).headers["ETag"]
    listed = client.get("/api/v1/people?render=html").get_json()
    assert listed[0]["bio_html"] == ""
    assert client.get(WORKSHOP + "?render=pdf").status_code == 422


XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](  javascript:alert(1))",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](javascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    "<svg onload=alert(1)>",
    '<iframe src="https://evil.example"></iframe>',
    "<body onload=alert(1)>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<form action="javascript:alert(1)"><input type=submit></form>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<details open ontoggle=alert(1)>",
    '<p onclick="alert(1)">x</p>',
    "<scr<script>ipt>alert(1)</script>",
    "<<script>script>alert(1)//<</script>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<link rel=stylesheet href="javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    "`<script>` in code is text",
]


@pytest.mark.parametrize("payload", XSS)
def test_markdown_xss_payloads_come_back_harmless(
    client: FlaskClient, tokens: dict[str, dict[str, str]], payload: str
) -> None:
    ed = tokens["editor"]
    url = "/api/v1/people/valentin-barriere"
    etag = client.get(url + "?ref=main", headers=ed).headers["ETag"]
    r = client.patch(url, json={"bio": payload}, headers={**ed, "If-Match": etag})
    assert r.status_code == 200
    served = client.get(url + "?ref=main&render=html", headers=ed).get_json()
    assert served["bio"] == payload  # stored and served as written
    assert_harmless(served["bio_html"])


SAFE_TAGS = {"a", "p", "code", "em", "strong", "img", "pre", "br", "ul", "ol", "li", "blockquote"}


class _Audit(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in SAFE_TAGS:
            self.problems.append(f"tag <{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"attribute {name}")
            if name in ("href", "src") and not re.match(
                r"^(https?:|mailto:|[^:]*$)", (value or "").strip(), re.I
            ):
                self.problems.append(f"{name}={value}")


def assert_harmless(html: str) -> None:
    """Text may mention anything; no element, attribute or URL in the HTML may run code."""
    audit = _Audit()
    audit.feed(html)
    assert audit.problems == [], (html, audit.problems)


def test_rendering_keeps_ordinary_markdown() -> None:
    out = render_markdown("**bold** and [a link](https://example.org) (Rolf et al., 2024)")
    assert "<strong>bold</strong>" in out
    assert 'href="https://example.org"' in out and 'rel="noopener noreferrer nofollow"' in out
    assert "(Rolf et al., 2024)" in out


@pytest.fixture
def cors_app(config: dict[str, Any]) -> Any:
    app: Flask = create_app({**config, "CORS_ORIGINS": "https://site.example"})
    yield app
    app.extensions["cms"].dispose()


def test_cors_preflight_and_exposed_headers(cors_app: Flask) -> None:
    client = cors_app.test_client()
    pre = client.options(
        WORKSHOP,
        headers={
            "Origin": "https://site.example",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "Authorization, Content-Type, If-Match, X-Change-Reason",
        },
    )
    assert pre.status_code == 200
    assert pre.headers["Access-Control-Allow-Origin"] == "https://site.example"
    assert "PATCH" in pre.headers["Access-Control-Allow-Methods"]
    allowed = pre.headers["Access-Control-Allow-Headers"].lower()
    for header in ("if-match", "x-change-reason", "authorization", "content-type"):
        assert header in allowed
    r = client.get(WORKSHOP, headers={"Origin": "https://site.example"})
    exposed = r.headers["Access-Control-Expose-Headers"]
    for header in ("ETag", "X-Pagination", "X-Content-Revision"):
        assert header in exposed
    other = client.get(WORKSHOP, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_the_front_page_is_served_with_a_strict_policy(client: FlaskClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and b"site.js" in r.data
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    script = client.get("/static/site.js")
    assert script.status_code == 200
    script.close()
