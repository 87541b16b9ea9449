"""The SQL read model: derived from git, rebuilt by `cms reindex`, caught up whenever a ref moves.

It knows nothing of git: the service reads the commits (store) and hands them over as
`CommitRecord`s, with a function that loads an item's data from its blob id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    bindparam,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from cms.database import create_all
from cms.types import TYPES

log = logging.getLogger(__name__)

# the layout of the index tables: raise it when they change, and every existing index is
# rebuilt from git on the next start (2: index_changes.item_seq; 3: index_items.parent, .title)
INDEX_SCHEMA = 3

# (data, error) of an item given its type and blob id: what the index stores for it
LoadItem = Callable[[str, str], tuple[dict[str, Any] | None, str | None]]


class IndexBase(DeclarativeBase):
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
    # what a large type is paged by in SQL: the workshop it belongs to, its title casefolded
    parent: Mapped[str | None] = mapped_column(String(100), nullable=True)
    title: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_items_parent", "ref", "type", "parent", "slug"),)


def create_tables(engine: Engine) -> None:
    create_all(engine, IndexBase.metadata)


def drop_index_tables(engine: Engine) -> None:
    IndexBase.metadata.drop_all(engine)


def ensure_schema(engine: Engine, may_rebuild: bool = True) -> None:
    """Create the tables; an index laid out by another version of the CMS is dropped and made
    again (it is derived: the catch-up rebuilds it from git). Rebuilding needs the write lock;
    without it (may_rebuild=False) only a new, empty index is stamped with the version."""
    create_tables(engine)
    with engine.connect() as conn:
        version = conn.scalar(select(func.max(SchemaRow.version)))
        empty = conn.execute(select(RefHead.ref).limit(1)).first() is None
    if version == INDEX_SCHEMA or (not empty and not may_rebuild):
        return
    if not empty:
        log.warning("index schema %s, expected %s: rebuilding it from git", version, INDEX_SCHEMA)
        drop_index_tables(engine)
        create_tables(engine)
    try:
        with engine.begin() as conn:
            conn.execute(delete(SchemaRow))
            conn.execute(insert(SchemaRow).values(version=INDEX_SCHEMA))
    except IntegrityError:  # another worker recorded it at the same time
        pass


# --- recording commits ------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemChange:
    """One item a commit changed: its blob before and after (None: absent)."""

    type: str
    slug: str
    action: str
    old_blob: str | None
    new_blob: str | None


@dataclass(frozen=True)
class CommitRecord:
    """What the index keeps of one commit on a ref's first-parent line."""

    sha: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    author_time: int
    committer_time: int
    subject: str
    reason: str
    message: str
    token_id: int | None
    changes: list[ItemChange] = field(default_factory=list)


class OutOfStep(Exception):
    """A commit handed to the index does not follow the ref's indexed head."""


