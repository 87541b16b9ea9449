"""The one place where the git store, the SQL index and the write lock meet.

Views call `ContentService` (and `Versions` for the past) and nothing below them. Each job has
its module: writes.py (the one write path), group.py (group commit: a chain of queued edits
in one lock hold), editing.py (the edits an editor makes), publishing.py, integrity.py (links
between items), maintenance.py (bootstrap, catch-up, reindex, check, readiness), imports.py
(many items in one commit), messages.py (commit messages), versions.py (history, diffs,
blame, feed), reads.py (the current content), core.py (what they share), items.py (the
content).
"""

from __future__ import annotations

from cms.service.editing import Writes
from cms.service.imports import ImportResult, Imports
from cms.service.items import MAIN, PUBLISHED, REF_NAMES, REFS, Item, Snapshot, filter_sort
from cms.service.maintenance import Maintenance
from cms.service.messages import REASON_MAX
from cms.service.writes import WriteResult


class ContentService(Writes, Imports, Maintenance):
    """Everything views may ask of the content: reads, writes, publishing, maintenance."""


__all__ = [
    "MAIN",
    "PUBLISHED",
    "REASON_MAX",
    "REFS",
    "REF_NAMES",
    "ContentService",
    "ImportResult",
    "Item",
    "Snapshot",
    "WriteResult",
    "filter_sort",
]
