"""The content as the service hands it out: items, snapshots of a ref, and how they are read
from git objects (parsed, validated, compared)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import Session

from cms.errors import Invalid
from cms.index import ItemRow, RefHead
from cms.paging import page_items
from cms.serialize import SerializationError, parse_yaml
from cms.store.objects import ObjectAccess, object_id
from cms.types import TYPES, ContentType, item_key

MAIN = "refs/heads/main"
PUBLISHED = "refs/heads/published"
REFS = (MAIN, PUBLISHED)
REF_NAMES = {"main": MAIN, "published": PUBLISHED}


@dataclass(frozen=True)
class Item:
    type: str
    slug: str
    blob: str
    data: dict[str, Any] | None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"slug": self.slug, **(self.data or {}), "etag": self.blob}


class SnapshotMoved(Exception):
    """The index moved past the snapshot while a large type was read from it: take it again."""


class PagedItems(Mapping[str, Item]):
    """A large type's items on a ref, read from SQL when asked, never all held in memory:
    one item by its slug, one page of a list, the items of one workshop. Every read checks,
    in its own transaction, that the index still holds the snapshot's commit."""

    def __init__(
        self, sessions: Callable[[], AbstractContextManager[Session]], ref: str, sha: str,
        type_name: str, count: int,
    ) -> None:  # fmt: skip
        self._sessions, self.ref, self.sha = sessions, ref, sha
        self.type_name, self._count = type_name, count
        self._recent: dict[str, Item] = {}
        self._pages: dict[tuple[Any, ...], tuple[list[Item], int]] = {}

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """A read between two looks at the ref's indexed head: both must be the snapshot's
        commit (SQLite runs each SELECT on its own: a write may land between two of them)."""
        with self._sessions() as session:
            self._check_head(session)
            yield session
            self._check_head(session)

    def _check_head(self, session: Session) -> None:
        if session.scalar(select(RefHead.sha).where(RefHead.ref == self.ref)) != self.sha:
            raise SnapshotMoved(self.ref)

    def __getitem__(self, slug: str) -> Item:
        """One item: one statement that also reads the ref's indexed head; the items asked
        for are kept (a bounded few: the commit's content never changes)."""
        hit = self._recent.get(slug)
        if hit is not None:
            return hit
        params = {"ref": self.ref, "type": self.type_name, "slug": slug}
        with self._sessions() as session:
            row = session.execute(_ITEM_AT_HEAD, params).first()
        if row is None or row.sha != self.sha:
            raise SnapshotMoved(self.ref)
        if row.blob is None:
            raise KeyError(slug)
        if len(self._recent) >= 1024:
            self._recent.clear()
        item = self._recent[slug] = Item(self.type_name, slug, row.blob, row.data, row.error)
        return item

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        return iter(self._where())

    def values(self) -> Any:
        return self._where().values()

    def items(self) -> Any:
        return self._where().items()

    def belonging_to(self, parent: str) -> dict[str, Item]:
        """The items whose parent link (their workshop) is this slug."""
        return self._where(ItemRow.parent == parent)

    def _where(self, *conditions: Any) -> dict[str, Item]:
        query = select(ItemRow).where(
            ItemRow.ref == self.ref, ItemRow.type == self.type_name, *conditions
        )
        with self._session() as session:
            rows = session.scalars(query).all()
        return {row.slug: _item(row) for row in sorted(rows, key=lambda r: r.slug)}

    def page(
        self, filters: dict[str, Any], sort: str, search: str | None, offset: int, limit: int
    ) -> tuple[list[Item], int]:
        key = (tuple(sorted(filters.items())), sort, search, offset, limit)
        hit = self._pages.get(key)
        if hit is None:
            with self._session() as session:
                rows, total = page_items(
                    session, self.ref, self.type_name, filters, sort, search, offset, limit
                )
            if len(self._pages) >= 64:
                self._pages.clear()
            hit = self._pages[key] = ([_item(row) for row in rows], total)
        return hit


# one item of a ref with the ref's indexed head, in one statement (built once)
_ITEM_AT_HEAD = (
    select(RefHead.sha, ItemRow.blob, ItemRow.data, ItemRow.error)
    .select_from(RefHead)
    .outerjoin(
        ItemRow,
        and_(
            ItemRow.ref == RefHead.ref,
            ItemRow.type == bindparam("type"),
            ItemRow.slug == bindparam("slug"),
        ),
    )
    .where(RefHead.ref == bindparam("ref"))
)


def _item(row: ItemRow) -> Item:
    return Item(row.type, row.slug, row.blob, row.data, row.error)


