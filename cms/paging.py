"""Reading a large type's items from the index a page at a time: counts, one page of a
filtered, searched and sorted list, ordered exactly as `filter_sort` orders them in memory."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from cms.index import ItemRow
from cms.types import TYPES


def count_by_type(session: Session, ref: str) -> dict[str, int]:
    query = select(ItemRow.type, func.count()).where(ItemRow.ref == ref).group_by(ItemRow.type)
    return {type_name: count for type_name, count in session.execute(query).tuples()}


def page_items(
    session: Session,
    ref: str,
    type_name: str,
    filters: dict[str, Any],
    sort: str,
    search: str | None,
    offset: int,
    limit: int,
) -> tuple[list[ItemRow], int]:
    """One page of a type's valid items, as `filter_sort` orders them in memory: fields equal
    to the filters (the parent link through its own column), the casefolded search text in
    the slug or title, sorted by a field (None last) then slug; and how many match."""
    ctype = TYPES[type_name]
    query = select(ItemRow).where(
        ItemRow.ref == ref, ItemRow.type == type_name, ItemRow.error.is_(None)
    )
    for name, value in filters.items():
        if name in ctype.belongs_to:
            query = query.where(ItemRow.parent == value)
        else:
            query = query.where(_field(ctype, name, session) == value)
    if search:
        pattern = "%" + search.casefold().translate(_LIKE_ESCAPES) + "%"
        query = query.where(
            or_(ItemRow.slug.like(pattern, escape="\\"), ItemRow.title.like(pattern, escape="\\"))
        )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    key = sort.lstrip("-")
    slug = _text(ItemRow.slug, session)
    order = (
        [slug]
        if key == "slug"
        else [_field(ctype, key, session).is_(None), _field(ctype, key, session), slug]
    )
    if sort.startswith("-"):
        order = [column.desc() for column in order]
    rows = session.scalars(query.order_by(*order).offset(offset).limit(limit)).all()
    return list(rows), total


_LIKE_ESCAPES = str.maketrans({"%": "\\%", "_": "\\_", "\\": "\\\\"})


def _field(ctype: Any, name: str, session: Session) -> Any:
    """A field of the item's JSON as SQL: integers and booleans as such, the rest as text."""
    kind = type(ctype.schema.fields[name]).__name__
    value = ItemRow.data[name]
    if kind == "Integer":
        return value.as_integer()
    if kind == "Boolean":
        return value.as_boolean()
    return _text(value.as_string(), session)


def _text(column: Any, session: Session) -> Any:
    """Text compared by code point, as Python does (PostgreSQL's collations order '-' apart)."""
    bind = session.get_bind()
    return column.collate("C") if bind.dialect.name == "postgresql" else column
