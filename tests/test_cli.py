"""The `cms` command as an operator meets it, in a real subprocess with CMS_* settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import git
from flask.testing import FlaskClient

from cms.service import ContentService

ROOT = Path(__file__).resolve().parent.parent


def cms(
    instance: Path, db_url: str, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CMS_INSTANCE_PATH": str(instance), "CMS_DATABASE_URL": db_url}
    proc = subprocess.run(
        [sys.executable, "-m", "cms.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_token_life_cycle(
    client: FlaskClient, svc: ContentService, instance: Path, db_url: str, repo: Path
) -> None:
    made = cms(instance, db_url, "tokens", "create", "--name", "Valentin Barriere",
               "--email", "valentin@example.org", "--role", "editor")  # fmt: skip
    secret = made.stdout.strip()
    assert secret.startswith("cms_") and "shown only now" in made.stderr
    auth = {"Authorization": f"Bearer {secret}"}
    etag = client.get("/api/v1/people/valentin-barriere").headers["ETag"]
    r = client.patch(
        "/api/v1/people/valentin-barriere", json={"bio": "x"}, headers={**auth, "If-Match": etag}
    )
    assert r.status_code == 200
    assert git(repo, "log", "-1", "--format=%an <%ae>", "main").strip() == (
        "Valentin Barriere <valentin@example.org>"
    )
    listed = cms(instance, db_url, "tokens", "list").stdout
    assert "Valentin Barriere <valentin@example.org>" in listed and "active" in listed
    assert secret not in listed
    token_id = listed.split()[0]
    cms(instance, db_url, "tokens", "revoke", token_id)
    assert "revoked" in cms(instance, db_url, "tokens", "list").stdout
    r = client.patch(
        "/api/v1/people/valentin-barriere",
        json={"bio": "y"},
        headers={**auth, "If-Match": r.headers["ETag"]},
    )
    assert r.status_code == 401 and "revoked" in r.get_json()["message"]
    # only the hash is stored, and never in git
    assert secret not in git(repo, "log", "-p", "--all")
    bad = cms(
        instance,
        db_url,
        "tokens",
        "create",
        "--name",
        "X",
        "--email",
        "nope",
        "--role",
        "editor",
        check=False,
    )
    assert bad.returncode != 0 and "email" in bad.stderr
    assert cms(instance, db_url, "tokens", "revoke", "999", check=False).returncode != 0


def test_reindex_and_check(client: FlaskClient, instance: Path, db_url: str, repo: Path) -> None:
    out = cms(instance, db_url, "reindex").stdout
    assert "refs/heads/main: 1/1 commits indexed" in out
    checked = cms(instance, db_url, "check")
    assert "git fsck --strict: ok" in checked.stdout and "index matches git: ok" in checked.stdout


def test_check_fails_on_an_invalid_file(
    instance: Path, db_url: str, repo: Path, client: FlaskClient, tmp_path: Path
) -> None:
    from test_index import hand_commit

    hand_commit(repo, tmp_path, "people/broken.yaml", "name: [\n", "Broken by hand")
    proc = cms(instance, db_url, "check", check=False)
    assert proc.returncode == 1
    assert "people/broken.yaml is invalid" in proc.stderr


def test_openapi_command_writes_the_served_spec(
    client: FlaskClient, tmp_path: Path, instance: Path, db_url: str
) -> None:
    out = tmp_path / "spec.json"
    cms(instance, db_url, "openapi", "--output", str(out))
    assert json.loads(out.read_text()) == client.get("/openapi.json").get_json()


def test_gc_packs_the_repository_and_nothing_changes(
    client: FlaskClient, instance: Path, db_url: str, repo: Path, editor: dict[str, str]
) -> None:
    for n in range(5):
        etag = client.get("/api/v1/people/valentin-barriere?ref=main", headers=editor).headers[
            "ETag"
        ]
        client.patch(
            "/api/v1/people/valentin-barriere",
            json={"bio": f"v{n}"},
            headers={**editor, "If-Match": etag},
        )
    before = client.get("/api/v1/people/valentin-barriere?ref=main", headers=editor).data
    out = cms(instance, db_url, "gc").stdout
    assert "repository objects:" in out
    assert list((repo / "objects" / "pack").glob("*.pack"))
    assert not [
        p for p in (repo / "objects").iterdir() if len(p.name) == 2
    ]  # no loose objects left
    client.application.extensions["cms"]._snapshots.clear()
    assert client.get("/api/v1/people/valentin-barriere?ref=main", headers=editor).data == before
    assert client.get("/api/v1/people/valentin-barriere/history", headers=editor).status_code == 200
    etag = client.get("/api/v1/people/valentin-barriere?ref=main", headers=editor).headers["ETag"]
    r = client.patch(
        "/api/v1/people/valentin-barriere",
        json={"bio": "after gc"},
        headers={**editor, "If-Match": etag},
    )
    assert r.status_code == 200
