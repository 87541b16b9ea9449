"""Preview links: an editor shares the drafts (or one commit) with someone without an account."""

from __future__ import annotations

from typing import Any

from flask import Response, url_for
from flask.views import MethodView

from cms import previews
from cms.api.common import (
    BEARER,
    ID,
    Blueprint,
    json_response,
    require,
    service,
    versions,
)
from cms.api.schemas import PreviewCreatedSchema, PreviewCreateSchema, PreviewSchema
from cms.service import MAIN
from cms.service.items import iso_time

blp = Blueprint(
    "previews",
    __name__,
    url_prefix="/api/v1/previews",
    description="Expiring, revocable, read-only links to drafts",
)


def described(row: previews.PreviewRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "ref": row.ref.removeprefix("refs/heads/") if row.ref else None,
        "commit": row.commit,
        "description": row.description,
        "created_by": row.created_by,
        "created_at": iso_time(row.created_at),
        "expires_at": iso_time(row.expires_at),
        "revoked_at": iso_time(row.revoked_at) if row.revoked_at else None,
    }


@blp.route("")
class Previews(MethodView):
    @blp.requires("editor")
    @blp.arguments(PreviewCreateSchema())
    @blp.response(201, PreviewCreatedSchema)
    @blp.errors(400, 401, 403, 404, 413, 415, 422, 507)
    @blp.doc(
        security=BEARER,
        operationId="createPreview",
        summary="A preview link to the drafts (as they move) or to one commit of main",
        description="Anyone with the link reads items, lists and /site of what it was made "
        "for, with `?preview=<token>`, until it expires (at most 30 days) or is revoked; "
        "answers carry `X-Robots-Tag: noindex` and `Cache-Control: private`.",
    )
    def post(self, body: dict[str, Any]) -> Response:
        who = require("editor")
        commit = versions().resolve(body["commit"], MAIN).commit if "commit" in body else None
        with service().accounts_session() as session:
            row, secret = previews.create_preview(
                session,
                who,
                ref=MAIN if "ref" in body else None,
                commit=commit,
                lifetime=body["lifetime_hours"] * 3600,
                description=body["description"],
            )
            created = described(row)
        url = url_for("frontend.index", preview=secret)
        return json_response({**created, "token": secret, "url": url}, 201)

    @blp.requires("editor")
    @blp.response(200, PreviewSchema(many=True))
    @blp.errors(401, 403)
    @blp.doc(
        security=BEARER,
        operationId="listPreviews",
        summary="Preview links: all of them for admins, one's own for editors",
    )
    def get(self) -> Response:
        who = require("editor")
        with service().accounts_session() as session:
            return json_response([described(r) for r in previews.visible_previews(session, who)])


@blp.route(f"/<{ID}:preview_id>")
class Preview(MethodView):
    @blp.requires("editor")
    @blp.response(204)
    @blp.errors(401, 403, 404)
    @blp.doc(
        security=BEARER,
        operationId="revokePreview",
        summary="Revoke a preview link (its creator or an admin): it stops working at once",
    )
    def delete(self, preview_id: int) -> Response:
        who = require("editor")
        with service().accounts_session() as session:
            previews.revoke_preview(session, who, preview_id)
        return Response(status=204)
