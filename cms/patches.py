"""Differences between two versions of an item: JSON Patch (RFC 6902) and unified text diffs."""

from __future__ import annotations

import difflib
from typing import Any


def _pointer(name: str) -> str:
    return "/" + name.replace("~", "~0").replace("/", "~1")


def json_patch(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[dict[str, Any]]:
    """RFC 6902 operations that turn old into new, field by field."""
    if old is None and new is None:
        return []
    if old is None:  # created: the whole document is added
        return [{"op": "add", "path": "", "value": new}]
    if new is None:  # deleted: RFC 6902 cannot remove the root; it is replaced with null
        return [{"op": "replace", "path": "", "value": None}]
    ops: list[dict[str, Any]] = []
    for name in old:
        if name not in new:
            ops.append({"op": "remove", "path": _pointer(name)})
    for name, value in new.items():
        if name not in old:
            ops.append({"op": "add", "path": _pointer(name), "value": value})
        elif old[name] != value:
            ops.append({"op": "replace", "path": _pointer(name), "value": value})
    return ops


def unified(path: str, old: str, new: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"a/{path}" if old else "/dev/null",
            tofile=f"b/{path}" if new else "/dev/null",
        )
    )
