"""Refs in a bare repository: read from the ref files and packed-refs (no process), moved by a
compare-and-swap that follows git's own lock-file protocol, with a reflog line as git writes it.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from cms.store.errors import RefMoved
from cms.store.objects import HEX40, ZERO, Identity, fsync_dir

log = logging.getLogger(__name__)


class RefFiles:
    """The refs of the repository at `path`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def read_ref(self, ref: str) -> str | None:
        """The commit a full ref name points to, read from the ref files (no process).

        On every read request: plain os calls, no pathlib, about ten microseconds.
        """
        try:
            fd = os.open(os.path.join(self.path, ref), os.O_RDONLY)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            sha = self._packed_refs().get(ref, "")
        else:
            try:
                sha = os.read(fd, 128).decode("ascii", "replace").strip()
            except IsADirectoryError:
                sha = ""
            finally:
                os.close(fd)
        return sha if HEX40.match(sha) else None

    def list_refs(self, prefix: str) -> dict[str, str]:
        refs = {name: sha for name, sha in self._packed_refs().items() if name.startswith(prefix)}
        base = self.path / prefix
        if base.is_dir():
            for p in base.rglob("*"):
                if p.is_file() and not p.name.endswith(".lock"):
                    sha = p.read_text().strip()
                    if HEX40.match(sha):
                        refs[str(p.relative_to(self.path))] = sha
        return refs

    def _packed_refs(self) -> dict[str, str]:
        refs: dict[str, str] = {}
        try:
            text = (self.path / "packed-refs").read_text()
        except FileNotFoundError:
            return refs
        for line in text.splitlines():
            if line and line[0] not in "#^":
                sha, _, name = line.partition(" ")
                refs[name] = sha
        return refs

    def update_ref_if_equals(
        self, ref: str, new: str, old: str | None, reason: str, who: Identity
    ) -> None:
        """Move ref to new only if it still points to old (None: only if it does not exist);
        the reflog line names `who` and the reason.

        git's own protocol, in-process: take `<ref>.lock` (O_EXCL, so a git command run by
        hand and the CMS exclude each other), compare, write and fsync, log, rename.
        """
        assert HEX40.match(new) and (old is None or HEX40.match(old))
        path = self.path / ref
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = path.with_name(path.name + ".lock")
        fd = self._take_ref_lock(lock)
        try:
            if self.read_ref(ref) != old:
                raise RefMoved(f"{ref} moved")
            os.write(fd, f"{new}\n".encode())
            os.fsync(fd)
            os.close(fd)
            fd = -1
            self._log_ref(ref, old, new, reason, who)
            if self._head_target() == ref:  # as git: HEAD's reflog follows its branch
                self._log_ref("HEAD", old, new, reason, who)
            os.replace(lock, path)
            fsync_dir(path.parent)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            lock.unlink(missing_ok=True)
            raise

    def _take_ref_lock(self, lock: Path, patience: float = 1.0) -> int:
        """Create `<ref>.lock`. One left by a killed process is removed after `patience`:
        the caller holds the CMS's write lock, and git run by hand holds it for milliseconds."""
        deadline = time.monotonic() + patience
        while True:
            try:
                return os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                if time.monotonic() >= deadline:
                    log.warning("removing stale %s", lock)
                    lock.unlink(missing_ok=True)
                    deadline = time.monotonic() + patience
                else:
                    time.sleep(0.01)

    def _head_target(self) -> str | None:
        try:
            head = (self.path / "HEAD").read_text()
        except OSError:
            return None
        return head.removeprefix("ref: ").strip() if head.startswith("ref: ") else None

    def _log_ref(self, ref: str, old: str | None, new: str, reason: str, who: Identity) -> None:
        """Append to the ref's reflog, as git does (core.logAllRefUpdates)."""
        logfile = self.path / "logs" / ref
        logfile.parent.mkdir(parents=True, exist_ok=True)
        message = " ".join(reason.split())[:200]
        line = f"{old or ZERO} {new} {who.signature(int(time.time()))}\t{message}\n"
        fd = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
