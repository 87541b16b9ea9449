"""The queue of edits waiting for the write lock, shared by every process on one repository:
group commit's hand-over between the writers who wait and the one who holds the lock.

A writer works its edit out before the lock and leaves it here as `<id>.req`; whoever holds the
lock next claims every waiting edit (renaming it to `<id>.claimed`), commits them as one chain
and leaves each writer its outcome (`<id>.result`). Renames make each step atomic: a writer
that gives up waiting can withdraw its edit only while nobody has claimed it, so an edit is
never committed behind the back of a writer that has answered 503.

Before moving the ref, the lock holder writes which commit carries which edit (`journal`): if
it dies between the ref and the outcomes, the next lock holder hands the outcomes out from it.
Files of writers that died are swept away by the next claim.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

_ids = itertools.count()
STALE_AFTER = 600.0  # seconds: a file older than any writer waits is a leftover
REQUEST, CLAIMED, RESULT = ".req", ".claimed", ".result"


def new_id() -> str:
    """A request's name: the writer's process id first (to tell a dead writer's files)."""
    return f"{os.getpid()}-{next(_ids)}-{secrets.token_hex(4)}"


def _owner_alive(request_id: str) -> bool:
    pid = request_id.split("-", 1)[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EditQueue:
    """The folder of waiting edits, beside the repository (`<repo>.cms-queue`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.journal = path / "journal"

    def _file(self, request_id: str, suffix: str) -> Path:
        return self.path / (request_id + suffix)

    def _write(self, target: Path, payload: Any) -> None:
        tmp = os.path.join(self.path, f".tmp-{target.name}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, json.dumps(payload).encode())
        finally:
            os.close(fd)
        os.replace(tmp, target)

    def decided(self, request_id: str) -> bool:
        """Whether a lock holder has left this edit an outcome (one stat: polled while the
        edit's writer waits for the lock)."""
        return os.path.exists(self._file(request_id, RESULT))

    def submit(self, request_id: str, payload: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self._write(self._file(request_id, REQUEST), payload)

    def withdraw(self, request_id: str) -> bool:
        """Take back an edit nobody has claimed yet; False when a lock holder has it."""
        try:
            self._file(request_id, REQUEST).unlink()
        except FileNotFoundError:
            return False
        return True

    def claim(self) -> list[tuple[str, dict[str, Any]]]:
        """Caller holds the write lock. Every edit to commit now, oldest first: those waiting,
        and those claimed by a lock holder that left no outcome (it died, or git moved the ref
        under it). Files of writers that died are removed."""
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        found: list[tuple[float, str, dict[str, Any]]] = []
        now = time.time()
        for name in names:
            path = self.path / name
            request_id, dot, suffix = name.rpartition(".")
            if name.startswith("."):  # a file half written by a writer that died
                if self._older(path, now):
                    path.unlink(missing_ok=True)
                continue
            if not dot:
                continue
            if not _owner_alive(request_id) or self._older(path, now):
                self.forget(request_id)
                continue
            if "." + suffix == CLAIMED and self._file(request_id, RESULT).exists():
                continue  # done: its writer has yet to pick the outcome up
            if "." + suffix == REQUEST:
                claimed = self._file(request_id, CLAIMED)
                try:
                    os.replace(path, claimed)
                except FileNotFoundError:
                    continue  # withdrawn meanwhile
                path = claimed
            elif "." + suffix != CLAIMED:
                continue
            try:
                payload = json.loads(path.read_text(encoding="utf-8"))
                found.append((path.stat().st_mtime, request_id, payload))
            except (FileNotFoundError, ValueError):
                self.forget(request_id)  # half a file: its writer died writing it
        found.sort(key=lambda f: (f[0], f[1]))
        return [(request_id, payload) for _, request_id, payload in found]

    @staticmethod
    def _older(path: Path, now: float) -> bool:
        try:
            return now - path.stat().st_mtime > STALE_AFTER
        except FileNotFoundError:
            return False

    def finish(self, request_id: str, commit: str | None, blob: str | None = None) -> None:
        """The outcome of a claimed edit: the commit that carries it (on the ref, durable) and
        the item's new blob; or None: its writer must do it again under the lock. Nothing
        for a writer that is gone."""
        if not self._file(request_id, CLAIMED).exists():
            return
        self._write(self._file(request_id, RESULT), {"commit": commit, "blob": blob})

    def outcome(self, request_id: str) -> tuple[bool, str | None, str | None]:
        """(decided, commit, blob): whether a lock holder has decided this edit; if it landed,
        its commit and the item's new blob (None for a delete)."""
        try:
            found = json.loads(self._file(request_id, RESULT).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return False, None, None
        commit, blob = found.get("commit"), found.get("blob")
        return True, commit if isinstance(commit, str) else None, blob

    def forget(self, request_id: str) -> None:
        for suffix in (REQUEST, CLAIMED, RESULT):
            self._file(request_id, suffix).unlink(missing_ok=True)

    def write_journal(self, landed: dict[str, list[str | None]]) -> None:
        """Before the ref moves: which commit (and new blob) carries which edit."""
        self._write(self.journal, landed)

    def read_journal(self) -> dict[str, list[str | None]]:
        try:
            found = json.loads(self.journal.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def clear_journal(self) -> None:
        self.journal.unlink(missing_ok=True)
