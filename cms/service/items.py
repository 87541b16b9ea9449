"""The content as the service hands it out: items, snapshots of a ref, and how they are read
from git objects (parsed, validated, compared)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError

from cms.errors import Invalid
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


@dataclass
class Snapshot:
    """The items of one ref at one commit, as the index holds them."""

    sha: str
    items: dict[str, dict[str, Item]] = field(default_factory=dict)
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
    try:
        data = parse_yaml(objs.read_blob(blob))
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
