"""Publishing: drafts (main) to the public site (published), one item or all of it, what is
pending, and releases (annotated tags on published)."""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy.orm import Session

from cms.auth import Actor
from cms.errors import Conflict, Invalid, NotFound
from cms.index import CommitRow
from cms.patches import json_patch
from cms.service.core import retry_on_ref_moved
from cms.service.integrity import check_links_of
from cms.service.items import MAIN, PUBLISHED, REFS, diff_trees, iso_time
from cms.service.messages import action_of, clean_reason
from cms.service.reads import Reads
from cms.service.writes import WriteResult
from cms.store.errors import ObjectMissing, RefMoved
from cms.types import TYPES, ContentType

TAG_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,99}$")
RESERVED_NAMES = frozenset({"HEAD", "FETCH_HEAD", "ORIG_HEAD", "MERGE_HEAD", "main", "published"})


def safe_tag_name(name: str) -> bool:
    """A release name: safe as a tag, never mistaken for a commit id or a git keyword."""
    return bool(
        TAG_NAME.match(name)
        and name not in RESERVED_NAMES
        and ".." not in name
        and not name.endswith((".", ".lock"))
        and not (len(name) >= 7 and re.fullmatch(r"[0-9a-fA-F]+", name))
    )


class Publishing(Reads):
    """Moves published (by merge or by one file), and tags releases on it."""

    @retry_on_ref_moved
    def publish_site(
        self,
        actor: Actor,
        reason: str | None,
        commit: str | None = None,
        trailers: tuple[str, ...] = (),
    ) -> WriteResult:
        """Make published equal main (or exactly `commit`, which must be on main's line): one
        merge commit (published, that commit) with its tree."""
        message_reason = clean_reason(reason)
        with self.locked() as session:
            main, pub = self._synced_heads(session)
            if commit is not None:
                if session.get(CommitRow, (MAIN, commit)) is None:
                    raise Conflict(f"{commit} is not on main any more: it cannot be published.")
                main = commit
            with self.store.objects() as objs:
                tree = objs.read_commit(main).tree
                if pub is not None and objs.read_commit(pub).tree == tree:
                    return WriteResult(None, pub, changed=False)
                made = self._commit(
                    objs,
                    PUBLISHED,
                    pub,
                    tree,
                    [pub, main] if pub else [main],
                    actor,
                    f"Publish the site (by {actor.name or 'the CMS'})",
                    message_reason,
                    ["CMS-Action: publish", f"CMS-Published-From: {main}", *trailers],
                )
            self.sync_ref(session, PUBLISHED)
        return WriteResult(None, made.sha, changed=True)

    def _synced_heads(self, session: Session) -> tuple[str, str | None]:
        """main's and published's heads as the index holds them, caught up to git. Lock held.
        A swap from these heads fails (RefMoved) if git moved a ref since."""
        main, pub = (self.sync_ref(session, ref)[1] for ref in REFS)
        assert main is not None
        return main.sha, pub.sha if pub else None

    @retry_on_ref_moved
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
                main_tree = objs.read_commit(main).tree
                draft = objs.blob_at(main_tree, path)
                public = objs.blob_at(pub_tree, path) if pub_tree else None
                if draft is None and public is None:
                    raise NotFound(f"No {ctype.name} item '{slug}'.")
                item = self._current(objs, ctype, slug, draft)
                if draft == public:
                    return WriteResult(item, pub or main, changed=False)
                if item is not None and (item.error is not None or item.data is None):
                    raise Conflict(f"The draft of {path} is invalid: {item.error}")
                data = item.data if item is not None else None
                check_links_of(session, ctype, slug, data, PUBLISHED, "publish them first")
                changes: dict[str, str | None] = {path: draft}
                if ctype.companion_field:  # the files it owns go with it (a media item's bytes)
                    gone = self._current(objs, ctype, slug, public) if public else None
                    changes.update(dict.fromkeys(ctype.companions(gone.data if gone else None)))
                    changes.update({p: objs.blob_at(main_tree, p) for p in ctype.companions(data)})
                commit = self._commit(
                    objs,
                    PUBLISHED,
                    pub,
                    objs.tree_with_changes(pub_tree, changes),
                    [pub] if pub else [],
                    actor,
                    f"Publish {ctype.name}/{slug}",
                    message_reason,
                    ["CMS-Action: publish", f"CMS-Published-From: {main}"],
                )
            self.sync_ref(session, PUBLISHED)
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
            for change in diff_trees(objs, pub_tree, main_tree):
                before = self._current(objs, TYPES[change.type], change.slug, change.old_blob)
                after = self._current(objs, TYPES[change.type], change.slug, change.new_blob)
                out.append(
                    {
                        "type": change.type,
                        "slug": change.slug,
                        "action": action_of(change.old_blob, change.new_blob, {}),
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
            _, row = self.sync_ref(session, PUBLISHED)
            if self.store.read_ref(ref) is not None:
                raise Conflict(f"Release '{name}' already exists.")
            assert row is not None
            pub = row.sha
            tagger = self.identity(actor)
            with self.store.objects() as objs:
                tag = objs.write_tag(pub, name, tagger, text or f"Release {name}", int(time.time()))
            try:
                self.store.update_ref_if_equals(ref, tag, None, f"cms: release {name}", tagger)
            except RefMoved:
                raise Conflict(f"Release '{name}' already exists.") from None
            self._refs_moved()
        return self.release(name)

    def tag_commit(self, name: str) -> tuple[str, str] | None:
        """(tag object or commit id, the commit it leads to) of a tag; None when there is no
        such tag or it does not lead to a commit (a tag of a tree or blob, made by hand)."""
        if not safe_tag_name(name):
            return None
        sha = self.store.read_ref(f"refs/tags/{name}")
        if sha is None:
            return None
        with self.store.objects() as objs:
            try:
                return sha, objs.peel_to_commit(sha)
            except ObjectMissing:
                return None

    def on_published(self, commit: str) -> bool:
        """Is the commit on published's first-parent line (what anonymous readers may see)?"""
        self.snapshot(PUBLISHED)  # the index caught up with git first
        with self.read_session() as session:
            return session.get(CommitRow, (PUBLISHED, commit)) is not None

    def release(self, name: str) -> dict[str, Any]:
        """A release: a tag whose commit is on published. Any other tag is no release (`cms
        check` reports it)."""
        found = self.tag_commit(name)
        if found is None or not self.on_published(found[1]):
            raise NotFound(f"No release named '{name[:100]}'.")
        sha, commit = found
        with self.store.objects() as objs:
            tag = objs.read_tag(sha)
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
        found = []
        for ref in self.store.list_refs("refs/tags/"):
            try:
                found.append(self.release(ref.removeprefix("refs/tags/")))
            except NotFound:
                continue
        return sorted(found, key=lambda r: (r["time"], r["name"]), reverse=True)

    def tag_problems(self) -> list[str]:
        """Tags that are not releases: they lead to no commit, or to one not on published."""
        problems = []
        for ref in sorted(self.store.list_refs("refs/tags/")):
            name = ref.removeprefix("refs/tags/")
            found = self.tag_commit(name)
            if found is None:
                problems.append(f"{ref} does not lead to a commit (or is no safe release name)")
            elif not self.on_published(found[1]):
                problems.append(f"{ref} points at {found[1]}, which is not on published")
        return problems
