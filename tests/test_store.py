"""The git store on its own: objects, trees, commits and the compare-and-swap, judged by git."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import assert_fsck_clean, git

from cms.store import refs
from cms.store.errors import RefLocked, RefMoved
from cms.store.git import GitStore
from cms.store.lock import LockBusy, LockTimeout, NoLongerNeeded, write_lock
from cms.store.objects import Identity

ME = Identity("Test Author", "author@example.org")


@pytest.fixture
def store(tmp_path: Path) -> GitStore:
    s = GitStore(tmp_path / "content.git")
    s.init()
    return s


def commit_files(store: GitStore, files: dict[str, str | None], parent: str | None) -> str:
    with store.objects() as objs:
        tree = objs.read_commit(parent).tree if parent else None
        blobs = {
            p: objs.write_blob(c.encode()) if c is not None else None for p, c in files.items()
        }
        new_tree = objs.tree_with_changes(tree, blobs)
        return objs.write_commit(
            new_tree, [parent] if parent else [], ME, ME, "Test\n", 1_700_000_000
        )


def test_init_is_bare_and_durable(store: GitStore) -> None:
    assert git(store.path, "rev-parse", "--is-bare-repository").strip() == "true"
    assert git(store.path, "config", "core.fsync").strip() == "committed,reference"
    store.init()  # idempotent
    assert_fsck_clean(store.path)


def test_objects_match_what_git_computes(store: GitStore, tmp_path: Path) -> None:
    c1 = commit_files(store, {"people/a.yaml": "name: A\n", "talks/t.yaml": "title: T\n"}, None)
    store.update_ref_if_equals("refs/heads/main", c1, None, "test", ME)
    blob = git(store.path, "rev-parse", "main:people/a.yaml").strip()
    (tmp_path / "a.yaml").write_text("name: A\n")
    assert blob == git(store.path, "hash-object", str(tmp_path / "a.yaml")).strip()
    assert git(store.path, "ls-tree", "-r", "--name-only", "main").split() == [
        "people/a.yaml",
        "talks/t.yaml",
    ]
    c2 = commit_files(store, {"people/a.yaml": None, "people/b.yaml": "name: B\n"}, c1)
    store.update_ref_if_equals("refs/heads/main", c2, c1, "test", ME)
    c3 = commit_files(store, {"talks/t.yaml": None}, c2)
    store.update_ref_if_equals("refs/heads/main", c3, c2, "test", ME)
    # an emptied folder disappears, as git itself would do it
    assert git(store.path, "ls-tree", "-r", "--name-only", "main").split() == ["people/b.yaml"]
    assert git(store.path, "log", "--format=%an <%ae>|%s", "main").split("\n")[0] == (
        "Test Author <author@example.org>|Test"
    )
    assert_fsck_clean(store.path)
    with store.objects() as objs:
        commit = objs.read_commit(c3)
        assert commit.parents == (c2,)
        assert objs.files(commit.tree) == {
            "people/b.yaml": git(store.path, "rev-parse", "main:people/b.yaml").strip()
        }


def test_tree_entries_sort_like_git(store: GitStore) -> None:
    # "a-b" sorts before "a/" but a folder "a" compares as "a/": git fsck checks the order
    c = commit_files(store, {"a/x.yaml": "1\n", "a-b/y.yaml": "2\n", "a.b/z.yaml": "3\n"}, None)
    store.update_ref_if_equals("refs/heads/main", c, None, "test", ME)
    assert_fsck_clean(store.path)


def test_update_ref_is_a_compare_and_swap(store: GitStore) -> None:
    c1 = commit_files(store, {"people/a.yaml": "1\n"}, None)
    store.update_ref_if_equals("refs/heads/main", c1, None, "test", ME)
    with pytest.raises(RefMoved):
        store.update_ref_if_equals("refs/heads/main", c1, None, "test", ME)  # must not exist yet
    c2 = commit_files(store, {"people/a.yaml": "2\n"}, c1)
    c3 = commit_files(store, {"people/a.yaml": "3\n"}, c1)
    store.update_ref_if_equals("refs/heads/main", c2, c1, "test", ME)
    with pytest.raises(RefMoved):
        store.update_ref_if_equals("refs/heads/main", c3, c1, "test", ME)  # lost the race
    assert store.read_ref("refs/heads/main") == c2


def test_refs_are_read_from_loose_and_packed_files(store: GitStore) -> None:
    c1 = commit_files(store, {"people/a.yaml": "1\n"}, None)
    store.update_ref_if_equals("refs/heads/main", c1, None, "test", ME)
    git(store.path, "pack-refs", "--all")
    assert not (store.path / "refs/heads/main").exists()
    assert store.read_ref("refs/heads/main") == c1
    assert store.read_ref("refs/heads/nothing") is None
    git(store.path, "gc", "--quiet")  # packed objects are still readable in-process
    with store.objects() as objs:
        assert objs.read_blob(git(store.path, "rev-parse", "main:people/a.yaml").strip()) == b"1\n"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def child_processes() -> int:
    return len([p for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == os.getpid()])


def _ppid(pid: str) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_reads_leak_no_descriptors_or_processes(store: GitStore) -> None:
    c1 = commit_files(store, {"people/a.yaml": "1\n"}, None)
    store.update_ref_if_equals("refs/heads/main", c1, None, "test", ME)
    git(store.path, "gc", "--quiet")
    for _ in range(50):  # warm up
        with store.objects() as objs:
            objs.files(objs.read_commit(store.read_ref("refs/heads/main") or "").tree)
    fds, procs = open_fds(), child_processes()
    for _ in range(2000):
        with store.objects() as objs:
            objs.files(objs.read_commit(store.read_ref("refs/heads/main") or "").tree)
    assert open_fds() <= fds + 2
    assert child_processes() == procs


def test_a_ref_lock_held_by_git_is_respected(
    store: GitStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git's exclusion holds against git run by hand: a fresh `<ref>.lock` the CMS did not
    leave is waited for, then the update gives up (RefLocked) without touching it."""
    monkeypatch.setattr(refs, "FOREIGN_LOCK_PATIENCE", 0.3)
    c1 = commit_files(store, {"people/a.yaml": "1\n"}, None)
    store.update_ref_if_equals("refs/heads/main", c1, None, "test", ME)
    lock = store.path / "refs/heads/main.lock"
    lock.write_text("")  # git update-ref, mid-update
    c2 = commit_files(store, {"people/a.yaml": "2\n"}, c1)
    with pytest.raises(RefLocked):
        store.update_ref_if_equals("refs/heads/main", c2, c1, "test", ME)
    assert lock.exists() and store.read_ref("refs/heads/main") == c1
    # git finishes: the next update goes through
    lock.unlink()
    store.update_ref_if_equals("refs/heads/main", c2, c1, "test", ME)
    assert store.read_ref("refs/heads/main") == c2


