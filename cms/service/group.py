"""Group commit: the writer who holds the lock commits the edits of the writers waiting behind
it as one chain of commits (each its own commit, with its own author, reason and parent), with
one compare-and-swap of the ref, one reflog write and one index transaction; then each waiting
writer finds its outcome and answers its client.

An edit is worked out by its own writer before the lock (writes.py) and left in the queue
(store/queue.py) as a `Prepared`. In the chain, each is confirmed against the tip it will sit
on: its item must be as its writer found it (or, for an edit sent with X-Merge-Base, merge
cleanly again), and when other items moved meanwhile its links are checked again. An edit that
no longer holds is handed back: its writer does it again under the lock, through the one
write path, and gets its 412 or 409 from there. Nothing is ever committed blind.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from cms.errors import CMSError
from cms.index import CommitRow, ItemRow
from cms.service.integrity import check_links_of
from cms.service.items import MAIN, blob_id, item_from_blob, valid_item
from cms.service.merge import three_way
from cms.service.messages import MERGE_TRAILER, commit_message
from cms.service.reads import Reads
from cms.store.log import LogEntry
from cms.store.objects import CommitInfo, Identity, ObjectAccess
from cms.store.queue import EditQueue
from cms.types import TYPES, ContentType

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """An edit worked out before the lock: what the lock holder needs to commit it."""

    id: str
    type: str
    slug: str
    head: str | None  # the head it was worked out at
    current_blob: str | None  # the item's blob there (None: it did not exist)
    new_blob: str | None  # its new blob, already stored (None: a delete)
    data: dict[str, Any] | None
    companions: tuple[tuple[str, str | None], ...]
    subject: str
    reason: str
    trailers: tuple[str, ...]
    author: Identity
    # an edit sent with X-Merge-Base: its base blob, and the edit applied to the base
    merge_base: str | None = None
    yours: dict[str, Any] | None = None

    def payload(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "slug": self.slug,
            "head": self.head,
            "current_blob": self.current_blob,
            "new_blob": self.new_blob,
            "data": self.data,
            "companions": [list(c) for c in self.companions],
            "subject": self.subject,
            "reason": self.reason,
            "trailers": list(self.trailers),
            "author": [self.author.name, self.author.email],
            "merge_base": self.merge_base,
            "yours": self.yours,
        }

    @classmethod
    def from_payload(cls, request_id: str, p: dict[str, Any]) -> Prepared:
        return cls(
            id=request_id,
            type=p["type"],
            slug=p["slug"],
            head=p["head"],
            current_blob=p["current_blob"],
            new_blob=p["new_blob"],
            data=p["data"],
            companions=tuple((path, blob) for path, blob in p["companions"]),
            subject=p["subject"],
            reason=p["reason"],
            trailers=tuple(p["trailers"]),
            author=Identity(*p["author"]),
            merge_base=p["merge_base"],
            yours=p["yours"],
        )


Landed = tuple[str, str | None]  # the commit that carries an edit, and the item's new blob


@dataclass
class _Chain:
    """The commits made so far in one lock hold, on top of the indexed head."""

    base: str | None  # the indexed head the chain starts from
    tip: str | None
    tree: str | None
    entries: list[LogEntry]
    known: dict[str, dict[str, Any]]  # blob -> data of what the chain wrote
    steps: list[tuple[str, str, Identity]]  # (commit, reflog reason, who)
    moved: list[str]  # the type of each item the chain changed
    outcomes: dict[str, Landed | None]  # request id -> where it landed; None: do it again


class GroupCommit(Reads):
    """Committing the queue's edits as one chain; see the module's docstring."""

    @cached_property
    def queue(self) -> EditQueue:
        """The edits waiting for the lock (one object per service: every write asks for it)."""
        return EditQueue(self.store.path.with_name(self.store.path.name + ".cms-queue"))

    def _lead(
        self,
        session: Session,
        outcomes: dict[str, Landed | None],
        own: Prepared | None = None,
    ) -> None:
        """Caller holds the lock: commit every edit waiting in the queue, and its own edit if
        it did not queue it, as one chain; leave each queued edit its outcome, and put every
        outcome in `outcomes`. Outcomes are given once the ref that holds them is durable;
        the index follows in the caller's transaction."""
        queue = self.queue
        _, synced = self.sync_ref(session, MAIN)
        self._recover(session, queue)
        claimed = queue.claim()
        if not claimed and own is None:
            return
        head = synced.sha if synced else None
        with self.store.objects() as objs:
            tree = objs.read_commit(head).tree if head else None
            chain = _Chain(head, head, tree, [], {}, [], [], {})
            with objs.together():  # durable before the ref moves, in one flush
                for request_id, payload in claimed:
                    try:
                        request = Prepared.from_payload(request_id, payload)
                    except (KeyError, TypeError, ValueError):
                        chain.outcomes[request_id] = None
                        continue
                    self._add_or_hand_back(session, objs, chain, request)
                if own is not None:
                    self._add_or_hand_back(session, objs, chain, own)
        others = {k: v for k, v in chain.outcomes.items() if own is None or k != own.id}
        landed = {k: list(v) for k, v in others.items() if v is not None}
        if chain.entries:
            assert chain.tip is not None
            if landed:
                queue.write_journal(landed)
            try:
                self.store.update_ref_if_equals(
                    MAIN, chain.tip, chain.base, chain.steps[-1][1], chain.steps[-1][2],
                    chain.steps,
                )  # fmt: skip
            except BaseException:
                queue.clear_journal()  # the ref did not move: the claimed edits are redone
                raise
        for request_id, done in others.items():
            queue.finish(request_id, *(done or (None, None)))
        outcomes.update(chain.outcomes)
        if not chain.entries:
            return
        if landed:
            queue.clear_journal()
        self._refs_moved(len(chain.entries))
        self.record(session, MAIN, chain.entries, head_row=synced, known=chain.known)

    def _recover(self, session: Session, queue: EditQueue) -> None:
        """A lock holder that died between moving the ref and handing out the outcomes left
        its journal: the edits whose commits are on the ref landed (the catch-up has just
        indexed them); the others are claimed again."""
        journal = queue.read_journal()
        for request_id, landed in journal.items():
            if not (isinstance(landed, list) and len(landed) == 2 and isinstance(landed[0], str)):
                continue  # not ours to read: its edit is claimed again
            commit, blob = landed
            if session.get(CommitRow, (MAIN, commit)) is not None:
                queue.finish(request_id, commit, blob if isinstance(blob, str) else None)
        if journal:
            queue.clear_journal()

    def _add_or_hand_back(
        self, session: Session, objs: ObjectAccess, chain: _Chain, r: Prepared
    ) -> None:
        """One edit that cannot be chained (a bug, a file it needs gone) must not fail the
        others, nor every lock holder after: its writer does it alone. The database failing
        fails the chain (and each writer answers 503)."""
        try:
            self._add(session, objs, chain, r)
        except DBAPIError:
            raise
        except Exception:
            log.exception("queued edit %s could not join the chain: its writer does it alone", r.id)
            chain.outcomes[r.id] = None

    def _add(self, session: Session, objs: ObjectAccess, chain: _Chain, r: Prepared) -> None:
        """Confirm one edit at the chain's tip and commit it there, or hand it back."""
        ctype = TYPES.get(r.type)
        if ctype is None:
            chain.outcomes[r.id] = None
            return
        path = ctype.path(r.slug)
        current = objs.blob_at(chain.tree, path) if chain.tree else None
        confirmed = self._confirm(session, objs, chain, ctype, r, current)
        if confirmed is None:
            chain.outcomes[r.id] = None
            return
        r = confirmed
        tree = objs.tree_with_changes(chain.tree, {path: r.new_blob, **dict(r.companions)})
        parents = (chain.tip,) if chain.tip else ()
        when = int(time.time())
        message = commit_message(r.subject, r.reason, list(r.trailers))
        sha = objs.write_commit(tree, list(parents), r.author, self.committer, message, when)
        info = CommitInfo(
            sha, tree, parents, r.author.name, r.author.email, when,
            self.committer.name, self.committer.email, when, message + "\n",
        )  # fmt: skip
        chain.entries.append(LogEntry(info, [(path, current, r.new_blob)]))
        if r.new_blob is not None and r.data is not None:
            chain.known[r.new_blob] = r.data
        chain.steps.append((sha, f"cms: {r.subject[:150]}", r.author))
        chain.moved.append(ctype.name)
        chain.tip, chain.tree = sha, tree
        chain.outcomes[r.id] = (sha, r.new_blob)

    def _confirm(
        self,
        session: Session,
        objs: ObjectAccess,
        chain: _Chain,
        ctype: ContentType,
        r: Prepared,
        current: str | None,
    ) -> Prepared | None:
        """The edit as it may be committed at the chain's tip, or None: its writer must do it
        again under the lock (it gets its 412, 409 or 422 from there)."""
        merged = current != r.current_blob
        if merged:
            again = self._merge_again(session, objs, chain, ctype, r, current)
            if again is None:
                return None
            r = again
        elif r.head == chain.tip:
            return r  # nothing at all changed since it was worked out
        if r.companions:
            return None
        for type_name in chain.moved:
            # an item the chain made or changed may be what this one links to, or, for a
            # delete, what links to it: the index does not hold the chain yet
            if ctype.links_to(type_name) or (r.data is None and TYPES[type_name].links_to(r.type)):
                return None
        if merged or r.head != chain.base:  # the index holds the chain's base, not its head
            try:
                check_links_of(session, ctype, r.slug, r.data)
            except CMSError:
                return None
        return r

    def _merge_again(
        self,
        session: Session,
        objs: ObjectAccess,
        chain: _Chain,
        ctype: ContentType,
        r: Prepared,
        current: str | None,
    ) -> Prepared | None:
        """An edit sent with X-Merge-Base whose item moved since it was worked out: merged
        again with the item as it is now; None on a conflict (its writer reports it)."""
        if r.merge_base is None or r.yours is None or current is None:
            return None
        theirs = chain.known.get(current) or self._data_of(session, objs, ctype, r.slug, current)
        base = item_from_blob(objs, ctype.name, r.slug, r.merge_base)
        if theirs is None or base is None or base.data is None:
            return None
        merged, conflicts = three_way(ctype, base.data, theirs, r.yours)
        if conflicts:
            return None
        try:
            data = valid_item(ctype, merged, "The merged item is not valid.")
        except CMSError:
            return None
        raw = ctype.file_bytes(data)
        if blob_id(raw) == current:
            return None  # nothing left to change: its writer answers so
        trailers = list(r.trailers)
        if not any(t.startswith(MERGE_TRAILER) for t in trailers):
            tokens = [i for i, t in enumerate(trailers) if t.startswith("CMS-Token-Id:")]
            trailers.insert(tokens[0] if tokens else len(trailers), MERGE_TRAILER + r.merge_base)
        return replace(
            r,
            current_blob=current,
            data=data,
            new_blob=objs.write_blob(raw),
            trailers=tuple(trailers),
        )

    @staticmethod
    def _data_of(
        session: Session, objs: ObjectAccess, ctype: ContentType, slug: str, blob: str
    ) -> dict[str, Any] | None:
        row = session.get(ItemRow, (MAIN, ctype.name, slug))
        if row is not None and row.blob == blob and row.error is None:
            return row.data
        item = item_from_blob(objs, ctype.name, slug, blob)
        return item.data if item is not None and item.error is None else None
