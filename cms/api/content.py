"""The content routes, made for every declared type: list, read, create, replace, patch, delete."""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Response, request, url_for
from flask.views import MethodView
from flask_smorest import Api
from marshmallow import RAISE

from cms.api.common import (
    BEARER,
    OPTIONAL_BEARER,
    READ_ERRORS,
    WRITE_ERRORS,
    Blueprint,
    WriteHeadersSchema,
    change_reason,
    if_match,
    json_response,
    quoted,
    read_ref,
    require,
    service,
)
from cms.schemas import RefQuerySchema
from cms.service import WriteResult
from cms.types import TYPES, ContentType

PAGINATION_HEADER = {
    "X-Pagination": {
        "description": "JSON: total, total_pages, first_page, last_page, page, "
        "previous_page, next_page",
        "schema": {"type": "string"},
    }
}
WRITE_RESPONSE_HEADERS = {
    "ETag": {"description": "The item's new ETag (git blob id)", "schema": {"type": "string"}},
    "X-Content-Revision": {
        "description": "The commit on main that holds this version",
        "schema": {"type": "string"},
    },
}


def pagination(total: int, page: int, page_size: int) -> dict[str, int]:
    meta = {"total": total, "total_pages": max(1, math.ceil(total / page_size))}
    meta.update(first_page=1, last_page=meta["total_pages"], page=page)
    if page > 1:
        meta["previous_page"] = page - 1
    if page < meta["total_pages"]:
        meta["next_page"] = page + 1
    return meta


def written(result: WriteResult, status: int = 200, location: str | None = None) -> Response:
    headers = {"Location": location} if location else {}
    if result.item is None:
        return Response(status=204, headers={"X-Content-Revision": result.commit})
    return json_response(
        result.item.as_json(),
        status,
        etag=quoted(result.item.blob),
        revision=result.commit,
        headers=headers,
    )


def make_blueprint(ctype: ContentType) -> Blueprint:
    name = ctype.name
    blp = Blueprint(
        name,
        __name__,
        url_prefix=f"/api/v1/{name}",
        description=f"{ctype.singular} items, stored as {name}/<slug>.yaml in git",
    )
    item_schema = ctype.item_schema_class

    @blp.before_request
    def writers_only() -> None:
        # Authenticate before the body is even parsed: a stranger learns nothing from a 422.
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            require("editor")

    @blp.route("")
    class Collection(MethodView):
        @blp.arguments(ctype.query_schema_class, location="query", as_kwargs=True, unknown=RAISE)
        @blp.response(
            200,
            item_schema(many=True),
            headers={**PAGINATION_HEADER, **WRITE_RESPONSE_HEADERS},
            description="One page of items; weak ETag for the whole list",
        )
        @blp.alt_response(304, description="Not modified")
        @blp.errors(*READ_ERRORS)
        @blp.doc(security=OPTIONAL_BEARER, summary=f"List {name}")
        def get(self, page: int, page_size: int, sort: str, ref: str, **filters: Any) -> Response:
            items, sha = service().list_items(read_ref(ref), ctype, filters, sort)
            start = (page - 1) * page_size
            meta = pagination(len(items), page, page_size)
            return json_response(
                [item.as_json() for item in items[start : start + page_size]],
                etag=f'W/"{sha}"',
                revision=sha,
                headers={"X-Pagination": json.dumps(meta)},
            )

        @blp.arguments(WriteHeadersSchema, location="headers")
        @blp.arguments(ctype.create_schema_class)
        @blp.response(201, item_schema, headers=WRITE_RESPONSE_HEADERS)
        @blp.errors(*WRITE_ERRORS)
        @blp.doc(security=BEARER, summary=f"Create a {ctype.singular.lower()}")
        def post(self, headers: dict[str, Any], body: dict[str, Any]) -> Response:
            who = require("editor")
            result = service().create(ctype, body, who, change_reason(headers))
            assert result.item is not None
            location = url_for(f"{name}.Item", slug=result.item.slug)
            return written(result, 201, location)

    @blp.route("/<slug:slug>")
    class Item(MethodView):
        @blp.arguments(RefQuerySchema, location="query", unknown=RAISE)
        @blp.response(200, item_schema, headers=WRITE_RESPONSE_HEADERS)
        @blp.alt_response(304, description="Not modified")
        @blp.errors(*READ_ERRORS)
        @blp.doc(security=OPTIONAL_BEARER, summary=f"Read a {ctype.singular.lower()}")
        def get(self, query: dict[str, Any], slug: str) -> Response:
            item, sha = service().get_item(read_ref(query["ref"]), ctype, slug)
            return json_response(item.as_json(), etag=quoted(item.blob), revision=sha)

        @blp.arguments(WriteHeadersSchema, location="headers")
        @blp.arguments(ctype.input_schema_class)
        @blp.response(200, item_schema, headers=WRITE_RESPONSE_HEADERS)
        @blp.errors(*WRITE_ERRORS)
        @blp.doc(security=BEARER, summary=f"Replace a {ctype.singular.lower()}")
        def put(self, headers: dict[str, Any], body: dict[str, Any], slug: str) -> Response:
            who = require("editor")
            return written(
                service().replace(ctype, slug, body, if_match(headers), who, change_reason(headers))
            )

        @blp.arguments(WriteHeadersSchema, location="headers")
        @blp.arguments(ctype.patch_schema_class, content_type="application/merge-patch+json")
        @blp.response(200, item_schema, headers=WRITE_RESPONSE_HEADERS)
        @blp.errors(*WRITE_ERRORS)
        @blp.doc(
            security=BEARER,
            summary=f"Change some fields of a {ctype.singular.lower()}",
            description="JSON merge patch (RFC 7396): given fields replace, null removes. "
            "Also accepted as application/json.",
        )
        def patch(self, headers: dict[str, Any], body: dict[str, Any], slug: str) -> Response:
            who = require("editor")
            return written(
                service().patch(ctype, slug, body, if_match(headers), who, change_reason(headers))
            )

        @blp.arguments(WriteHeadersSchema, location="headers")
        @blp.response(
            204, headers={"X-Content-Revision": WRITE_RESPONSE_HEADERS["X-Content-Revision"]}
        )
        @blp.errors(*WRITE_ERRORS)
        @blp.doc(security=BEARER, summary=f"Delete a {ctype.singular.lower()}")
        def delete(self, headers: dict[str, Any], slug: str) -> Response:
            who = require("editor")
            return written(
                service().delete(ctype, slug, if_match(headers), who, change_reason(headers))
            )

    return blp


def register(api: Api) -> None:
    for ctype in TYPES.values():
        api.register_blueprint(make_blueprint(ctype))
