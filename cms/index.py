"""The SQL read model: derived from git, rebuilt by `cms reindex`, caught up whenever a ref moves.

Index tables (dropped and rebuilt from git at will) and token tables (never touched by a
rebuild) live in separate metadata, so a rebuild cannot lose a token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import (
    JSON,
    BigInteger,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from cms.schemas import SLUG_RE
from cms.serialize import SerializationError, parse_yaml
from cms.store.git import GitStore, LogEntry, ObjectAccess
from cms.types import TYPES

REFS = ("refs/heads/main", "refs/heads/published")

log = logging.getLogger(__name__)

# the layout of the index tables: raise it when they change, and every existing index is
# rebuilt from git on the next start (2: index_changes.item_seq)
INDEX_SCHEMA = 2


class IndexBase(DeclarativeBase):
    metadata = MetaData()


class AccountsBase(DeclarativeBase):
    metadata = MetaData()


class RefHead(IndexBase):
    """The last commit of a ref that the index reflects."""

    __tablename__ = "index_refs"
    ref: Mapped[str] = mapped_column(String(200), primary_key=True)
    sha: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(Integer)


class CommitRow(IndexBase):
    """One commit on a ref's first-parent line; seq counts from the root (0)."""

    __tablename__ = "index_commits"
    ref: Mapped[str] = mapped_column(String(200), primary_key=True)
    sha: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    parents: Mapped[str] = mapped_column(String(400))
    author_name: Mapped[str] = mapped_column(String(400))
    author_email: Mapped[str] = mapped_column(String(400))
    author_time: Mapped[int] = mapped_column(BigInteger)
    committer_time: Mapped[int] = mapped_column(BigInteger)
    subject: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (
        Index("ix_commits_ref_seq", "ref", "seq"),
        Index("ix_commits_ref_time", "ref", "committer_time", "seq"),
        Index("ix_commits_sha", "sha"),
    )


class ChangeRow(IndexBase):
    """One item changed by one commit on a ref."""

    __tablename__ = "index_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(200))
    sha: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(100))
    slug: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(20))
    blob: Mapped[str | None] = mapped_column(String(40), nullable=True)
    old_blob: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # the nth change of this item on this ref (from 1): an item's history length in one seek
    item_seq: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_changes_item", "ref", "type", "slug", "seq"),
        Index("ix_changes_ref_seq", "ref", "seq"),
    )


class SchemaRow(IndexBase):
    """Which layout of the index tables this database holds (see INDEX_SCHEMA)."""

    __tablename__ = "index_schema"
    version: Mapped[int] = mapped_column(Integer, primary_key=True)


class ItemRow(IndexBase):
    """The current version of one item on one ref."""

    __tablename__ = "index_items"
    ref: Mapped[str] = mapped_column(String(200), primary_key=True)
    type: Mapped[str] = mapped_column(String(100), primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), primary_key=True)
    blob: Mapped[str] = mapped_column(String(40))
    sha: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class Token(AccountsBase):
    """An API token: only its SHA-256 is stored."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"), nullable=True)


# --- engine ---------------------------------------------------------------------------------


def make_engine(url: str) -> Engine:
    """An engine for the index; SQLite gets WAL and immediate write transactions."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            immediate = conn.get_execution_options().get("sqlite_immediate")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=10,
        connect_args={"connect_timeout": 5} if url.startswith("postgresql") else {},
    )


def create_tables(engine: Engine) -> None:
    """Create what is missing; another process creating the same tables at once is fine."""
    for metadata in (IndexBase.metadata, AccountsBase.metadata):
        try:
            metadata.create_all(engine)
        except (OperationalError, ProgrammingError, IntegrityError) as exc:
            if "already exists" not in str(exc) and "duplicate" not in str(exc).lower():
                raise
            metadata.create_all(engine)


def drop_index_tables(engine: Engine) -> None:
    IndexBase.metadata.drop_all(engine)


def ensure_schema(engine: Engine, may_rebuild: bool = True) -> bool:
    """Create the tables; an index laid out by another version of the CMS is dropped and made
    again (it is derived: the catch-up rebuilds it from git). True when it was dropped.
    Rebuilding needs the write lock; without it (may_rebuild=False) only a new, empty index
    is stamped with the version."""
    create_tables(engine)
    with engine.connect() as conn:
        version = conn.scalar(select(func.max(SchemaRow.version)))
        empty = conn.execute(select(RefHead.ref).limit(1)).first() is None
    if version != INDEX_SCHEMA and not empty and not may_rebuild:
        return False
    rebuilt = version != INDEX_SCHEMA and not empty
    if rebuilt:
        log.warning("index schema %s, expected %s: rebuilding it from git", version, INDEX_SCHEMA)
        drop_index_tables(engine)
        create_tables(engine)
    if version != INDEX_SCHEMA:
        try:
            with engine.begin() as conn:
                conn.execute(delete(SchemaRow))
                conn.execute(insert(SchemaRow).values(version=INDEX_SCHEMA))
        except IntegrityError:  # another worker recorded it at the same time
            pass
    return rebuilt