def record(
    session: Session,
    ref: str,
    commits: Sequence[CommitRecord],
    load: LoadItem,
    head_row: RefHead | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RefHead | None:
    """Index commits that follow the ref's indexed head, oldest first, and move the head.

    head_row: the ref's row if the caller has read it (saves a query). Returns the row.
    """
    head_row = head_row or session.get(RefHead, ref)
    if commits and commits[0].parents[:1] != ((head_row.sha,) if head_row else ()):
        # a commit made by hand between the catch-up and this one: indexing this one as if it
        # followed the head would hide that commit for good
        raise OutOfStep(f"{commits[0].sha} does not follow the indexed head of {ref}")
    seq = head_row.seq if head_row else -1
    items: dict[tuple[str, str], tuple[str | None, str]] = {}
    commit_rows: list[dict[str, Any]] = []
    change_rows: list[dict[str, Any]] = []
    for n, commit in enumerate(commits, 1):
        seq += 1
        commit_rows.append(
            {
                "ref": ref,
                "seq": seq,
                "parents": " ".join(commit.parents),
                **{name: getattr(commit, name) for name in _COMMIT_COLUMNS},
            }
        )
        for change in commit.changes:
            change_rows.append(
                dict(
                    ref=ref,
                    sha=commit.sha,
                    seq=seq,
                    type=change.type,
                    slug=change.slug,
                    action=change.action,
                    blob=change.new_blob,
                    old_blob=change.old_blob,
                )
            )
            items[(change.type, change.slug)] = (change.new_blob, commit.sha)
        if progress and (n % 1000 == 0 or n == len(commits)):
            progress(n, len(commits))
    _insert_many(session, CommitRow, commit_rows)
    if head_row is None:  # a fresh ref: every item's changes count from one
        _number_item_changes(change_rows)
        _insert_many(session, ChangeRow, change_rows)
    elif change_rows:  # each numbered after the item's last change, in the same statement
        rows = [{f"b_{k}": v for k, v in row.items()} for row in change_rows]
        session.execute(_NUMBERED_CHANGE, rows)
    put_items(session, ref, items, load, fresh=head_row is None)
    if commits:
        head = commits[-1].sha
        if head_row is None:
            head_row = RefHead(ref=ref, sha=head, seq=seq)
            session.add(head_row)
        else:
            head_row.sha, head_row.seq = head, seq
    session.flush()
    return head_row


def put_items(
    session: Session,
    ref: str,
    items: dict[tuple[str, str], tuple[str | None, str]],
    load: LoadItem,
    fresh: bool = False,
) -> None:
    """Set the current version of items on a ref: (type, slug) -> (blob or None, commit).
    fresh: the ref has no items yet (a rebuild): they are inserted in batches."""
    new_rows = []
    for (type_name, slug), (blob, sha) in items.items():
        if blob is None:
            if not fresh:
                session.execute(
                    delete(ItemRow).where(*_item_key(ref, type_name, slug)),
                    execution_options=_CORE,
                )
            continue
        data, error = load(type_name, blob)
        values = {
            "blob": blob,
            "sha": sha,
            "data": data,
            "error": error,
            **_paged_by(type_name, data),
        }
        if fresh:
            new_rows.append({"ref": ref, "type": type_name, "slug": slug, **values})
            continue
        key = {"b_ref": ref, "b_type": type_name, "b_slug": slug}
        updated = session.execute(_UPDATE_ITEM, {**key, **values})
        if updated.rowcount == 0:  # type: ignore[attr-defined]
            session.execute(ItemRow.__table__.insert(), [{"ref": ref, "type": type_name,  # type: ignore[attr-defined]
                                                          "slug": slug, **values}])  # fmt: skip
    _insert_many(session, ItemRow, new_rows)


# one item's row set to a new version: a Core statement built once (the ORM's bulk paths and
# a statement built per call cost more than the UPDATE itself)
_items = ItemRow.__table__
_UPDATE_ITEM = (
    _items.update()  # type: ignore[attr-defined]
    .where(
        _items.c.ref == bindparam("b_ref"),
        _items.c.type == bindparam("b_type"),
        _items.c.slug == bindparam("b_slug"),
    )
    .values({name: bindparam(name) for name in ("blob", "sha", "data", "error", "parent", "title")})
)


def _item_key(ref: str, type_name: str, slug: str) -> tuple[Any, ...]:
    return (ItemRow.ref == ref, ItemRow.type == type_name, ItemRow.slug == slug)


def _paged_by(type_name: str, data: dict[str, Any] | None) -> dict[str, Any]:
    ctype = TYPES.get(type_name)
    if ctype is None or data is None:
        return {"parent": None, "title": None}
    parent = next((data.get(name) for name in ctype.belongs_to), None)
    title = data.get(ctype.title_field)
    return {
        "parent": parent if isinstance(parent, str) else None,
        "title": title.casefold() if isinstance(title, str) else None,
    }


def rewind(session: Session, ref: str, to: CommitRow) -> set[tuple[str, str]]:
    """The ref went back to an indexed commit of its line: forget the commits after it.
    Returns the items those commits changed, whose current version the caller must set."""
    changed = set(
        session.execute(
            select(ChangeRow.type, ChangeRow.slug).where(
                ChangeRow.ref == ref, ChangeRow.seq > to.seq
            )
        ).tuples()
    )
    session.execute(delete(ChangeRow).where(ChangeRow.ref == ref, ChangeRow.seq > to.seq))
    session.execute(delete(CommitRow).where(CommitRow.ref == ref, CommitRow.seq > to.seq))
    head = session.get(RefHead, ref)
    assert head is not None
    head.sha, head.seq = to.sha, to.seq
    session.flush()
    return changed


def _number_item_changes(change_rows: list[dict[str, Any]]) -> None:
    """Set item_seq on the change rows of a fresh ref: each item's changes count from one."""
    last: dict[tuple[str, str], int] = {}
    for row in change_rows:
        key = (row["type"], row["slug"])
        last[key] = row["item_seq"] = last.get(key, 0) + 1


def _last_item_seq_of(ref: Any, type_name: Any, slug: Any) -> Any:
    return (
        select(ChangeRow.item_seq)
        .where(ChangeRow.ref == ref, ChangeRow.type == type_name, ChangeRow.slug == slug)
        .order_by(ChangeRow.seq.desc())
        .limit(1)
    )


# a change row numbered after the item's last change on the ref (one seek on ix_changes_item)
# in one statement. Executed row after row (executemany: our drivers do not fold it into one
# multi-row INSERT), so that two changes of one item in a batch count on; a group commit test
# guards it.
_NUMBERED_CHANGE = ChangeRow.__table__.insert().values(  # type: ignore[attr-defined]
    {
        **{name: bindparam(f"b_{name}") for name in
           ("ref", "sha", "seq", "type", "slug", "action", "blob", "old_blob")},
        "item_seq": func.coalesce(
            _last_item_seq_of(bindparam("b_ref"), bindparam("b_type"), bindparam("b_slug"))
            .scalar_subquery(),
            0,
        ) + 1,
    }
)  # fmt: skip


def last_item_seq(session: Session, ref: str, type_name: str, slug: str) -> int:
    return session.scalar(_last_item_seq_of(ref, type_name, slug)) or 0


# CommitRecord fields stored as they are in CommitRow
_COMMIT_COLUMNS = (
    "sha", "author_name", "author_email", "author_time", "committer_time",
    "subject", "reason", "message", "token_id",
)  # fmt: skip

# plain SQL statements: the ORM need not look for the rows among the objects it has loaded
_CORE = {"synchronize_session": False}


def _insert_many(session: Session, model: type[IndexBase], rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 2000):
        session.execute(model.__table__.insert(), rows[start : start + 2000])  # type: ignore[attr-defined]


def clear_ref(session: Session, ref: str) -> None:
    """Forget everything indexed of a ref (it was rewritten or deleted)."""
    for model in (ItemRow, ChangeRow, CommitRow, RefHead):
        session.execute(delete(model).where(model.ref == ref))


def indexed_items(session: Session, ref: str) -> dict[tuple[str, str], tuple[str, Any, str | None]]:
    rows = session.scalars(select(ItemRow).where(ItemRow.ref == ref))
    return {(r.type, r.slug): (r.blob, r.data, r.error) for r in rows}
