"""Webhook endpoints (admins): create (the secret is shown once), list, change, rotate the
secret, delete; each endpoint's delivery log, and redelivery."""

from __future__ import annotations

from typing import Any

from flask import Response, url_for
from flask.views import MethodView

from cms import webhooks
from cms.api.common import BEARER, ID, Blueprint, json_response, service
from cms.api.schemas import (
    DeliverySchema,
    WebhookCreatedSchema,
    WebhookCreateSchema,
    WebhookPatchSchema,
    WebhookSchema,
)
from cms.service.items import iso_time
from cms.service.notify import start_cursors

blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/api/v1/webhooks",
    description="Signed webhooks, derived from git: every commit told, in order, at least once",
)
ADMIN_ERRORS = (401, 403, 404)


def described(row: webhooks.WebhookRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": row.url,
        "events": list(row.events),
        "description": row.description,
        "active": row.active,
        "coalesce": row.coalesce,
        "created_at": iso_time(row.created_at),
    }


def delivery(session: Any, row: webhooks.DeliveryRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "webhook_id": f"msg_{row.id}",
        "event": row.event,
        "status": row.status,
        "attempts": row.attempts,
        "last_status": row.last_status,
        "last_error": row.last_error,
        "created_at": iso_time(row.created_at),
        "payload": row.payload,
        "log": [
            {"at": iso_time(a.at), "status": a.status_code, "ms": a.duration_ms, "error": a.error}
            for a in webhooks.attempts_of(session, row.id)
        ],
    }


@blp.route("")
class Webhooks(MethodView):
    @blp.requires("admin")
    @blp.arguments(WebhookCreateSchema())
    @blp.response(201, WebhookCreatedSchema)
    @blp.errors(400, *ADMIN_ERRORS, 413, 415, 422)
    @blp.doc(
        security=BEARER,
        operationId="createWebhook",
        summary="A webhook endpoint: told of every commit from now on, signed",
        description="Messages follow the Standard Webhooks specification (`webhook-id`, "
        "`webhook-timestamp`, `webhook-signature: v1,...` over `id.timestamp.body`, with the "
        "`whsec_` secret answered only now). Events: `content.changed` (commits on main), "
        "`site.published` (the published ref moved), `release.created`, `ref.rewound`, "
        "`schedule.failed`; with `coalesce`, one message covers everything pending (its "
        "`data.commits`). Retried on network "
        "errors, timeouts, 5xx, 408 and 429 (honouring Retry-After) for up to a day; other "
        "answers stop that message. Redirects are not followed.",
    )
    def post(self, body: dict[str, Any]) -> Response:
        svc = service()
        cursors = start_cursors(svc)
        with svc.accounts_session() as session:
            row = webhooks.create_webhook(
                session, body["url"], body["events"], body["description"], cursors,
                coalesce=body["coalesce"],
            )  # fmt: skip
            created = {**described(row), "secret": row.secret}
        location = url_for("webhooks.Webhook", webhook_id=created["id"])
        return json_response(created, 201, headers={"Location": location})

    @blp.requires("admin")
    @blp.response(200, WebhookSchema(many=True))
    @blp.errors(401, 403)
    @blp.doc(security=BEARER, operationId="listWebhooks", summary="Webhook endpoints")
    def get(self) -> Response:
        with service().accounts_session() as session:
            return json_response([described(r) for r in webhooks.list_webhooks(session)])


@blp.route(f"/<{ID}:webhook_id>")
class Webhook(MethodView):
    @blp.requires("admin")
    @blp.response(200, WebhookSchema)
    @blp.errors(*ADMIN_ERRORS)
    @blp.doc(security=BEARER, operationId="getWebhook", summary="One webhook endpoint")
    def get(self, webhook_id: int) -> Response:
        with service().accounts_session() as session:
            return json_response(described(webhooks.get_webhook(session, webhook_id)))

    @blp.requires("admin")
    @blp.arguments(WebhookPatchSchema())
    @blp.response(200, WebhookSchema)
    @blp.errors(400, *ADMIN_ERRORS, 413, 415, 422)
    @blp.doc(
        security=BEARER,
        operationId="updateWebhook",
        summary="Change an endpoint's URL, events, description, or pause it (active)",
    )
    def patch(self, body: dict[str, Any], webhook_id: int) -> Response:
        with service().accounts_session() as session:
            row = webhooks.get_webhook(session, webhook_id)
            for name, value in body.items():
                setattr(row, name, value)
            return json_response(described(row))

    @blp.requires("admin")
    @blp.response(204)
    @blp.errors(*ADMIN_ERRORS)
    @blp.doc(security=BEARER, operationId="deleteWebhook", summary="Delete an endpoint")
    def delete(self, webhook_id: int) -> Response:
        with service().accounts_session() as session:
            webhooks.delete_webhook(session, webhook_id)
        return Response(status=204)


@blp.route(f"/<{ID}:webhook_id>/rotate")
class Rotate(MethodView):
    @blp.requires("admin")
    @blp.response(200, WebhookCreatedSchema)
    @blp.errors(*ADMIN_ERRORS)
    @blp.doc(
        security=BEARER,
        operationId="rotateWebhookSecret",
        summary="A new signing secret, answered only now; the old one stops at once",
    )
    def post(self, webhook_id: int) -> Response:
        with service().accounts_session() as session:
            row = webhooks.get_webhook(session, webhook_id)
            row.secret = webhooks.new_secret()
            return json_response({**described(row), "secret": row.secret})


@blp.route(f"/<{ID}:webhook_id>/deliveries")
class Deliveries(MethodView):
    @blp.requires("admin")
    @blp.response(200, DeliverySchema(many=True))
    @blp.errors(*ADMIN_ERRORS)
    @blp.doc(
        security=BEARER,
        operationId="listWebhookDeliveries",
        summary="The endpoint's last 100 messages, newest first, with every attempt",
    )
    def get(self, webhook_id: int) -> Response:
        with service().accounts_session() as session:
            webhooks.get_webhook(session, webhook_id)
            rows = webhooks.deliveries(session, webhook_id)
            return json_response([delivery(session, r) for r in rows])


@blp.route(f"/<{ID}:webhook_id>/deliveries/<{ID}:delivery_id>/redeliver")
class Redeliver(MethodView):
    @blp.requires("admin")
    @blp.response(200, DeliverySchema)
    @blp.errors(*ADMIN_ERRORS)
    @blp.doc(
        security=BEARER,
        operationId="redeliverWebhook",
        summary="Send a message again (same webhook-id), in its turn",
    )
    def post(self, webhook_id: int, delivery_id: int) -> Response:
        with service().accounts_session() as session:
            row = webhooks.get_delivery(session, webhook_id, delivery_id)
            row.status, row.next_at = webhooks.PENDING, 0
            return json_response(delivery(session, row))
