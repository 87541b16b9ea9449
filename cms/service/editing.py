"""The edits an editor makes to items on main, one commit each: create, upload (a media file
and its details), replace, patch, delete and revert. Each is an `Edit` handed to the one write
path (writes.py).
"""

from __future__ import annotations

from typing import Any

from cms.auth import Actor
from cms.errors import Invalid, NotFound
from cms.service.items import slugify, valid_item
from cms.service.writes import Edit, IfMatch, WritePath, WriteResult, if_match_tags
from cms.types import ContentType


class Writes(WritePath):
    """Create, replace, patch, delete and revert items on main: one commit each."""

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

    def upload(
        self,
        ctype: ContentType,
        data: dict[str, Any],
        raw: bytes,
        actor: Actor,
        reason: str | None,
    ) -> WriteResult:
        """A new media item: its file stored under its content-addressed path, and its sidecar,
        in one commit. Slug and path come from the bytes (the sha256)."""
        data = valid_item(ctype, data, "The file's details are not valid.")
        with self.store.objects() as objs:
            blob = objs.write_blob(raw)
        (path,) = ctype.companions(data)
        edit = Edit("create", None, create=True, files=((path, blob),))
        return self._write(ctype, data["sha256"], lambda _: data, edit, actor, reason)

    def replace(
        self,
        ctype: ContentType,
        slug: str,
        body: dict[str, Any],
        if_match: IfMatch,
        actor: Actor,
        reason: str | None,
        merge_base: str | None = None,
    ) -> WriteResult:
        data = ctype.schema.dump(body)

        def make(current: dict[str, Any] | None) -> dict[str, Any]:
            if not ctype.server_fields:
                return data
            kept = {k: v for k, v in (current or {}).items() if k in ctype.server_fields}
            return valid_item(ctype, {**data, **kept}, "The item is not valid.")

        edit = Edit("update", if_match_tags(if_match), merge_base=merge_base)
        return self._write(ctype, slug, make, edit, actor, reason)

    def patch(
        self,
        ctype: ContentType,
        slug: str,
        patch: dict[str, Any],
        if_match: IfMatch,
        actor: Actor,
        reason: str | None,
        merge_base: str | None = None,
    ) -> WriteResult:
        removed = [name for name, value in patch.items() if value is None]
        given = ctype.schema.dump({k: v for k, v in patch.items() if v is not None})

        def merge(current: dict[str, Any] | None) -> dict[str, Any]:
            merged = {k: v for k, v in (current or {}).items() if k not in removed}
            merged.update(given)
            return valid_item(ctype, merged, "The patched item is not valid.")

        edit = Edit("update", if_match_tags(if_match), merge_base=merge_base)
        return self._write(ctype, slug, merge, edit, actor, reason)

    def delete(
        self,
        ctype: ContentType,
        slug: str,
        if_match: IfMatch,
        actor: Actor,
        reason: str | None,
    ) -> WriteResult:
        return self._write(
            ctype, slug, lambda _: None, Edit("delete", if_match_tags(if_match)), actor, reason
        )

    def revert(
        self,
        ctype: ContentType,
        slug: str,
        to: str,
        if_match: IfMatch,
        actor: Actor,
        reason: str | None,
    ) -> WriteResult:
        """Restore the item as of commit `to` as a new commit; history is never rewritten."""
        with self.store.objects() as objs:
            tree = objs.read_commit(to).tree
            old = self._current(objs, ctype, slug, objs.blob_at(tree, ctype.path(slug)))
            if old is None or old.data is None or old.error is not None:
                raise NotFound(
                    f"{ctype.name}/{slug} did not exist at {to[:12]}: nothing to restore."
                )
            # the files it owned then come back with it (a media item's bytes)
            files = tuple(
                (p, blob)
                for p in ctype.companions(old.data)
                if (blob := objs.blob_at(tree, p)) is not None
            )
        data = old.data
        edit = Edit(
            "revert",
            if_match_tags(if_match),
            absent_ok=True,
            subject_suffix=f" to {to[:12]}",
            trailers=(f"CMS-Reverted-To: {to}",),
            files=files,
        )
        return self._write(ctype, slug, lambda _: data, edit, actor, reason)
