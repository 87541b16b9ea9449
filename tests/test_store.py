"""The git store on its own: objects, trees, commits and the compare-and-swap, judged by git."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import assert_fsck_clean, git

from cms.store.git import GitStore, Identity, RefMoved

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
    store.update_ref_if_equals("refs/heads/main", c1, None, "test")
    blob = git(store.path, "rev-parse", "main:people/a.yaml").strip()
    (tmp_path / "a.yaml").write_text("name: A\n")
    assert blob == git(store.path, "hash-object", str(tmp_path / "a.yaml")).strip()
    assert git(store.path, "ls-tree", "-r", "--name-only", "main").split() == [
        "people/a.yaml",
        "talks/t.yaml",
    ]
    c2 = commit_files(store, {"people/a.yaml": None, "people/b.yaml": "name: B\n"}, c1)
    store.update_ref_if_equals("refs/heads/main", c2, c1, "test")
    c3 = commit_files(store, {"talks/t.yaml": None}, c2)
    store.update_ref_if_equals("refs/heads/main", c3, c2, "test")
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
    store.update_ref_if_equals("refs/heads/main", c, None, "test")
    assert_fsck_clean(store.path)


def test_update_ref_is_a_compare_and_swap(store: GitStore) -> None:
    c1 = commit_files(store, {"people/a.yaml": "1\n"}, None)
    store.update_ref_if_equals("refs/heads/main", c1, None, "test")
    with pytest.raises(RefMoved):
        store.update_ref_if_equals("refs/heads/main", c1, None, "test")  # must not exist yet
    c2 = commit_files(store, {"people/a.yaml": "2\n"}, c1)
    c3 = commit_files(store, {"people/a.yaml": "3\n"}, c1)
    store.update_ref_if_equals("refs/heads/main", c2, c1, "test")
    with pytest.raises(RefMoved):
        store.update_ref_if_equals("refs/heads/main", c3, c1, "test")  # lost the race
    assert store.read_ref("refs/heads/main") == c2


def test_refs_are_read_from_loose_and_packed_files(store: GitStore) -> None:
    c1 = commit_files(store, {"people/a.yaml": "1\n"}, None)
    store.update_ref_if_equals("refs/heads/main", c1, None, "test")
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
    store.update_ref_if_equals("refs/heads/main", c1, None, "test")
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


def test_a_ref_lock_left_by_a_killed_git_is_cleared(store: GitStore) -> None:
    c1 = commit_files(store, {"people/a.yaml": "1\n"}, None)
    store.update_ref_if_equals("refs/heads/main", c1, None, "test")
    for name in ("refs/heads/main.lock",):  # a git command died holding it
        (store.path / name).write_text("")
        c2 = commit_files(store, {"people/a.yaml": name}, c1)
        store.update_ref_if_equals("refs/heads/main", c2, c1, "test")
        assert store.read_ref("refs/heads/main") == c2
        assert not (store.path / name).exists()
        c1 = c2
    # the reflog is written as git writes it: git itself reads it back
    assert git(store.path, "reflog", "show", "--format=%gs", "main").split("\n")[0] == "test"
    assert_fsck_clean(store.path)
