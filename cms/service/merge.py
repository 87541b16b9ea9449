"""Field-level three-way merge of concurrent edits: the version an editor started from (the
base), the current one (theirs) and the editor's (yours). Fields are whole values; a Markdown
field both sides changed is also merged line by line (git's own `merge-file`), when cleanly.
`merge_with_current` applies an edit sent with X-Merge-Base to the item as it is now.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cms.errors import MergeConflict, StaleETag
from cms.index import ChangeRow
from cms.service.items import MAIN, Item, item_from_blob, valid_item
from cms.store.objects import ObjectAccess
from cms.store.process import merge_text
from cms.types import ContentType


def three_way(
    ctype: ContentType, base: dict[str, Any], theirs: dict[str, Any], yours: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(merged data, conflicts): theirs with every field you changed relative to the base;
    a field both changed to different values is a conflict, {field: {base, theirs, yours}}."""
    merged = dict(theirs)
    conflicts: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys([*base, *theirs, *yours]):
        b, t, y = base.get(name), theirs.get(name), yours.get(name)
        if y in (b, t):  # you left it alone, or changed it just as they did
            continue
        if t == b:  # only you changed it
            if name in yours:
                merged[name] = y
            else:
                merged.pop(name, None)
            continue
        if (
            name in ctype.markdown
            and isinstance(b, str)
            and isinstance(t, str)
            and isinstance(y, str)
        ):
            text = merge_text(b, t, y)
            if text is not None:
                merged[name] = text
                continue
        conflicts[name] = {"base": b, "theirs": t, "yours": y}
    return merged, conflicts


def merge_with_current(
    session: Session,
    objs: ObjectAccess,
    ctype: ContentType,
    slug: str,
    make: Callable[[dict[str, Any] | None], dict[str, Any] | None],
    base_blob: str,
    current: Item,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The edit made against its base, merged field by field with the current version;
    and the edit as made against its base."""
    stale = StaleETag(current.as_json(), current.blob)
    was_a_version = session.scalar(
        select(ChangeRow.id)
        .where(ChangeRow.ref == MAIN, ChangeRow.type == ctype.name, ChangeRow.slug == slug)
        .where(ChangeRow.blob == base_blob)
        .limit(1)
    )
    base = item_from_blob(objs, ctype.name, slug, base_blob) if was_a_version else None
    if base is None or base.data is None or base.error or current.data is None:
        raise stale  # not a version of this item: nothing to merge against
    yours = make(dict(base.data))
    assert yours is not None  # updates only: deletes and reverts are never merged
    merged, conflicts = three_way(ctype, base.data, current.data, yours)
    if conflicts:
        raise MergeConflict(conflicts, current.as_json(), current.blob)
    return valid_item(ctype, merged, "The merged item is not valid."), yours
