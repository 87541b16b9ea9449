"""Webhook events derived from git and delivered: each endpoint's cursor walks the first-parent
line of the refs it follows, so a commit made by any worker, by hand, or just before a crash
is told, and nothing is told that did not land; delivery is at least once, in order, retried.
"""

from __future__ import annotations

import json
import logging
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from cms import webhooks
from cms.service.core import commit_record
from cms.service.items import MAIN, PUBLISHED, iso_time

if TYPE_CHECKING:
    from cms.service import ContentService

log = logging.getLogger(__name__)
REF_EVENTS = {"content.changed": MAIN, "site.published": PUBLISHED}
RETRYABLE = frozenset({408, 429})


@dataclass(frozen=True)
class DeliveryPolicy:
    timeout: float = 5.0  # connect and read, seconds
    retry_base: float = 5.0  # first wait after a failure; doubles, with jitter
    retry_max: float = 3600.0  # longest wait between two attempts
    retry_window: float = 86400.0  # give a message up after this long


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an answer like any other: not followed


_opener = urllib.request.build_opener(_NoRedirects)


def derive(svc: ContentService) -> int:
    """Queue a message for every commit (and release) each active endpoint has not been told
    of yet."""
    queued = 0
    tags: set[str] | None = None  # read once a round, and only when an endpoint is active
    releases: dict[str, dict[str, Any]] | None = None  # worked out only for new tags
    with svc.accounts_session() as session:
        for hook in session.scalars(select(webhooks.WebhookRow).where(webhooks.WebhookRow.active)):
            cursors = dict(hook.cursors)
            for event, ref in REF_EVENTS.items():
                head = svc.store.read_ref(ref)
                told = cursors.get(ref)
                if event not in hook.events or head is None or head == told:
                    cursors[ref] = head
                    continue
                entries = svc.store.first_parent_log(head, told) if told else []
                if entries is None:  # rewound or rewritten: say so, then follow from the head
                    if "ref.rewound" in hook.events:
                        webhooks.enqueue(session, hook, "ref.rewound", _rewind(ref, told, head))
                        queued += 1
                else:
                    for entry in entries:
                        webhooks.enqueue(session, hook, event, _commit_event(event, ref, entry))
                        queued += 1
                cursors[ref] = head
            if tags is None:
                tags = _tag_names(svc)
            new_tags = tags - set(cursors.get(webhooks.RELEASES) or [])
            if new_tags and "release.created" in hook.events:
                if releases is None:
                    releases = {r["name"]: r for r in svc.releases()}
                for name in sorted(new_tags & set(releases), key=lambda n: releases[n]["time"]):
                    webhooks.enqueue(session, hook, "release.created", _release(releases[name]))
                    queued += 1
            cursors[webhooks.RELEASES] = sorted(tags)  # every tag seen, release or not
            hook.cursors = cursors
    return queued


def _tag_names(svc: ContentService) -> set[str]:
    return {ref.removeprefix("refs/tags/") for ref in svc.store.list_refs("refs/tags/")}


def start_cursors(svc: ContentService) -> dict[str, Any]:
    """Where a new endpoint's cursors start: the refs' heads and the tags there are."""
    cursors: dict[str, Any] = {ref: svc.store.read_ref(ref) for ref in REF_EVENTS.values()}
    cursors[webhooks.RELEASES] = sorted(_tag_names(svc))
    return cursors


def _release(release: dict[str, Any]) -> dict[str, Any]:
    return {"type": "release.created", "timestamp": release["time"], "data": dict(release)}


def _commit_event(event: str, ref: str, entry: Any) -> dict[str, Any]:
    record = commit_record(entry)
    return {
        "type": event,
        "timestamp": iso_time(record.committer_time),
        "data": {
            "ref": ref.removeprefix("refs/heads/"),
            "commit": record.sha,
            "parent": record.parents[0] if record.parents else None,
            "author": {"name": record.author_name, "email": record.author_email},
            "subject": record.subject,
            "reason": record.reason,
            "changes": [
                {"type": c.type, "slug": c.slug, "action": c.action, "etag": c.new_blob}
                for c in record.changes
            ],
        },
    }


def _rewind(ref: str, told: str | None, head: str) -> dict[str, Any]:
    return {
        "type": "ref.rewound",
        "timestamp": iso_time(int(time.time())),
        "data": {"ref": ref.removeprefix("refs/heads/"), "from": told, "to": head},
    }


def deliver(svc: ContentService, policy: DeliveryPolicy) -> int:
    """One attempt at each endpoint's oldest due message; how many were delivered."""
    delivered = 0
    with svc.accounts_session() as session:
        hooks = [(h.id, h.url, h.secret) for h in session.scalars(select(webhooks.WebhookRow))]
    for hook_id, url, secret in hooks:
        with svc.accounts_session() as session:
            due = webhooks.next_due(session, hook_id, int(time.time()))
            if due is None:
                continue
            msg_id, payload, created = f"msg_{due.id}", due.payload, due.created_at
        status, error, retry_after, took = _post(url, secret, msg_id, payload, policy.timeout)
        with svc.accounts_session() as session:
            row = session.get(webhooks.DeliveryRow, due.id)
            if row is None or row.status != webhooks.PENDING:
                continue  # deleted or redelivered meanwhile
            row.attempts += 1
            row.last_status, row.last_error = status, error
            attempt = webhooks.AttemptRow(
                delivery_id=row.id, at=int(time.time()), status_code=status, duration_ms=took,
                error=error,
            )  # fmt: skip
            session.add(attempt)
            if status is not None and 200 <= status < 300:
                row.status = webhooks.DELIVERED
                delivered += 1
            elif _retryable(status) and time.time() - created < policy.retry_window:
                wait = policy.retry_base * 2 ** (row.attempts - 1) * random.uniform(0.5, 1.5)
                row.next_at = int(time.time() + max(min(wait, policy.retry_max), retry_after))
            else:
                row.status = webhooks.FAILED
                log.warning("webhook %s gave up on %s: %s %s", hook_id, msg_id, status, error)
    return delivered


def _retryable(status: int | None) -> bool:
    return status is None or status >= 500 or status in RETRYABLE


def _post(
    url: str, secret: str, msg_id: str, payload: dict[str, Any], timeout: float
) -> tuple[int | None, str | None, float, int]:
    """(status or None, error, Retry-After seconds, duration in ms) of one signed POST."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    stamp = int(time.time())
    request = urllib.request.Request(  # noqa: S310 (http and https only: checked on creation)
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "TerraBytes-CMS-Webhooks",
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": webhooks.signature(secret, msg_id, stamp, body),
        },
    )
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    retry_after = 0.0
    try:
        with _opener.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status, error = exc.code, exc.reason if isinstance(exc.reason, str) else str(exc)
        retry_after = _seconds(exc.headers.get("Retry-After"))
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        error = str(getattr(exc, "reason", exc))[:500]
    return status, error, retry_after, int((time.monotonic() - started) * 1000)


def _seconds(value: str | None) -> float:
    try:
        return min(float(value or 0), 86400.0)
    except ValueError:
        return 0.0
