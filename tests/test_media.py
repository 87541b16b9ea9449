"""Media in git: uploads decided by their bytes, refusals with the right status and nothing
written, the files served immutable with ranges, and media items linked, published and reverted
like every other item, checked with plain git."""

from __future__ import annotations

import hashlib
import io
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import git as git_output
from flask.testing import FlaskClient
from PIL import Image
from test_cli import cms

H = dict[str, str]


def git(repo: Path, *args: str) -> str:
    return git_output(repo, *args).strip()


PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF\n"
)
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def image(fmt: str = "PNG", size: tuple[int, int] = (24, 16), color: str = "teal") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def upload(
    client: FlaskClient,
    auth: H,
    data: bytes,
    filename: str = "logo.png",
    content_type: str | None = None,
    **fields: str,
) -> Any:
    form: dict[str, Any] = {"file": (io.BytesIO(data), filename, content_type), **fields}
    return client.post("/api/v1/media", data=form, headers=auth, content_type="multipart/form-data")


def uploaded(client: FlaskClient, auth: H, data: bytes, **kwargs: Any) -> dict[str, Any]:
    r = upload(client, auth, data, **{"alt": "A teal square", **kwargs})
    assert r.status_code == 201, r.get_json()
    return dict(r.get_json())


@pytest.mark.parametrize(
    ("fmt", "media_type", "ext"),
    [
        ("PNG", "image/png", "png"),
        ("JPEG", "image/jpeg", "jpg"),
        ("WEBP", "image/webp", "webp"),
        ("GIF", "image/gif", "gif"),
    ],
)
def test_each_image_type_is_stored_in_git_and_served_by_its_bytes(
    client: FlaskClient, editor: H, repo: Path, fmt: str, media_type: str, ext: str
) -> None:
    data = image(fmt)
    digest = hashlib.sha256(data).hexdigest()
    # the name says nothing: the type comes from the bytes
    r = upload(client, editor, data, filename="upload.bin", alt="A teal square",
               credit="Photo: the organizers", licence="CC-BY-4.0")  # fmt: skip
    assert r.status_code == 201, r.get_json()
    item = r.get_json()
    assert item["slug"] == digest and item["sha256"] == digest
    assert item["path"] == f"media/{digest}.{ext}"
    assert (item["media_type"], item["size"]) == (media_type, len(data))
    assert (item["width"], item["height"]) == (24, 16)
    assert item["name"] == "upload.bin" and item["licence"] == "CC-BY-4.0"
    assert r.headers["Location"].endswith(f"/api/v1/media/{digest}")
    # one commit, by the editor, adding the file and its sidecar
    assert git(repo, "log", "-1", "--format=%an", "main") == "Valentin Barriere"
    files = git(repo, "show", "--name-only", "--format=", "main").split()
    assert files == [f"media/{digest}.{ext}", f"media/{digest}.yaml"]
    assert git(repo, "log", "-1", "--format=%s", "main") == f"Create media/{digest}"
    blob = git(repo, "rev-parse", f"main:media/{digest}.{ext}")
    assert blob == hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324
    sidecar = git(repo, "show", f"main:media/{digest}.yaml")
    assert f"sha256: {digest}" in sidecar and "alt: A teal square" in sidecar
    # served at its path, with its sniffed type, immutable
    r = client.get(f"/{item['path']}")
    assert r.status_code == 200 and r.data == data
    assert r.mimetype == media_type
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "immutable" in r.headers["Cache-Control"]
    assert r.headers["ETag"] == f'"{digest}"'
    assert r.headers["Accept-Ranges"] == "bytes"
    assert (
        client.get(f"/{item['path']}", headers={"If-None-Match": r.headers["ETag"]}).status_code
        == 304
    )


def test_a_pdf_needs_no_alt_and_downloads_under_its_name(client: FlaskClient, editor: H) -> None:
    r = upload(client, editor, PDF, filename="Röntgen paper.pdf")
    assert r.status_code == 201, r.get_json()
    item = r.get_json()
    assert item["media_type"] == "application/pdf" and item["width"] is None
    r = client.get(f"/{item['path']}")
    assert r.mimetype == "application/pdf" and r.data == PDF
    disposition = r.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="Rntgen paper.pdf"')
    assert "filename*=UTF-8''R%C3%B6ntgen%20paper.pdf" in disposition
    # a name edited to hold a line break or quotes never breaks the header
    url = f"/api/v1/media/{item['slug']}"
    r = client.patch(url, json={"name": 'a "quoted"\nname\\.pdf'},
                     headers={**editor, "If-Match": item["etag"]})  # fmt: skip
    assert r.status_code == 200, r.get_json()
    r = client.get(f"/{item['path']}")
    assert r.status_code == 200
    assert r.headers["Content-Disposition"].startswith('attachment; filename="a quotedname.pdf"')


