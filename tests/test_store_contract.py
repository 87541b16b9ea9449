"""One contract, two stores: GitStore (a real bare repository) and MemoryStore (its twin for
fast unit tests) must answer every call alike, down to the object ids."""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_fsck_clean, git
from hypothesis import given
from hypothesis import strategies as st

from cms.auth import Actor
from cms.database import make_engine
from cms.errors import StaleETag
from cms.service import MAIN, ContentService
from cms.service.messages import split_message
from cms.store import objects as objects_module
from cms.store.errors import ObjectMissing, RefMoved
from cms.store.git import GitStore
from cms.store.memory import MemoryStore
from cms.store.objects import (
    BLOB_MODE,
    TREE_MODE,
    Identity,
    format_tree,
    object_id,
    parse_tree,
)
from cms.types import TYPES

ME = Identity("Test Author", "author@example.org")
WHEN = 1_700_000_000
Store = Any  # GitStore | MemoryStore: the same calls


@pytest.fixture(params=["git", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    made = (GitStore if request.param == "git" else MemoryStore)(tmp_path / "content.git")
    made.init()
    yield made
    if request.param == "git":
        assert_fsck_clean(made.path)


def commit(store: Store, files: dict[str, str | None], parent: str | None, msg: str = "M") -> str:
    with store.objects() as objs:
        tree = objs.read_commit(parent).tree if parent else None
        blobs = {
            p: objs.write_blob(c.encode()) if c is not None else None for p, c in files.items()
        }
        new_tree = objs.tree_with_changes(tree, blobs)
        sha: str = objs.write_commit(new_tree, [parent] if parent else [], ME, ME, msg, WHEN)
    return sha


def history(store: Store) -> list[str]:
    """Three commits on main: add two files, change one and add one, remove a folder."""
    c1 = commit(store, {"people/a.yaml": "name: A\n", "talks/t.yaml": "title: T\n"}, None, "One")
    store.update_ref_if_equals(MAIN, c1, None, "test", ME)
    c2 = commit(store, {"people/a.yaml": "name: A2\n", "people/b.yaml": "name: B\n"}, c1, "Two")
    store.update_ref_if_equals(MAIN, c2, c1, "test", ME)
    c3 = commit(store, {"talks/t.yaml": None}, c2, "Three\n\nWhy.\n\nCMS-Action: delete")
    store.update_ref_if_equals(MAIN, c3, c2, "test", ME)
    return [c1, c2, c3]


def git_hash(kind: str, data: bytes) -> str:
    out = subprocess.run(["git", "hash-object", "-t", kind, "--stdin"], input=data,
                         capture_output=True, check=True)  # fmt: skip
    return out.stdout.decode().strip()


def test_object_ids_are_gits(store: Store) -> None:
    with store.objects() as objs:
        assert objs.write_blob(b"name: A\n") == git_hash("blob", b"name: A\n")
        assert objs.read_blob(git_hash("blob", b"name: A\n")) == b"name: A\n"
        with pytest.raises(ObjectMissing):
            objs.read_blob("0" * 40)
        with pytest.raises(ObjectMissing):
            objs.read_blob("not hex")


def test_both_stores_build_the_same_commits(tmp_path: Path) -> None:
    git_store, memory = GitStore(tmp_path / "a.git"), MemoryStore(tmp_path / "b.git")
    git_store.init()
    memory.init()
    assert history(git_store) == history(memory)


def test_trees_files_and_emptied_folders(store: Store) -> None:
    _, c2, c3 = history(store)
    with store.objects() as objs:
        files = objs.files(objs.read_commit(c2).tree)
        assert sorted(files) == ["people/a.yaml", "people/b.yaml", "talks/t.yaml"]
        tree3 = objs.read_commit(c3).tree
        assert sorted(objs.files(tree3)) == ["people/a.yaml", "people/b.yaml"]
        assert "talks" not in objs.read_tree(tree3)  # as git: an empty folder is no tree
        assert objs.blob_at(tree3, "people/a.yaml") == git_hash("blob", b"name: A2\n")
        assert objs.blob_at(tree3, "talks/t.yaml") is None
        assert objs.blob_at(tree3, "nothing/here.yaml") is None


def test_commits_read_back(store: Store) -> None:
    _, c2, c3 = history(store)
    with store.objects() as objs:
        info = objs.read_commit(c3)
    assert info.parents == (c2,)
    assert (info.author_name, info.author_email, info.author_time) == (ME.name, ME.email, WHEN)
    subject, _reason, trailers = split_message(info.message)
    assert subject == "Three"
    assert trailers == {"CMS-Action": "delete"}


def test_missing_and_mistyped_objects(store: Store) -> None:
    c1, *_ = history(store)
    with store.objects() as objs:
        with pytest.raises(ObjectMissing):
            objs.read_blob("1" * 40)
        with pytest.raises(ObjectMissing):
            objs.read_blob(c1)  # a commit, not a blob
        with pytest.raises(ObjectMissing):
            objs.read_commit("zz")


def test_update_ref_is_a_compare_and_swap(store: Store) -> None:
    c1, c2, c3 = history(store)
    with pytest.raises(RefMoved):
        store.update_ref_if_equals(MAIN, c1, c2, "stale old value", ME)
    with pytest.raises(RefMoved):
        store.update_ref_if_equals(MAIN, c1, None, "must not exist yet", ME)
    assert store.read_ref(MAIN) == c3
    store.update_ref_if_equals("refs/heads/published", c2, None, "new ref", ME)
    store.update_ref_if_equals("refs/tags/v1", c1, None, "tag", ME)
    assert store.list_refs("refs/heads/") == {MAIN: c3, "refs/heads/published": c2}
    assert store.read_ref("refs/heads/nothing") is None


@pytest.mark.parametrize("syncfs", [True, False], ids=["syncfs", "fsync-each"])
def test_objects_written_together_land_together(
    store: Store, syncfs: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chain of commits written in one block is readable inside it and on disk after it,
    with one flush (syncfs) or, where there is none, an fsync per file; a block that fails
    leaves no object behind."""
    if not syncfs:
        monkeypatch.setattr(objects_module, "_SYNCFS", None)
    with store.objects() as objs:
        with objs.together():
            tip = None
            for n in range(3):
                tree = objs.tree_with_changes(
                    objs.read_commit(tip).tree if tip else None,
                    {f"people/p{n}.yaml": objs.write_blob(f"name: P{n}\n".encode())},
                )
                tip = objs.write_commit(tree, [tip] if tip else [], ME, ME, f"C{n}", WHEN)
        store.update_ref_if_equals("refs/heads/main", tip, None, "chain", ME)
    assert [e.commit.message.strip() for e in store.first_parent_log(tip, None)] == [
        "C0", "C1", "C2",
    ]  # fmt: skip
    if isinstance(store, GitStore):
        assert git(store.path, "cat-file", "-p", f"{tip}:people/p2.yaml") == "name: P2\n"
        assert not list(store.path.glob("objects/*/tmp_obj_*"))
    with store.objects() as objs, pytest.raises(RuntimeError), objs.together():
        lost = objs.write_blob(b"never made durable\n")
        raise RuntimeError("the chain failed")
    with store.objects() as objs:
        if isinstance(store, GitStore):
            with pytest.raises(ObjectMissing):
                objs.read_blob(lost)
            assert not list(store.path.glob("objects/*/tmp_obj_*"))


def test_first_parent_log(store: Store) -> None:
    c1, c2, c3 = history(store)
    everything = store.first_parent_log(c3, None)
    assert [e.commit.sha for e in everything] == [c1, c2, c3]
    blob = {name: git_hash("blob", content.encode()) for name, content in
            {"a": "name: A\n", "a2": "name: A2\n", "b": "name: B\n", "t": "title: T\n"}.items()}  # fmt: skip
    assert [sorted(e.changes) for e in everything] == [
        [("people/a.yaml", None, blob["a"]), ("talks/t.yaml", None, blob["t"])],
        [("people/a.yaml", blob["a"], blob["a2"]), ("people/b.yaml", None, blob["b"])],
        [("talks/t.yaml", blob["t"], None)],
    ]
    assert [e.commit.message.rstrip("\n") for e in everything] == [
        "One",
        "Two",
        "Three\n\nWhy.\n\nCMS-Action: delete",
    ]
    assert [(e.commit.author_name, e.commit.committer_time) for e in everything] == [
        (ME.name, WHEN)
    ] * 3
    assert [e.commit.sha for e in store.first_parent_log(c3, c1)] == [c2, c3]
    assert store.first_parent_log(c3, c3) == []
    side = commit(store, {"people/z.yaml": "name: Z\n"}, c1)
    assert store.first_parent_log(c3, side) is None  # not on the line: rewritten


def test_tags(store: Store) -> None:
    c1, *_ = history(store)
    with store.objects() as objs:
        tag = objs.write_tag(c1, "v1", ME, "First release", WHEN)
        assert objs.peel_to_commit(tag) == c1
        assert objs.peel_to_commit(c1) == c1
        info = objs.read_tag(tag)
        assert info is not None
        assert (info.target, info.name, info.tagger_email, info.time, info.message) == (
            c1, "v1", ME.email, WHEN, "First release",
        )  # fmt: skip
        assert objs.read_tag(c1) is None
        with pytest.raises(ObjectMissing):
            objs.peel_to_commit(objs.read_commit(c1).tree)


def test_the_write_path_runs_on_the_twin(tmp_path: Path) -> None:
    """The service over the memory twin: what a fast unit test of the write path needs."""
    svc = ContentService(MemoryStore(tmp_path / "content.git"),
                         make_engine(f"sqlite:///{tmp_path / 'index.sqlite3'}"), ME)  # fmt: skip
    try:
        svc.bootstrap(Path(__file__).parents[1] / "content_repo")
        people = TYPES["people"]
        item, _ = svc.get_item(MAIN, people, "valentin-barriere")
        editor = Actor("editor", name="Twin Editor", email="twin@example.org")
        done = svc.patch(people, "valentin-barriere", {"bio": "Twin"}, item.blob, editor, "Why")
        assert done.changed and done.item is not None and done.item.data is not None
        assert done.item.data["bio"] == "Twin"
        with pytest.raises(StaleETag):
            svc.patch(people, "valentin-barriere", {"bio": "Late"}, item.blob, editor, None)
        assert svc.check() == []
        log = svc.store.first_parent_log(done.commit, None)
        assert [split_message(e.commit.message)[0] for e in log] == [
            "Import seed content", "Update people/valentin-barriere",
        ]  # fmt: skip
    finally:
        svc.dispose()


@functools.cache
def _scratch_repo() -> Path:
    path = Path(tempfile.mkdtemp(prefix="cms-mktree-")) / "scratch.git"
    subprocess.run(["git", "init", "--bare", "-q", str(path)], check=True)
    return path


NAMES = st.from_regex(r"[A-Za-z0-9._é-]{1,20}", fullmatch=True).filter(
    lambda n: n not in (".", "..")
)


@given(
    st.dictionaries(
        NAMES,
        st.tuples(st.sampled_from([BLOB_MODE, TREE_MODE]), st.binary(min_size=20, max_size=20)),
        max_size=8,
    )
)
def test_tree_format_round_trips_and_matches_git(entries: dict[str, tuple[int, bytes]]) -> None:
    """Our own tree codec (no GitPython internals): parse(format(x)) == x, and git agrees."""
    tree = {name: (mode, raw.hex()) for name, (mode, raw) in entries.items()}
    data = format_tree(tree)
    assert parse_tree(data) == tree
    if tree:  # git reads it back as the same entries, in the same order
        listing = subprocess.run(
            ["git", "mktree", "--missing", "-z"],
            input=b"".join(
                b"%s %s %s\t%s\0" % (
                    b"%06o" % mode, b"tree" if mode == TREE_MODE else b"blob",
                    sha.encode(), name.encode(),
                )
                for name, (mode, sha) in tree.items()
            ),
            capture_output=True, check=True, cwd=tempfile.gettempdir(),
            env={**os.environ, "GIT_DIR": str(_scratch_repo())},
        )  # fmt: skip
        assert listing.stdout.strip().decode() == object_id("tree", data)[0]
