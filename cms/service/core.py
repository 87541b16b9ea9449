"""What every part of the service shares: the store, the index's sessions, the write lock, the
catch-up that carries commits from git into the index, commits, and the snapshot reads."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cms import auth, index
from cms import previews as _previews  # noqa: F401 (their tables join the accounts metadata)
from cms import schedules as _schedules  # noqa: F401
from cms import webhooks as _webhooks  # noqa: F401
from cms.auth import Actor
from cms.errors import Unavailable
from cms.index import CommitRecord, CommitRow, ItemChange, RefHead
from cms.service.items import (
    Item,
    Snapshot,
    item_from_blob,
    load_item,
    parse_item,
)
from cms.service.messages import (
    TOKEN_TRAILER,
    action_of,
    commit_message,
    split_message,
    token_id_of,
)
from cms.service.mirror import Mirror
from cms.store.errors import RefMoved, StoreError
from cms.store.git import GitStore
from cms.store.lock import write_lock
from cms.store.log import LogEntry
from cms.store.objects import CommitInfo, Identity, ObjectAccess
from cms.types import TYPES, ContentType, item_key

if TYPE_CHECKING:  # the runner calls the service; the service only holds it
    from cms.service.runner import Runner

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
REF_RETRIES = 3  # how often a write catches up again when git moved its ref under it


def retry_on_ref_moved(method: Callable[P, R]) -> Callable[P, R]:
    """Run a locked write again when its compare-and-swap found the ref moved by git (a
    commit by hand between the catch-up and the swap): it is no outage, only news."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        for _ in range(REF_RETRIES):
            try:
                return method(*args, **kwargs)
            except RefMoved as exc:
                log.info("%s: catching up and trying again", exc)
        raise Unavailable("The repository kept moving under this write; retry.")

    return wrapper


