"""Resource bounds: thousands of requests in one process leave descriptors and processes flat."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import requests
from conftest import Server, new_token
from flask.testing import FlaskClient
from test_store import child_processes, open_fds

from cms.app import create_app
from cms.service import ContentService

PERSON = "/api/v1/people/valentin-barriere"


def test_two_thousand_writes_and_reads_stay_flat(
    client: FlaskClient, editor: dict[str, str]
) -> None:
    etag = client.get(PERSON + "?ref=main", headers=editor).headers["ETag"]

    def burst(n: int, etag: str) -> str:
        for i in range(n):
            r = client.patch(
                PERSON,
                json={"bio": f"{os.getpid()} {i} {etag}"},
                headers={**editor, "If-Match": etag},
            )
            assert r.status_code == 200
            etag = r.headers["ETag"]
            assert client.get(PERSON + "?ref=main", headers=editor).status_code == 200
            assert client.get("/api/v1/references").status_code == 200
        return etag

    etag = burst(50, etag)  # warm up pools and caches
    fds, procs = open_fds(), child_processes()
    burst(1000, etag)
    assert open_fds() <= fds + 3, "file descriptors grew"
    assert child_processes() == procs, "child processes were left behind"


def _worker_pid(master: int) -> int:
    children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == master]
    assert len(children) == 1, children
    return children[0]


def _ppid(pid: str) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return -1


def _usage(pid: int) -> tuple[int, int, int]:
    """(open descriptors, child processes, resident KiB) of one process."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    children = sum(1 for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == pid)
    rss = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    return fds, children, rss


@pytest.mark.slow
def test_ten_thousand_mixed_requests_against_one_worker(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    db_url = f"sqlite:///{tmp_path / 'cms.sqlite3'}"
    app = create_app({"INSTANCE_PATH": str(instance), "DATABASE_URL": db_url})
    svc: ContentService = app.extensions["cms"]
    _, secret = new_token(svc, "editor")
    svc.dispose()
    auth = {"Authorization": f"Bearer {secret}"}
    srv = Server(instance, db_url, workers=1)
    srv.start()
    try:
        assert srv.proc is not None
        worker = _worker_pid(srv.proc.pid)
        with requests.Session() as http:
            base = srv.url + "/api/v1"
            etag = http.get(
                f"{base}/people/valentin-barriere?ref=main", headers=auth, timeout=10
            ).headers["ETag"]

            def mixed(n: int, etag: str) -> str:
                for i in range(n):
                    kind = i % 10
                    if kind == 0:
                        r = http.patch(f"{base}/people/valentin-barriere", json={"bio": f"{i}"},
                                       headers={**auth, "If-Match": etag}, timeout=10)  # fmt: skip
                        assert r.status_code == 200, r.text
                        etag = r.headers["ETag"]
                    elif kind == 1:
                        r = http.get(f"{base}/people/valentin-barriere?ref=main",
                                     headers={**auth, "If-None-Match": etag}, timeout=10)  # fmt: skip
                        assert r.status_code == 304
                    elif kind == 2:
                        assert http.get(f"{base}/site?render=html", timeout=10).status_code == 200
                    elif kind == 3:
                        assert (
                            http.get(
                                f"{base}/people/valentin-barriere/history", headers=auth, timeout=10
                            ).status_code
                            == 200
                        )
                    elif kind == 4:
                        assert http.get(f"{base}/people/nobody", timeout=10).status_code == 404
                    else:
                        assert (
                            http.get(
                                f"{base}/references?sort=-year&page_size=3", timeout=10
                            ).status_code
                            == 200
                        )
                return etag

            etag = mixed(1000, etag)
            fds, children, rss = _usage(worker)
            mixed(9000, etag)
            fds_after, children_after, rss_after = _usage(worker)
        assert fds_after <= fds + 5, (fds, fds_after)
        assert children_after == children == 0
        assert rss_after <= rss * 1.25 + 8 * 1024, (rss, rss_after)
    finally:
        srv.kill(signal.SIGTERM)
