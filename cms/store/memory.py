"""The git store's twin in memory, for fast unit tests: the same contract as GitStore.

Objects are the very bytes git would hash (same ids, same trees and commits, through the
shared ObjectAccess); refs are a dict moved by the same compare-and-swap. What it cannot do
is what needs a real repository: `git fsck`, `gc`, clones, pushes. tests/test_store_contract.py
runs one suite against both stores.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from cms.store.errors import ObjectMissing, RefMoved
from cms.store.log import LogEntry
from cms.store.objects import HEX40, Identity, ObjectAccess, object_id


class MemoryObjects(ObjectAccess):
    def __init__(self, objects: dict[str, tuple[str, bytes]]) -> None:
        super().__init__()
        self._objects = objects

    def _load(self, sha: str) -> tuple[str, bytes]:
        try:
            return self._objects[sha]
        except KeyError:
            raise ObjectMissing(sha) from None

    def _store(self, kind: str, data: bytes) -> str:
        sha, _ = object_id(kind, data)
        self._objects.setdefault(sha, (kind, bytes(data)))
        return sha


class MemoryStore:
    """A repository in memory. `path` only places the lock files a service keeps beside it."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._objects: dict[str, tuple[str, bytes]] = {}
        self._refs: dict[str, str] = {}
        self._created = False
        self._mutex = threading.Lock()
        self._moves = 0  # counts ref updates: what a ref file's identity says in GitStore

    def exists(self) -> bool:
        return self._created

    def init(self) -> None:
        self._created = True

    def gc(self, auto: bool = False) -> None:
        """Nothing to pack."""

    def fsck(self) -> None:
        """Objects in memory are valid by construction."""

    def size(self) -> int:
        return sum(len(data) for _, data in self._objects.values())

    # --- refs -------------------------------------------------------------------------------

    def read_ref(self, ref: str) -> str | None:
        return self._refs.get(ref)

    def ref_stamp(self, ref: str) -> tuple[int, int, int, int] | None:
        return (0, 0, self._moves, 0) if ref in self._refs else None

    def list_refs(self, prefix: str) -> dict[str, str]:
        return {name: sha for name, sha in self._refs.items() if name.startswith(prefix)}

    def update_ref_if_equals(
        self,
        ref: str,
        new: str,
        old: str | None,
        reason: str,
        who: Identity,
        steps: Sequence[tuple[str, str, Identity]] = (),
    ) -> None:
        assert HEX40.match(new) and (old is None or HEX40.match(old))
        with self._mutex:
            if self._refs.get(ref) != old:
                raise RefMoved(f"{ref} moved")
            self._refs[ref] = new
            self._moves += 1

    def first_parent_log(self, head: str, stop: str | None) -> list[LogEntry] | None:
        """As GitStore's: the commits after stop on head's first-parent line, oldest first,
        each with the files it changed against its first parent (the root: every file)."""
        entries: list[LogEntry] = []
        objs = MemoryObjects(self._objects)
        sha: str | None = head
        while sha is not None and sha != stop:
            commit = objs.read_commit(sha)
            parent = commit.parents[0] if commit.parents else None
            before = objs.files(objs.read_commit(parent).tree) if parent else {}
            after = objs.files(commit.tree)
            changes = [
                (path, before.get(path), after.get(path))
                for path in sorted(set(before) | set(after))
                if before.get(path) != after.get(path)
            ]
            entries.append(LogEntry(commit, changes))
            sha = parent
        if stop is not None and sha != stop:
            return None  # stop is not on the line: the ref was rewritten
        entries.reverse()
        return entries

    @contextmanager
    def objects(self) -> Iterator[ObjectAccess]:
        yield MemoryObjects(self._objects)
