"""Reads of a ref's current content: the per-worker snapshot (types held in memory, large
ones paged from SQL), one item, one page of a list, a media item's file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select

from cms import paging
from cms.errors import Conflict, NotFound, Unavailable
from cms.index import ItemRow, RefHead
from cms.service.core import ServiceBase
from cms.service.items import (
    MAIN,
    PUBLISHED,
    Item,
    PagedItems,
    Snapshot,
    SnapshotMoved,
    filter_sort,
)
from cms.types import ContentType

R = TypeVar("R")


class Reads(ServiceBase):
    """What views read of a ref's head, caught up with git first."""

    def commit_time(self, sha: str) -> int:
        """When a commit was made (its committer time, seconds since the epoch)."""
        with self.store.objects() as objs:
            return objs.read_commit(sha).committer_time

    def snapshot(self, ref: str) -> Snapshot:
        """The current items of a ref; the index is caught up first if git moved.

        A cached snapshot is served while the ref's file is the very file it was taken from
        (one stat): any move of the ref, forward, back or sideways, by the CMS or by hand,
        replaces that file, and then the index's head is compared with git's again.
        """
        stamp = self.store.ref_stamp(ref)
        cached = self._snapshots.get(ref)
        if cached is not None and stamp is not None and cached.stamp == stamp:
            return cached
        head = self.store.read_ref(ref)
        if head is None:
            return Snapshot(sha="")
        with self.read_session() as session:
            known = session.get(RefHead, ref)
        if known is None or known.sha != head:
            with self.locked() as session:
                self.sync_ref(session, ref)
        elif cached is not None and cached.sha == head:
            cached.stamp = stamp  # the same commit, and the index holds it
            return cached
        with self.read_session() as session:
            known = session.get(RefHead, ref)
            snap = Snapshot(sha=known.sha if known else "", stamp=stamp)
            counts = paging.count_by_type(session, ref)
            large = {name for name, count in counts.items() if count > self.snapshot_max_items}
            held: dict[str, dict[str, Item]] = {}
            query = select(ItemRow).where(ItemRow.ref == ref, ItemRow.type.not_in(large))
            # slug order, the same on every database (collations differ on '-')
            for row in sorted(session.scalars(query).all(), key=lambda r: (r.type, r.slug)):
                held.setdefault(row.type, {})[row.slug] = Item(
                    row.type, row.slug, row.blob, row.data, row.error
                )
        snap.items.update(held)
        for name in sorted(large):
            snap.items[name] = PagedItems(self.read_session, ref, snap.sha, name, counts[name])
        self._snapshots[ref] = snap
        return snap

    def consistent(self, ref: str, read: Callable[[Snapshot], R]) -> R:
        """read(snapshot of ref), taken again if the index moved past it meanwhile (a large
        type is read from SQL after the snapshot is taken: never mix two commits)."""
        for _ in range(5):
            try:
                return read(self.snapshot(ref))
            except SnapshotMoved:
                self._snapshots.pop(ref, None)
        raise Unavailable("The content kept moving while it was read; retry.")

    def get_item(self, ref: str, ctype: ContentType, slug: str) -> tuple[Item, str]:
        snap, item = self.consistent(
            ref, lambda snap: (snap, snap.items.get(ctype.name, {}).get(slug))
        )
        if item is None:
            raise NotFound(f"No {ctype.name} item '{slug}'.")
        if item.error is not None:
            raise Conflict(
                f"The stored file {ctype.path(slug)} is invalid ({item.error}); "
                "replace it with a PUT using this ETag, or fix it in git.",
                etag=item.blob,
            )
        return item, snap.sha

    def list_items(
        self,
        ref: str,
        ctype: ContentType,
        filters: dict[str, Any],
        sort: str,
        search: str | None = None,
        page: tuple[int, int] = (0, 100),
    ) -> tuple[list[Item], int, str]:
        """One page (offset, limit) of a type's valid items, how many match, the commit.
        filters hold values as the items do (dates as ISO text)."""
        offset, limit = page

        def read(snap: Snapshot) -> tuple[list[Item], int, str]:
            items = snap.items.get(ctype.name, {})
            if isinstance(items, PagedItems):
                return (*items.page(filters, sort, search, offset, limit), snap.sha)
            found = filter_sort(
                items.values(), filters, sort, (ctype.title_field, search) if search else None
            )
            return found[offset : offset + limit], len(found), snap.sha

        return self.consistent(ref, read)

    def media_file(self, ctype: ContentType, slug: str, path: str) -> tuple[bytes, Item] | None:
        """The file a media item owns, with the item: from the published site, else from the
        drafts (its name is its content's hash: whoever has the URL has seen the content)."""
        for ref in (PUBLISHED, MAIN):
            snap, item = self.consistent(
                ref, lambda snap: (snap, snap.items.get(ctype.name, {}).get(slug))
            )
            if item is None or item.data is None or path not in ctype.companions(item.data):
                continue
            with self.store.objects() as objs:
                blob = objs.blob_at(objs.read_commit(snap.sha).tree, path)
                if blob is not None:
                    return objs.read_blob(blob), item
        return None
