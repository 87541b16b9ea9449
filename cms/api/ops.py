"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from flask import Response, g
from flask.views import MethodView
from marshmallow import Schema, fields

from cms.api.common import Blueprint, actor, json_response, service
from cms.auth import ANONYMOUS
from cms.errors import CMSError
from cms.service import PUBLISHED

blp = Blueprint("ops", __name__, description="Health of the service")


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"description": "ok, or unavailable"})
    checks = fields.Dict(metadata={"description": "Each check and what it found"})


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.errors()
    @blp.doc(security=[{}], operationId="getHealth", summary="Liveness: the process answers")
    def get(self) -> Response:
        return json_response({"status": "ok"})


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="Not ready: see checks")
    @blp.alt_response(414, response="Error414")
    @blp.alt_response(429, response="Error429")
    @blp.doc(
        security=[{}],
        operationId="getReadiness",
        summary="Readiness: repository, database, index lag",
    )
    def get(self) -> Response:
        checks: dict[str, Any] = service().readiness()
        if not _reads_drafts():  # draft commit ids are for auditors' eyes
            heads = checks["repository"].get("heads", {})
            checks["repository"]["heads"] = {
                ref: sha for ref, sha in heads.items() if ref == PUBLISHED
            }
        ok = all(check.get("ok") for check in checks.values())
        return json_response(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            200 if ok else 503,
            headers={} if ok else {"Retry-After": "5"},
        )


def _reads_drafts() -> bool:
    try:
        return actor().can("auditor")
    except CMSError:  # a bad token on a probe: it sees what anyone sees
        g.actor = ANONYMOUS
        return False
