"""Refs in a bare repository: read from the ref files and packed-refs (no process), moved by a
compare-and-swap that follows git's own lock-file protocol, with a reflog line as git writes it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from cms.store.errors import RefLocked, RefMoved
from cms.store.objects import HEX40, ZERO, Identity, fsync_dir

log = logging.getLogger(__name__)

# How long a `<ref>.lock` that no CMS process left behind (git run by hand, `git gc`) is
# waited for before the write gives up (503), and how old it must be before it is taken for
# the leftover of a killed git and removed. git itself never holds a ref lock for minutes.
FOREIGN_LOCK_PATIENCE = 2.0
FOREIGN_LOCK_STALE_AFTER = 600.0

# A ref file's identity: every compare-and-swap (ours or git's) renames a new file into place,
# so a changed identity means the ref may have moved, wherever it went (forward or back).
Stamp = tuple[int, int, int, int]


class RefFiles:
    """The refs of the repository at `path`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        # names the ref whose lock a CMS process is taking, while it holds the CMS's own write
        # lock: a `<ref>.lock` found with it was left by a CMS process that died mid-update
        self.journal = self.path.with_name(self.path.name + ".ref-journal")

    def ref_stamp(self, ref: str) -> Stamp | None:
        """The identity of the file that holds ref now (its loose file, else packed-refs):
        one stat, no read. Take it before reading the ref; if it is unchanged later, the ref
        has not moved since."""
        for path in (os.path.join(self.path, ref), os.path.join(self.path, "packed-refs")):
            try:
                st = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        return None

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
        self,
        ref: str,
        new: str,
        old: str | None,
        reason: str,
        who: Identity,
        steps: Sequence[tuple[str, str, Identity]] = (),
    ) -> None:
        """Move ref to new only if it still points to old (None: only if it does not exist);
        the reflog line names `who` and the reason. steps: a chain of commits moved over at
        once, (commit, reason, who) each, oldest first: one reflog line each, as if the ref
        had moved commit by commit.

        git's own protocol, in-process: take `<ref>.lock` (O_EXCL, so a git command run by
        hand and the CMS exclude each other), compare, write and fsync, log, rename.
        """
        assert HEX40.match(new) and (old is None or HEX40.match(old))
        path = self.path / ref
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = path.with_name(path.name + ".lock")
        leftover = self._read_journal() == ref
        self.journal.write_text(ref)
        fd = self._take_ref_lock(lock, leftover)
        try:
            if self.read_ref(ref) != old:
                raise RefMoved(f"{ref} moved")
            os.write(fd, f"{new}\n".encode())
            os.fsync(fd)
            os.close(fd)
            fd = -1
            lines, before = [], old
            for step, why, by in steps or [(new, reason, who)]:
                lines.append((before, step, why, by))
                before = step
            self._log_ref(ref, lines)
            if self._head_target() == ref:  # as git: HEAD's reflog follows its branch
                self._log_ref("HEAD", lines)
            os.replace(lock, path)
            fsync_dir(path.parent)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            lock.unlink(missing_ok=True)
            raise
        finally:
            self.journal.unlink(missing_ok=True)

    def _take_ref_lock(self, lock: Path, own_leftover: bool) -> int:
        """Create `<ref>.lock`, as git does (O_EXCL). A lock that a CMS process left when it
        died (the journal names this ref, and the caller holds the CMS's write lock, so no
        other CMS process can be in here) is removed at once. Any other lock belongs to git
        run by hand or to `git gc`: it is waited for a little, then the write gives up
        (RefLocked, 503), unless it is so old that its owner must be gone."""
        deadline = time.monotonic() + FOREIGN_LOCK_PATIENCE
        while True:
            try:
                return os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                pass
            if own_leftover:
                log.warning("removing %s left by a CMS process that died", lock)
                lock.unlink(missing_ok=True)
                own_leftover = False
                continue
            try:
                age = time.time() - lock.stat().st_mtime
            except FileNotFoundError:
                continue
            if age > FOREIGN_LOCK_STALE_AFTER:
                log.warning("removing %s, untouched for %.0f s: its owner is gone", lock, age)
                lock.unlink(missing_ok=True)
            elif time.monotonic() >= deadline:
                raise RefLocked(f"{lock.name} is held by another git process; retry shortly")
            else:
                time.sleep(0.01)

    def _read_journal(self) -> str | None:
        try:
            return self.journal.read_text()
        except FileNotFoundError:
            return None

    def _head_target(self) -> str | None:
        try:
            head = (self.path / "HEAD").read_text()
        except OSError:
            return None
        return head.removeprefix("ref: ").strip() if head.startswith("ref: ") else None

    def _log_ref(self, ref: str, lines: list[tuple[str | None, str, str, Identity]]) -> None:
        """Append to the ref's reflog, as git does (core.logAllRefUpdates): (old, new, reason,
        who) each."""
        logfile = self.path / "logs" / ref
        logfile.parent.mkdir(parents=True, exist_ok=True)
        when = int(time.time())
        text = "".join(
            f"{old or ZERO} {new} {who.signature(when)}\t{' '.join(reason.split())[:200]}\n"
            for old, new, reason, who in lines
        )
        fd = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)
