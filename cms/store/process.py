"""Running git itself, for what it does best (log streams, fsck, gc, init, http-backend), always
with a fixed argument list and an environment that no user's config can change."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cms.store.errors import StoreError

# git must never read a user's or the system's config: hooks, signing or autocrlf there
# would change what the CMS writes.
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "LC_ALL": "C",
}


def git_env() -> dict[str, str]:
    return {**os.environ, **GIT_ENV}


def run_git(git_dir: Path, *args: str, input: bytes | None = None) -> bytes:
    """Run git on the repository with a fixed argument list (never a client string)."""
    proc = subprocess.run(
        ["git", f"--git-dir={git_dir}", *args],
        input=input,
        capture_output=True,
        env=git_env(),
        check=False,
    )
    if proc.returncode != 0:
        raise StoreError(f"git {args[0]} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def stream_git(git_dir: Path, separator: bytes, *args: str) -> Iterator[bytes]:
    """Run git and yield its output split at separator while it is still writing, so that
    parsing one part overlaps git producing the next."""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            ["git", f"--git-dir={git_dir}", *args],
            stdout=subprocess.PIPE,
            stderr=errors,
            env=git_env(),
        )
        assert proc.stdout is not None
        try:
            pending = b""
            while block := os.read(proc.stdout.fileno(), 1 << 16):
                *done, pending = (pending + block).split(separator)
                yield from done
            yield pending
        finally:
            proc.stdout.close()
            code = proc.wait()
        if code != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip()
            raise StoreError(f"git {args[0]} failed: {message}")


def merge_text(base: str, ours: str, theirs: str) -> str | None:
    """git's three-way merge of a text (`git merge-file`); None when the sides conflict."""
    with tempfile.TemporaryDirectory(prefix="cms-merge-") as folder:
        paths = []
        for name, text in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = Path(folder) / name
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
        proc = subprocess.run(
            ["git", "merge-file", "-p", "--quiet", *paths],
            capture_output=True,
            env=git_env(),
            check=False,
        )
    if proc.returncode < 0 or proc.returncode > 127:
        raise StoreError(f"git merge-file failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout.decode("utf-8") if proc.returncode == 0 else None
