"""Faults: the database goes away, the disk fills, the lock holder dies, the index is deleted."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Server, assert_fsck_clean, git, make_db_url, new_token
from flask.testing import FlaskClient

from cms import database
from cms.app import create_app
from cms.service import ContentService
from cms.store.objects import ObjectAccess

PERSON = "/api/v1/people/valentin-barriere"


def patch_bio(client: FlaskClient, auth: dict[str, str], bio: str) -> Any:
    etag = client.get(PERSON + "?ref=main", headers=auth).headers.get("ETag", '""')
    return client.patch(PERSON, json={"bio": bio}, headers={**auth, "If-Match": etag})


class TcpProxy:
    """A TCP relay to PostgreSQL that can be cut and restored, like a network partition."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread: threading.Thread | None = None
        self._server: socket.socket | None = None

    def start(self) -> None:
        self._stop.clear()
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", self.port))
        self._server.listen(16)
        self._server.settimeout(0.1)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=5)
            self._conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([a, b], [], [], 0.1)
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)
        except OSError:
            return
        finally:
            a.close()
            b.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        if self._server:
            self._server.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._conns.clear()


@pytest.fixture
def pg_behind_proxy(tmp_path: Path, postgres_available: bool) -> Iterator[tuple[str, TcpProxy]]:
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.start()
    for url in make_db_url("postgresql", tmp_path, postgres_available):
        yield url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"), proxy
    proxy.stop()


def test_database_outage_is_503_and_recovers_by_itself(
    pg_behind_proxy: tuple[str, TcpProxy], tmp_path: Path
) -> None:
    url, proxy = pg_behind_proxy
    app = create_app({"INSTANCE_PATH": str(tmp_path / "i"), "DATABASE_URL": url})
    svc: ContentService = app.extensions["cms"]
    client = app.test_client()
    _, secret = new_token(svc, "editor")
    auth = {"Authorization": f"Bearer {secret}"}
    assert patch_bio(client, auth, "before").status_code == 200
    commits = git(svc.store.path, "rev-list", "--count", "main")
    proxy.stop()
    try:
        for r in (
            client.get(PERSON + "?ref=main", headers=auth),
            client.patch(PERSON, json={"bio": "during"}, headers={**auth, "If-Match": '"x"'}),
            client.get("/api/v1/history", headers=auth),
        ):
            assert r.status_code == 503, r.get_json()
            assert r.headers["Retry-After"] and r.get_json()["code"] == 503
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.get_json()["checks"]["database"]["ok"] is False
        assert git(svc.store.path, "rev-list", "--count", "main") == commits
    finally:
        proxy.start()
    deadline = time.monotonic() + 15
    while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    r = patch_bio(client, auth, "after")
    assert r.status_code == 200
    assert client.get(PERSON + "?ref=main", headers=auth).get_json()["bio"] == "after"
    assert svc.check() == []
    svc.dispose()
    assert_fsck_clean(svc.store.path)


