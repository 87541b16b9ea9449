"""The runner: background work derived from SQL state, done by one process at a time however
many workers and hosts run (a PostgreSQL advisory lock when the accounts live in PostgreSQL,
a file lock beside the repository otherwise): scheduled publications, then webhooks."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import text

from cms import schedules, webhooks
from cms.errors import CMSError, Conflict
from cms.service import notify
from cms.service.items import iso_time

if TYPE_CHECKING:  # the service owns the runner; the runner only calls it
    from cms.service import ContentService

log = logging.getLogger(__name__)
ADVISORY_KEY = 0x54425953  # "TBYS": one runner per database


class Runner:
    """A thread per process that wakes every `interval` seconds and, if it gets the runner
    lock, does what is due. A process killed mid-run leaves its work pending: the next round,
    in any process, does it again, and each job is idempotent."""

    def __init__(
        self, svc: ContentService, interval: float, policy: notify.DeliveryPolicy | None = None
    ) -> None:
        self.svc = svc
        self.interval = interval
        self.policy = policy or notify.DeliveryPolicy()
        self.lock_path = svc.store.path.with_name(svc.store.path.name + ".runner-lock")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def ensure_started(self) -> None:
        """Start this process's thread (threads do not survive a fork: one per worker)."""
        if self.interval <= 0 or self._stop.is_set():
            return
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._loop, name="cms-runner", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception:  # the runner must outlive any one failure; it is logged
                log.exception("runner round failed")

    def run_once(self) -> int:
        """One round, if this process gets the lock: how many jobs it finished."""
        with self._exclusive() as mine:
            if not mine:
                return 0
            done = self._publish_due()
            notify.derive(self.svc)  # after publishing, so its commit is told this round
            return done + notify.deliver(self.svc, self.policy)

    @contextmanager
    def _exclusive(self) -> Iterator[bool]:
        engine = self.svc.accounts_engine
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                mine = bool(
                    conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY})
                )
                conn.commit()
                try:
                    yield mine
                finally:
                    if mine:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                        conn.commit()
            return
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # releases the flock

    def _publish_due(self) -> int:
        with self.svc.accounts_session() as session:
            jobs = [
                (row.id, row.commit, row.reason, row.actor())
                for row in schedules.due(session, int(time.time()))
            ]
        done = 0
        for schedule_id, commit, reason, actor in jobs:
            try:
                result = self.svc.publish_site(
                    actor, reason, commit=commit, trailers=(f"CMS-Schedule-Id: {schedule_id}",)
                )
                status, outcome = schedules.DONE, result.commit
            except Conflict as exc:  # the commit left main: fail visibly, publish nothing else
                log.warning("scheduled publication %s failed: %s", schedule_id, exc.message)
                status, outcome = schedules.FAILED, exc.message
                with self.svc.accounts_session() as session:
                    webhooks.announce(session, "schedule.failed", {
                        "type": "schedule.failed", "timestamp": iso_time(int(time.time())),
                        "data": {"schedule": schedule_id, "commit": commit, "reason": outcome},
                    })  # fmt: skip
            except CMSError as exc:  # busy or an outage: the next round tries again
                log.warning("scheduled publication %s postponed: %s", schedule_id, exc.message)
                continue
            with self.svc.accounts_session() as session:
                schedules.finish(session, schedule_id, status, outcome)
            done += 1
        return done
