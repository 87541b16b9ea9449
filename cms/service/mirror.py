"""Mirroring to a git remote: every commit on main and published, and every release, pushed soon
after it is made, in the background, with retries and backoff, never blocking an edit.

Each worker runs one pusher thread (started after gunicorn forks, on first use). A push sends
the repository's current refs, whoever made them, so any worker's push brings the remote up to
date; a lock file keeps two workers from pushing at once, and a state file beside the
repository tells every worker what was last pushed (for /readyz).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import threading
import time
from typing import Any

from cms.store.git import GitStore
from cms.store.lock import LockTimeout, write_lock
from cms.store.process import git_env

log = logging.getLogger(__name__)

REFSPECS = (
    "refs/heads/main:refs/heads/main",
    "refs/heads/published:refs/heads/published",
    "refs/tags/*:refs/tags/*",
)
MIRRORED_PREFIXES = ("refs/heads/main", "refs/heads/published", "refs/tags/")


def redact(url: str) -> str:
    """The URL without credentials, for logs and /readyz."""
    return re.sub(r"//[^/@]*@", "//***@", url)


def rejected_refs(porcelain: str) -> list[str]:
    """The remote refs `git push --porcelain` reports as refused ('!' lines)."""
    out = []
    for line in porcelain.splitlines():
        flag, _, rest = line.partition("\t")
        if flag == "!":
            out.append(rest.split("\t", 1)[0].partition(":")[2])
    return out


class Mirror:
    def __init__(self, store: GitStore, url: str, retry_max: float = 60.0) -> None:
        if url.startswith("-"):
            raise ValueError("CMS_MIRROR_URL must not start with '-'")
        self.store = store
        self.url = url
        self.retry_max = retry_max
        self.state_path = store.path.with_name(store.path.name + ".mirror.json")
        self.lock_path = store.path.with_name(store.path.name + ".mirror-lock")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def notify(self) -> None:
        """A ref moved: push soon. Returns at once."""
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._pid = os.getpid()  # a thread does not survive fork: start one per process
            self._thread = threading.Thread(target=self._run, name="cms-mirror", daemon=True)
            self._thread.start()
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        delay = 0.0
        while not self._stop.is_set():
            # wait for news, or retry after the backoff, or look again every minute
            self._wake.wait(timeout=delay or 60.0)
            self._wake.clear()
            if self._stop.is_set():
                return
            delay = 0.0 if self.push_once() else min(max(delay * 2, 0.5), self.retry_max)

    def push_once(self) -> bool:
        """Push the mirrored refs if the remote may be behind; True when it is now current."""
        refs = self.local_refs()
        state = self.state()
        if state.get("pushed") == refs and not state.get("error"):
            return True
        try:
            with write_lock(self.lock_path, timeout=120):
                refs = self.local_refs()
                # never forced: a ref rewound by hand here must not wipe the off-site history;
                # git refuses the non-fast-forward and /readyz shows which refs it refused
                proc = subprocess.run(
                    ["git", f"--git-dir={self.store.path}", "push", "--porcelain",
                     "--quiet", self.url, *REFSPECS],
                    capture_output=True,
                    env={**git_env(), "GIT_SSH_COMMAND": os.environ.get(
                        "GIT_SSH_COMMAND", "ssh -o BatchMode=yes")},
                    timeout=300,
                    check=False,
                )  # fmt: skip
                if proc.returncode == 0:
                    self._save(
                        {**state, "pushed": refs, "at": time.time(), "error": None, "rejected": []}
                    )
                    return True
                error = proc.stderr.decode(errors="replace").strip()[-500:]
                rejected = rejected_refs(proc.stdout.decode(errors="replace"))
        except (LockTimeout, OSError, subprocess.TimeoutExpired) as exc:
            error, rejected = str(exc), []
        if rejected:
            log.warning(
                "mirror %s refused %s (not a fast-forward: rewound here by hand?)",
                redact(self.url),
                ", ".join(rejected),
            )
        log.warning("mirror push to %s failed: %s", redact(self.url), error)
        self._save({**state, "error": error, "failed_at": time.time(), "rejected": rejected})
        return False

    def local_refs(self) -> dict[str, str]:
        refs = self.store.list_refs("refs/tags/")
        for ref in ("refs/heads/main", "refs/heads/published"):
            sha = self.store.read_ref(ref)
            if sha:
                refs[ref] = sha
        return dict(sorted(refs.items()))

    def state(self) -> dict[str, Any]:
        try:
            loaded: dict[str, Any] = json.loads(self.state_path.read_text())
            return loaded
        except (FileNotFoundError, ValueError):
            return {}

    def _save(self, state: dict[str, Any]) -> None:
        tmp = self.state_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state_path)

    def status(self) -> dict[str, Any]:
        """How far the remote lags: which refs differ and since when."""
        refs, state = self.local_refs(), self.state()
        pushed = state.get("pushed") or {}
        behind = sorted(ref for ref, sha in refs.items() if pushed.get(ref) != sha)
        since = state.get("at")
        return {
            "ok": True,  # a lagging mirror never stops the CMS serving
            "url": redact(self.url),
            "behind": behind,
            "lag_seconds": (round(time.time() - since, 1) if since else None) if behind else 0,
            "last_success": since,
            "last_error": state.get("error"),
            "rejected": state.get("rejected") or [],
        }
