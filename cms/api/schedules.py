"""Scheduled publishing: publish exactly a reviewed commit of main at a set instant."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, url_for
from flask.views import MethodView

from cms import schedules
from cms.api.common import BEARER, ID, Blueprint, json_response, require, service, versions
from cms.api.schemas import ScheduleCreateSchema, ScheduleSchema
from cms.errors import Invalid
from cms.service import MAIN
from cms.service.items import iso_time
from cms.service.messages import clean_reason

blp = Blueprint(
    "schedules",
    __name__,
    url_prefix="/api/v1/publish/schedule",
    description="Publish exactly what was reviewed, at a set time",
)
PAST_TOLERANCE = 60  # seconds: an instant just past is run at once, anything older refused


def described(row: schedules.ScheduleRow) -> dict[str, Any]:
    local = datetime.fromtimestamp(row.at, ZoneInfo(row.zone))
    return {
        "id": row.id,
        "commit": row.commit,
        "label": row.label,
        "at": iso_time(row.at),
        "at_local": local.isoformat(),
        "zone": row.zone,
        "reason": row.reason,
        "status": row.status,
        "result": row.result,
        "created_by_name": row.created_by_name,
        "created_at": iso_time(row.created_at),
        "finished_at": iso_time(row.finished_at) if row.finished_at else None,
    }


@blp.route("")
class Schedules(MethodView):
    @blp.requires("admin")
    @blp.arguments(ScheduleCreateSchema())
    @blp.response(201, ScheduleSchema)
    @blp.errors(400, 401, 403, 404, 413, 415, 422, 507)
    @blp.doc(
        security=BEARER,
        operationId="schedulePublication",
        summary="Schedule the publication of one commit of main (default: its head now)",
        description="At `at` the published ref moves to exactly that commit (a merge commit "
        "naming who scheduled it and why), whatever main has become; a commit no longer on "
        "main fails the schedule (status `failed`) and publishes nothing. Times are stored in "
        "UTC with the IANA zone they were given in.",
    )
    def post(self, body: dict[str, Any]) -> Response:
        who = require("admin")
        when = int(body["at"].timestamp())
        if when < time.time() - PAST_TOLERANCE:
            raise Invalid("That time has passed.", errors={"json": {"at": ["In the past."]}})
        label = body.get("commit", "main")
        commit = (
            versions().resolve(body["commit"], MAIN).commit
            if "commit" in body
            else service().snapshot(MAIN).sha
        )
        with service().accounts_session() as session:
            row = schedules.create_schedule(
                session, who, commit=commit, label=label, at=when, zone=body["zone"],
                reason=clean_reason(body["reason"]),
            )  # fmt: skip
            created = described(row)
        location = url_for("schedules.Schedule", schedule_id=created["id"])
        return json_response(created, 201, headers={"Location": location})

    @blp.requires("auditor")
    @blp.response(200, ScheduleSchema(many=True))
    @blp.errors(401, 403)
    @blp.doc(security=BEARER, operationId="listSchedules", summary="Scheduled publications")
    def get(self) -> Response:
        with service().accounts_session() as session:
            return json_response([described(r) for r in schedules.list_schedules(session)])


@blp.route(f"/<{ID}:schedule_id>")
class Schedule(MethodView):
    @blp.requires("auditor")
    @blp.response(200, ScheduleSchema)
    @blp.errors(401, 403, 404)
    @blp.doc(security=BEARER, operationId="getSchedule", summary="One scheduled publication")
    def get(self, schedule_id: int) -> Response:
        with service().accounts_session() as session:
            return json_response(described(schedules.get_schedule(session, schedule_id)))

    @blp.requires("admin")
    @blp.response(200, ScheduleSchema)
    @blp.errors(401, 403, 404, 409)
    @blp.doc(
        security=BEARER,
        operationId="cancelSchedule",
        summary="Cancel a scheduled publication that has not run yet",
    )
    def delete(self, schedule_id: int) -> Response:
        who = require("admin")
        with service().accounts_session() as session:
            row = schedules.cancel_schedule(session, who, schedule_id)
            return json_response(described(row))
