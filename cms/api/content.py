"""The content routes, made for every declared type: list, read, create, replace, patch, delete."""

from __future__ import annotations

import functools
from typing import Any

from flask import Response, request, url_for
from flask.views import MethodView
from flask_smorest import Api
from marshmallow import RAISE

from cms.api.common import (
    BEARER,
    OPTIONAL_BEARER,
    PAGINATION_HEADER,
    READ_ERRORS,
    WRITE_ERRORS,
    WRITE_RESPONSE_HEADERS,
    Blueprint,
    MergeHeadersSchema,
    ReasonHeadersSchema,
    WriteHeadersSchema,
    cached_body,
    change_reason,
    if_match,
    json_response,
    not_modified,
    pagination_header,
    preconditions,
    published_only,
    quoted,
    read_ref,
    read_scope,
    require,
    service,
    versions,
    written,
)
from cms.api.media import upload_operation
from cms.api.schemas import (
    BlameQuerySchema,
    BlameSchema,
    DiffQuerySchema,
    DiffSchema,
    ItemHistoryQuerySchema,
    PublishResultSchema,
    RevertSchema,
    VersionSchema,
)
from cms.delivery import present
from cms.errors import Conflict, NotFound
from cms.schemas import RenderQuerySchema
from cms.service import MAIN, PUBLISHED, filter_sort
from cms.service.versions import Revision
from cms.types import TYPES, ContentType

MERGE_RESPONSE_HEADERS = {
    **WRITE_RESPONSE_HEADERS,
    "X-Merged": {
        "description": "With X-Merge-Base: true when the edit was merged with changes made "
        "since its base (the commit carries a CMS-Merge-Base trailer)",
        "schema": {"type": "string", "enum": ["true", "false"]},
    },
}
MERGE_DOC = (
    " Send `If-Match` to write only if nobody changed the item since (else 412), or "
    "`X-Merge-Base` with the ETag you started from to merge field by field with what changed "
    "since: different fields are combined (Markdown also line by line), the same field changed "
    "differently is a 409 listing base, theirs and yours for each."
)


