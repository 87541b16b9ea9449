"""`git clone` over HTTP for auditors, through a real gunicorn server; pushes are refused."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Server, assert_fsck_clean, git, new_token

from cms.app import create_app
from cms.serialize import parse_yaml
from cms.service import ContentService
from cms.types import TYPES

pytestmark = pytest.mark.slow
GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


@pytest.fixture
def served(
    config: dict[str, Any], instance: Path, db_url: str
) -> Iterator[tuple[Server, ContentService, dict[str, str]]]:
    app = create_app(config)
    svc: ContentService = app.extensions["cms"]
    secrets = {role: new_token(svc, role)[1] for role in ("auditor", "editor")}
    srv = Server(instance, db_url, workers=2)
    srv.start()
    yield srv, svc, secrets
    srv.kill(signal.SIGTERM)
    svc.dispose()
    assert_fsck_clean(svc.store.path)


def clone(url: str, dest: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *extra, "clone", "-q", "--mirror", url, str(dest)],
                          capture_output=True, text=True, env=GIT_ENV, timeout=60, check=False)  # fmt: skip


@pytest.mark.parametrize("protocol", ["0", "2"])
def test_auditor_clones_what_the_api_serves(
    served: tuple[Server, ContentService, dict[str, str]], tmp_path: Path, protocol: str
) -> None:
    srv, svc, secrets = served
    editor = {"Authorization": f"Bearer {secrets['editor']}"}
    url = f"{srv.url}/api/v1/people/valentin-barriere"
    etag = requests.get(url, timeout=10).headers["ETag"]
    r = requests.patch(
        url, json={"bio": "Cloned"}, headers={**editor, "If-Match": etag}, timeout=10
    )
    assert r.status_code == 200
    remote = (
        srv.url.replace("http://", f"http://auditor:{secrets['auditor']}@") + "/git/content.git"
    )
    dest = tmp_path / "clone.git"
    done = clone(remote, dest, "-c", f"protocol.version={protocol}")
    assert done.returncode == 0, done.stderr
    for ref in ("main", "published"):
        assert git(dest, "rev-parse", ref) == git(svc.store.path, "rev-parse", ref)
    assert_fsck_clean(dest)
    for path in git(dest, "ls-tree", "-r", "--name-only", "main").split():
        type_name, name = path.split("/")
        served_item = requests.get(
            f"{srv.url}/api/v1/{type_name}/{name[:-5]}?ref=main", headers=editor, timeout=10
        ).json()
        blob = git(dest, "rev-parse", f"main:{path}").strip()
        assert served_item.pop("etag") == blob and served_item.pop("slug") == name[:-5]
        in_file = parse_yaml(git(dest, "cat-file", "blob", blob).encode())
        left_out = TYPES[type_name].omit_null  # fields added since: absent from the file = null
        assert {**{n: None for n in left_out}, **in_file} == served_item


def test_no_token_no_clone_and_no_push_ever(
    served: tuple[Server, ContentService, dict[str, str]], tmp_path: Path
) -> None:
    srv, svc, secrets = served
    anonymous = clone(srv.url + "/git/content.git", tmp_path / "anon.git")
    assert anonymous.returncode != 0
    r = requests.get(srv.url + "/git/content.git/info/refs?service=git-upload-pack", timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    editor_only = requests.get(srv.url + "/git/content.git/info/refs?service=git-upload-pack",
                               auth=("x", "cms_" + "y" * 43), timeout=10)  # fmt: skip
    assert editor_only.status_code == 401
    for auth in (None, ("x", secrets["auditor"])):
        push = requests.get(
            srv.url + "/git/content.git/info/refs?service=git-receive-pack", auth=auth, timeout=10
        )
        assert push.status_code == 403
        push = requests.post(
            srv.url + "/git/content.git/git-receive-pack", data=b"0000", auth=auth, timeout=10
        )
        assert push.status_code == 403
    dumb = requests.get(
        srv.url + "/git/content.git/HEAD", auth=("x", secrets["auditor"]), timeout=10
    )
    assert dumb.status_code == 404
    # a real push from a real clone fails, and the server's main did not move
    remote = (
        srv.url.replace("http://", f"http://auditor:{secrets['auditor']}@") + "/git/content.git"
    )
    work = tmp_path / "work"
    assert (
        subprocess.run(
            ["git", "clone", "-q", remote, str(work)], env=GIT_ENV, check=False, timeout=60
        ).returncode
        == 0
    )
    before = git(svc.store.path, "rev-parse", "main")
    (work / "people" / "intruder.yaml").write_text("name: Mallory\n")
    subprocess.run(["git", "-C", str(work), "add", "."], env=GIT_ENV, check=True)
    subprocess.run(
        ["git", "-C", str(work), "-c", "user.name=M", "-c", "user.email=m@x", "commit", "-qm", "x"],
        env=GIT_ENV,
        check=True,
    )
    pushed = subprocess.run(
        ["git", "-C", str(work), "push", "origin", "main"],
        env=GIT_ENV,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert pushed.returncode != 0
    assert git(svc.store.path, "rev-parse", "main") == before