def test_range_requests(client: FlaskClient, editor: H) -> None:
    data = image(size=(64, 64))
    path = uploaded(client, editor, data)["path"]
    r = client.get(f"/{path}", headers={"Range": "bytes=0-9"})
    assert r.status_code == 206 and r.data == data[:10]
    assert r.headers["Content-Range"] == f"bytes 0-9/{len(data)}"
    r = client.get(f"/{path}", headers={"Range": "bytes=-5"})
    assert r.status_code == 206 and r.data == data[-5:]
    r = client.get(f"/{path}", headers={"Range": f"bytes={len(data) + 10}-"})
    assert r.status_code == 416 and r.is_json
    assert r.headers["Content-Range"] == f"bytes */{len(data)}"
    # If-Range with a stale validator gives the whole file
    r = client.get(f"/{path}", headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert r.status_code == 200 and r.data == data
    assert client.head(f"/{path}").headers["Content-Length"] == str(len(data))


@pytest.mark.parametrize(
    ("data", "filename", "content_type", "fields", "status", "words"),
    [
        (b"hello, not an image", "notes.png", None, {"alt": "x"}, 415, "PNG, JPEG"),
        (SVG, "logo.svg", "image/svg+xml", {"alt": "x"}, 415, "SVG"),
        (b"  <svg onload='alert(1)'/>", "logo.png", None, {"alt": "x"}, 415, "SVG"),
        (image("PNG"), "logo.png", "image/jpeg", {"alt": "x"}, 422, "image/png"),
        (image("JPEG"), "logo.png", None, {"alt": "x"}, 422, "image/jpeg"),
        (image("PNG")[:60], "cut.png", None, {"alt": "x"}, 415, "PNG, JPEG"),
        (PDF[:-7], "cut.pdf", None, {}, 422, "truncated"),
        (image("PNG"), "logo.png", None, {}, 422, "text alternative"),
        (image("PNG"), "logo.png", None, {"alt": "  "}, 422, "text alternative"),
        (b"", "empty.png", None, {"alt": "x"}, 422, "empty"),
        (image("BMP"), "logo.bmp", None, {"alt": "x"}, 415, "PNG, JPEG"),
    ],
)
def test_refusals_write_nothing(
    client: FlaskClient,
    editor: H,
    repo: Path,
    data: bytes,
    filename: str,
    content_type: str | None,
    fields: dict[str, str],
    status: int,
    words: str,
) -> None:
    before = git(repo, "rev-parse", "main")
    r = upload(client, editor, data, filename=filename, content_type=content_type, **fields)
    assert r.status_code == status, r.get_json()
    assert r.is_json and words in str(r.get_json())
    assert git(repo, "rev-parse", "main") == before
    assert client.get("/api/v1/media?ref=main", headers=editor).get_json() == []


@pytest.fixture
def config(config: dict[str, Any], request: pytest.FixtureRequest) -> dict[str, Any]:
    return {**config, **getattr(request, "param", {})}


@pytest.mark.parametrize("config", [{"MEDIA_MAX_BYTES": 2000}], indirect=True)
def test_size_limit_is_configurable_and_a_larger_file_is_413(
    client: FlaskClient, editor: H, repo: Path
) -> None:
    before = git(repo, "rev-parse", "main")
    big = image(size=(200, 200), color="white")
    noisy = Image.frombytes("RGB", (64, 64), random.Random(1).randbytes(64 * 64 * 3))
    out = io.BytesIO()
    noisy.save(out, "PNG")
    assert len(out.getvalue()) > 2000
    r = upload(client, editor, out.getvalue(), alt="noise")
    assert r.status_code == 413 and r.is_json
    # far larger than the body limit: refused while reading, the same answer
    r = upload(client, editor, big + b"\0" * 200_000, alt="big")
    assert r.status_code == 413 and r.is_json
    assert git(repo, "rev-parse", "main") == before
    assert upload(client, editor, image(), alt="small").status_code == 201


def test_bad_requests_are_clear(client: FlaskClient, editor: H, tokens: dict[str, H]) -> None:
    r = client.post("/api/v1/media", json={"alt": "x"}, headers=editor)
    assert r.status_code == 415 and "multipart/form-data" in r.get_json()["message"]
    r = client.post("/api/v1/media", data={"alt": "x"}, headers=editor,
                    content_type="multipart/form-data")  # fmt: skip
    assert r.status_code == 422 and "file" in r.get_json()["errors"]["multipart"]
    r = client.post("/api/v1/media", data={"file": "text", "alt": "x"}, headers=editor,
                    content_type="multipart/form-data")  # fmt: skip
    assert r.status_code == 422 and "file" in r.get_json()["errors"]["multipart"]
    r = upload(client, editor, image(), alt="x", size="12")
    assert r.status_code == 422 and "size" in r.get_json()["errors"]["multipart"]
    assert upload(client, {}, image(), alt="x").status_code == 401
    assert upload(client, tokens["auditor"], image(), alt="x").status_code == 403
    first = uploaded(client, editor, image())
    r = upload(client, editor, image(), alt="again")
    assert r.status_code == 409 and r.get_json()["etag"] == first["etag"]


def test_details_are_edited_like_any_item_and_server_fields_are_read_only(
    client: FlaskClient, editor: H, repo: Path
) -> None:
    item = uploaded(client, editor, image())
    url = f"/api/v1/media/{item['slug']}"
    r = client.patch(url, json={"alt": "The TerraBytes logo"},
                     headers={**editor, "If-Match": item["etag"], "X-Change-Reason": "Better alt"})  # fmt: skip
    assert r.status_code == 200 and r.get_json()["alt"] == "The TerraBytes logo"
    assert r.get_json()["size"] == item["size"]
    etag = r.headers["ETag"]
    r = client.patch(url, json={"size": 1}, headers={**editor, "If-Match": etag})
    assert r.status_code == 422 and "size" in r.get_json()["errors"]["json"]
    r = client.patch(url, json={"alt": None}, headers={**editor, "If-Match": etag})
    assert r.status_code == 422 and "alt" in r.get_json()["errors"]["json"]
    r = client.put(url, json={"name": "TerraBytes logo", "alt": "Logo", "credit": "", "licence": ""},
                   headers={**editor, "If-Match": etag})  # fmt: skip
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["sha256"] == item["sha256"] and r.get_json()["path"] == item["path"]
    # only the sidecar changed; history and diff speak of the details
    assert git(repo, "show", "--name-only", "--format=", "main").split() == [
        f"media/{item['slug']}.yaml"
    ]
    history = client.get(url + "/history", headers=editor).get_json()
    assert [v["action"] for v in history] == ["update", "update", "create"]
    diff = client.get(url + f"/diff?from={history[1]['commit']}", headers=editor).get_json()
    assert {op["path"] for op in diff["operations"]} == {"/alt", "/name"}


def test_links_deletion_revert_and_publication_carry_the_file(
    client: FlaskClient,
    editor: H,
    tokens: dict[str, H],
    repo: Path,
    instance: Path,
    db_url: str,
) -> None:
    admin = tokens["admin"]
    logo = uploaded(client, editor, image(color="orange"))
    path, slug = logo["path"], logo["slug"]
    r = client.post("/api/v1/sponsors", json={"workshop": "terrabytes-icml25", "name": "Acme",
                    "logo": "f" * 64}, headers=editor)  # fmt: skip
    assert r.status_code == 422 and "logo" in r.get_json()["errors"]["json"]
    r = client.post("/api/v1/sponsors", json={"workshop": "terrabytes-icml25", "name": "Acme",
                    "logo": slug}, headers=editor)  # fmt: skip
    assert r.status_code == 201
    # publishing the sponsor first would link an unpublished file
    r = client.post("/api/v1/sponsors/acme/publish", headers=admin)
    assert r.status_code == 409 and "logo" in str(r.get_json())
    assert client.post(f"/api/v1/media/{slug}/publish", headers=admin).status_code == 200
    assert set(git(repo, "ls-tree", "--name-only", "published", "media/").split()) == {
        path,
        f"media/{slug}.yaml",
    }
    assert client.post("/api/v1/sponsors/acme/publish", headers=admin).status_code == 200
    site = client.get("/api/v1/site").get_json()
    assert site["sponsors"][0]["logo"] in (slug, {**site["sponsors"][0]["logo"]})
    # a referenced file cannot go
    r = client.delete(f"/api/v1/media/{slug}", headers={**editor, "If-Match": logo["etag"]})
    assert r.status_code == 409 and "sponsors/acme (logo)" in r.get_json()["referrers"]
    r = client.delete("/api/v1/sponsors/acme", headers={
        **editor, "If-Match": client.get("/api/v1/sponsors/acme?ref=main", headers=editor).headers["ETag"]})  # fmt: skip
    assert r.status_code == 204
    r = client.delete(f"/api/v1/media/{slug}", headers={**editor, "If-Match": logo["etag"]})
    assert r.status_code == 204
    assert git(repo, "ls-tree", "--name-only", "main", "media/") == ""
    # still on the public site until its deletion is published
    assert client.get(f"/{path}").status_code == 200
    # revert brings the file back with its details
    created = client.get(f"/api/v1/media/{slug}/history", headers=editor).get_json()[-1]["commit"]
    r = client.post(f"/api/v1/media/{slug}/revert", json={"to": created},
                    headers={**editor, "If-Match": "0" * 40})  # fmt: skip
    assert r.status_code == 200, r.get_json()
    assert git(repo, "cat-file", "-t", f"main:{path}") == "blob"
    r = client.delete(f"/api/v1/media/{slug}", headers={**editor, "If-Match": r.headers["ETag"]})
    assert r.status_code == 204
    assert client.post("/api/v1/sponsors/acme/publish", headers=admin).status_code == 200
    assert client.post(f"/api/v1/media/{slug}/publish", headers=admin).status_code == 200
    assert git(repo, "ls-tree", "--name-only", "published", "media/") == ""
    assert client.get(f"/{path}").status_code == 404
    assert cms(instance, db_url, "check").returncode == 0


def test_files_are_served_only_while_an_item_owns_them(client: FlaskClient, editor: H) -> None:
    assert client.get("/media/" + "a" * 64 + ".png").status_code == 404
    assert client.get("/media/../cms.sqlite3").status_code == 404
    assert client.get("/media/logo.png").status_code == 404
    r = client.get("/media/" + "a" * 64 + ".exe")
    assert r.status_code == 404 and r.is_json
    item = uploaded(client, editor, image())
    other = item["path"].replace(".png", ".gif")
    assert client.get("/" + other).status_code == 404


def test_people_have_a_photo(client: FlaskClient, editor: H) -> None:
    photo = uploaded(
        client, editor, image("JPEG"), filename="me.jpg", alt="Portrait of Valentin Barriere"
    )
    url = "/api/v1/people/valentin-barriere"
    etag = client.get(url + "?ref=main", headers=editor).headers["ETag"]
    r = client.patch(url, json={"photo": photo["slug"]}, headers={**editor, "If-Match": etag})
    assert r.status_code == 200 and r.get_json()["photo"] == photo["slug"]
    etag = r.headers["ETag"]
    r = client.patch(url, json={"photo": "0" * 64}, headers={**editor, "If-Match": etag})
    assert r.status_code == 422
    # a PDF is no portrait: the field accepts images only (x-accepts in the spec)
    pdf = upload(client, editor, PDF, filename="cv.pdf").get_json()
    r = client.patch(url, json={"photo": pdf["slug"]}, headers={**editor, "If-Match": etag})
    assert r.status_code == 422
    assert "application/pdf, not image/*" in str(r.get_json()["errors"]["json"]["photo"])


def test_a_file_removed_by_hand_is_reported_by_check(
    client: FlaskClient, editor: H, repo: Path, tmp_path: Path, svc: Any
) -> None:
    item = uploaded(client, editor, image())
    clone = tmp_path / "clone"
    ident = ["-c", "user.name=Hand", "-c", "user.email=hand@example.org"]
    for args in (
        ["clone", "--quiet", "--branch", "main", str(repo), str(clone)],
        ["-C", str(clone), "rm", "--quiet", item["path"]],
        ["-C", str(clone), *ident, "commit", "--quiet", "-m", "Remove the file, keep its details"],
        ["-C", str(clone), "push", "--quiet", "origin", "main"],
    ):
        subprocess.run(["git", *args], check=True, capture_output=True)
    assert client.get("/" + item["path"]).status_code == 404
    assert svc.check() == [
        f"refs/heads/main: {item['path']}, the file of media/{item['slug']}, is missing"
    ]
    # the details still serve, and the next edit of them says what is wrong
    url = f"/api/v1/media/{item['slug']}"
    r = client.get(url + "?ref=main", headers=editor)
    assert r.status_code == 200
    r = client.patch(url, json={"alt": "x"}, headers={**editor, "If-Match": r.headers["ETag"]})
    assert r.status_code == 422 and "upload the file again" in r.get_json()["message"]