# --- deriving the index from git ------------------------------------------------------------


@dataclass(frozen=True)
class FileChange:
    type: str
    slug: str
    old_blob: str | None
    new_blob: str | None


def item_path(path: str) -> tuple[str, str] | None:
    """(type, slug) for a path the CMS owns, None for any other file."""
    folder, _, name = path.partition("/")
    if folder not in TYPES or not name.endswith(".yaml") or "/" in name:
        return None
    slug = name[: -len(".yaml")]
    return (folder, slug) if SLUG_RE.match(slug) and len(slug) <= 100 else None


def diff_trees(objs: ObjectAccess, old: str | None, new: str) -> list[FileChange]:
    """Items that differ between two root trees; only changed folders are read."""
    if old == new:
        return []
    old_top = objs.read_tree(old) if old else {}
    new_top = objs.read_tree(new)
    changes = []
    for folder in sorted(set(old_top) | set(new_top)):
        if folder not in TYPES or old_top.get(folder) == new_top.get(folder):
            continue
        before = objs.read_tree(old_top[folder][1]) if folder in old_top else {}
        after = objs.read_tree(new_top[folder][1]) if folder in new_top else {}
        for name in sorted(set(before) | set(after)):
            b, a = before.get(name), after.get(name)
            if b == a:
                continue
            key = item_path(f"{folder}/{name}")
            if key:
                changes.append(FileChange(*key, b[1] if b else None, a[1] if a else None))
    return changes


def load_item(
    objs: ObjectAccess, type_name: str, blob: str
) -> tuple[dict[str, Any] | None, str | None]:
    """An item's data as stored, and why it is invalid (None when it is valid)."""
    try:
        data = parse_yaml(objs.read_blob(blob))
    except SerializationError as exc:
        return None, str(exc)
    schema = TYPES[type_name].schema
    try:  # a file written by hand may omit defaults: serve the full, canonical shape
        return schema.dump(schema.load(data)), None
    except ValidationError as exc:
        return data, f"does not match the {type_name} schema: {exc.messages}"


def split_message(message: str) -> tuple[str, str, dict[str, str]]:
    """(subject, reason, trailers) of a commit message written by the CMS or by hand."""
    paragraphs = [p for p in message.strip("\n").split("\n\n")]
    subject = paragraphs[0].split("\n", 1)[0] if paragraphs else ""
    rest = paragraphs[1:]
    from cms.store.git import TRAILER

    trailers: dict[str, str] = {}
    if rest and all(TRAILER.match(line) for line in rest[-1].split("\n")):
        for line in rest.pop().split("\n"):
            key, _, value = line.partition(": ")
            trailers[key] = value
    first_rest = paragraphs[0].split("\n", 1)[1:] if paragraphs else []
    reason = "\n\n".join([*first_rest, *rest]).strip()
    return subject, reason, trailers


def action_of(change: FileChange, trailers: dict[str, str]) -> str:
    if change.new_blob is None:
        return "delete"
    if trailers.get("CMS-Action") == "revert":
        return "revert"
    return "create" if change.old_blob is None else "update"


class CatchUpResult:
    def __init__(self) -> None:
        self.commits = 0
        self.changes = 0
        self.rebuilt = False
        # the ref's row once read: a `record` given this result needs no query for it
        self.head_row: RefHead | None = None


def sync_ref(
    session: Session,
    store: GitStore,
    ref: str,
    progress: Callable[[int, int], None] | None = None,
) -> CatchUpResult:
    """Bring the index of one ref up to its head in git. Caller holds the write lock."""
    result = CatchUpResult()
    head = store.read_ref(ref)
    known = result.head_row = session.get(RefHead, ref)
    if head is None:
        if known is not None:
            _clear_ref(session, ref)
            result.rebuilt, result.head_row = True, None
        return result
    if known is not None and known.sha == head:
        return result
    entries = store.first_parent_log(head, known.sha if known else None)
    if entries is None:  # the ref was rewritten: the indexed commit is not on its line
        _clear_ref(session, ref)
        session.flush()
        known, result.rebuilt, result.head_row = None, True, None
        entries = store.first_parent_log(head, None) or []
    return record(session, store, ref, entries, progress, result)


