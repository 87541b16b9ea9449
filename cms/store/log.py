"""A ref's first-parent history with the files each commit changed: one streamed `git log`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cms.store.objects import HEX40, ZERO, CommitInfo
from cms.store.process import stream_git

# \x01 starts a commit; NUL separates hash, parents, author, committer, times and message
LOG_FORMAT = "%x01%H%x00%P%x00%an%x00%ae%x00%at%x00%cn%x00%ce%x00%ct%x00%B%x00"


@dataclass(frozen=True)
class LogEntry:
    """One commit and the files it changed: (path, old blob or None, new blob or None)."""

    commit: CommitInfo
    changes: list[tuple[str, str | None, str | None]]


def first_parent_log(git_dir: Path, head: str, stop: str | None) -> list[LogEntry] | None:
    """Commits on head's first-parent line after stop, oldest first, with the files each
    changed against its first parent: one `git log` for the whole range.

    None when stop is not on that line (the ref was rewritten). Only full object ids read
    from the ref files are passed to git, never a client string.
    """
    assert HEX40.match(head) and (stop is None or HEX40.match(stop))
    if head == stop:
        return []
    records = stream_git(
        git_dir, b"\x01", "log", "--first-parent", "--reverse", "--raw", "--no-renames",
        "--no-abbrev", "-z", f"--format={LOG_FORMAT}",
        head, *([f"^{stop}"] if stop else []), "--",
    )  # fmt: skip
    next(records, None)  # what comes before the first separator: nothing
    entries = [_parse_log_entry(chunk) for chunk in records]
    if stop is not None and (not entries or entries[0].commit.parents[:1] != (stop,)):
        return None
    return entries


def _parse_log_entry(chunk: bytes) -> LogEntry:
    fields = chunk.split(b"\x00", 9)
    sha, parents, an, ae, at, cn, ce, ct, body = (f.decode("utf-8", "replace") for f in fields[:9])
    raw = fields[9].lstrip(b"\x00\n").split(b"\x00") if len(fields) > 9 else []
    changes: list[tuple[str, str | None, str | None]] = []
    for meta, path in zip(raw[::2], raw[1::2], strict=False):
        parts = meta.decode().split()
        if len(parts) < 5:
            continue
        old, new = parts[2], parts[3]
        changes.append(
            (
                path.decode("utf-8", "replace"),
                None if old == ZERO else old,
                None if new == ZERO else new,
            )
        )
    commit = CommitInfo(
        sha=sha,
        tree="",
        parents=tuple(parents.split()),
        author_name=an,
        author_email=ae,
        author_time=int(at or 0),
        committer_name=cn,
        committer_email=ce,
        committer_time=int(ct or 0),
        message=body,
    )
    return LogEntry(commit, changes)