def test_a_ref_lock_whose_owner_is_gone_is_cleared(store: GitStore) -> None:
    c1 = commit_files(store, {"people/a.yaml": "1\n"}, None)
    store.update_ref_if_equals("refs/heads/main", c1, None, "test", ME)
    lock = store.path / "refs/heads/main.lock"
    # a git command killed long ago: untouched for longer than git ever holds a ref lock
    lock.write_text("")
    old = time.time() - refs.FOREIGN_LOCK_STALE_AFTER - 60
    os.utime(lock, (old, old))
    c2 = commit_files(store, {"people/a.yaml": "2\n"}, c1)
    store.update_ref_if_equals("refs/heads/main", c2, c1, "test", ME)
    assert store.read_ref("refs/heads/main") == c2 and not lock.exists()
    # a CMS process killed mid-update (the journal names the ref): cleared at once
    lock.write_text("")
    store.journal.write_text("refs/heads/main")
    c3 = commit_files(store, {"people/a.yaml": "3\n"}, c2)
    started = time.monotonic()
    store.update_ref_if_equals("refs/heads/main", c3, c2, "test", ME)
    assert time.monotonic() - started < refs.FOREIGN_LOCK_PATIENCE
    assert store.read_ref("refs/heads/main") == c3 and not lock.exists()
    assert not store.journal.exists()
    c1 = c3
    # the reflog is written as git writes it: git itself reads it back
    assert git(store.path, "reflog", "show", "--format=%gs", "main").split("\n")[0] == "test"
    # and `git reflog` (HEAD's) shows the same moves, as it would after a git commit
    assert (
        git(store.path, "reflog", "--format=%H").split()
        == git(store.path, "reflog", "show", "--format=%H", "main").split()
    )
    store.update_ref_if_equals("refs/heads/published", c1, None, "publish", ME)
    assert len(git(store.path, "reflog", "--format=%H").split()) == 3  # another branch: no
    assert_fsck_clean(store.path)


