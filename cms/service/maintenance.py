"""Keeping the service whole: bootstrap and seed import, catch-up, reindex, consistency checks
against git, readiness, and what the git HTTP view needs to run git."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cms import index, webhooks
from cms.index import RefHead
from cms.serialize import parse_yaml
from cms.service.items import MAIN, PUBLISHED, REFS, expected_items
from cms.service.publishing import Publishing
from cms.store.lock import write_lock
from cms.store.process import git_env
from cms.types import TYPES, ContentType, item_key


class Maintenance(Publishing):
    """Start-up, catch-up, rebuild and checks (of releases too, hence Publishing)."""

    def bootstrap(self, seed_path: Path | None) -> None:
        """Create tables and the repository (importing the seed), then catch the index up."""
        with write_lock(self.lock_path, max(self.lock_timeout, 60)):
            self._ensure_tables()
            if not self.store.exists() or self.store.read_ref(MAIN) is None:
                self.store.init()
                self._import_seed(seed_path)
            with self.write_session() as session:
                for ref in REFS:
                    self.sync_ref(session, ref)

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
        self.store.update_ref_if_equals(MAIN, commit, None, "cms: import seed", self.committer)
        self.store.update_ref_if_equals(
            PUBLISHED, commit, None, "cms: publish seed", self.committer
        )

    @staticmethod
    def _checked_seed_file(ctype: ContentType, path: Path) -> bytes:
        raw = path.read_bytes()
        if item_key(f"{ctype.folder}/{path.name}") is None:
            raise ValueError(f"{path}: not a valid slug")
        data = parse_yaml(raw)
        canonical = ctype.file_bytes(ctype.schema.dump(ctype.schema.load(data)))
        if canonical != raw:
            raise ValueError(f"{path}: not in canonical form (run the seed through the schema)")
        return raw

    def catch_up(self, progress: Callable[[str, int, int], None] | None = None) -> int:
        """Index every commit the refs gained; returns how many."""
        count = 0
        with self.locked() as session:
            for ref in REFS:

                def report(done: int, total: int, ref: str = ref) -> None:
                    if progress:
                        progress(ref, done, total)

                count += self.sync_ref(session, ref, report)[0]
        return count

    def reindex(self, progress: Callable[[str, int, int], None] | None = None) -> int:
        """Drop the index tables and rebuild them from git alone (tokens are kept)."""
        with write_lock(self.lock_path, max(self.lock_timeout, 60)):
            index.drop_index_tables(self.engine)
            self._ensure_tables()
        self._snapshots.clear()
        return self.catch_up(progress)

    def check(self) -> list[str]:
        """Differences between the index and git (after catching up); empty when they agree."""
        self.catch_up()
        problems = []
        with self.read_session() as session:
            for ref in REFS:
                head = session.get(RefHead, ref)
                if (head.sha if head else None) != self.store.read_ref(ref):
                    problems.append(f"{ref}: index at {head and head.sha}, git elsewhere")
                want = self._expected_items(ref)
                have = index.indexed_items(session, ref)
                for key in sorted(set(want) | set(have)):
                    if want.get(key) != have.get(key):
                        problems.append(f"{ref}: {key[0]}/{key[1]} differs from git")
                for (type_name, slug), (_, data, error) in sorted(want.items()):
                    if error:
                        problems.append(f"{ref}: {type_name}/{slug}.yaml is invalid: {error}")
                    problems += self._companion_problems(ref, TYPES[type_name], slug, data)
        return problems + self.tag_problems()

    def readiness(self) -> dict[str, dict[str, Any]]:
        """Is the repository readable, the database reachable, and how far is the index behind?"""
        checks: dict[str, dict[str, Any]] = {}
        heads = {ref: self.store.read_ref(ref) for ref in REFS}
        checks["repository"] = {"ok": heads[MAIN] is not None, "heads": heads}
        try:
            with self.read_session() as session:
                indexed = {ref: session.get(RefHead, ref) for ref in REFS}
                lag = {
                    ref: (row.sha if row else None) != heads[ref] for ref, row in indexed.items()
                }
            checks["database"] = {"ok": True}
            checks["index"] = {"ok": True, "behind": lag}
        except Exception as exc:  # any database failure means "not ready", never a 500
            checks["database"] = {"ok": False, "error": type(exc).__name__}
        try:
            with self.accounts_session() as session:
                failing = webhooks.failing_endpoints(session)
            # a failing receiver never stops the CMS serving: shown, not unready
            checks["webhooks"] = {"ok": True, "failing": failing}
        except Exception as exc:  # the accounts database is away: not ready
            checks["webhooks"] = {"ok": False, "error": type(exc).__name__}
        if self.mirror is not None:
            checks["mirror"] = self.mirror.status()
        return checks

    def _expected_items(self, ref: str) -> dict[tuple[str, str], tuple[str, Any, str | None]]:
        head = self.store.read_ref(ref)
        if head is None:
            return {}
        with self.store.objects() as objs:
            return expected_items(objs, objs.read_commit(head).tree)

    def _companion_problems(
        self, ref: str, ctype: ContentType, slug: str, data: dict[str, Any] | None
    ) -> list[str]:
        """The files an item owns (a media item's bytes) are there, and are what it says."""
        problems: list[str] = []
        head = self.store.read_ref(ref) if ctype.companions(data) else None
        if head is None:
            return problems
        for path in ctype.companions(data):
            with self.store.objects() as objs:
                blob = objs.blob_at(objs.read_commit(head).tree, path)
                raw = objs.read_blob(blob) if blob else None
            if raw is None:
                problems.append(f"{ref}: {path}, the file of {ctype.name}/{slug}, is missing")
            elif data and hashlib.sha256(raw).hexdigest() != data.get("sha256", slug):
                problems.append(f"{ref}: {path} does not match the sha256 of {ctype.name}/{slug}")
        return problems

    def fsck(self) -> None:
        """`git fsck --strict` on the repository (StoreError with git's complaint)."""
        self.store.fsck()

    def git_backend_env(self) -> tuple[dict[str, str], Path]:
        """The environment git runs in (no user config) and the repository's path, for the
        read-only smart HTTP view."""
        return git_env(), self.store.path
