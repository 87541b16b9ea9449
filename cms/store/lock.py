"""The repository's write lock: one writer at a time across processes (gunicorn workers, CLI).

flock is held by an open file description, so the kernel releases it when its holder dies,
even by SIGKILL: a killed writer never leaves a stale lock behind. The file names the process
that holds it (its pid), for an operator to see.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cms.errors import Unavailable

POLL = 0.004  # seconds between two looks at `unless` while waiting


class LockTimeout(Unavailable):
    """Another writer held the lock for longer than we may wait: 503, retry shortly."""

    def __init__(self, waited: float) -> None:
        super().__init__(f"the repository is busy (waited {waited:.1f} s)")
        self.waited = waited


class LockBusy(LockTimeout):
    """The lock is held and the caller would not wait for it (timeout 0)."""


class NoLongerNeeded(Exception):
    """What the waiter waited for the lock to do was done meanwhile (`unless` turned true)."""


@contextmanager
def write_lock(
    path: Path, timeout: float = 10.0, unless: Callable[[], bool] | None = None
) -> Iterator[None]:
    """Hold the lock for the block; wait at most `timeout` seconds for it (LockTimeout), or
    not at all with timeout 0 (LockBusy). unless: looked at every few milliseconds while
    waiting; once true, the wait ends with NoLongerNeeded (a writer whose edit another lock
    holder has committed need not take the lock to learn it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if timeout <= 0:
            os.close(fd)
            raise LockBusy(0.0) from None
        fd = _wait_for(fd, timeout, unless)  # owns fd from here: closed by it on a timeout
    except BaseException:
        os.close(fd)
        raise
    try:
        # who holds it, for an operator (and the crash tests) to see; padded to one width, so
        # that no truncate is needed (a truncate costs a journal entry)
        os.pwrite(fd, b"%-11d\n" % os.getpid(), 0)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _wait_for(fd: int, timeout: float, unless: Callable[[], bool] | None = None) -> int:
    """Block in flock on a helper thread, so that the kernel hands the lock over the moment
    its holder lets go (polling would leave it idle between polls), while this thread can
    still give up after `timeout`. A waiter given up on releases the lock as soon as it gets it.
    """
    guard = threading.Lock()
    granted = threading.Event()
    state: dict[str, Any] = {"abandoned": False, "error": None}

    def wait() -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            state["error"] = exc
        with guard:
            if state["abandoned"]:
                os.close(fd)  # releases the lock, if we got it
            else:
                granted.set()

    start = time.monotonic()
    threading.Thread(target=wait, name="cms-lock-wait", daemon=True).start()
    deadline = start + timeout
    needed = True
    if unless is None:
        granted.wait(timeout)
    else:
        while not granted.wait(min(POLL, max(deadline - time.monotonic(), 0))):
            if time.monotonic() >= deadline:
                break
            if unless():
                needed = False
                break
    with guard:
        if not granted.is_set():
            state["abandoned"] = True
            if not needed:
                raise NoLongerNeeded()
            raise LockTimeout(time.monotonic() - start)
    if state["error"] is not None:
        os.close(fd)
        raise state["error"]
    return fd