def record(
    session: Session,
    store: GitStore,
    ref: str,
    entries: list[LogEntry],
    progress: Callable[[int, int], None] | None = None,
    result: CatchUpResult | None = None,
    known: dict[str, dict[str, Any]] | None = None,
) -> CatchUpResult:
    """Index commits that follow the ref's indexed head, oldest first, and move the head.

    known: blob id -> canonical data the caller already validated (no need to parse it again).
    """
    result = result or CatchUpResult()
    head_row = result.head_row or session.get(RefHead, ref)
    seq = head_row.seq if head_row else -1
    items: dict[tuple[str, str], tuple[str | None, str]] = {}
    commit_rows: list[dict[str, Any]] = []
    change_rows: list[dict[str, Any]] = []
    for n, entry in enumerate(entries, 1):
        commit = entry.commit
        seq += 1
        subject, reason, trailers = split_message(commit.message)
        token = trailers.get("CMS-Token-Id", "")
        commit_rows.append(
            dict(
                ref=ref,
                sha=commit.sha,
                seq=seq,
                parents=" ".join(commit.parents),
                author_name=commit.author_name,
                author_email=commit.author_email,
                author_time=commit.author_time,
                committer_time=commit.committer_time,
                subject=subject,
                reason=reason,
                message=commit.message,
                token_id=int(token) if token.isdigit() and len(token) < 10 else None,
            )
        )
        for path, old, new in entry.changes:
            key = item_path(path)
            if key is None:
                continue
            change = FileChange(*key, old, new)
            change_rows.append(
                dict(
                    ref=ref,
                    sha=commit.sha,
                    seq=seq,
                    type=change.type,
                    slug=change.slug,
                    action=action_of(change, trailers),
                    blob=new,
                    old_blob=old,
                )
            )
            items[key] = (new, commit.sha)
        if progress and (n % 1000 == 0 or n == len(entries)):
            progress(n, len(entries))
    _number_item_changes(session, ref, change_rows, fresh=head_row is None)
    _insert_many(session, CommitRow, commit_rows)
    _insert_many(session, ChangeRow, change_rows)
    with store.objects() as objs:
        for (type_name, slug), (blob, sha) in items.items():
            where = (ItemRow.ref == ref, ItemRow.type == type_name, ItemRow.slug == slug)
            if blob is None:
                session.execute(delete(ItemRow).where(*where), execution_options=_CORE)
                continue
            data: dict[str, Any] | None
            error: str | None = None
            if known and blob in known:
                data = known[blob]
            else:
                data, error = load_item(objs, type_name, blob)
            values = {"blob": blob, "sha": sha, "data": data, "error": error}
            updated = session.execute(
                update(ItemRow).where(*where).values(values), execution_options=_CORE
            )
            if updated.rowcount == 0:  # type: ignore[attr-defined]
                session.execute(
                    insert(ItemRow).values(ref=ref, type=type_name, slug=slug, **values)
                )
    if entries:
        head = entries[-1].commit.sha
        if head_row is None:
            head_row = RefHead(ref=ref, sha=head, seq=seq)
            session.add(head_row)
        else:
            head_row.sha, head_row.seq = head, seq
    session.flush()
    result.head_row = head_row
    result.commits += len(entries)
    result.changes += len(change_rows)
    return result


def _number_item_changes(
    session: Session, ref: str, change_rows: list[dict[str, Any]], fresh: bool
) -> None:
    """Set item_seq on new change rows: the last number of the item so far, plus one."""
    last: dict[tuple[str, str], int] = {}
    for row in change_rows:
        key = (row["type"], row["slug"])
        if key not in last:
            last[key] = 0 if fresh else last_item_seq(session, ref, *key)
        last[key] += 1
        row["item_seq"] = last[key]


def last_item_seq(session: Session, ref: str, type_name: str, slug: str) -> int:
    query = (
        select(ChangeRow.item_seq)
        .where(ChangeRow.ref == ref, ChangeRow.type == type_name, ChangeRow.slug == slug)
        .order_by(ChangeRow.seq.desc())
        .limit(1)
    )
    return session.scalar(query) or 0


# plain SQL statements: the ORM need not look for the rows among the objects it has loaded
_CORE = {"synchronize_session": False}


def _insert_many(session: Session, model: type[IndexBase], rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 2000):
        session.execute(model.__table__.insert(), rows[start : start + 2000])  # type: ignore[attr-defined]


def _clear_ref(session: Session, ref: str) -> None:
    for model in (ItemRow, ChangeRow, CommitRow, RefHead):
        session.execute(delete(model).where(model.ref == ref))


def expected_items(store: GitStore, ref: str) -> dict[tuple[str, str], tuple[str, Any, str | None]]:
    """What git says the index of a ref must hold: (type, slug) -> (blob, data, error)."""
    head = store.read_ref(ref)
    if head is None:
        return {}
    out = {}
    with store.objects() as objs:
        tree = objs.read_commit(head).tree
        for path, blob in objs.files(tree).items():
            key = item_path(path)
            if key:
                data, error = load_item(objs, key[0], blob)
                out[key] = (blob, data, error)
    return out


def indexed_items(session: Session, ref: str) -> dict[tuple[str, str], tuple[str, Any, str | None]]:
    rows = session.scalars(select(ItemRow).where(ItemRow.ref == ref))
    return {(r.type, r.slug): (r.blob, r.data, r.error) for r in rows}


def now() -> int:
    return int(time.time())


def iso_time(ts: int) -> str:
    """A commit or token time (seconds since the epoch) as ISO 8601 UTC."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
