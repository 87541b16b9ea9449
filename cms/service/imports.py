"""Imports: many items of one type created or updated in one commit (an OpenReview export of
accepted papers, say). Importing the same thing twice changes nothing and makes no commit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select

from cms.auth import Actor
from cms.errors import Invalid
from cms.index import ItemRow
from cms.service.core import retry_on_ref_moved
from cms.service.integrity import check_links
from cms.service.items import MAIN, blob_id, slugify
from cms.service.messages import clean_reason
from cms.service.reads import Reads
from cms.store.log import LogEntry
from cms.types import ContentType

Adjust = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


@dataclass
class ImportResult:
    commit: str | None  # None: nothing changed, no commit
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


class Imports(Reads):
    """Create or update items matched by a key field, all in one commit."""

    @retry_on_ref_moved
    def import_items(
        self,
        ctype: ContentType,
        entries: Sequence[dict[str, Any]],
        key: str,
        actor: Actor,
        reason: str | None,
        adjust: Adjust | None = None,
    ) -> ImportResult:
        """Each entry updates the item whose `key` field equals its own (fields it does not
        give are kept; `adjust(current, entry)` may keep more of what editors added), or
        creates one with a slug from its title. One commit for all, none if nothing changed."""
        message_reason = clean_reason(reason)
        result = ImportResult(None)
        with self.locked() as session:
            _, synced = self.sync_ref(session, MAIN)
            head = synced.sha if synced else None
            rows = session.scalars(
                select(ItemRow).where(ItemRow.ref == MAIN, ItemRow.type == ctype.name)
            ).all()
            by_key = {row.data.get(key): row for row in rows if row.data and row.data.get(key)}
            taken = {row.slug for row in rows}
            changes: dict[str, tuple[str | None, str, dict[str, Any], bytes]] = {}
            for n, entry in enumerate(entries):
                row = by_key.get(entry.get(key))
                slug = row.slug if row is not None else self._new_slug(ctype, entry, taken)
                taken.add(slug)
                current = row.data if row else None
                if adjust is not None and current is not None:
                    entry = adjust(current, entry)
                data = self._imported(ctype, current, entry, n)
                check_links(session, ctype, data, hint=f"entry {n + 1} ({slug})")
                raw = ctype.file_bytes(data)
                new_blob = blob_id(raw)
                if row is not None and row.blob == new_blob:
                    result.unchanged.append(slug)
                    continue
                changes[ctype.path(slug)] = (row.blob if row else None, new_blob, data, raw)
                (result.updated if row else result.created).append(slug)
            if not changes:
                return result
            with self.store.objects() as objs:
                for _old, _new, _data, raw in changes.values():
                    objs.write_blob(raw)
                tree = objs.read_commit(head).tree if head else None
                n_new, n_up = len(result.created), len(result.updated)
                info = self._commit(
                    objs,
                    MAIN,
                    head,
                    objs.tree_with_changes(tree, {p: c[1] for p, c in changes.items()}),
                    [head] if head else [],
                    actor,
                    f"Import {ctype.name}: {n_new} new, {n_up} updated",
                    message_reason,
                    ["CMS-Action: import"],
                )
            result.commit = info.sha
            self.record(
                session,
                MAIN,
                [LogEntry(info, [(p, c[0], c[1]) for p, c in changes.items()])],
                head_row=synced,
                known={c[1]: c[2] for c in changes.values()},
            )
        return result

    @staticmethod
    def _new_slug(ctype: ContentType, entry: dict[str, Any], taken: set[str]) -> str:
        base = slugify(str(entry.get(ctype.title_field) or "")) or ctype.name
        slug, n = base[:95], 2
        while slug in taken:
            slug, n = f"{base[:95]}-{n}", n + 1
        return slug

    @staticmethod
    def _imported(
        ctype: ContentType,
        current: dict[str, Any] | None,
        entry: dict[str, Any],
        n: int,
    ) -> dict[str, Any]:
        merged = {**(current or {}), **entry}
        try:
            return dict(ctype.schema.dump(ctype.schema.load(merged)))
        except ValidationError as exc:
            raise Invalid(
                f"Entry {n + 1} is not a valid {ctype.singular.lower()}.",
                errors={"json": {str(n): exc.messages}},
            ) from None
