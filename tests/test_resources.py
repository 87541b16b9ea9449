"""Resource bounds: thousands of requests in one process leave descriptors and processes flat."""

from __future__ import annotations

import os

from flask.testing import FlaskClient
from test_store import child_processes, open_fds

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
