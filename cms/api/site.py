"""The public site for frontends (one document), publishing, and releases."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Response, request, url_for
from flask.views import MethodView
from marshmallow import RAISE

from cms.api.common import (
    BEARER,
    IMMUTABLE,
    OPTIONAL_BEARER,
    READ_ERRORS,
    Blueprint,
    ReasonHeadersSchema,
    actor,
    cached_body,
    change_reason,
    json_response,
    not_modified,
    published_only,
    read_scope,
    require,
    service,
    versions,
)
from cms.api.schemas import (
    PendingSchema,
    PublishResultSchema,
    ReleaseCreateSchema,
    ReleaseSchema,
)
from cms.delivery import calendar, edition_items, site_bundle, site_schema
from cms.errors import NotFound
from cms.schemas import PreviewQuerySchema, SiteQuerySchema
from cms.service import Item
from cms.service.versions import HEX_REV
from cms.types import TYPES

blp = Blueprint(
    "site", __name__, url_prefix="/api/v1", description="The public site and publishing"
)

CDN_CACHE = "public, max-age=60, s-maxage=300, stale-while-revalidate=600"


Items = Mapping[str, Mapping[str, Item]]


def site_read(
    query: dict[str, Any], answer: Callable[[str, Items, str | None], Response]
) -> Response:
    """answer(commit, every type's items, the `at` asked for) for what a site read sees: a
    ref's head from its snapshot (taken again if the index moves while a large type is read),
    or any revision through Versions."""
    ref, at = read_scope(query)
    if at is None:
        return service().consistent(ref, lambda snap: answer(snap.sha, snap.items, None))
    sha = versions().resolve(at, ref, published_only=published_only()).commit
    return answer(sha, {name: versions().items_at(sha, name) for name in TYPES}, at)


@blp.route("/site")
class Site(MethodView):
    @blp.arguments(SiteQuerySchema(), location="query", unknown=RAISE)
    @blp.response(
        200,
        site_schema(),
        headers={"ETag": {"description": "The commit id", "schema": {"type": "string"}}},
    )
    @blp.alt_response(304, description="Not modified")
    @blp.errors(*READ_ERRORS)
    @blp.doc(
        security=OPTIONAL_BEARER,
        operationId="getSite",
        summary="The whole published site in one document",
        description="Every type's items with references (organizers, author, speakers) "
        "expanded; links to the workshop or series an item belongs to stay slugs. "
        "`?workshop=` gives one edition. ETag is the commit id; `?at=` reads the site as of "
        "any revision or release.",
    )
    def get(self, query: dict[str, Any]) -> Response:
        return site_read(query, lambda sha, items, at: site_answer(query, sha, items, at))


def site_answer(query: dict[str, Any], sha: str, items: Items, at: str | None) -> Response:
    """The body of GET /site, read from one commit (built once per commit and query)."""
    render = bool(query.get("render"))
    cache = IMMUTABLE if at is not None and HEX_REV.match(at) else CDN_CACHE
    if actor().role != "anonymous":
        cache = "private, no-cache"
    workshop = query.get("workshop")
    found = items.get("workshops", {}).get(workshop) if workshop is not None else None
    if workshop is not None and (found is None or found.data is None):
        raise NotFound(f"No workshop '{workshop}' here.")

    def build() -> dict[str, Any]:
        shown = edition_items(items, workshop) if workshop is not None else items
        assert shown is not None
        return site_bundle(shown, sha, render)

    etag = f'"{sha}{f".{workshop}" if workshop else ""}{".html" if render else ""}"'
    body = cached_body(("site", sha, workshop, render), build)
    return json_response(body, etag=etag, revision=sha, headers={"Cache-Control": cache})


@blp.route("/workshops/<slug:slug>/calendar.ics")
class Calendar(MethodView):
    @blp.arguments(PreviewQuerySchema(), location="query", unknown=RAISE)
    @blp.response(
        200,
        {"type": "string"},
        content_type="text/calendar",
        headers={"ETag": {"description": "The commit id", "schema": {"type": "string"}}},
    )
    @blp.alt_response(304, description="Not modified")
    @blp.errors(*READ_ERRORS)
    @blp.doc(
        security=OPTIONAL_BEARER,
        operationId="getWorkshopCalendar",
        summary="The workshop's sessions and deadlines for calendar apps (iCalendar)",
        description="RFC 5545: sessions in the venue's time zone (with its VTIMEZONE), "
        "deadlines in UTC, named AoE when they are 'anywhere on earth'.",
    )
    def get(self, query: dict[str, Any], slug: str) -> Response:
        return site_read(query, lambda sha, items, _: calendar_answer(slug, sha, items))


def calendar_answer(slug: str, sha: str, items: Items) -> Response:
    """The body of a workshop's calendar.ics, read from one commit."""
    edition = edition_items(items, slug) if slug in items.get("workshops", {}) else None
    if edition is None:
        raise NotFound(f"No workshop '{slug}' here.")
    etag = f'"{sha}.ics"'
    if not_modified(etag):
        return Response(status=304, headers={"ETag": etag})
    stamp = datetime.fromtimestamp(service().commit_time(sha), UTC)
    body = calendar(edition, slug, stamp, request.host.split(":")[0] or "localhost")
    return Response(
        body,
        mimetype="text/calendar",
        headers={
            "ETag": etag,
            "X-Content-Revision": sha,
            "Content-Disposition": f'inline; filename="{slug}.ics"',
            "Cache-Control": CDN_CACHE if actor().role == "anonymous" else "private, no-cache",
        },
    )


@blp.route("/publish")
class PublishSite(MethodView):
    @blp.requires("admin")
    @blp.arguments(ReasonHeadersSchema(), location="headers")
    @blp.response(200, PublishResultSchema)
    @blp.errors(401, 403, 422, 503, 507)
    @blp.doc(
        security=BEARER,
        operationId="publishSite",
        summary="Publish the whole site: a merge commit of main into published",
        description="Admins only. `git log --first-parent published` lists publish events. "
        "With nothing pending, no commit is made.",
    )
    def post(self, headers: dict[str, Any]) -> Response:
        who = require("admin")
        result = service().publish_site(who, change_reason(headers))
        return json_response({"commit": result.commit, "changed": result.changed})


@blp.route("/publish/pending")
class Pending(MethodView):
    @blp.requires("auditor")
    @blp.response(200, PendingSchema(many=True))
    @blp.errors(401, 403, 503)
    @blp.doc(
        security=BEARER,
        operationId="listPendingChanges",
        summary="What differs between drafts and the public site",
    )
    def get(self) -> Response:
        require("auditor")
        return json_response(service().pending())


@blp.route("/releases")
class Releases(MethodView):
    @blp.response(200, ReleaseSchema(many=True))
    @blp.errors(401, 503)
    @blp.doc(
        security=OPTIONAL_BEARER,
        operationId="listReleases",
        summary="Releases: annotated tags on published, newest first",
    )
    def get(self) -> Response:
        actor()
        return json_response(service().releases())

    @blp.requires("admin")
    @blp.arguments(ReleaseCreateSchema())
    @blp.response(201, ReleaseSchema)
    @blp.errors(400, 401, 403, 409, 413, 415, 422, 503, 507)
    @blp.doc(
        security=BEARER,
        operationId="createRelease",
        summary="Tag the current published site as a release",
    )
    def post(self, body: dict[str, Any]) -> Response:
        who = require("admin")
        release = service().create_release(body["name"], body["message"], who)
        location = url_for("site.Release", name=release["name"])
        return json_response(release, 201, headers={"Location": location})


@blp.route("/releases/<release:name>")
class Release(MethodView):
    @blp.response(200, ReleaseSchema)
    @blp.errors(401, 404, 503)
    @blp.doc(security=OPTIONAL_BEARER, operationId="getRelease", summary="One release")
    def get(self, name: str) -> Response:
        actor()
        return json_response(service().release(name))
