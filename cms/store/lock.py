"""The repository's write lock: one writer at a time across processes (gunicorn workers, CLI).

flock is held by an open file description, so the kernel releases it when its holder dies,
even by SIGKILL: a killed writer never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class LockTimeout(Exception):
    """Another writer held the lock for longer than we may wait."""

    def __init__(self, waited: float) -> None:
        super().__init__(f"the repository is busy (waited {waited:.1f} s)")
        self.waited = waited


@contextmanager
def write_lock(path: Path, timeout: float = 10.0) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        start = time.monotonic()
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - start
                if waited >= timeout:
                    raise LockTimeout(waited) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.002)  # a waiter sleeping past a release wastes the lock
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
