"""What an editing client needs besides the content routes: who its token is, and Markdown
rendered exactly as visitors will see it (the editor app's live preview)."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from cms.api.common import BEARER, Blueprint, json_response, require
from cms.delivery import markdown_to_html
from cms.schemas import LONG

blp = Blueprint(
    "editing", __name__, url_prefix="/api/v1", description="For editing clients: who am I, previews"
)


class MeSchema(Schema):
    name = fields.String(required=True, metadata={"description": "The token's owner"})
    email = fields.String(required=True, metadata={"description": "Author email of their commits"})
    role = fields.String(
        required=True,
        validate=validate.OneOf(["auditor", "editor", "admin"]),
        metadata={
            "description": "auditor reads drafts and history, editor writes, admin publishes"
        },
    )


class RenderInputSchema(Schema):
    markdown = fields.String(required=True, validate=validate.Length(max=LONG))


class RenderedSchema(Schema):
    html = fields.String(required=True, metadata={"description": "Sanitised HTML"})


@blp.route("/me")
class Me(MethodView):
    @blp.requires("auditor")
    @blp.response(200, MeSchema)
    @blp.errors(401, 503)
    @blp.doc(security=BEARER, operationId="getMe", summary="The token's owner and role")
    def get(self) -> Response:
        who = require("auditor")
        return json_response({"name": who.name, "email": who.email, "role": who.role})


@blp.route("/render")
class Render(MethodView):
    @blp.requires("editor")
    @blp.arguments(RenderInputSchema())
    @blp.response(200, RenderedSchema)
    @blp.errors(400, 401, 403, 413, 415, 422, 503)
    @blp.doc(
        security=BEARER,
        operationId="renderMarkdown",
        summary="Markdown rendered and sanitised as the site serves it (a live preview)",
    )
    def post(self, body: dict[str, Any]) -> Response:
        require("editor")
        return json_response({"html": markdown_to_html(body["markdown"])})
