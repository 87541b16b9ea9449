"""The write path: every change to content (create, replace, patch, delete, revert) goes
through `WritePath._write`, the one place where an edit becomes a commit.

The new version is worked out against the current head and its blob stored before the lock,
and left in the queue; whoever holds the lock next commits it with the others waiting, as one
chain (group.py). An edit that no longer holds there comes back to its writer, who confirms
it at the (newer) head or does the work again, under the lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from cms.auth import Actor
from cms.errors import (
    Conflict,
    NotFound,
    PreconditionRequired,
    StaleETag,
)
from cms.index import ItemRow, RefHead
from cms.service.core import retry_on_ref_moved, signed
from cms.service.group import GroupCommit, Landed, Prepared
from cms.service.integrity import check_links_of
from cms.service.items import (
    MAIN,
    Item,
    blob_id,
    companion_changes,
    item_from_blob,
)
from cms.service.merge import merge_with_current
from cms.service.messages import MERGE_TRAILER, clean_reason
from cms.store.lock import LockBusy, LockTimeout, NoLongerNeeded
from cms.store.log import LogEntry
from cms.store.objects import ZERO, ObjectAccess
from cms.store.queue import new_id as new_request_id
from cms.types import ContentType


@dataclass(frozen=True)
class Edit:
    """What kind of change a write makes, and what it expects to find."""

    action: str  # create, update, delete, revert: the first word of the commit's subject
    if_match: tuple[str, ...] | None  # any of these ETags may match (RFC 9110)
    create: bool = False  # the item must not exist yet
    absent_ok: bool = False  # a revert may re-create a deleted item (If-Match: the zero id)
    subject_suffix: str = ""
    trailers: tuple[str, ...] = ()
    merge_base: str | None = None  # instead of If-Match: merge with what changed since this
    files: tuple[tuple[str, str], ...] = ()  # (path, blob) of companion files it brings


@dataclass(frozen=True)
class _Plan:
    """A write worked out against one head: the item there, and its new version."""

    head: str | None
    tree: str | None
    current_blob: str | None
    current: Item | None
    new_data: dict[str, Any] | None
    raw: bytes | None
    new_blob: str | None
    merged_from: str | None = None  # the base it was merged from, when the item had moved
    companions: tuple[tuple[str, str | None], ...] = ()  # files it owns: (path, blob or None)
    yours: dict[str, Any] | None = None  # with X-Merge-Base: the edit applied to its base

    @property
    def changed(self) -> bool:
        return self.new_blob != self.current_blob

    def unchanged(self) -> WriteResult:
        assert self.head is not None and self.current is not None
        return WriteResult(self.current, self.head, changed=False, merged=bool(self.merged_from))


@dataclass(frozen=True)
class WriteResult:
    item: Item | None
    commit: str
    changed: bool
    merged: bool = False  # made by merging with edits made since the editor's base


log = logging.getLogger(__name__)

IfMatch = str | Collection[str] | None  # one ETag, or the list an If-Match header gave


def if_match_tags(if_match: IfMatch) -> tuple[str, ...] | None:
    if if_match is None:
        return None
    return (if_match,) if isinstance(if_match, str) else tuple(if_match)


class WritePath(GroupCommit):
    """The one place where an edit becomes a commit: planned, confirmed under the lock,
    committed, indexed."""

    def _write(
        self,
        ctype: ContentType,
        slug: str,
        make: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        edit: Edit,
        actor: Actor,
        reason: str | None,
    ) -> WriteResult:
        """The write path: every change to content goes through here.

        The new version is worked out and its blob stored before the lock (it depends only on
        the item's current version); under the lock, that version is confirmed at the head
        (or the work is done again if someone changed the item meanwhile), and only the trees,
        the commit, the ref and the index are written there.
        """
        if not edit.create and edit.if_match is None and edit.merge_base is None:
            raise PreconditionRequired(
                "This write needs If-Match with the item's ETag (GET it first), or "
                "X-Merge-Base to merge with what changed since."
            )
        message_reason = clean_reason(reason)
        plan = self._plan_unlocked(ctype, slug, make, edit)
        if plan is not None and not plan.changed:
            return plan.unchanged()
        if plan is None:  # the index lags behind git: all of it under the lock
            return self._write_locked(ctype, slug, make, edit, actor, message_reason, plan)
        request = self._prepared(ctype, slug, edit, actor, message_reason, plan)
        try:  # the lock is free: commit it now, with whatever waits in the queue
            return self._write_locked(
                ctype, slug, make, edit, actor, message_reason, plan, request, queued=False
            )
        except LockBusy:
            pass  # queue it behind the lock holder, who may commit it with its own
        self.queue.submit(request.id, request.payload())
        try:
            for attempt in range(3):
                try:
                    return self._write_locked(
                        ctype, slug, make, edit, actor, message_reason, plan, request, queued=True
                    )
                except LockTimeout:
                    # a writer that gives up must take its edit back; if a lock holder has
                    # claimed it already, its outcome is coming: wait for that instead
                    if attempt == 2 or self.queue.withdraw(request.id):
                        raise
            raise AssertionError("unreachable")
        finally:
            self.queue.forget(request.id)

    def _prepared(
        self,
        ctype: ContentType,
        slug: str,
        edit: Edit,
        actor: Actor,
        message_reason: str,
        plan: _Plan,
    ) -> Prepared:
        """The edit as the lock holder commits it (see group.py)."""
        return Prepared(
            id=new_request_id(),
            type=ctype.name,
            slug=slug,
            head=plan.head,
            current_blob=plan.current_blob,
            new_blob=plan.new_blob,
            data=plan.new_data,
            companions=plan.companions,
            subject=self._subject(ctype, slug, edit),
            reason=message_reason,
            trailers=tuple(signed(actor, self._trailers(edit, plan))),
            author=self.identity(actor),
            merge_base=edit.merge_base,
            yours=plan.yours,
        )

    @staticmethod
    def _subject(ctype: ContentType, slug: str, edit: Edit) -> str:
        return f"{edit.action.title()} {ctype.name}/{slug}{edit.subject_suffix}"

    @staticmethod
    def _trailers(edit: Edit, plan: _Plan) -> list[str]:
        merged = [f"{MERGE_TRAILER}{plan.merged_from}"] if plan.merged_from else []
        return [f"CMS-Action: {edit.action}", *edit.trailers, *merged]

    @retry_on_ref_moved
    def _write_locked(
        self,
        ctype: ContentType,
        slug: str,
        make: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        edit: Edit,
        actor: Actor,
        message_reason: str,
        plan: _Plan | None,
        request: Prepared | None = None,
        queued: bool = False,
    ) -> WriteResult:
        """Under the lock: find the queued edit committed by the lock holder before us, or
        commit the queue ourselves (group.py), with our edit in it. With a request not queued
        the lock is not waited for (LockBusy). An edit handed back, or one without a request
        (the index lagged): confirm or redo the plan at the indexed head, commit, move the
        ref from that head (RefMoved if git moved it meanwhile), index the commit.

        Once the ref has moved the edit is durable: it is acknowledged even when indexing it
        fails (the catch-up indexes it on the next read)."""
        path = ctype.path(slug)
        landed: WriteResult | None = None
        outcomes: dict[str, Landed | None] = {}  # what the chain we led did

        def outcome() -> WriteResult | None:
            assert request is not None
            if queued:
                _, commit, blob = self.queue.outcome(request.id)
                return self._landed(ctype, slug, plan, (commit, blob) if commit else None)
            return self._landed(ctype, slug, plan, outcomes.get(request.id))

        def committed_meanwhile() -> bool:  # by the lock holder we queued behind
            assert request is not None
            return self.queue.decided(request.id) and self.queue.outcome(request.id)[1] is not None

        try:
            with self.locked(
                wait=queued or request is None, unless=committed_meanwhile if queued else None
            ) as session:
                if request is not None:
                    landed = outcome() if queued else None
                    if landed is None:
                        self._lead(session, outcomes, None if queued else request)
                        landed = outcome()
                    if landed is not None:
                        return landed
                _, synced = self.sync_ref(session, MAIN)
                head = synced.sha if synced else None  # the swap expects what the index holds
                with self.store.objects() as objs:
                    if plan is None or plan.head != head:
                        tree = objs.read_commit(head).tree if head else None
                        current_blob = objs.blob_at(tree, path) if tree else None
                        if (
                            plan is not None
                            and plan.current_blob == current_blob
                            and not plan.companions
                        ):
                            # only other items changed: they may be what this one links to
                            check_links_of(session, ctype, slug, plan.new_data)
                            plan = replace(plan, head=head, tree=tree)
                        else:
                            plan = self._plan(session, objs, ctype, slug, make, edit, head)
                            if not plan.changed:
                                return plan.unchanged()
                            self._store_blob(objs, plan)
                    info = self._commit(
                        objs,
                        MAIN,
                        head,
                        objs.tree_with_changes(
                            plan.tree, {path: plan.new_blob, **dict(plan.companions)}
                        ),
                        [head] if head else [],
                        actor,
                        self._subject(ctype, slug, edit),
                        message_reason,
                        self._trailers(edit, plan),
                    )
                new_blob, new_data = plan.new_blob, plan.new_data
                item = Item(ctype.name, slug, new_blob, new_data) if new_blob and new_data else None
                landed = WriteResult(item, info.sha, changed=True, merged=bool(plan.merged_from))
                # we know exactly what changed: index it without asking git
                self.record(
                    session,
                    MAIN,
                    [LogEntry(info, [(path, plan.current_blob, new_blob)])],
                    head_row=synced,
                    known={new_blob: new_data} if new_blob and new_data else None,
                )
        except NoLongerNeeded:
            # committed by the lock holder: its ref is durable, its index follows it at once
            # (and a read that comes first catches up from git, under the lock)
            landed = outcome()
            assert landed is not None
        except Exception:
            if landed is None and request is not None:
                landed = outcome()
            if landed is None:
                raise
            log.exception("%s landed but indexing it failed: the catch-up will", landed.commit)
        assert landed is not None
        return landed

    def _landed(
        self, ctype: ContentType, slug: str, plan: _Plan | None, landed: Landed | None
    ) -> WriteResult | None:
        """What to answer for an edit committed in a chain: (commit, the item's new blob)."""
        if landed is None or plan is None:
            return None
        commit, blob = landed
        data = plan.new_data
        if blob != plan.new_blob:  # merged again by the lock holder
            with self.store.objects() as objs:
                again = item_from_blob(objs, ctype.name, slug, blob)
            data = again.data if again is not None else None
        item = Item(ctype.name, slug, blob, data) if blob and data else None
        merged = bool(plan.merged_from) or blob != plan.new_blob
        return WriteResult(item, commit, changed=True, merged=merged)

    def _plan_unlocked(
        self,
        ctype: ContentType,
        slug: str,
        make: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        edit: Edit,
    ) -> _Plan | None:
        """The write worked out against the current head, without the lock; None when the index
        lags behind git (a commit made by hand): then all of it is done under the lock."""
        # every answer here is checked again: the item against git, the plan under the lock
        with self.lookup_session() as session:
            indexed = session.get(RefHead, MAIN)
            head = self.store.read_ref(MAIN)
            if head is None or indexed is None or indexed.sha != head:
                return None
            with self.store.objects() as objs:
                plan = self._plan(session, objs, ctype, slug, make, edit, head)
                if plan.changed:
                    self._store_blob(objs, plan)
        return plan

    def _plan(
        self,
        session: Session,
        objs: ObjectAccess,
        ctype: ContentType,
        slug: str,
        make: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        edit: Edit,
        head: str | None,
    ) -> _Plan:
        """Check the edit against the item at head and work out its new version."""
        path = ctype.path(slug)
        tree = objs.read_commit(head).tree if head else None
        current_blob = objs.blob_at(tree, path) if tree else None
        current = self._indexed(session, ctype, slug, current_blob) or self._current(
            objs, ctype, slug, current_blob
        )
        if edit.create and current is not None:
            raise Conflict(f"{ctype.name}/{slug} already exists.", etag=current_blob)
        merged_from = yours = None
        if not edit.create:
            if current is None and not edit.absent_ok:
                raise NotFound(f"No {ctype.name} item '{slug}'.")
            if edit.merge_base is not None:
                if (current_blob or ZERO) != edit.merge_base:
                    merged_from = edit.merge_base
            elif (current_blob or ZERO) not in (edit.if_match or ()):
                raise StaleETag(current.as_json() if current else None, current_blob or ZERO)
        new_data: dict[str, Any] | None
        if merged_from is not None:
            assert current is not None
            new_data, yours = merge_with_current(
                session, objs, ctype, slug, make, merged_from, current
            )
        else:
            new_data = make(current.data if current else None)
            yours = new_data if edit.merge_base is not None else None
        check_links_of(session, ctype, slug, new_data)
        raw = ctype.file_bytes(new_data) if new_data is not None else None
        new_blob = blob_id(raw) if raw is not None else None
        companions = companion_changes(objs, ctype, tree, current, new_data, dict(edit.files))
        return _Plan(
            head,
            tree,
            current_blob,
            current,
            new_data,
            raw,
            new_blob,
            merged_from,
            companions,
            yours,
        )

    @staticmethod
    def _store_blob(objs: ObjectAccess, plan: _Plan) -> None:
        if plan.raw is not None:
            objs.write_blob(plan.raw)

    @staticmethod
    def _indexed(session: Session, ctype: ContentType, slug: str, blob: str | None) -> Item | None:
        """The item as the index holds it, if that is this very blob (no YAML to parse)."""
        row = session.get(ItemRow, (MAIN, ctype.name, slug)) if blob else None
        if row is None or row.blob != blob:
            return None
        return Item(ctype.name, slug, row.blob, row.data, row.error)
