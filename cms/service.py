"""The one place where the git store, the SQL index and the write lock meet.

Views call this module and nothing below it. Every write follows one path (`_write`): check the
item's blob id against If-Match and store the new blob; lock, catch the index up, confirm the
item is still that version (or check again), write trees and commit, move the ref by
compare-and-swap, index the commit, unlock.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from cms import index
from cms.auth import Actor
from cms.errors import Conflict, Invalid, NotFound, PreconditionRequired, StaleETag
from cms.index import ItemRow, RefHead, iso_time
from cms.mirror import Mirror
from cms.patches import json_patch
from cms.serialize import canonical_yaml, parse_yaml
from cms.store.git import (
    ZERO,
    CommitInfo,
    GitStore,
    Identity,
    LogEntry,
    ObjectAccess,
    RefMoved,
    StoreError,
    object_id,
    safe_tag_name,
)
from cms.store.lock import write_lock
from cms.types import TYPES, ContentType

log = logging.getLogger(__name__)

MAIN = "refs/heads/main"
PUBLISHED = "refs/heads/published"
REF_NAMES = {"main": MAIN, "published": PUBLISHED}
REASON_MAX = 1000
_TRAILER_LIKE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*\s*:")


@dataclass(frozen=True)
class Item:
    type: str
    slug: str
    blob: str
    data: dict[str, Any] | None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"slug": self.slug, **(self.data or {}), "etag": self.blob}


@dataclass
class Snapshot:
    """The items of one ref at one commit, as the index holds them."""

    sha: str
    items: dict[str, dict[str, Item]] = field(default_factory=dict)


@dataclass(frozen=True)
class Edit:
    """What kind of change a write makes, and what it expects to find."""

    action: str  # create, update, delete, revert: the first word of the commit's subject
    if_match: str | None
    create: bool = False  # the item must not exist yet
    absent_ok: bool = False  # a revert may re-create a deleted item (If-Match: the zero id)
    subject_suffix: str = ""
    trailers: tuple[str, ...] = ()


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

    @property
    def changed(self) -> bool:
        return self.new_blob != self.current_blob

    def unchanged(self) -> WriteResult:
        assert self.head is not None and self.current is not None
        return WriteResult(self.current, self.head, changed=False)


@dataclass(frozen=True)
class WriteResult:
    item: Item | None
    commit: str
    changed: bool


def blob_id(data: bytes) -> str:
    return object_id("blob", data)[0]


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:100].rstrip("-")


def clean_reason(reason: str | None) -> str:
    """One line of the editor's own words: it can never forge a trailer or a header."""
    if not reason:
        return ""
    text = " ".join(re.sub(r"[\x00-\x1f\x7f\u2028\u2029\x85]", " ", reason).split())
    if len(text) > REASON_MAX:
        raise Invalid(
            f"X-Change-Reason is limited to {REASON_MAX} characters.",
            errors={"headers": {"X-Change-Reason": [f"Longer than {REASON_MAX} characters."]}},
        )
    return f'"{text}"' if _TRAILER_LIKE.match(text) else text


def validation_errors(exc: ValidationError) -> dict[str, Any]:
    messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    return {"json": messages}


def filter_sort(items: Iterable[Item], filters: dict[str, Any], sort: str) -> list[Item]:
    """Valid items whose fields equal the filters, sorted by a field ('-field': descending)."""
    out = [
        item
        for item in items
        if item.error is None
        and item.data is not None
        and all(item.data.get(name) == value for name, value in filters.items())
    ]
    key = sort.lstrip("-")

    def sort_key(item: Item) -> tuple[bool, Any, str]:
        value = item.slug if key == "slug" else (item.data or {}).get(key)
        return (value is None, value if value is not None else 0, item.slug)

    out.sort(key=sort_key, reverse=sort.startswith("-"))
    return out


