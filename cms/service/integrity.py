"""Links between items: a new version must link to items that exist; an item still linked to
cannot be deleted; a published item must not link to unpublished ones."""

from __future__ import annotations

import fnmatch
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cms.errors import Conflict, Invalid
from cms.index import ItemRow
from cms.programme import zone
from cms.schemas import ACCEPTS
from cms.service.items import MAIN
from cms.types import TYPES, ContentType


def check_links_of(
    session: Session,
    ctype: ContentType,
    slug: str,
    data: dict[str, Any] | None,
    ref: str = MAIN,
    hint: str = "",
) -> None:
    """A new version must link to existing items; a deleted item must not be linked to."""
    if data is not None:
        check_links(session, ctype, data, ref, hint)
    else:
        check_unreferenced(session, ctype, slug, ref)


def check_links(
    session: Session,
    ctype: ContentType,
    data: dict[str, Any],
    ref: str = MAIN,
    hint: str = "",
) -> None:
    errors: dict[str, list[str]] = {}
    declared = ctype.fields_schema().fields
    for name, target, slug in ctype.linked_slugs(data):
        row = session.get(ItemRow, (ref, target, slug))
        if row is None:
            where = "" if ref == MAIN else f" on {ref.removeprefix('refs/heads/')}"
            errors.setdefault(name, []).append(f"No {target} item '{slug}'{where}.")
            continue
        accepts = declared[name].metadata.get(ACCEPTS) if name in declared else None
        kind = (row.data or {}).get("media_type", "")
        if accepts and not fnmatch.fnmatchcase(kind, accepts):
            errors.setdefault(name, []).append(f"{target}/{slug} is {kind}, not {accepts}.")
    if not errors:
        errors = _outside_workshop(session, ctype, data, ref)
    if errors:
        message = "Some references point to nothing" + (f": {hint}." if hint else ".")
        if ref != MAIN:  # publishing would break the public site: a conflict, not bad input
            raise Conflict(message, errors={"json": errors})
        raise Invalid(message, errors={"json": errors})


def check_unreferenced(session: Session, ctype: ContentType, slug: str, ref: str = MAIN) -> None:
    referrers = []
    for other in TYPES.values():
        if not other.links_to(ctype.name):
            continue
        rows = session.scalars(
            select(ItemRow).where(ItemRow.ref == ref, ItemRow.type == other.name)
        )
        for row in rows:
            names = {
                name
                for name, target, linked in other.linked_slugs(row.data or {})
                if target == ctype.name and linked == slug
            }
            referrers += [f"{other.name}/{row.slug} ({name})" for name in sorted(names)]
    if referrers:
        raise Conflict(
            f"{ctype.name}/{slug} is still referenced by: {', '.join(referrers)}.",
            referrers=referrers,
        )


def _outside_workshop(
    session: Session, ctype: ContentType, data: dict[str, Any], ref: str
) -> dict[str, list[str]]:
    """A session must take place within its workshop's dates, in the session's own zone."""
    if ctype.belongs_to.get("workshop") != "workshops" or not data.get("start"):
        return {}
    row = session.get(ItemRow, (ref, "workshops", data["workshop"]))
    if row is None or not row.data or not row.data.get("start") or not row.data.get("end"):
        return {}
    where = zone(data["zone"]) if data.get("zone") else UTC
    first = datetime.fromisoformat(row.data["start"]).astimezone(where).date()
    last = datetime.fromisoformat(row.data["end"]).astimezone(where).date()
    errors = {}
    for name in ("start", "end"):
        day = datetime.fromisoformat(data[name]).astimezone(where).date()
        if not first <= day <= last:
            errors[name] = [f"Outside the workshop's dates ({first} to {last})."]
    return errors
