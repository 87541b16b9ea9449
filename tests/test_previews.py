"""Preview links: a co-organizer reads the drafts (or one commit) without an account, read-only,
until the link expires or is revoked."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from conftest import git
from flask.testing import FlaskClient
from sqlalchemy import update

from cms.previews import PreviewRow
from cms.service import ContentService

WORKSHOP = "/api/v1/workshops/terrabytes-icml25"


def fix_location(client: FlaskClient, editor: dict[str, str], location: str) -> str:
    etag = client.get(WORKSHOP + "?ref=main", headers=editor).headers["ETag"]
    r = client.patch(WORKSHOP, json={"location": location}, headers={**editor, "If-Match": etag})
    assert r.status_code == 200
    return str(r.headers["X-Content-Revision"])


def make_preview(client: FlaskClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    r = client.post("/api/v1/previews", json=body, headers=auth)
    assert r.status_code == 201, r.get_json()
    created: dict[str, Any] = r.get_json()
    return created


def test_a_preview_of_main_reads_the_drafts_as_they_move(
    client: FlaskClient, editor: dict[str, str]
) -> None:
    fix_location(client, editor, "Vancouver, Canada")
    link = make_preview(client, editor, ref="main", description="For the co-chair")
    token = link["token"]
    assert parse_qs(urlparse(link["url"]).query)["preview"] == [token]
    assert client.get(WORKSHOP).get_json()["location"] == "Vancouvert, Canada"  # public: as was
    for url in (f"{WORKSHOP}?preview={token}", f"/api/v1/workshops?preview={token}",
                f"/api/v1/site?preview={token}"):  # fmt: skip
        r = client.get(url)
        assert r.status_code == 200, url
        body = r.get_json()
        shown = (
            body["workshops"][0] if "site" in url else body[0] if isinstance(body, list) else body
        )
        assert shown["location"] == "Vancouver, Canada"
        assert r.headers["X-Robots-Tag"] == "noindex"
        assert r.headers["Cache-Control"].startswith("private")
    fix_location(client, editor, "Vancouver, BC")  # main moves: so does the preview
    assert client.get(f"{WORKSHOP}?preview={token}").get_json()["location"] == "Vancouver, BC"
    page = client.get(f"/?preview={token}")
    assert page.status_code == 200 and page.headers["X-Robots-Tag"] == "noindex"


def test_a_preview_of_a_commit_stays_on_it_and_reads_nothing_else(
    client: FlaskClient, editor: dict[str, str], repo: Path
) -> None:
    pinned = fix_location(client, editor, "Vancouver, Canada")
    token = make_preview(client, editor, commit=pinned[:12])["token"]
    fix_location(client, editor, "Somewhere else")
    r = client.get(f"{WORKSHOP}?preview={token}")
    assert r.get_json()["location"] == "Vancouver, Canada"
    assert r.headers["X-Content-Revision"] == pinned
    # read-only, and only what it was made for
    assert client.get(f"{WORKSHOP}?preview={token}&ref=main").status_code == 400
    assert client.get(f"{WORKSHOP}?preview={token}&at={pinned}").status_code == 400
    assert client.get(f"{WORKSHOP}/history?preview={token}").status_code == 401
    assert client.get(f"/api/v1/history?preview={token}").status_code == 401
    count = git(repo, "rev-list", "--count", "main")
    patch = client.patch(f"{WORKSHOP}?preview={token}", json={"location": "x"},
                         headers={"If-Match": r.headers["ETag"]})  # fmt: skip
    assert patch.status_code == 401
    assert client.post("/api/v1/previews", json={"ref": "main"},
                       headers={"Authorization": f"Bearer {token}"}).status_code == 401  # fmt: skip
    assert git(repo, "rev-list", "--count", "main") == count


def test_expiry_and_revocation_end_a_preview(
    client: FlaskClient, tokens: dict[str, dict[str, str]], svc: ContentService
) -> None:
    editor, admin = tokens["editor"], tokens["admin"]
    expiring = make_preview(client, editor, ref="main", lifetime_hours=1)
    with svc.accounts_session() as session:
        session.execute(update(PreviewRow).where(PreviewRow.id == expiring["id"])
                        .values(expires_at=0))  # fmt: skip
    gone = client.get(f"{WORKSHOP}?preview={expiring['token']}")
    assert gone.status_code == 401 and "expired" in gone.get_json()["message"]
    revoked = make_preview(client, editor, ref="main")
    url = f"{WORKSHOP}?preview={revoked['token']}"
    assert client.get(url).status_code == 200
    # another editor may not revoke it; its creator or an admin may
    other = make_preview(client, admin, ref="main")
    assert client.delete(f"/api/v1/previews/{other['id']}", headers=editor).status_code == 403
    assert client.delete(f"/api/v1/previews/{revoked['id']}", headers=editor).status_code == 204
    assert client.get(url).status_code == 401
    assert client.delete("/api/v1/previews/999999", headers=admin).status_code == 404
    # editors list their own links, admins all of them; tokens are never listed
    own = client.get("/api/v1/previews", headers=editor).get_json()
    assert {p["id"] for p in own} == {expiring["id"], revoked["id"]}
    everything = client.get("/api/v1/previews", headers=admin).get_json()
    assert {p["id"] for p in everything} >= {expiring["id"], revoked["id"], other["id"]}
    assert all("token" not in p for p in everything)
    assert client.get("/api/v1/previews", headers=tokens["auditor"]).status_code == 403
    assert client.get(f"{WORKSHOP}?preview=prv_" + "A" * 43).status_code == 401


def test_bad_preview_requests(client: FlaskClient, editor: dict[str, str]) -> None:
    for body in ({}, {"ref": "main", "commit": "abcdef1"}, {"ref": "published"},
                 {"ref": "main", "lifetime_hours": 721}, {"commit": "HEAD~1"}):  # fmt: skip
        r = client.post("/api/v1/previews", json=body, headers=editor)
        assert r.status_code in (400, 422), (body, r.get_json())
    assert (
        client.post("/api/v1/previews", json={"commit": "0" * 40}, headers=editor).status_code
        == 404
    )
    assert client.post("/api/v1/previews", json={"ref": "main"}).status_code == 401
