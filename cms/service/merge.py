"""Field-level three-way merge of concurrent edits: the version an editor started from (the
base), the current one (theirs) and the editor's (yours). Fields are whole values; a Markdown
field both sides changed is also merged line by line (git's own `merge-file`), when cleanly.
"""

from __future__ import annotations

from typing import Any

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
