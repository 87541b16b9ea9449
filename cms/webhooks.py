"""Webhook endpoints and their outbox: what each endpoint subscribed to, how far along each ref
it has been told (its cursors), the messages derived from git for it, and every attempt to
deliver them. Signed as the Standard Webhooks specification says. Kept beside the tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    delete,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from cms.auth import AccountsBase, now
from cms.errors import NotFound

EVENTS = ("content.changed", "site.published", "release.created", "ref.rewound", "schedule.failed")
RELEASES = "releases"  # the cursor key that holds the tag names already looked at
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


class WebhookRow(AccountsBase):
    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean)
    coalesce: Mapped[bool] = mapped_column(Boolean)  # one message covers everything pending
    secret: Mapped[str] = mapped_column(String(100))  # needed to sign: kept, shown once
    # ref -> the last commit told; "releases" -> the release names told
    cursors: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger)


class DeliveryRow(AccountsBase):
    """One message for one endpoint; its id is the webhook-id, the same on every attempt."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(50))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), index=True)
    attempts: Mapped[int] = mapped_column(Integer)
    next_at: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class AttemptRow(AccountsBase):
    __tablename__ = "webhook_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[int] = mapped_column(BigInteger)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with the secret's bytes."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def create_webhook(
    session: Session,
    url: str,
    events: list[str],
    description: str,
    cursors: dict[str, Any],
    coalesce: bool = False,
) -> WebhookRow:
    """A new endpoint, told of what happens from now on (its cursors start where git is)."""
    row = WebhookRow(url=url, events=events, description=description, active=True,
                     coalesce=coalesce, secret=new_secret(), cursors=dict(cursors),
                     created_at=now())  # fmt: skip
    session.add(row)
    session.flush()
    return row


def get_webhook(session: Session, webhook_id: int) -> WebhookRow:
    row = session.get(WebhookRow, webhook_id)
    if row is None:
        raise NotFound(f"No webhook {webhook_id}.")
    return row


def list_webhooks(session: Session) -> list[WebhookRow]:
    return list(session.scalars(select(WebhookRow).order_by(WebhookRow.id)))


def delete_webhook(session: Session, webhook_id: int) -> None:
    """An endpoint, its messages and their attempts."""
    row = get_webhook(session, webhook_id)
    sent = select(DeliveryRow.id).where(DeliveryRow.webhook_id == row.id)
    session.execute(delete(AttemptRow).where(AttemptRow.delivery_id.in_(sent)))
    session.execute(delete(DeliveryRow).where(DeliveryRow.webhook_id == row.id))
    session.delete(row)


def get_delivery(session: Session, webhook_id: int, delivery_id: int) -> DeliveryRow:
    row = session.get(DeliveryRow, delivery_id)
    if row is None or row.webhook_id != webhook_id:
        raise NotFound(f"No message {delivery_id} for webhook {webhook_id}.")
    return row


def enqueue(session: Session, hook: WebhookRow, event: str, payload: dict[str, Any]) -> None:
    """Queue a message; with coalesce, a commit event joins the endpoint's pending one of the
    same kind instead (its `data` becomes the newest, `data.commits` lists them all)."""
    if hook.coalesce and "commit" in payload["data"]:
        pending = session.scalar(
            select(DeliveryRow)
            .where(DeliveryRow.webhook_id == hook.id, DeliveryRow.status == PENDING)
            .where(DeliveryRow.event == event)
            .order_by(DeliveryRow.id.desc())
            .limit(1)
        )
        if pending is not None:
            earlier = pending.payload["data"].get("commits", [pending.payload["data"]["commit"]])
            data = {**payload["data"], "commits": [*earlier, payload["data"]["commit"]]}
            pending.payload = {**payload, "data": data}
            return
    if hook.coalesce and "commit" in payload["data"]:
        payload = {**payload, "data": {**payload["data"], "commits": [payload["data"]["commit"]]}}
    session.add(DeliveryRow(webhook_id=hook.id, event=event, payload=payload, status=PENDING,
                            attempts=0, next_at=0, created_at=now()))  # fmt: skip


def announce(session: Session, event: str, payload: dict[str, Any]) -> None:
    """Queue a message that no ref carries (a schedule that failed) for every active
    endpoint that asked for the event."""
    for hook in session.scalars(select(WebhookRow).where(WebhookRow.active)):
        if event in hook.events:
            enqueue(session, hook, event, payload)


def next_due(session: Session, hook_id: int, when: int) -> DeliveryRow | None:
    """The endpoint's oldest undelivered message, if its time has come (one at a time, in
    order: a later message waits for the earlier one to be delivered or given up)."""
    oldest = session.scalar(
        select(DeliveryRow)
        .where(DeliveryRow.webhook_id == hook_id, DeliveryRow.status == PENDING)
        .order_by(DeliveryRow.id)
        .limit(1)
    )
    return oldest if oldest is not None and oldest.next_at <= when else None


def deliveries(session: Session, hook_id: int, limit: int = 100) -> list[DeliveryRow]:
    query = select(DeliveryRow).where(DeliveryRow.webhook_id == hook_id)
    return list(session.scalars(query.order_by(DeliveryRow.id.desc()).limit(limit)))


def attempts_of(session: Session, delivery_id: int) -> list[AttemptRow]:
    query = select(AttemptRow).where(AttemptRow.delivery_id == delivery_id)
    return list(session.scalars(query.order_by(AttemptRow.id)))


def failing_endpoints(session: Session) -> list[int]:
    """Endpoints whose latest message was given up, or whose next one is being retried."""
    failing = set()
    for hook_id in session.scalars(select(WebhookRow.id)):
        latest = session.scalar(
            select(DeliveryRow)
            .where(DeliveryRow.webhook_id == hook_id)
            .order_by(DeliveryRow.id.desc())
            .limit(1)
        )
        retrying = session.scalar(
            select(DeliveryRow.id)
            .where(DeliveryRow.webhook_id == hook_id, DeliveryRow.status == PENDING)
            .where(DeliveryRow.attempts > 0)
            .limit(1)
        )
        if retrying is not None or (latest is not None and latest.status == FAILED):
            failing.add(hook_id)
    return sorted(failing)