def make_blueprint(ctype: ContentType) -> Blueprint:
    name = ctype.name
    blp = Blueprint(
        name,
        __name__,
        url_prefix=f"/api/v1/{name}",
        description=f"{ctype.singular} items, stored as `{name}/<slug>.yaml` in git"
        + (", the file itself beside it" if ctype.companion_field else ""),
    )
    item_schema = ctype.item_schema_class
    # operationIds name the methods of generated clients: listPeople, getPerson, ...
    plural, one = name.title().replace("-", ""), ctype.singular

    @blp.before_request
    def public_revalidation() -> Response | None:
        return revalidated(ctype)

    @blp.route("")
    class Collection(MethodView):
        @blp.arguments(ctype.query_schema_class(), location="query", as_kwargs=True, unknown=RAISE)
        @blp.response(
            200,
            item_schema(many=True),
            headers={**PAGINATION_HEADER, **WRITE_RESPONSE_HEADERS},
            description="One page of items; weak ETag for the whole list",
        )
        @blp.alt_response(304, description="Not modified")
        @blp.errors(*READ_ERRORS)
        @blp.doc(security=OPTIONAL_BEARER, summary=f"List {name}", operationId=f"list{plural}")
        def get(
            self,
            page: int,
            page_size: int,
            sort: str,
            ref: str,
            at: str | None = None,
            render: str | None = None,
            preview: str | None = None,
            q: str | None = None,
            **filters: Any,
        ) -> Response:
            scope = {"ref": ref, "at": at, "preview": preview}
            full_ref, at = read_scope({k: v for k, v in scope.items() if v is not None})
            filters = ctype.schema.dump(filters)  # as items hold them: dates as ISO text
            start = (page - 1) * page_size
            if at is None:
                shown, total, sha = service().list_items(
                    full_ref, ctype, filters, sort, q, (start, page_size)
                )
            else:
                sha = resolve(at, full_ref).commit
                found = versions().items_at(sha, name).values()
                items = filter_sort(found, filters, sort, (ctype.title_field, q) if q else None)
                shown, total = items[start : start + page_size], len(items)
            key = (
                "list",
                name,
                sha,
                tuple(sorted(filters.items())),
                q,
                sort,
                page,
                page_size,
                render,
            )
            return json_response(
                cached_body(key, lambda: [present(ctype, item, bool(render)) for item in shown]),
                etag=f'W/"{sha}{"-html" if render else ""}"',
                revision=sha,
                headers=pagination_header(total, page, page_size),
            )

        if ctype.companion_field:  # a file and its details: multipart
            post = upload_operation(blp, ctype, item_schema)
        else:

            @blp.requires("editor")
            @blp.arguments(WriteHeadersSchema(), location="headers")
            @blp.arguments(ctype.create_schema_class())
            @blp.response(201, item_schema, headers=WRITE_RESPONSE_HEADERS)
            @blp.errors(*WRITE_ERRORS)
            @blp.doc(
                security=BEARER,
                summary=f"Create a {ctype.singular.lower()}",
                operationId=f"create{one}",
            )
            def post(self, headers: dict[str, Any], body: dict[str, Any]) -> Response:
                who = require("editor")
                result = service().create(ctype, body, who, change_reason(headers))
                assert result.item is not None
                location = url_for(f"{name}.Item", slug=result.item.slug)
                return written(result, 201, location)

    @blp.route("/<slug:slug>")
    class Item(MethodView):
        @blp.arguments(RenderQuerySchema(), location="query", unknown=RAISE)
        @blp.response(200, item_schema, headers=WRITE_RESPONSE_HEADERS)
        @blp.alt_response(304, description="Not modified")
        @blp.errors(*READ_ERRORS, 409)
        @blp.doc(
            security=OPTIONAL_BEARER,
            summary=f"Read a {ctype.singular.lower()}",
            operationId=f"get{one}",
        )
        def get(self, query: dict[str, Any], slug: str) -> Response:
            full_ref, at = read_scope(query)
            if at is None:
                item, sha = service().get_item(full_ref, ctype, slug)
            else:
                rev = resolve(at, full_ref)
                found = versions().item_at(rev.commit, ctype, slug)
                if found is None:
                    raise NotFound(f"{name}/{slug} did not exist at {rev.label}.")
                item, sha = found, rev.commit
                if item.error is not None:
                    raise Conflict(f"That version of {name}/{slug} is invalid: {item.error}")
            render = bool(query.get("render"))
            body = cached_body(
                ("item", name, slug, item.blob, render), lambda: present(ctype, item, render)
            )
            etag = f'W/"{item.blob}-html"' if render else quoted(item.blob)
            return json_response(body, etag=etag, revision=sha)

        @blp.requires("editor")
        @blp.arguments(MergeHeadersSchema(), location="headers")
        @blp.arguments(ctype.input_schema_class())
        @blp.response(200, item_schema, headers=MERGE_RESPONSE_HEADERS)
        @blp.errors(*WRITE_ERRORS)
        @blp.doc(
            security=BEARER,
            summary=f"Replace a {ctype.singular.lower()}",
            operationId=f"replace{one}",
            description="Every field is given." + MERGE_DOC,
        )
        def put(self, headers: dict[str, Any], body: dict[str, Any], slug: str) -> Response:
            who = require("editor")
            tags, base = preconditions(headers)
            result = service().replace(ctype, slug, body, tags, who, change_reason(headers), base)
            return written(result, merge_asked=base is not None)

        @blp.requires("editor")
        @blp.arguments(MergeHeadersSchema(), location="headers")
        @blp.arguments(ctype.patch_schema_class(), content_type="application/merge-patch+json")
        @blp.response(200, item_schema, headers=MERGE_RESPONSE_HEADERS)
        @blp.errors(*WRITE_ERRORS)
        @blp.doc(
            security=BEARER,
            summary=f"Change some fields of a {ctype.singular.lower()}",
            operationId=f"update{one}",
            description="JSON merge patch (RFC 7396): given fields replace, null removes. "
            "Also accepted as application/json." + MERGE_DOC,
        )
        def patch(self, headers: dict[str, Any], body: dict[str, Any], slug: str) -> Response:
            who = require("editor")
            tags, base = preconditions(headers)
            result = service().patch(ctype, slug, body, tags, who, change_reason(headers), base)
            return written(result, merge_asked=base is not None)

        @blp.requires("editor")
        @blp.arguments(WriteHeadersSchema(), location="headers")
        @blp.response(
            204, headers={"X-Content-Revision": WRITE_RESPONSE_HEADERS["X-Content-Revision"]}
        )
        @blp.errors(*WRITE_ERRORS)
        @blp.doc(
            security=BEARER,
            summary=f"Delete a {ctype.singular.lower()}",
            operationId=f"delete{one}",
        )
        def delete(self, headers: dict[str, Any], slug: str) -> Response:
            who = require("editor")
            return written(
                service().delete(ctype, slug, if_match(headers), who, change_reason(headers))
            )

    @blp.route("/<slug:slug>/history")
    class History(MethodView):
        @blp.requires("auditor")
        @blp.arguments(ItemHistoryQuerySchema(), location="query", unknown=RAISE)
        @blp.response(200, VersionSchema(many=True), headers=PAGINATION_HEADER)
        @blp.errors(*READ_ERRORS)
        @blp.doc(
            security=BEARER,
            summary=f"Versions of a {ctype.singular.lower()}, newest first",
            operationId=f"list{one}Versions",
        )
        def get(self, query: dict[str, Any], slug: str) -> Response:
            require("auditor")
            page, size = query["page"], query["page_size"]
            entries, total = versions().item_history(
                read_ref(query["ref"]), ctype, slug, page, size
            )
            return json_response(entries, headers=pagination_header(total, page, size))

    @blp.route("/<slug:slug>/diff")
    class Diff(MethodView):
        @blp.requires("auditor")
        @blp.arguments(DiffQuerySchema(), location="query", unknown=RAISE)
        @blp.response(200, DiffSchema)
        @blp.errors(*READ_ERRORS)
        @blp.doc(
            security=BEARER,
            summary="Field-level changes (JSON Patch) and the unified diff",
            operationId=f"diff{one}",
        )
        def get(self, query: dict[str, Any], slug: str) -> Response:
            require("auditor")
            ref = read_ref(query["ref"])
            old = resolve(query["from_"], ref)
            new = resolve(query["to"], ref) if "to" in query else head_revision(ref)
            return json_response(versions().diff(ctype, slug, old, new))

    @blp.route("/<slug:slug>/blame")
    class Blame(MethodView):
        @blp.requires("auditor")
        @blp.arguments(BlameQuerySchema(), location="query", unknown=RAISE)
        @blp.response(200, BlameSchema)
        @blp.errors(*READ_ERRORS, 409)
        @blp.doc(
            security=BEARER,
            summary="For every field, the change that last set it",
            operationId=f"blame{one}",
        )
        def get(self, query: dict[str, Any], slug: str) -> Response:
            require("auditor")
            return json_response(versions().blame(read_ref(query["ref"]), ctype, slug))

    @blp.route("/<slug:slug>/revert")
    class Revert(MethodView):
        @blp.requires("editor")
        @blp.arguments(WriteHeadersSchema(), location="headers")
        @blp.arguments(RevertSchema())
        @blp.response(200, item_schema, headers=WRITE_RESPONSE_HEADERS)
        @blp.errors(*WRITE_ERRORS)
        @blp.doc(
            security=BEARER,
            summary=f"Restore a {ctype.singular.lower()} as of a revision, as a new commit",
            operationId=f"revert{one}",
            description="If-Match is the item's current ETag; to bring back a deleted item, "
            "send the zero id (40 zeros).",
        )
        def post(self, headers: dict[str, Any], body: dict[str, Any], slug: str) -> Response:
            who = require("editor")
            target = resolve(body["to"], MAIN).commit
            return written(
                service().revert(
                    ctype, slug, target, if_match(headers), who, change_reason(headers)
                )
            )

    @blp.route("/<slug:slug>/publish")
    class Publish(MethodView):
        @blp.requires("admin")
        @blp.arguments(ReasonHeadersSchema(), location="headers")
        @blp.response(200, PublishResultSchema)
        @blp.errors(401, 403, 404, 409, 422, 503, 507)
        @blp.doc(
            security=BEARER,
            summary=f"Publish one {ctype.singular.lower()}: a commit on published changing only it",
            operationId=f"publish{one}",
            description="Publishes the draft, or its deletion. Admins only.",
        )
        def post(self, headers: dict[str, Any], slug: str) -> Response:
            who = require("admin")
            result = service().publish_item(ctype, slug, who, change_reason(headers))
            return json_response({"commit": result.commit, "changed": result.changed})

    return blp


