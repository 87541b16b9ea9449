"""The git content store: a bare repository read and written without a work tree or index file.

Objects are read in-process with GitPython's object database (no ``git cat-file`` process per
request) and written as loose objects by a few lines of our own (store/objects.py); refs are
read from the ref files and moved by a compare-and-swap that follows git's own lock-file
protocol (store/refs.py), so the write path spawns no process either. One streamed `git log`
serves the catch-up of many commits at once (store/log.py); `git fsck`, `gc` and
`http-backend` run as git (store/process.py). Its twin in memory, for tests, is store/memory.py.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from git.db import GitDB

from cms.store import log
from cms.store.log import LogEntry
from cms.store.objects import GitObjects, ObjectAccess
from cms.store.process import git_env, run_git
from cms.store.refs import RefFiles

REPO_CONFIG = {
    "core.fsync": "committed,reference",
    "core.fsyncMethod": "fsync",
    "core.logAllRefUpdates": "always",
    "receive.denyNonFastForwards": "true",
    "http.receivepack": "false",
}


class GitStore(RefFiles):
    """One bare repository. Cheap to construct: it holds a path, nothing open."""

    def exists(self) -> bool:
        return (self.path / "objects").is_dir() and (self.path / "HEAD").is_file()

    def init(self) -> None:
        """Create the bare repository (idempotent) with durable, user-independent settings."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "init", "--bare", "--quiet", "--initial-branch=main", str(self.path)],
            check=True,
            env=git_env(),
            capture_output=True,
        )
        for key, value in REPO_CONFIG.items():
            run_git(self.path, "config", key, value)

    def gc(self, auto: bool = False) -> None:
        """git's own housekeeping: pack objects and refs. Safe while the CMS runs: git locks
        what it rewrites, and loose objects younger than two weeks are never pruned."""
        run_git(self.path, "gc", "--quiet", *(["--auto"] if auto else []))

    def fsck(self) -> None:
        """`git fsck --strict`; StoreError with git's complaint when it finds anything."""
        run_git(self.path, "fsck", "--strict", "--no-progress")

    def size(self) -> int:
        """Bytes the object database takes on disk."""
        return sum(p.stat().st_size for p in (self.path / "objects").rglob("*") if p.is_file())

    def first_parent_log(self, head: str, stop: str | None) -> list[LogEntry] | None:
        """See store/log.py: the commits after stop on head's first-parent line, oldest first;
        None when stop is not on that line (the ref was rewritten)."""
        return log.first_parent_log(self.path, head, stop)

    @contextmanager
    def objects(self) -> Iterator[ObjectAccess]:
        """Object access for one unit of work; nothing stays open after it."""
        odb = GitDB(str(self.path / "objects"))
        try:
            yield GitObjects(odb, self.path / "objects")
        finally:
            del odb