class ServiceBase:
    """The state and the steps that writes, publishing, maintenance and reads all use."""

    def __init__(
        self,
        store: GitStore,
        engine: Engine,
        committer: Identity,
        lock_timeout: float = 10.0,
        accounts_engine: Engine | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        # tokens: a database of their own by default, so that losing or rebuilding the index
        # (a derived thing) can never take them
        self.accounts_engine = accounts_engine or engine
        self.committer = committer
        self.lock_timeout = lock_timeout
        self.lock_path = store.path.with_name(store.path.name + ".cms-lock")
        read_engine = lookup_engine = engine
        if engine.dialect.name == "postgresql":
            read_engine = engine.execution_options(isolation_level="REPEATABLE READ")
            # a lookup needs no transaction: BEGIN and COMMIT are two round trips of three
            lookup_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._read_sessions = sessionmaker(read_engine, expire_on_commit=False)
        self._lookup_sessions = sessionmaker(lookup_engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(
            engine.execution_options(sqlite_immediate=True), expire_on_commit=False
        )
        self._accounts_sessions = sessionmaker(
            self.accounts_engine.execution_options(sqlite_immediate=True), expire_on_commit=False
        )
        accounts_lookups = self.accounts_engine
        if accounts_lookups.dialect.name == "postgresql":
            accounts_lookups = accounts_lookups.execution_options(isolation_level="AUTOCOMMIT")
        self._accounts_reads = sessionmaker(accounts_lookups, expire_on_commit=False)
        self._snapshots: dict[str, Snapshot] = {}
        # a type with more items than this on a ref is read from SQL a page at a time instead
        # of being held in each worker's memory (CMS_SNAPSHOT_MAX_ITEMS)
        self.snapshot_max_items = 1000
        self.mirror: Mirror | None = None  # set by create_app when CMS_MIRROR_URL is given
        self.runner: Runner | None = None  # set by create_app: scheduled publications
        self.gc_every = 0  # run `git gc --auto` after this many commits by this process
        self._commits_since_gc = 0
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self._sqlite_file = Path(database) if database and database != ":memory:" else None
        self._sqlite_inode: tuple[int, int] | None = None

    # --- sessions and the lock ---------------------------------------------------------------

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        self._check_index_file()
        with self._read_sessions() as session, session.begin():
            yield session

    @contextmanager
    def lookup_session(self) -> Iterator[Session]:
        """Reads that need no snapshot of their own (each checked against git or under the
        lock later): on PostgreSQL without a transaction, one round trip a statement."""
        self._check_index_file()
        with self._lookup_sessions() as session, session.begin():
            yield session

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        self._check_index_file()
        with self._write_sessions() as session, session.begin():
            yield session

    @contextmanager
    def accounts_session(self, write: bool = True) -> Iterator[Session]:
        """A transaction on the accounts (tokens) database; write=False for a lookup, which
        waits for no writer on SQLite (BEGIN, not BEGIN IMMEDIATE) and needs no transaction
        on PostgreSQL."""
        sessions = self._accounts_sessions if write else self._accounts_reads
        with sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Stop the runner and close every pooled database connection (at shutdown)."""
        if self.runner is not None:
            self.runner.close()
        self.engine.dispose()
        self.accounts_engine.dispose()

    def _check_index_file(self) -> None:
        """If the SQLite file was deleted or replaced under us, start over on the new one.

        Pooled connections would go on using the deleted file; the index is rebuilt from git
        by the catch-up on the next read. (Tokens live in a database of their own.)
        """
        if self._sqlite_file is None:
            return
        try:
            st = self._sqlite_file.stat()
            inode: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            inode = None
        if inode is not None and inode == self._sqlite_inode:
            return
        if self._sqlite_inode is not None:
            log.warning("index file %s was replaced or deleted: rebuilding", self._sqlite_file)
            self.engine.dispose()
            self._snapshots.clear()
        self._ensure_tables(may_rebuild=False)  # safe when two workers race
        st = self._sqlite_file.stat()
        self._sqlite_inode = (st.st_dev, st.st_ino)

    def _ensure_tables(self, may_rebuild: bool = True) -> None:
        index.ensure_schema(self.engine, may_rebuild=may_rebuild)
        auth.create_tables(self.accounts_engine)  # tokens and preview links

    @contextmanager
    def locked(
        self, wait: bool = True, unless: Callable[[], bool] | None = None
    ) -> Iterator[Session]:
        """The write lock and one index transaction, committed before the lock is released.
        wait=False: LockBusy at once if another process holds the lock; unless: see
        write_lock (NoLongerNeeded)."""
        timeout = self.lock_timeout if wait else 0
        with write_lock(self.lock_path, timeout, unless), self.write_session() as session:
            yield session

    # --- from git into the index ---------------------------------------------------------------

    def sync_ref(
        self,
        session: Session,
        ref: str,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[int, RefHead | None]:
        """Bring the index of one ref up to its head in git. Caller holds the write lock.
        Returns how many commits were indexed and the ref's index row."""
        head = self.store.read_ref(ref)
        known = session.get(RefHead, ref)
        if head is None:
            if known is not None:
                index.clear_ref(session, ref)
            return 0, None
        if known is not None and known.sha == head:
            return 0, known
        entries = self.store.first_parent_log(head, known.sha if known else None)
        if entries is None:  # the indexed head is not on the ref's line any more
            back = session.get(CommitRow, (ref, head))
            if back is not None:  # wound back along its own line: drop what came after
                self._rewind(session, ref, back)
                return 0, session.get(RefHead, ref)
            log.warning("%s was rewritten: indexing its history again", ref)
            index.clear_ref(session, ref)
            session.flush()
            known = None
            entries = self.store.first_parent_log(head, None) or []
        row = self.record(session, ref, entries, head_row=known, progress=progress)
        return len(entries), row

    def _rewind(self, session: Session, ref: str, to: CommitRow) -> None:
        changed = index.rewind(session, ref, to)
        log.warning("%s was wound back to %s: later commits dropped from the index", ref, to.sha)
        with self.store.objects() as objs:
            tree = objs.read_commit(to.sha).tree
            items = {
                key: (objs.blob_at(tree, TYPES[key[0]].path(key[1])), to.sha) for key in changed
            }
            index.put_items(session, ref, items, functools.partial(load_item, objs))
        session.flush()

    def record(
        self,
        session: Session,
        ref: str,
        entries: list[LogEntry],
        head_row: RefHead | None = None,
        known: dict[str, dict[str, Any]] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> RefHead | None:
        """Index commits read from git (see index.record). known: blob id -> canonical data
        that the caller already validated (no need to parse it again)."""
        records = [commit_record(e) for e in entries]
        with self.store.objects() as objs:
            final = {(c.type, c.slug): c.new_blob for r in records for c in r.changes}
            wanted = {blob for blob in final.values() if blob and not (known and blob in known)}
            fetched = objs.read_blobs(wanted) if len(wanted) > 1 else {}

            def load(type_name: str, blob: str) -> tuple[dict[str, Any] | None, str | None]:
                if known and blob in known:
                    return known[blob], None
                if blob in fetched:
                    return parse_item(type_name, fetched[blob])
                return load_item(objs, type_name, blob)

            return index.record(session, ref, records, load, head_row, progress)

    # --- commits ------------------------------------------------------------------------------

    def _commit(
        self,
        objs: ObjectAccess,
        ref: str,
        head: str | None,
        tree: str,
        parents: list[str],
        actor: Actor,
        subject: str,
        reason: str,
        trailers: list[str],
    ) -> CommitInfo:
        """Write one commit and move ref to it by compare-and-swap. Caller holds the lock."""
        message = commit_message(subject, reason, signed(actor, trailers))
        author = self.identity(actor)
        when = int(time.time())
        sha = objs.write_commit(tree, parents, author, self.committer, message, when)
        self.store.update_ref_if_equals(ref, sha, head, f"cms: {subject[:150]}", author)
        self._refs_moved()
        return CommitInfo(
            sha, tree, tuple(parents), author.name, author.email, when,
            self.committer.name, self.committer.email, when, message + "\n",
        )  # fmt: skip

    def identity(self, actor: Actor) -> Identity:
        """Who a commit or tag names: the editor, or the CMS for work of its own."""
        return Identity(actor.name or self.committer.name, actor.email or self.committer.email)

    def _refs_moved(self, commits: int = 1) -> None:
        if self.mirror is not None:
            self.mirror.notify()
        self._commits_since_gc += commits
        if self.gc_every and self._commits_since_gc >= self.gc_every:
            self._commits_since_gc = 0
            # in the background: packing never delays the edit that triggered it
            threading.Thread(target=self._auto_gc, name="cms-gc", daemon=True).start()

    def _auto_gc(self) -> None:
        try:
            self.store.gc(auto=True)
        except StoreError as exc:
            log.warning("automatic git gc failed: %s", exc)

    def _current(
        self, objs: ObjectAccess, ctype: ContentType, slug: str, blob: str | None
    ) -> Item | None:
        return item_from_blob(objs, ctype.name, slug, blob)


def signed(actor: Actor, trailers: list[str]) -> list[str]:
    """A commit's trailers with the token that made it, if any."""
    if actor.token_id is None:
        return trailers
    return [*trailers, f"{TOKEN_TRAILER}{actor.token_id}"]


def commit_record(entry: LogEntry) -> CommitRecord:
    """What the index keeps of a commit read from git: its message parsed, its files named."""
    commit = entry.commit
    subject, reason, trailers = split_message(commit.message)
    changes = []
    for path, old, new in entry.changes:
        key = item_key(path)
        if key is not None:
            changes.append(ItemChange(*key, action_of(old, new, trailers), old, new))
    return CommitRecord(
        sha=commit.sha,
        parents=commit.parents,
        author_name=commit.author_name,
        author_email=commit.author_email,
        author_time=commit.author_time,
        committer_time=commit.committer_time,
        subject=subject,
        reason=reason,
        message=commit.message,
        token_id=token_id_of(trailers),
        changes=changes,
    )
