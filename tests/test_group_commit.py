"""Group commit: the lock holder commits the edits waiting behind it as one chain of commits,
one ref update, one index transaction; each edit is still its own commit, and one that no
longer holds is never committed blind.

The in-process tests hold the write lock themselves so that edits queue up behind it, then
let go; the process tests run gunicorn workers and SIGKILL the lock holder mid-chain.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Server, assert_fsck_clean, git, new_token
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cms.index import ChangeRow
from cms.service import MAIN, ContentService
from cms.service.group import GroupCommit
from cms.store.lock import write_lock
from cms.store.queue import EditQueue

PEOPLE = "/api/v1/people"


def queued(svc: ContentService) -> list[str]:
    try:
        return sorted(os.listdir(svc.queue.path))
    except FileNotFoundError:
        return []


@contextmanager
def lock_held(svc: ContentService) -> Iterator[None]:
    with write_lock(svc.lock_path, 5):
        yield


def behind_the_lock(
    app: Flask, svc: ContentService, calls: list[Callable[[FlaskClient], Any]]
) -> list[Any]:
    """Run each call on its own thread while the test holds the write lock, wait until all
    of them wait in the queue, then let go: the first to get the lock commits them all."""
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        with contextlib.suppress(SystemExit):  # a writer "killed" by the test answers nobody
            results[i] = calls[i](app.test_client())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    with lock_held(svc):
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len([n for n in queued(svc) if n.endswith(".req")]) < len(calls):
            assert time.monotonic() < deadline, f"only {queued(svc)} queued"
            time.sleep(0.01)
    for t in threads:
        t.join(timeout=30)
    return results


@pytest.fixture
def ref_updates(svc: ContentService, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many commits each move of a ref carried."""
    moves: list[int] = []
    original = svc.store.update_ref_if_equals

    def counting(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        steps = kwargs.get("steps") or (args[5] if len(args) > 5 else ())
        moves.append(len(steps) or 1)

    monkeypatch.setattr(svc.store, "update_ref_if_equals", counting)
    return moves


def people(client: FlaskClient, editor: dict[str, str], n: int) -> list[tuple[str, str]]:
    out = []
    for i in range(n):
        r = client.post(PEOPLE, json={"name": f"Queued Writer {i}"}, headers=editor)
        assert r.status_code == 201, r.json
        out.append((r.json["slug"], r.headers["ETag"]))
    return out


def patch(slug: str, etag: str, body: dict[str, Any], editor: dict[str, str], **headers: str):
    def call(c: FlaskClient) -> Any:
        return c.patch(
            f"{PEOPLE}/{slug}",
            json=body,
            headers={**editor, "If-Match": etag, "X-Change-Reason": f"Why {slug}", **headers},
        )

    return call


def test_waiting_edits_land_as_one_chain_each_its_own_commit(
    app: Flask,
    svc: ContentService,
    repo: Path,
    client: FlaskClient,
    editor: dict[str, str],
    ref_updates: list[int],
) -> None:
    targets = people(client, editor, 6)
    ref_updates.clear()
    before = git(repo, "rev-parse", "main").strip()
    results = behind_the_lock(
        app, svc, [patch(slug, etag, {"bio": f"Bio of {slug}"}, editor) for slug, etag in targets]
    )
    assert [r.status_code for r in results] == [200] * 6, [r.json for r in results]
    assert ref_updates == [6]  # one move of main for six commits
    commits = git(repo, "rev-list", "--reverse", f"{before}..main").split()
    assert len(commits) == 6
    assert sorted(r.headers["X-Content-Revision"] for r in results) == sorted(commits)
    for result, (slug, _) in zip(results, targets, strict=True):
        sha = result.headers["X-Content-Revision"]
        # each commit is the edit's own: its file, its author, its reason
        changed = git(repo, "diff-tree", "--no-commit-id", "--name-only", "-r", sha).split()
        assert changed == [f"people/{slug}.yaml"]
        message = git(repo, "log", "-1", "--format=%an%n%B", sha)
        assert message.startswith("Valentin Barriere\nUpdate people/" + slug)
        assert f"Why {slug}" in message
        assert result.json["bio"] == f"Bio of {slug}"
        served = client.get(f"{PEOPLE}/{slug}?ref=main", headers=editor)
        assert served.headers["ETag"] == result.headers["ETag"]
    # the reflog names every commit, as if main had moved one by one
    reflog = git(repo, "reflog", "show", "--format=%H", "main").split()
    assert reflog[:6] == commits[::-1]
    assert queued(svc) == []
    assert svc.check() == []


def test_a_stale_edit_in_the_queue_is_never_committed(
    app: Flask, svc: ContentService, repo: Path, client: FlaskClient, editor: dict[str, str]
) -> None:
    ((slug, etag),) = people(client, editor, 1)
    before = git(repo, "rev-parse", "main").strip()
    results = behind_the_lock(
        app, svc, [patch(slug, etag, {"bio": f"contender {n}"}, editor) for n in range(4)]
    )
    assert sorted(r.status_code for r in results) == [200, 412, 412, 412]
    (won,) = [r for r in results if r.status_code == 200]
    for lost in (r for r in results if r.status_code == 412):
        assert lost.json["etag"] == won.headers["ETag"].strip('"')
    assert git(repo, "rev-list", "--count", f"{before}..main").strip() == "1"
    assert svc.check() == []


def test_merges_in_the_queue_are_merged_again_on_the_chain(
    app: Flask, svc: ContentService, repo: Path, client: FlaskClient, editor: dict[str, str]
) -> None:
    url = "/api/v1/workshops/terrabytes-icml25"
    base = client.get(url + "?ref=main", headers=editor).headers["ETag"]
    fields = ["event", "location", "abstract", "website_note"]

    def merge(field: str) -> Callable[[FlaskClient], Any]:
        return lambda c: c.patch(
            url, json={field: f"new {field}"}, headers={**editor, "X-Merge-Base": base}
        )

    before = git(repo, "rev-parse", "main").strip()
    results = behind_the_lock(app, svc, [merge(f) for f in fields])
    assert [r.status_code for r in results] == [200] * 4, [r.json for r in results]
    assert sum(r.headers.get("X-Merged") == "true" for r in results) == 3
    commits = git(repo, "rev-list", "--reverse", f"{before}..main").split()
    assert len(commits) == 4
    for sha in commits[1:]:
        assert f"CMS-Merge-Base: {base.strip(chr(34))}" in git(
            repo, "log", "-1", "--format=%B", sha
        )
    final = client.get(url + "?ref=main", headers=editor).json
    assert all(final[f] == f"new {f}" for f in fields)
    # four changes of one item indexed in one batch still count one by one
    with svc.read_session() as session:
        numbers = session.scalars(
            select(ChangeRow.item_seq)
            .where(ChangeRow.ref == MAIN, ChangeRow.slug == "terrabytes-icml25")
            .order_by(ChangeRow.seq)
        ).all()
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 5
    # every response shows the item as its own commit left it
    for r in results:
        at = client.get(f"{url}?at={r.headers['X-Content-Revision']}", headers=editor)
        assert at.headers["ETag"] == r.headers["ETag"]


def test_links_are_checked_again_on_the_chain(
    app: Flask, svc: ContentService, repo: Path, client: FlaskClient, editor: dict[str, str]
) -> None:
    """A person deleted and a link to them made in the same chain: never both."""
    ((slug, etag),) = people(client, editor, 1)
    talk = client.post("/api/v1/talks", json={"title": "A queued talk"}, headers=editor)
    assert talk.status_code == 201, talk.json
    talk_etag = talk.headers["ETag"]
    results = behind_the_lock(
        app,
        svc,
        [
            lambda c: c.delete(f"{PEOPLE}/{slug}", headers={**editor, "If-Match": etag}),
            lambda c: c.patch(
                f"/api/v1/talks/{talk.json['slug']}",
                json={"speakers": [slug]},
                headers={**editor, "If-Match": talk_etag},
            ),
        ],
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses in ([200, 409], [204, 422]), [r.json for r in results]
    assert svc.check() == []


def test_an_edit_that_cannot_join_the_chain_holds_up_no_other(
    app: Flask,
    svc: ContentService,
    repo: Path,
    client: FlaskClient,
    editor: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    targets = people(client, editor, 3)
    poisoned = targets[1][0]
    original = GroupCommit._confirm

    def confirm(self: GroupCommit, session: Any, objs: Any, chain: Any, ctype: Any, r: Any,
                current: Any) -> Any:  # fmt: skip
        if r.slug == poisoned:
            raise RuntimeError("a bug in chaining this one")
        return original(self, session, objs, chain, ctype, r, current)

    monkeypatch.setattr(GroupCommit, "_confirm", confirm)
    before = git(repo, "rev-parse", "main").strip()
    results = behind_the_lock(
        app, svc, [patch(slug, etag, {"bio": "still lands"}, editor) for slug, etag in targets]
    )
    assert [r.status_code for r in results] == [200] * 3  # the poisoned one alone, as before
    assert git(repo, "rev-list", "--count", f"{before}..main").strip() == "3"
    assert svc.check() == []


def test_a_writer_that_gives_up_takes_its_edit_back(
    app: Flask, svc: ContentService, repo: Path, client: FlaskClient, editor: dict[str, str]
) -> None:
    ((slug, etag),) = people(client, editor, 1)
    svc.lock_timeout = 0.3
    before = git(repo, "rev-parse", "main").strip()
    with lock_held(svc):
        r = patch(slug, etag, {"bio": "too late"}, editor)(client)
    assert r.status_code == 503
    assert queued(svc) == []
    r = patch(slug, etag, {"bio": "in time"}, editor)(client)  # and nobody commits it later
    assert r.status_code == 200
    assert git(repo, "rev-list", "--count", f"{before}..main").strip() == "1"


def test_a_lock_holder_dying_after_the_ref_moved_loses_no_edit(
    app: Flask,
    svc: ContentService,
    repo: Path,
    client: FlaskClient,
    editor: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first lock holder moves main, then dies before handing out the outcomes: the next
    one hands them out from its journal; nothing is committed twice."""
    targets = people(client, editor, 4)
    original = EditQueue.finish
    died: list[str] = []

    def finish(self: EditQueue, request_id: str, *args: Any) -> None:
        if not died and self.journal.exists():
            died.append(request_id)
            raise SystemExit("killed")  # not an Exception: nothing catches it, as with SIGKILL
        original(self, request_id, *args)

    monkeypatch.setattr(EditQueue, "finish", finish)
    before = git(repo, "rev-parse", "main").strip()
    results = behind_the_lock(
        app, svc, [patch(slug, etag, {"bio": "after"}, editor) for slug, etag in targets]
    )
    assert died
    done = [r for r in results if r is not None]
    assert len(done) == 3  # the one that died answers nobody
    assert [r.status_code for r in done] == [200] * 3
    commits = git(repo, "rev-list", f"{before}..main").split()
    assert len(commits) == 4  # each edit once, the dead writer's included
    assert {r.headers["X-Content-Revision"] for r in done} <= set(commits)
    assert not svc.queue.journal.exists()
    assert svc.check() == []


# --- real processes ---------------------------------------------------------------------------


def _busy_holder(svc: ContentService, within: float = 1.0) -> int | None:
    """The process that holds the write lock right now (it writes its pid into the file), or
    None if nobody took it within `within` seconds."""
    fd = os.open(svc.lock_path, os.O_RDWR)
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.pread(fd, 32, 0).decode().strip()
                if text.isdigit():
                    return int(text)
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
            time.sleep(0.001)
    finally:
        os.close(fd)
    return None


@pytest.mark.slow
def test_sigkill_of_the_lock_holder_mid_chain_loses_nothing_acknowledged(
    config: dict[str, Any], instance: Path, db_url: str
) -> None:
    """4 workers, 8 writers; 20 times, the process holding the lock (committing a chain) or
    another worker is killed with SIGKILL. Every acknowledged edit is on main, in each
    writer's own order; git fsck and cms check are clean."""
    from cms.app import create_app

    app = create_app(config)
    svc: ContentService = app.extensions["cms"]
    _, secret = new_token(svc, "editor", name="Crash Tester")
    auth = {"Authorization": f"Bearer {secret}"}
    srv = Server(instance, db_url, workers=4)
    srv.start()
    acknowledged: dict[str, list[str]] = {}
    statuses: list[int] = []
    stop = threading.Event()
    try:
        slugs = [
            requests.post(
                f"{srv.url}{PEOPLE}", json={"name": f"Chain {i}"}, headers=auth, timeout=10
            ).json()["slug"]
            for i in range(8)
        ]

        def writer(slug: str) -> None:
            mine = acknowledged.setdefault(slug, [])
            url = f"{srv.url}{PEOPLE}/{slug}"
            etag = None
            n = 0
            with requests.Session() as http:
                while not stop.is_set() and n < 2000:
                    n += 1
                    try:
                        if etag is None:
                            etag = http.get(url + "?ref=main", headers=auth, timeout=10).headers[
                                "ETag"
                            ]
                        r = http.patch(
                            url, json={"bio": f"edit {n}"},
                            headers={**auth, "If-Match": etag}, timeout=10,
                        )  # fmt: skip
                    except requests.RequestException:
                        etag = None  # its worker died: it may or may not have landed
                        continue
                    if r.status_code == 200:
                        mine.append(r.headers["X-Content-Revision"])
                        etag = r.headers["ETag"]
                    else:
                        statuses.append(r.status_code)
                        etag = None  # 412 after a lost answer, or 503: read it again

        threads = [threading.Thread(target=writer, args=(slug,)) for slug in slugs]
        for t in threads:
            t.start()
        killed = {"holder": 0, "worker": 0}
        for cycle in range(20):
            time.sleep(0.3 + 0.1 * (cycle % 4))  # a worker takes about a second to come back
            holder = _busy_holder(svc) if cycle % 2 == 0 else None
            target = holder if holder and holder != srv.proc.pid else None  # type: ignore[union-attr]
            if target is None:
                workers = [int(p) for p in _children(srv.proc.pid)]  # type: ignore[union-attr]
                target = workers[cycle % len(workers)] if workers else None
                kind = "worker"
            else:
                kind = "holder"
            if target is not None:
                try:
                    os.kill(target, signal.SIGKILL)
                    killed[kind] += 1
                except ProcessLookupError:
                    pass
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert killed["holder"] >= 5, killed
        reachable = git(svc.store.path, "rev-list", "--reverse", "--first-parent", "main").split()
        position = {sha: i for i, sha in enumerate(reachable)}
        total = 0
        for slug, mine in acknowledged.items():
            assert all(sha in position for sha in mine), f"{slug}: acknowledged, not on main"
            assert [position[s] for s in mine] == sorted(position[s] for s in mine)
            total += len(mine)
        assert total >= 20, (total, statuses)  # enough edits to have raced the kills
        # after the crashes, a write goes through at once and the API serves what git has
        r = requests.get(f"{srv.url}{PEOPLE}/{slugs[0]}?ref=main", headers=auth, timeout=10)
        r = requests.patch(
            f"{srv.url}{PEOPLE}/{slugs[0]}", json={"bio": "after the crashes"},
            headers={**auth, "If-Match": r.headers["ETag"]}, timeout=10,
        )  # fmt: skip
        assert r.status_code == 200, r.text
        for slug in slugs:
            served = requests.get(f"{srv.url}{PEOPLE}/{slug}?ref=main", headers=auth, timeout=10)
            blob = git(svc.store.path, "rev-parse", f"main:people/{slug}.yaml").strip()
            assert served.headers["ETag"] == f'"{blob}"'
    finally:
        stop.set()
        srv.kill(signal.SIGTERM)
    assert_fsck_clean(svc.store.path)
    assert svc.check() == []
    svc.dispose()


def _children(pid: int) -> list[str]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return text.split()
