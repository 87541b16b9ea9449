"""The routes the editor app needs from the public API: who am I, Markdown previews, search,
and the spec naming what each slug field points to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient

SPEC = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


@pytest.mark.parametrize("role", ["auditor", "editor", "admin"])
def test_me_names_the_token_and_its_role(
    client: FlaskClient, tokens: dict[str, dict[str, str]], role: str
) -> None:
    r = client.get("/api/v1/me", headers=tokens[role])
    assert r.status_code == 200
    assert r.get_json() == {
        "name": f"Test {role.title()}" if role != "editor" else "Valentin Barriere",
        "email": f"{role}@example.org",
        "role": role,
    }
    assert "private" in r.headers["Cache-Control"] or "no-store" in r.headers["Cache-Control"]


def test_me_without_or_with_a_bad_token_is_401(client: FlaskClient) -> None:
    assert client.get("/api/v1/me").status_code == 401
    r = client.get("/api/v1/me", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert r.get_json()["code"] == 401


def test_render_is_the_sites_own_sanitiser(
    client: FlaskClient, tokens: dict[str, dict[str, str]]
) -> None:
    text = "# Hi\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) *ok*"
    r = client.post("/api/v1/render", json={"markdown": text}, headers=tokens["editor"])
    assert r.status_code == 200
    html = r.get_json()["html"]
    assert "<h1>Hi</h1>" in html
    assert "<em>ok</em>" in html
    assert "<script" not in html
    assert 'href="javascript' not in html  # left as inert text


@pytest.mark.parametrize(
    ("body", "status"),
    [({}, 422), ({"markdown": 3}, 422), ({"markdown": "x" * 100_001}, 422), ([], 422)],
)
def test_render_refuses_bad_input(
    client: FlaskClient, tokens: dict[str, dict[str, str]], body: object, status: int
) -> None:
    r = client.post("/api/v1/render", json=body, headers=tokens["editor"])
    assert r.status_code == status
    assert r.get_json()["code"] == status


def test_render_needs_an_editor(client: FlaskClient, tokens: dict[str, dict[str, str]]) -> None:
    assert client.post("/api/v1/render", json={"markdown": "x"}).status_code == 401
    r = client.post("/api/v1/render", json={"markdown": "x"}, headers=tokens["auditor"])
    assert r.status_code == 403


def test_search_by_title_or_slug_ignoring_case(
    client: FlaskClient, tokens: dict[str, dict[str, str]]
) -> None:
    r = client.get("/api/v1/references?q=KATTEN")
    assert [x["slug"] for x in r.get_json()] == ["kattenborn-et-al-2022"]
    r = client.get("/api/v1/people?q=barri")
    assert [x["slug"] for x in r.get_json()] == ["valentin-barriere"]
    assert client.get("/api/v1/people?q=zzz").get_json() == []
    r = client.get("/api/v1/references?q=2022&sort=-slug&page_size=2")
    assert json.loads(r.headers["X-Pagination"])["total"] == 3
    assert client.get("/api/v1/people?q=").status_code == 422
    r = client.get("/api/v1/references?q=rolf&ref=main", headers=tokens["auditor"])
    assert [x["slug"] for x in r.get_json()] == ["rolf-et-al-2024"]


def test_search_at_a_revision(client: FlaskClient, tokens: dict[str, dict[str, str]]) -> None:
    head = client.get("/api/v1/references").headers["X-Content-Revision"]
    r = client.get(f"/api/v1/references?q=mai&at={head}")
    assert [x["slug"] for x in r.get_json()] == ["mai-et-al-2022"]


def test_spec_names_the_type_each_slug_field_links_to() -> None:
    spec = json.loads(SPEC.read_text())
    props = spec["components"]["schemas"]["TalkPatch"]["properties"]
    assert props["speakers"]["x-links-to"] == "people"
    props = spec["components"]["schemas"]["WorkshopInput"]["properties"]
    assert props["organizers"]["x-links-to"] == "people"
    assert props["author"]["x-links-to"] == "people"