class ContentService:
    def __init__(
        self,
        store: GitStore,
        engine: Engine,
        committer: Identity,
        lock_timeout: float = 10.0,
    ) -> None:
        self.store = store
        self.engine = engine
        self.committer = committer
        self.lock_timeout = lock_timeout
        self.lock_path = store.path.with_name(store.path.name + ".cms-lock")
        read_engine = engine
        if engine.dialect.name == "postgresql":
            read_engine = engine.execution_options(isolation_level="REPEATABLE READ")
        self._read_sessions = sessionmaker(read_engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(
            engine.execution_options(sqlite_immediate=True), expire_on_commit=False
        )
        self._snapshots: dict[str, Snapshot] = {}
        self.mirror: Mirror | None = None  # set by create_app when CMS_MIRROR_URL is given
        self.gc_every = 0  # run `git gc --auto` after this many commits by this process
        self._commits_since_gc = 0
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self._sqlite_file = Path(database) if database and database != ":memory:" else None
        self._sqlite_inode: tuple[int, int] | None = None

    # --- sessions and the lock ---------------------------------------------------------------

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        self._check_index_file()
        with self._read_sessions() as session, session.begin():
            yield session

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        self._check_index_file()
        with self._write_sessions() as session, session.begin():
            yield session

    def _check_index_file(self) -> None:
        """If the SQLite file was deleted or replaced under us, start over on the new one.

        Pooled connections would go on using the deleted file; the index is rebuilt from git
        by the catch-up on the next read. (Tokens lived in that file and are gone with it.)
        """
        if self._sqlite_file is None:
            return
        try:
            st = self._sqlite_file.stat()
            inode: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            inode = None
        if inode is not None and inode == self._sqlite_inode:
            return
        if self._sqlite_inode is not None:
            log.warning("index file %s was replaced or deleted: rebuilding", self._sqlite_file)
            self.engine.dispose()
            self._snapshots.clear()
        index.ensure_schema(self.engine, may_rebuild=False)  # safe when two workers race
        st = self._sqlite_file.stat()
        self._sqlite_inode = (st.st_dev, st.st_ino)

    @contextmanager
    def locked(self) -> Iterator[Session]:
        """The write lock and one index transaction, committed before the lock is released."""
        with write_lock(self.lock_path, self.lock_timeout), self.write_session() as session:
            yield session

    # --- start-up, catch-up, rebuild --------------------------------------------------------

    def bootstrap(self, seed_path: Path | None) -> None:
        """Create tables and the repository (importing the seed), then catch the index up."""
        with write_lock(self.lock_path, max(self.lock_timeout, 60)):
            index.ensure_schema(self.engine)
            if not self.store.exists() or self.store.read_ref(MAIN) is None:
                self.store.init()
                self._import_seed(seed_path)
            with self.write_session() as session:
                for ref in index.REFS:
                    index.sync_ref(session, self.store, ref)

    def _import_seed(self, seed_path: Path | None) -> None:
        files: dict[str, bytes] = {}
        if seed_path is not None and seed_path.is_dir():
            for ctype in TYPES.values():
                for path in sorted((seed_path / ctype.folder).glob("*.yaml")):
                    files[f"{ctype.folder}/{path.name}"] = self._checked_seed_file(ctype, path)
        when = int(time.time())
        with self.store.objects() as objs:
            blobs = {path: objs.write_blob(raw) for path, raw in files.items()}
            tree = objs.tree_with_changes(None, blobs)
            commit = objs.write_commit(
                tree,
                [],
                self.committer,
                self.committer,
                "Import seed content\n\nCMS-Action: import",
                when,
            )
        self.store.update_ref_if_equals(MAIN, commit, None, "cms: import seed")
        self.store.update_ref_if_equals(PUBLISHED, commit, None, "cms: publish seed")

    @staticmethod
    def _checked_seed_file(ctype: ContentType, path: Path) -> bytes:
        raw = path.read_bytes()
        if index.item_path(f"{ctype.folder}/{path.name}") is None:
            raise ValueError(f"{path}: not a valid slug")
        data = parse_yaml(raw)
        canonical = canonical_yaml(ctype.schema.dump(ctype.schema.load(data)))
        if canonical != raw:
            raise ValueError(f"{path}: not in canonical form (run the seed through the schema)")
        return raw

    def catch_up(self, progress: Callable[[str, int, int], None] | None = None) -> int:
        """Index every commit the refs gained; returns how many."""
        count = 0
        with self.locked() as session:
            for ref in index.REFS:

                def report(done: int, total: int, ref: str = ref) -> None:
                    if progress:
                        progress(ref, done, total)

                count += index.sync_ref(session, self.store, ref, report).commits
        return count

    def reindex(self, progress: Callable[[str, int, int], None] | None = None) -> int:
        """Drop the index tables and rebuild them from git alone (tokens are kept)."""
        with write_lock(self.lock_path, max(self.lock_timeout, 60)):
            index.drop_index_tables(self.engine)
            index.ensure_schema(self.engine)
        self._snapshots.clear()
        return self.catch_up(progress)

    def check(self) -> list[str]:
        """Differences between the index and git (after catching up); empty when they agree."""
        self.catch_up()
        problems = []
        with self.read_session() as session:
            for ref in index.REFS:
                head = session.get(RefHead, ref)
                if (head.sha if head else None) != self.store.read_ref(ref):
                    problems.append(f"{ref}: index at {head and head.sha}, git elsewhere")
                want = index.expected_items(self.store, ref)
                have = index.indexed_items(session, ref)
                for key in sorted(set(want) | set(have)):
                    if want.get(key) != have.get(key):
                        problems.append(f"{ref}: {key[0]}/{key[1]} differs from git")
                for (type_name, slug), (_, _, error) in sorted(want.items()):
                    if error:
                        problems.append(f"{ref}: {type_name}/{slug}.yaml is invalid: {error}")
        return problems

    def readiness(self) -> dict[str, dict[str, Any]]:
        """Is the repository readable, the database reachable, and how far is the index behind?"""
        checks: dict[str, dict[str, Any]] = {}
        heads = {ref: self.store.read_ref(ref) for ref in index.REFS}
        checks["repository"] = {"ok": heads[MAIN] is not None, "heads": heads}
        try:
            with self.read_session() as session:
                indexed = {ref: session.get(RefHead, ref) for ref in index.REFS}
                lag = {
                    ref: (row.sha if row else None) != heads[ref] for ref, row in indexed.items()
                }
            checks["database"] = {"ok": True}
            checks["index"] = {"ok": True, "behind": lag}
        except Exception as exc:  # any database failure means "not ready", never a 500
            checks["database"] = {"ok": False, "error": type(exc).__name__}
        if self.mirror is not None:
            checks["mirror"] = self.mirror.status()
        return checks

    # --- reads --------------------------------------------------------------------------------

    def snapshot(self, ref: str) -> Snapshot:
        """The current items of a ref; the index is caught up first if git moved."""
        head = self.store.read_ref(ref)
        if head is None:
            return Snapshot(sha="")
        cached = self._snapshots.get(ref)
        if cached is not None and cached.sha == head:
            return cached
        with self.read_session() as session:
            known = session.get(RefHead, ref)
        if known is None or known.sha != head:
            with self.locked() as session:
                index.sync_ref(session, self.store, ref)
        with self.read_session() as session:
            known = session.get(RefHead, ref)
            snap = Snapshot(sha=known.sha if known else "")
            rows = session.scalars(select(ItemRow).where(ItemRow.ref == ref)).all()
            # slug order, the same on every database (collations differ on '-')
            for row in sorted(rows, key=lambda r: (r.type, r.slug)):
                snap.items.setdefault(row.type, {})[row.slug] = Item(
                    row.type, row.slug, row.blob, row.data, row.error
                )
        self._snapshots[ref] = snap
        return snap

    def get_item(self, ref: str, ctype: ContentType, slug: str) -> tuple[Item, str]:
        snap = self.snapshot(ref)
        item = snap.items.get(ctype.name, {}).get(slug)
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
        self, ref: str, ctype: ContentType, filters: dict[str, Any], sort: str
    ) -> tuple[list[Item], str]:
        snap = self.snapshot(ref)
        return filter_sort(snap.items.get(ctype.name, {}).values(), filters, sort), snap.sha

    # --- writes -------------------------------------------------------------------------------

    def create(
        self, ctype: ContentType, body: dict[str, Any], actor: Actor, reason: str | None
    ) -> WriteResult:
        body = dict(body)
        slug = body.pop("slug", None) or slugify(str(body.get(ctype.title_field) or ""))
        if not slug:
            raise Invalid(
                "Give a slug: none can be derived from the title.",
                errors={"json": {"slug": ["Missing and not derivable."]}},
            )
        data = ctype.schema.dump(body)
        return self._write(
            ctype, slug, lambda _: data, Edit("create", None, create=True), actor, reason
        )

    def replace(
        self,
        ctype: ContentType,
        slug: str,
        body: dict[str, Any],
        if_match: str | None,
        actor: Actor,
        reason: str | None,
    ) -> WriteResult:
        data = ctype.schema.dump(body)
        return self._write(ctype, slug, lambda _: data, Edit("update", if_match), actor, reason)

    def patch(
        self,
        ctype: ContentType,
        slug: str,
        patch: dict[str, Any],
        if_match: str | None,
        actor: Actor,
        reason: str | None,
    ) -> WriteResult:
        removed = [name for name, value in patch.items() if value is None]
        given = ctype.schema.dump({k: v for k, v in patch.items() if v is not None})

        def merge(current: dict[str, Any] | None) -> dict[str, Any]:
            merged = {k: v for k, v in (current or {}).items() if k not in removed}
            merged.update(given)
            try:
                return dict(ctype.schema.dump(ctype.schema.load(merged)))
            except ValidationError as exc:
                raise Invalid(
                    "The patched item is not valid.", errors=validation_errors(exc)
                ) from None

        return self._write(ctype, slug, merge, Edit("update", if_match), actor, reason)

    def delete(
        self,
        ctype: ContentType,
        slug: str,
        if_match: str | None,
        actor: Actor,
        reason: str | None,
    ) -> WriteResult:
        return self._write(ctype, slug, lambda _: None, Edit("delete", if_match), actor, reason)

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
        if not edit.create and edit.if_match is None:
            raise PreconditionRequired(
                "This write needs If-Match with the item's ETag (GET it first)."
            )
        message_reason = clean_reason(reason)
        path = ctype.path(slug)
        plan = self._plan_unlocked(ctype, slug, make, edit)
        if plan is not None and not plan.changed:
            return plan.unchanged()
        with self.locked() as session:
            synced = index.sync_ref(session, self.store, MAIN)
            head = self.store.read_ref(MAIN)
            with self.store.objects() as objs:
                if plan is None or plan.head != head:
                    tree = objs.read_commit(head).tree if head else None
                    current_blob = objs.blob_at(tree, path) if tree else None
                    if plan is not None and plan.current_blob == current_blob:
                        # only other items changed: they may be what this one links to
                        self._check_links_of(session, ctype, slug, plan.new_data)
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
                    objs.tree_with_changes(plan.tree, {path: plan.new_blob}),
                    [head] if head else [],
                    actor,
                    f"{edit.action.title()} {ctype.name}/{slug}{edit.subject_suffix}",
                    message_reason,
                    [f"CMS-Action: {edit.action}", *edit.trailers],
                )
            # we know exactly what changed: index it without asking git
            new_blob, new_data = plan.new_blob, plan.new_data
            index.record(
                session,
                self.store,
                MAIN,
                [LogEntry(info, [(path, plan.current_blob, new_blob)])],
                result=synced,
                known={new_blob: new_data} if new_blob and new_data else None,
            )
        item = Item(ctype.name, slug, new_blob, new_data) if new_blob and new_data else None
        return WriteResult(item, info.sha, changed=True)

    def _plan_unlocked(
        self,
        ctype: ContentType,
        slug: str,
        make: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        edit: Edit,
    ) -> _Plan | None:
        """The write worked out against the current head, without the lock; None when the index
        lags behind git (a commit made by hand): then all of it is done under the lock."""
        with self.read_session() as session:
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
        if not edit.create:
            if current is None and not edit.absent_ok:
                raise NotFound(f"No {ctype.name} item '{slug}'.")
            if edit.if_match != (current_blob or ZERO):
                raise StaleETag(current.as_json() if current else None, current_blob or ZERO)
        new_data = make(current.data if current else None)
        self._check_links_of(session, ctype, slug, new_data)
        raw = canonical_yaml(new_data) if new_data is not None else None
        new_blob = blob_id(raw) if raw is not None else None
        return _Plan(head, tree, current_blob, current, new_data, raw, new_blob)

    @staticmethod
    def _store_blob(objs: ObjectAccess, plan: _Plan) -> None:
        if plan.raw is not None:
            objs.write_blob(plan.raw)

    # --- publishing and releases (admin) -----------------------------------------------------

    def publish_site(self, actor: Actor, reason: str | None) -> WriteResult:
        """Make published equal main: one merge commit (published, main) with main's tree."""
        message_reason = clean_reason(reason)
        with self.locked() as session:
            main, pub = self._synced_heads(session)
            with self.store.objects() as objs:
                tree = objs.read_commit(main).tree
                if pub is not None and objs.read_commit(pub).tree == tree:
                    return WriteResult(None, pub, changed=False)
                commit = self._commit(
                    objs,
                    PUBLISHED,
                    pub,
                    tree,
                    [pub, main] if pub else [main],
                    actor,
                    f"Publish the site (by {actor.name or 'the CMS'})",
                    message_reason,
                    ["CMS-Action: publish", f"CMS-Published-From: {main}"],
                )
            index.sync_ref(session, self.store, PUBLISHED)
        return WriteResult(None, commit.sha, changed=True)

    def _synced_heads(self, session: Session) -> tuple[str, str | None]:
        """main's and published's heads, with the index caught up to both. Lock held."""
        for ref in index.REFS:
            index.sync_ref(session, self.store, ref)
        main, pub = self.store.read_ref(MAIN), self.store.read_ref(PUBLISHED)
        assert main is not None
        return main, pub

    def publish_item(
        self, ctype: ContentType, slug: str, actor: Actor, reason: str | None
    ) -> WriteResult:
        """Copy one item's draft (or its deletion) to published: a commit changing one file."""
        message_reason = clean_reason(reason)
        path = ctype.path(slug)
        with self.locked() as session:
            main, pub = self._synced_heads(session)
            with self.store.objects() as objs:
                pub_tree = objs.read_commit(pub).tree if pub else None
                draft = objs.blob_at(objs.read_commit(main).tree, path)
                public = objs.blob_at(pub_tree, path) if pub_tree else None
                if draft is None and public is None:
                    raise NotFound(f"No {ctype.name} item '{slug}'.")
                item = self._current(objs, ctype, slug, draft)
                if draft == public:
                    return WriteResult(item, pub or main, changed=False)
                if item is not None and (item.error is not None or item.data is None):
                    raise Conflict(f"The draft of {path} is invalid: {item.error}")
                data = item.data if item is not None else None
                self._check_links_of(session, ctype, slug, data, PUBLISHED, "publish them first")
                commit = self._commit(
                    objs,
                    PUBLISHED,
                    pub,
                    objs.tree_with_changes(pub_tree, {path: draft}),
                    [pub] if pub else [],
                    actor,
                    f"Publish {ctype.name}/{slug}",
                    message_reason,
                    ["CMS-Action: publish", f"CMS-Published-From: {main}"],
                )
            index.sync_ref(session, self.store, PUBLISHED)
        return WriteResult(item, commit.sha, changed=True)

    def pending(self) -> list[dict[str, Any]]:
        """What differs between drafts (main) and the public site (published), file by file."""
        main, pub = self.store.read_ref(MAIN), self.store.read_ref(PUBLISHED)
        if main is None:
            return []
        out = []
        with self.store.objects() as objs:
            main_tree = objs.read_commit(main).tree
            pub_tree = objs.read_commit(pub).tree if pub else None
            for change in index.diff_trees(objs, pub_tree, main_tree):
                before = self._current(objs, TYPES[change.type], change.slug, change.old_blob)
                after = self._current(objs, TYPES[change.type], change.slug, change.new_blob)
                out.append(
                    {
                        "type": change.type,
                        "slug": change.slug,
                        "action": index.action_of(change, {}),
                        "etag": change.new_blob,
                        "published_etag": change.old_blob,
                        "operations": json_patch(
                            before.data if before else None, after.data if after else None
                        ),
                    }
                )
        return out

    def create_release(self, name: str, message: str, actor: Actor) -> dict[str, Any]:
        """An annotated tag on the current published commit; names are never reused."""
        if not safe_tag_name(name):
            raise Invalid(
                "Not a safe release name.",
                errors={
                    "json": {
                        "name": [
                            "1-100 of letters, digits, '.', '_', '-', starting with a letter; "
                            "not all hex, no '..', not HEAD, main or published."
                        ]
                    }
                },
            )
        text = "\n".join(" ".join(line.split()) for line in message.splitlines()).strip()
        ref = f"refs/tags/{name}"
        with self.locked() as session:
            index.sync_ref(session, self.store, PUBLISHED)
            if self.store.read_ref(ref) is not None:
                raise Conflict(f"Release '{name}' already exists.")
            pub = self.store.read_ref(PUBLISHED)
            assert pub is not None
            tagger = Identity(
                actor.name or self.committer.name, actor.email or self.committer.email
            )
            with self.store.objects() as objs:
                tag = objs.write_tag(pub, name, tagger, text or f"Release {name}", int(time.time()))
            try:
                self.store.update_ref_if_equals(ref, tag, None, f"cms: release {name}")
            except RefMoved:
                raise Conflict(f"Release '{name}' already exists.") from None
            self._refs_moved()
        return self.release(name)

    def release(self, name: str) -> dict[str, Any]:
        sha = self.store.read_ref(f"refs/tags/{name}")
        if sha is None:
            raise NotFound(f"No release named '{name}'.")
        with self.store.objects() as objs:
            tag = objs.read_tag(sha)
            commit = objs.peel_to_commit(sha)
            info = objs.read_commit(commit)
        return {
            "name": name,
            "commit": commit,
            "tagger_name": tag.tagger_name if tag else info.committer_name,
            "tagger_email": tag.tagger_email if tag else info.committer_email,
            "time": iso_time(tag.time if tag else info.committer_time),
            "message": tag.message if tag else "",
        }

    def releases(self) -> list[dict[str, Any]]:
        found = [
            self.release(ref.removeprefix("refs/tags/"))
            for ref in self.store.list_refs("refs/tags/")
        ]
        return sorted(found, key=lambda r: (r["time"], r["name"]), reverse=True)

    def _commit(
        self,
        objs: ObjectAccess,
        ref: str,
        head: str | None,
        tree: str,
        parents: list[str],
        actor: Actor,
        subject: str,
        reason: str,
        trailers: list[str],
    ) -> CommitInfo:
        """Write one commit and move ref to it by compare-and-swap. Caller holds the lock."""
        if actor.token_id is not None:
            trailers = [*trailers, f"CMS-Token-Id: {actor.token_id}"]
        message = subject + "\n\n" + (reason + "\n\n" if reason else "") + "\n".join(trailers)
        author = Identity(actor.name or self.committer.name, actor.email or self.committer.email)
        when = int(time.time())
        sha = objs.write_commit(tree, parents, author, self.committer, message, when)
        self.store.update_ref_if_equals(ref, sha, head, f"cms: {subject[:150]}", author)
        self._refs_moved()
        return CommitInfo(
            sha, tree, tuple(parents), author.name, author.email, when,
            self.committer.name, self.committer.email, when, message + "\n",
        )  # fmt: skip

    def _refs_moved(self) -> None:
        if self.mirror is not None:
            self.mirror.notify()
        self._commits_since_gc += 1
        if self.gc_every and self._commits_since_gc >= self.gc_every:
            self._commits_since_gc = 0
            # in the background: packing never delays the edit that triggered it
            threading.Thread(target=self._auto_gc, name="cms-gc", daemon=True).start()

    def _auto_gc(self) -> None:
        try:
            self.store.gc(auto=True)
        except StoreError as exc:
            log.warning("automatic git gc failed: %s", exc)

    def revert(
        self,
        ctype: ContentType,
        slug: str,
        to: str,
        if_match: str | None,
        actor: Actor,
        reason: str | None,
    ) -> WriteResult:
        """Restore the item as of commit `to` as a new commit; history is never rewritten."""
        with self.store.objects() as objs:
            target = objs.blob_at(objs.read_commit(to).tree, ctype.path(slug))
            old = self._current(objs, ctype, slug, target)
        if old is None or old.data is None or old.error is not None:
            raise NotFound(f"{ctype.name}/{slug} did not exist at {to[:12]}: nothing to restore.")
        data = old.data
        edit = Edit(
            "revert",
            if_match,
            absent_ok=True,
            subject_suffix=f" to {to[:12]}",
            trailers=(f"CMS-Reverted-To: {to}",),
        )
        return self._write(ctype, slug, lambda _: data, edit, actor, reason)

    @staticmethod
    def _indexed(session: Session, ctype: ContentType, slug: str, blob: str | None) -> Item | None:
        """The item as the index holds it, if that is this very blob (no YAML to parse)."""
        row = session.get(ItemRow, (MAIN, ctype.name, slug)) if blob else None
        if row is None or row.blob != blob:
            return None
        return Item(ctype.name, slug, row.blob, row.data, row.error)

    def _current(
        self, objs: ObjectAccess, ctype: ContentType, slug: str, blob: str | None
    ) -> Item | None:
        if blob is None:
            return None
        data, error = index.load_item(objs, ctype.name, blob)
        return Item(ctype.name, slug, blob, data, error)

    def _check_links_of(
        self,
        session: Session,
        ctype: ContentType,
        slug: str,
        data: dict[str, Any] | None,
        ref: str = MAIN,
        hint: str = "",
    ) -> None:
        """A new version must link to existing items; a deleted item must not be linked to."""
        if data is not None:
            self._check_links(session, ctype, data, ref, hint)
        else:
            self._check_unreferenced(session, ctype, slug, ref)

    def _check_links(
        self,
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

    def _check_unreferenced(
        self, session: Session, ctype: ContentType, slug: str, ref: str = MAIN
    ) -> None:
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
