"""Links between items: a new version must link to items that exist; an item still linked to
cannot be deleted; a published item must not link to unpublished ones."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cms.errors import Conflict, Invalid
from cms.index import ItemRow
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
    for name, target in ctype.links.items():
        value = data.get(name)
        slugs = value if isinstance(value, list) else [value] if value else []
        for slug in slugs:
            if session.get(ItemRow, (ref, target, slug)) is None:
                where = "" if ref == MAIN else f" on {ref.removeprefix('refs/heads/')}"
                errors.setdefault(name, []).append(f"No {target} item '{slug}'{where}.")
    if errors:
        message = "Some references point to nothing" + (f": {hint}." if hint else ".")
        if ref != MAIN:  # publishing would break the public site: a conflict, not bad input
            raise Conflict(message, errors={"json": errors})
        raise Invalid(message, errors={"json": errors})


def check_unreferenced(session: Session, ctype: ContentType, slug: str, ref: str = MAIN) -> None:
    referrers = []
    for other in TYPES.values():
        fields = [name for name, target in other.links.items() if target == ctype.name]
        if not fields:
            continue
        rows = session.scalars(
            select(ItemRow).where(ItemRow.ref == ref, ItemRow.type == other.name)
        )
        for row in rows:
            for name in fields:
                value = (row.data or {}).get(name)
                if value == slug or (isinstance(value, list) and slug in value):
                    referrers.append(f"{other.name}/{row.slug} ({name})")
    if referrers:
        raise Conflict(
            f"{ctype.name}/{slug} is still referenced by: {', '.join(referrers)}.",
            referrers=referrers,
        )