def revalidated(ctype: ContentType) -> Response | None:
    """The commonest request of all, a browser or CDN revalidating a public item, answered
    before any argument parsing: the same 304 the view would give, at a fraction of the cost."""
    if (
        request.method != "GET"
        or request.args
        or "If-None-Match" not in request.headers
        or "Authorization" in request.headers
        or request.endpoint != f"{ctype.name}.Item"
    ):
        return None
    slug = (request.view_args or {}).get("slug", "")
    snap, item = service().consistent(
        PUBLISHED, lambda snap: (snap, snap.items.get(ctype.name, {}).get(slug))
    )
    if item is None or item.error is not None or not not_modified(quoted(item.blob)):
        return None
    return json_response(None, etag=quoted(item.blob), revision=snap.sha)


def resolve(rev: str, ref: str) -> Revision:
    """Anonymous readers may only travel along the published line."""
    return versions().resolve(rev, ref, published_only=published_only())


def head_revision(ref: str) -> Revision:
    sha = service().snapshot(ref).sha
    if not sha:
        raise NotFound(f"{ref} has no commits.")
    return Revision(sha, "head")


@functools.cache
def _blueprint(type_name: str) -> Blueprint:
    """Each type's blueprint is built once per process and registered on every app made
    (Flask blueprints are templates: tests make an app per test, the spec is the same)."""
    return make_blueprint(TYPES[type_name])


def register(api: Api) -> None:
    for name in TYPES:
        api.register_blueprint(_blueprint(name))
