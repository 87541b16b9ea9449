"""The repository-wide audit log, one commit in detail, and the change feed."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from marshmallow import RAISE

from cms.api.common import (
    BEARER,
    OPTIONAL_BEARER,
    PAGINATION_HEADER,
    READ_ERRORS,
    Blueprint,
    json_response,
    pagination_header,
    read_ref,
    require,
    versions,
)
from cms.api.schemas import (
    AuditEntrySchema,
    AuditQuerySchema,
    ChangesFeedSchema,
    ChangesQuerySchema,
    CommitDetailSchema,
)
from cms.errors import Invalid
from cms.service.versions import HEX_REV, parse_time
from cms.types import TYPES

blp = Blueprint(
    "history", __name__, url_prefix="/api/v1", description="Audit: who, what, when, why"
)


def _time_filter(query: dict[str, Any], name: str) -> int | None:
    if name not in query:
        return None
    when = parse_time(query[name])
    if when is None:
        raise Invalid(
            f"{name} must be an ISO 8601 time.",
            errors={"query": {name: ["Not an ISO 8601 time, e.g. 2025-07-19T09:00:00Z."]}},
        )
    return when


@blp.route("/history")
class AuditLog(MethodView):
    @blp.requires("auditor")
    @blp.arguments(AuditQuerySchema(), location="query", unknown=RAISE)
    @blp.response(200, AuditEntrySchema(many=True), headers=PAGINATION_HEADER)
    @blp.errors(*READ_ERRORS)
    @blp.doc(
        security=BEARER,
        operationId="listHistory",
        summary="Every commit, newest first, with the items it changed",
    )
    def get(self, query: dict[str, Any]) -> Response:
        require("auditor")
        if "type" in query and query["type"] not in TYPES:
            raise Invalid(
                "Unknown content type.",
                errors={"query": {"type": [f"Must be one of: {', '.join(TYPES)}."]}},
            )
        filters = {
            "author": query.get("author"),
            "type": query.get("type"),
            "slug": query.get("slug"),
            "since": _time_filter(query, "since"),
            "until": _time_filter(query, "until"),
        }
        page, size = query["page"], query["page_size"]
        entries, total = versions().audit_log(read_ref(query["ref"]), filters, page, size)
        return json_response(entries, headers=pagination_header(total, page, size))


@blp.route("/history/<commit:commit>")
class CommitDetail(MethodView):
    @blp.requires("auditor")
    @blp.response(200, CommitDetailSchema)
    @blp.errors(*READ_ERRORS)
    @blp.doc(
        security=BEARER,
        operationId="getCommit",
        summary="One commit: who, when, why, items changed, the patch",
    )
    def get(self, commit: str) -> Response:
        require("auditor")
        if not HEX_REV.match(commit):
            raise Invalid(
                "A commit id is 7 to 40 lowercase hex digits.",
                errors={"path": {"commit": ["Not a commit id."]}},
            )
        return json_response(versions().commit_detail(commit))


@blp.route("/changes")
class Changes(MethodView):
    @blp.arguments(ChangesQuerySchema(), location="query", unknown=RAISE)
    @blp.response(200, ChangesFeedSchema)
    @blp.alt_response(410, response="Error410")
    @blp.errors(*READ_ERRORS)
    @blp.doc(
        security=OPTIONAL_BEARER,
        operationId="listChanges",
        summary="Change feed: items changed after a commit, oldest first",
        description="Start without `since`, then pass `next` as `since`. A `410` means the "
        "ref was rewritten: resync from the lists and follow the feed from `head`.",
    )
    def get(self, query: dict[str, Any]) -> Response:
        feed = versions().changes_since(read_ref(query["ref"]), query.get("since"), query["limit"])
        return json_response(feed)