def test_connections_cut_while_resting_in_the_pool_are_replaced(
    pg_behind_proxy: tuple[str, TcpProxy], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ping per checkout (a round trip each), but a connection that rested in the pool is
    pinged before use: cut while idle, it is replaced, and no request sees the cut."""
    monkeypatch.setattr(database, "PING_IDLE_AFTER", 0.2)
    url, proxy = pg_behind_proxy
    app = create_app({"INSTANCE_PATH": str(tmp_path / "i"), "DATABASE_URL": url})
    svc: ContentService = app.extensions["cms"]
    client = app.test_client()
    _, secret = new_token(svc, "editor")
    auth = {"Authorization": f"Bearer {secret}"}
    assert patch_bio(client, auth, "before").status_code == 200
    proxy.stop()  # every pooled connection dies while it rests
    proxy.start()
    time.sleep(0.3)
    assert patch_bio(client, auth, "after").status_code == 200
    assert client.get(PERSON + "?ref=main", headers=auth).get_json()["bio"] == "after"
    svc.dispose()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EIO])
def test_disk_full_or_read_only_while_writing(
    client: FlaskClient, editor: dict[str, str], repo: Path, svc: ContentService,
    monkeypatch: pytest.MonkeyPatch, code: int,
) -> None:  # fmt: skip
    head = git(repo, "rev-parse", "main")
    original = ObjectAccess.write_commit

    def failing(self: ObjectAccess, *args: Any, **kwargs: Any) -> str:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(ObjectAccess, "write_commit", failing)
    r = patch_bio(client, editor, "lost?")
    assert r.status_code == (507 if code == errno.ENOSPC else 503)
    assert r.get_json()["code"] == r.status_code and "Retry-After" in r.headers
    assert git(repo, "rev-parse", "main") == head
    monkeypatch.setattr(ObjectAccess, "write_commit", original)
    assert patch_bio(client, editor, "next").status_code == 200
    assert svc.check() == []


def test_a_failed_ref_update_leaves_everything_as_it_was(
    client: FlaskClient, editor: dict[str, str], repo: Path, svc: ContentService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    head = git(repo, "rev-parse", "main")

    def read_only(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(svc.store, "update_ref_if_equals", read_only)
    r = patch_bio(client, editor, "lost?")
    assert r.status_code == 503 and "Traceback" not in r.get_data(as_text=True)
    assert git(repo, "rev-parse", "main") == head
    monkeypatch.undo()
    assert patch_bio(client, editor, "next").status_code == 200
    assert svc.check() == []


def test_a_killed_lock_holder_blocks_nobody(
    config: dict[str, Any], client: FlaskClient, editor: dict[str, str], svc: ContentService
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from cms.store.lock import write_lock\n"
         "with write_lock(Path(sys.argv[1])):\n print('locked', flush=True); time.sleep(60)",
         str(svc.lock_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        svc.lock_timeout = 0.5
        busy = patch_bio(client, editor, "blocked")
        assert busy.status_code == 503 and busy.headers["Retry-After"]
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        start = time.monotonic()
        assert patch_bio(client, editor, "free").status_code == 200
        assert time.monotonic() - start < 5
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout:
            holder.stdout.close()


def test_index_deleted_while_the_server_runs(tmp_path: Path) -> None:
    """A SQLite fault (with PostgreSQL the outage test above is the counterpart)."""
    instance = tmp_path / "instance"
    db_url = f"sqlite:///{tmp_path / 'cms.sqlite3'}"
    app = create_app({"INSTANCE_PATH": str(instance), "DATABASE_URL": db_url})
    svc: ContentService = app.extensions["cms"]
    svc.dispose()
    srv = Server(instance, db_url, workers=2)
    srv.start()
    try:
        urls = [
            "/api/v1/workshops/terrabytes-icml25",
            "/api/v1/references?sort=-year",
            "/api/v1/site",
        ]
        before = [requests.get(srv.url + u, timeout=10).content for u in urls]
        db_file = Path(db_url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(str(db_file) + suffix).unlink(missing_ok=True)
        for _ in range(6):  # every worker notices, whichever answers
            assert [requests.get(srv.url + u, timeout=10).content for u in urls] == before
        env = {**os.environ, "CMS_INSTANCE_PATH": str(instance), "CMS_DATABASE_URL": db_url}
        secret = subprocess.run(
            [sys.executable, "-m", "cms.cli", "tokens", "create", "--name", "E", "--email", "e@x.org", "--role", "editor"],
            env=env, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        auth = {"Authorization": f"Bearer {secret}"}
        etag = requests.get(srv.url + PERSON + "?ref=main", headers=auth, timeout=10).headers[
            "ETag"
        ]
        r = requests.patch(
            srv.url + PERSON, json={"bio": "x"}, headers={**auth, "If-Match": etag}, timeout=10
        )
        assert r.status_code == 200
        checked = subprocess.run(
            [sys.executable, "-m", "cms.cli", "check"], env=env, capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stderr
    finally:
        srv.kill(signal.SIGTERM)


def test_tokens_survive_the_loss_of_the_index(tmp_path: Path) -> None:
    """The index is derived and may be deleted or rebuilt; the tokens live elsewhere."""
    instance = tmp_path / "instance"
    app = create_app({"INSTANCE_PATH": str(instance)})
    svc: ContentService = app.extensions["cms"]
    _, secret = new_token(svc, "auditor")
    auth = {"Authorization": f"Bearer {secret}"}
    client = app.test_client()
    assert client.get(PERSON + "?ref=main", headers=auth).status_code == 200
    assert app.config["ACCOUNTS_DATABASE_URL"] != app.config["DATABASE_URL"]
    for suffix in ("", "-wal", "-shm"):
        Path(str(instance / "cms.sqlite3") + suffix).unlink(missing_ok=True)
    assert client.get(PERSON + "?ref=main", headers=auth).status_code == 200
    svc.reindex()
    assert client.get(PERSON + "?ref=main", headers=auth).status_code == 200
    svc.dispose()