def children_of(items: Mapping[str, Item], field_name: str, parent: str) -> dict[str, Item]:
    """The items whose link `field_name` (their workshop) is parent: from SQL for a large type."""
    if isinstance(items, PagedItems):
        return items.belonging_to(parent)
    return {
        slug: item
        for slug, item in items.items()
        if item.data is not None and item.data.get(field_name) == parent
    }


@dataclass
class Snapshot:
    """The items of one ref at one commit, as the index holds them: a type's items in memory,
    or, for a large type, read from SQL a page at a time (PagedItems)."""

    sha: str
    items: dict[str, Mapping[str, Item]] = field(default_factory=dict)
    stamp: tuple[int, ...] | None = None  # the ref file's identity it was taken at


@dataclass(frozen=True)
class FileChange:
    type: str
    slug: str
    old_blob: str | None
    new_blob: str | None


def blob_id(data: bytes) -> str:
    return object_id("blob", data)[0]


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:100].rstrip("-")


def iso_time(ts: int) -> str:
    """A commit or token time (seconds since the epoch) as ISO 8601 UTC."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def load_item(
    objs: ObjectAccess, type_name: str, blob: str
) -> tuple[dict[str, Any] | None, str | None]:
    """An item's data as stored, and why it is invalid (None when it is valid)."""
    return parse_item(type_name, objs.read_blob(blob))


def parse_item(type_name: str, raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """An item's file parsed and checked against its type: (data, why it is invalid)."""
    try:
        data = parse_yaml(raw)
    except SerializationError as exc:
        return None, str(exc)
    schema = TYPES[type_name].schema
    try:  # a file written by hand may omit defaults: serve the full, canonical shape
        return schema.dump(schema.load(data)), None
    except ValidationError as exc:
        return data, f"does not match the {type_name} schema: {exc.messages}"


def item_from_blob(objs: ObjectAccess, type_name: str, slug: str, blob: str | None) -> Item | None:
    if blob is None:
        return None
    data, error = load_item(objs, type_name, blob)
    return Item(type_name, slug, blob, data, error)


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
            key = item_key(f"{folder}/{name}")
            if key:
                changes.append(FileChange(*key, b[1] if b else None, a[1] if a else None))
    return changes


def expected_items(
    objs: ObjectAccess, tree: str
) -> dict[tuple[str, str], tuple[str, Any, str | None]]:
    """What the index of a ref at this tree must hold: (type, slug) -> (blob, data, error)."""
    out = {}
    for path, blob in objs.files(tree).items():
        key = item_key(path)
        if key:
            data, error = load_item(objs, key[0], blob)
            out[key] = (blob, data, error)
    return out


def filter_sort(
    items: Iterable[Item],
    filters: dict[str, Any],
    sort: str,
    search: tuple[str, str] | None = None,
) -> list[Item]:
    """Valid items whose fields equal the filters, sorted by a field ('-field': descending).

    search is (field, text): only items whose field or slug contains the text, ignoring case.
    """
    needle = search[1].casefold() if search else ""
    out = [
        item
        for item in items
        if item.error is None
        and item.data is not None
        and all(item.data.get(name) == value for name, value in filters.items())
        and (not search or _contains(item, search[0], needle))
    ]
    key = sort.lstrip("-")

    def sort_key(item: Item) -> tuple[bool, Any, str]:
        value = item.slug if key == "slug" else (item.data or {}).get(key)
        return (value is None, value if value is not None else 0, item.slug)

    out.sort(key=sort_key, reverse=sort.startswith("-"))
    return out


def _contains(item: Item, field: str, needle: str) -> bool:
    value = (item.data or {}).get(field)
    return needle in item.slug or (isinstance(value, str) and needle in value.casefold())


def validation_errors(exc: ValidationError) -> dict[str, Any]:
    messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    return {"json": messages}


def valid_item(ctype: ContentType, data: dict[str, Any], message: str) -> dict[str, Any]:
    """A whole item checked as stored, in its canonical form; Invalid (422) otherwise."""
    try:
        return dict(ctype.schema.dump(ctype.schema.load(data)))
    except ValidationError as exc:
        raise Invalid(message, errors=validation_errors(exc)) from None


def companion_changes(
    objs: ObjectAccess,
    ctype: ContentType,
    tree: str | None,
    current: Item | None,
    new_data: dict[str, Any] | None,
    brought: dict[str, str],
) -> tuple[tuple[str, str | None], ...]:
    """The files the item owns, as the new tree holds them: those of its new version (brought
    by the edit or already there), and those of its current version gone (None)."""
    out: dict[str, str | None] = {}
    for path in ctype.companions(new_data):
        blob = brought.get(path) or (objs.blob_at(tree, path) if tree else None)
        if blob is None:
            raise Invalid(f"{path} is not in the repository: upload the file again.")
        out[path] = blob
    for path in ctype.companions(current.data if current else None):
        out.setdefault(path, None)
    return tuple(out.items())
