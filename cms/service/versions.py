"""Every version, one request away: revisions, point-in-time reads, history, diffs, blame, feed.

Client strings never reach git: a revision is resolved here, through the index and the ref
files, to a full commit id, and only that is used to read objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from cms import index
from cms.errors import BadRequest, CMSError, NotFound
from cms.index import ChangeRow, CommitRow, RefHead
from cms.patches import json_patch, unified
from cms.service import ContentService
from cms.service.items import (
    PUBLISHED,
    Item,
    diff_trees,
    iso_time,
    item_from_blob,
    load_item,
)
from cms.service.messages import action_of, split_message
from cms.service.publishing import safe_tag_name
from cms.store.objects import HEX40
from cms.types import TYPES, ContentType, item_key

HEX_REV = re.compile(r"^[0-9a-f]{7,40}$")
ALL_HEX = re.compile(r"^[0-9a-fA-F]+$")
_ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}")


class Gone(CMSError):
    """410: the client's position is not on the ref any more; it must resync."""

    status = 410


def parse_time(text: str) -> int | None:
    if not _ISO_START.match(text):
        return None
    # an unencoded "+01:00" arrives as " 01:00": forgive the frontend
    text = re.sub(r" (\d{2}:?\d{2})$", r"+\1", text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


@dataclass(frozen=True)
class Revision:
    commit: str
    label: str


class Versions:
    """Read-only questions about the past, answered from the index and git objects."""

    def __init__(self, svc: ContentService) -> None:
        self.svc = svc
        # commits never change, so what was read at one is cached
        self._trees: dict[str, dict[str, Item]] = {}
        self._items: dict[tuple[str, str, str], Item | None] = {}

    # --- revisions ----------------------------------------------------------------------------

    def resolve(self, rev: str, ref: str, *, published_only: bool = False) -> Revision:
        """A commit id (7-40 hex), a release tag, or an ISO 8601 time, on ref's history."""
        rev = rev.strip()
        self.svc.snapshot(ref)  # catch the index up first, before our own read transaction
        with self.svc.read_session() as session:
            if HEX_REV.match(rev):
                return Revision(self._commit_by_prefix(session, rev, published_only), rev)
            if ALL_HEX.match(rev) and len(rev) > 40:
                raise BadRequest(f"'{rev[:50]}' is too long for a commit id (40 hex at most).")
            when = parse_time(rev)
            if when is not None:
                # one index seek: commit times grow along the line (ties: the later commit)
                sha = session.scalar(
                    select(CommitRow.sha)
                    .where(CommitRow.ref == ref, CommitRow.committer_time <= when)
                    .order_by(CommitRow.committer_time.desc(), CommitRow.seq.desc())
                    .limit(1)
                )
                if sha is None:
                    raise NotFound(f"Nothing was on {short_ref(ref)} at {rev}.")
                return Revision(sha, rev)
            if safe_tag_name(rev):
                return Revision(self._tag_commit(rev, published_only), rev)
        raise BadRequest(
            "A revision is a commit id (7 to 40 lowercase hex), a release name, "
            "or an ISO 8601 time such as 2025-07-19T09:00:00Z."
        )

    def _commit_by_prefix(self, session: Session, prefix: str, published_only: bool) -> str:
        query = select(CommitRow.sha).where(CommitRow.sha.startswith(prefix, autoescape=True))
        if published_only:
            query = query.where(CommitRow.ref == PUBLISHED)
        found = sorted(set(session.scalars(query.limit(3))))
        if not found:
            raise NotFound(f"No commit {prefix} is known here.")
        if len(found) > 1:
            raise BadRequest(f"Commit id {prefix} is ambiguous: give more digits.")
        return found[0]

    def _tag_commit(self, name: str, published_only: bool) -> str:
        found = self.svc.tag_commit(name)
        if found is None or (published_only and not self.svc.on_published(found[1])):
            raise NotFound(f"No release named '{name}'.")
        return found[1]

    # --- reads at a revision -----------------------------------------------------------------

    def items_at(self, commit: str, type_name: str) -> dict[str, Item]:
        """Every item of one type as of one commit (commits never change: cached)."""
        key = f"{commit}:{type_name}"
        cached = self._trees.get(key)
        if cached is not None:
            return cached
        items: dict[str, Item] = {}
        with self.svc.store.objects() as objs:
            tree = objs.read_commit(commit).tree
            entry = objs.read_tree(tree).get(type_name)
            files = objs.read_tree(entry[1]) if entry else {}
            for name, (_mode, blob) in sorted(files.items()):
                found = item_key(f"{type_name}/{name}")
                if found:
                    data, error = load_item(objs, type_name, blob)
                    items[found[1]] = Item(type_name, found[1], blob, data, error)
        if len(self._trees) > 256:
            self._trees.clear()
        self._trees[key] = items
        return items

    def item_at(self, commit: str, ctype: ContentType, slug: str) -> Item | None:
        key = (commit, ctype.name, slug)
        if key not in self._items:
            if len(self._items) > 4096:
                self._items.clear()
            self._items[key] = self._read_item_at(commit, ctype, slug)
        return self._items[key]

    def _read_item_at(self, commit: str, ctype: ContentType, slug: str) -> Item | None:
        with self.svc.store.objects() as objs:
            tree = objs.read_commit(commit).tree
            return item_from_blob(objs, ctype.name, slug, objs.blob_at(tree, ctype.path(slug)))

    def raw_at(self, commit: str, path: str) -> str:
        with self.svc.store.objects() as objs:
            blob = objs.blob_at(objs.read_commit(commit).tree, path)
            return objs.read_blob(blob).decode("utf-8", "replace") if blob else ""

    # --- history ------------------------------------------------------------------------------

    def item_history(
        self, ref: str, ctype: ContentType, slug: str, page: int, page_size: int
    ) -> tuple[list[dict[str, Any]], int]:
        self.svc.snapshot(ref)
        with self.svc.read_session() as session:
            rows = session.execute(
                _item_changes(ref, ctype, slug)
                .order_by(ChangeRow.seq.desc(), ChangeRow.id.desc())
                .offset((page - 1) * page_size)
                .limit(page_size)
            ).all()
            # the newest change's number is the length of the history: one seek, no count
            if rows and page == 1:
                total = rows[0][0].item_seq
            else:
                total = index.last_item_seq(session, ref, ctype.name, slug)
        if total == 0:
            raise NotFound(f"{ctype.name}/{slug} has no history on {short_ref(ref)}.")
        return [version_entry(change, commit) for change, commit in rows], total

    def audit_log(
        self, ref: str, filters: dict[str, Any], page: int, page_size: int
    ) -> tuple[list[dict[str, Any]], int]:
        self.svc.snapshot(ref)
        query = select(CommitRow).where(CommitRow.ref == ref)
        if filters.get("author"):
            who = filters["author"].lower()
            query = query.where(
                (func.lower(CommitRow.author_name) == who)
                | (func.lower(CommitRow.author_email) == who)
            )
        if filters.get("since") is not None:
            query = query.where(CommitRow.committer_time >= filters["since"])
        if filters.get("until") is not None:
            query = query.where(CommitRow.committer_time <= filters["until"])
        if filters.get("type") or filters.get("slug"):
            touched = select(ChangeRow.sha).where(ChangeRow.ref == ref)
            if filters.get("type"):
                touched = touched.where(ChangeRow.type == filters["type"])
            if filters.get("slug"):
                touched = touched.where(ChangeRow.slug == filters["slug"])
            query = query.where(CommitRow.sha.in_(touched))
        filtered = any(value is not None for value in filters.values())
        with self.svc.read_session() as session:
            if filtered:
                total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            else:  # every commit of the line: its length is the head's position, no count
                head = session.get(RefHead, ref)
                total = head.seq + 1 if head else 0
            commits = session.scalars(
                query.order_by(CommitRow.seq.desc()).offset((page - 1) * page_size).limit(page_size)
            ).all()
            changes: dict[str, list[dict[str, Any]]] = {}
            if commits:
                for row in session.scalars(
                    select(ChangeRow)
                    .where(ChangeRow.ref == ref, ChangeRow.seq.in_([c.seq for c in commits]))
                    .order_by(ChangeRow.id)
                ):
                    changes.setdefault(row.sha, []).append(change_entry(row))
        return [{**commit_entry(c), "changes": changes.get(c.sha, [])} for c in commits], total

    def commit_detail(self, sha: str) -> dict[str, Any]:
        with self.svc.read_session() as session:
            full = self._commit_by_prefix(session, sha, published_only=False)
        with self.svc.store.objects() as objs:
            commit = objs.read_commit(full)
            parent_tree = objs.read_commit(commit.parents[0]).tree if commit.parents else None
            file_changes = diff_trees(objs, parent_tree, commit.tree)
        subject, reason, trailers = split_message(commit.message)
        items = []
        patches = []
        for fc in file_changes:
            ctype = TYPES[fc.type]
            before = self.item_at(commit.parents[0], ctype, fc.slug) if commit.parents else None
            after = self.item_at(full, ctype, fc.slug)
            items.append(
                {
                    "type": fc.type,
                    "slug": fc.slug,
                    "action": action_of(fc.old_blob, fc.new_blob, trailers),
                    "etag": fc.new_blob,
                    "previous_etag": fc.old_blob,
                    "operations": json_patch(
                        before.data if before else None, after.data if after else None
                    ),
                }
            )
            patches.append(
                unified(
                    ctype.path(fc.slug),
                    self.raw_at(commit.parents[0], ctype.path(fc.slug)) if commit.parents else "",
                    self.raw_at(full, ctype.path(fc.slug)),
                )
            )
        return {
            "commit": full,
            "parents": list(commit.parents),
            "author_name": commit.author_name,
            "author_email": commit.author_email,
            "time": iso_time(commit.committer_time),
            "authored": iso_time(commit.author_time),
            "committer_name": commit.committer_name,
            "subject": subject,
            "reason": reason,
            "trailers": trailers,
            "items": items,
            "patch": "".join(patches),
        }

    def diff(self, ctype: ContentType, slug: str, old: Revision, new: Revision) -> dict[str, Any]:
        before = self.item_at(old.commit, ctype, slug)
        after = self.item_at(new.commit, ctype, slug)
        if before is None and after is None:
            raise NotFound(f"{ctype.name}/{slug} exists at neither revision.")
        path = ctype.path(slug)
        return {
            "type": ctype.name,
            "slug": slug,
            "from": {"commit": old.commit, "etag": before.blob if before else None},
            "to": {"commit": new.commit, "etag": after.blob if after else None},
            "operations": json_patch(
                before.data if before else None, after.data if after else None
            ),
            "patch": unified(path, self.raw_at(old.commit, path), self.raw_at(new.commit, path)),
        }

    def blame(self, ref: str, ctype: ContentType, slug: str) -> dict[str, Any]:
        """For each field of the current item, the change that last set its value."""
        item, _ = self.svc.get_item(ref, ctype, slug)
        with self.svc.read_session() as session:
            rows = session.execute(
                _item_changes(ref, ctype, slug).order_by(ChangeRow.seq, ChangeRow.id)
            ).all()
        owners: dict[str, dict[str, Any]] = {}
        previous: dict[str, Any] | None = None
        with self.svc.store.objects() as objs:
            for change, commit in rows:
                if change.blob is None:
                    previous, owners = None, {}
                    continue
                data, _error = load_item(objs, ctype.name, change.blob)
                data = data or {}
                for name in ctype.field_names:
                    value = data.get(name)
                    if previous is None or previous.get(name) != value or name not in owners:
                        owners[name] = version_entry(change, commit)
                previous = data
        fields = {
            name: {"value": (item.data or {}).get(name), **owners[name]}
            for name in ctype.field_names
            if name in owners
        }
        return {"slug": slug, "etag": item.blob, "fields": fields}

    def changes_since(self, ref: str, since: str | None, limit: int) -> dict[str, Any]:
        snap = self.svc.snapshot(ref)
        with self.svc.read_session() as session:
            start = -1
            if since is not None:
                if not HEX40.match(since):
                    raise BadRequest("since must be a full commit id (40 lowercase hex).")
                row = session.get(CommitRow, (ref, since))
                if row is None:
                    raise Gone(
                        f"{since} is not on {short_ref(ref)} (rewritten or unknown): "
                        "resync from the full list, then follow this feed from its head."
                    )
                start = row.seq
            commits = session.scalars(
                select(CommitRow)
                .where(CommitRow.ref == ref, CommitRow.seq > start)
                .order_by(CommitRow.seq)
                .limit(limit)
            ).all()
            shas = [c.sha for c in commits]
            rows = (
                session.scalars(
                    select(ChangeRow)
                    .where(
                        ChangeRow.ref == ref,
                        ChangeRow.seq > start,
                        ChangeRow.seq <= commits[-1].seq,
                    )
                    .order_by(ChangeRow.seq, ChangeRow.id)
                ).all()
                if shas
                else []
            )
        by_sha = {c.sha: c for c in commits}
        return {
            "changes": [
                {**change_entry(r), "commit": r.sha, "time": iso_time(by_sha[r.sha].committer_time)}
                for r in rows
            ],
            "next": shas[-1] if shas else (since or snap.sha or None),
            "head": snap.sha or None,
            "complete": not shas or shas[-1] == snap.sha,
        }


def short_ref(ref: str) -> str:
    return ref.removeprefix("refs/heads/")


def commit_entry(c: CommitRow) -> dict[str, Any]:
    return {
        "commit": c.sha,
        "author_name": c.author_name,
        "author_email": c.author_email,
        "time": iso_time(c.committer_time),
        "message": c.subject,
        "reason": c.reason,
    }


def change_entry(r: ChangeRow) -> dict[str, Any]:
    return {"type": r.type, "slug": r.slug, "action": r.action, "etag": r.blob}


def version_entry(change: ChangeRow, commit: CommitRow) -> dict[str, Any]:
    return {**commit_entry(commit), "action": change.action, "etag": change.blob}


def _item_changes(ref: str, ctype: ContentType, slug: str) -> Select[tuple[ChangeRow, CommitRow]]:
    """Every change of one item on a ref, each with its commit."""
    return (
        select(ChangeRow, CommitRow)
        .join(CommitRow, (CommitRow.ref == ChangeRow.ref) & (CommitRow.sha == ChangeRow.sha))
        .where(ChangeRow.ref == ref, ChangeRow.type == ctype.name, ChangeRow.slug == slug)
    )