def test_objects_are_written_as_git_writes_them(store: GitStore, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"name: A\n")
    expected = git(store.path, "hash-object", str(tmp_path / "f")).strip()
    with store.objects() as objs:
        assert objs.write_blob(b"name: A\n") == expected
        loose = store.path / "objects" / expected[:2] / expected[2:]
        weeks_ago = time.time() - 30 * 86400
        os.utime(loose, (weeks_ago, weeks_ago))  # as if unreachable and due for pruning
        assert objs.write_blob(b"name: A\n") == expected  # again: the same file...
        assert loose.stat().st_mtime > time.time() - 60  # ...freshened, as git freshens it
        assert objs.read_blob(expected) == b"name: A\n"
    assert git(store.path, "cat-file", "-p", expected) == "name: A\n"
    assert git(store.path, "cat-file", "-t", expected).strip() == "blob"
    # no temporary file is left in the object folders
    assert not [p for p in (store.path / "objects").rglob("*") if "tmp" in p.name]
    assert_fsck_clean(store.path)


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from cms.store.lock import write_lock\n"
         "with write_lock(Path(sys.argv[1])):\n"
         " print('locked', flush=True); time.sleep(float(sys.argv[2]))",
         str(path), str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_the_write_lock_waits_gives_up_and_leaks_nothing(tmp_path: Path) -> None:
    lock = tmp_path / "repo.cms-lock"
    fds, threads = open_fds(), threading.active_count()
    holder = _hold_lock(lock, 2)
    try:
        with pytest.raises(LockTimeout), write_lock(lock, timeout=0.2):
            pytest.fail("got a lock another process holds")
        # a waiter given up on takes the lock when the holder lets go, and lets it go at once
        with write_lock(lock, timeout=30):
            assert holder.wait(timeout=30) == 0
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout:
            holder.stdout.close()
    with write_lock(lock, timeout=0.5):
        pass
    # the waiter given up on ends once it has had the lock (bounded wait, not a speed goal)
    deadline = time.monotonic() + 10
    while threading.active_count() > threads and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == threads
    assert open_fds() == fds


def test_the_write_lock_busy_or_no_longer_needed(tmp_path: Path) -> None:
    """timeout 0 never waits (LockBusy); a waiter whose `unless` turns true stops waiting
    (NoLongerNeeded) and leaves the lock free once its holder lets go; the file names the
    process that holds the lock."""
    lock = tmp_path / "repo.cms-lock"
    fds = open_fds()
    holder = _hold_lock(lock, 2)
    try:
        assert int(lock.read_text()) == holder.pid
        start = time.monotonic()
        with pytest.raises(LockBusy), write_lock(lock, timeout=0):
            pytest.fail("got a lock another process holds")
        assert time.monotonic() - start < 1  # did not wait (bounded, not a speed goal)
        done = threading.Event()
        threading.Timer(0.1, done.set).start()
        with pytest.raises(NoLongerNeeded), write_lock(lock, timeout=30, unless=done.is_set):
            pytest.fail("got a lock another process holds")
        assert holder.wait(timeout=30) == 0
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout:
            holder.stdout.close()
    with write_lock(lock, timeout=5):
        assert int(lock.read_text()) == os.getpid()
    deadline = time.monotonic() + 10
    while open_fds() != fds and time.monotonic() < deadline:
        time.sleep(0.01)
    assert open_fds() == fds


def test_the_write_lock_excludes_threads(tmp_path: Path) -> None:
    """Contended, so the waiters' path (a helper thread blocked in flock) is what is tested;
    processes are excluded by the same flock (test_concurrency.py runs real workers)."""
    lock = tmp_path / "repo.cms-lock"
    inside: list[int] = []
    overlaps: list[int] = []
    waited: list[int] = []

    def worker() -> None:
        for _ in range(50):
            start = time.monotonic()
            with write_lock(lock, timeout=30):
                if time.monotonic() - start > 0.0005:
                    waited.append(1)
                inside.append(1)
                time.sleep(0.001)  # hand the interpreter to the other threads while inside
                if len(inside) > 1:
                    overlaps.append(1)
                inside.pop()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(inside) == 0 and not overlaps
    assert waited  # the lock was contended: some waiter blocked and was handed it
