"""The API's own schemas: errors, publishing, releases, versions and audit (requests and
answers); the content types' schemas are derived in cms/types.py."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from cms.schemas import (
    COMMIT_PATTERN,
    REF_CHOICES,
    RELEASE_NAME_PATTERN,
    page_fields,
    revision_field,
    slug_validators,
)


class ErrorResponseSchema(Schema):
    """flask-smorest's error format, plus the current item on 412."""

    code = fields.Integer(required=True, metadata={"description": "HTTP status code"})
    status = fields.String(required=True, metadata={"description": "HTTP status name"})
    message = fields.String(metadata={"description": "What went wrong"})
    errors = fields.Dict(metadata={"description": "Errors per location and field"})
    etag = fields.String(metadata={"description": "412: the item's current ETag"})
    current = fields.Dict(metadata={"description": "412: the item as it is now"})
    conflicts = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(),
        metadata={
            "description": "409 on a merge: for each field both sides changed, its "
            "base, theirs and yours"
        },
    )
    referrers = fields.List(
        fields.String(), metadata={"description": "409 on delete: the items that still refer to it"}
    )


# --- publishing and releases -------------------------------------------------------------------


class PublishResultSchema(Schema):
    commit = fields.String(required=True, metadata={"description": "published's head now"})
    changed = fields.Boolean(required=True, metadata={"description": "False: nothing to publish"})


class PendingSchema(Schema):
    type = fields.String(required=True)
    slug = fields.String(required=True)
    action = fields.String(required=True, metadata={"description": "create, update or delete"})
    etag = fields.String(required=True, allow_none=True, metadata={"description": "Draft"})
    published_etag = fields.String(required=True, allow_none=True)
    operations = fields.List(fields.Dict(), required=True, metadata={"description": "JSON Patch"})


class ReleaseCreateSchema(Schema):
    name = fields.String(
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={
            "description": "Tag name, e.g. v1 or 2025-final",
            "pattern": RELEASE_NAME_PATTERN,
        },
    )
    message = fields.String(
        load_default="", validate=validate.Length(max=5000), metadata={"description": "Notes"}
    )


class ReleaseSchema(Schema):
    name = fields.String(required=True)
    commit = fields.String(required=True)
    tagger_name = fields.String(required=True)
    tagger_email = fields.String(required=True)
    time = fields.String(required=True, metadata={"format": "date-time"})
    message = fields.String(required=True)


# --- versions and audit -----------------------------------------------------------------------


def _ref_field(default: str) -> fields.String:
    return fields.String(
        load_default=default,
        validate=validate.OneOf(REF_CHOICES),
        metadata={"description": f"Which ref's history (default {default})"},
    )


def _time_field(description: str) -> fields.String:
    return fields.String(
        validate=validate.Length(max=60),
        metadata={"description": description + " (ISO 8601)", "format": "date-time"},
    )


class ItemHistoryQuerySchema(Schema):
    ref = _ref_field("main")
    page = page_fields()["page"]
    page_size = page_fields()["page_size"]


class DiffQuerySchema(Schema):
    ref = _ref_field("main")
    from_ = revision_field(
        "Older revision: commit id, release name or ISO 8601 time", data_key="from", required=True
    )
    to = revision_field("Newer revision (default: the ref's head)")


class BlameQuerySchema(Schema):
    ref = _ref_field("main")


class AuditQuerySchema(Schema):
    ref = _ref_field("main")
    author = fields.String(
        validate=validate.Length(max=200),
        metadata={"description": "Author's name or email (exact, case-insensitive)"},
    )
    type = fields.String(metadata={"description": "Only commits changing this content type"})
    slug = fields.String(
        validate=slug_validators, metadata={"description": "Only commits changing this slug"}
    )
    since = _time_field("Only commits at or after this time")
    until = _time_field("Only commits at or before this time")
    page = page_fields()["page"]
    page_size = page_fields()["page_size"]


class ChangesQuerySchema(Schema):
    ref = fields.String(
        load_default="published",
        validate=validate.OneOf(REF_CHOICES),
        metadata={"description": "Which ref to follow (main needs an auditor token)"},
    )
    since = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={
            "description": "The last commit you have seen (full id); omit to start over",
            "pattern": COMMIT_PATTERN,
        },
    )
    limit = fields.Integer(
        load_default=100,
        validate=validate.Range(min=1, max=1000),
        metadata={"description": "At most this many commits per answer"},
    )


class RevertSchema(Schema):
    to = revision_field("The revision to restore: commit id, release name or time", required=True)


class VersionSchema(Schema):
    commit = fields.String(required=True)
    author_name = fields.String(required=True)
    author_email = fields.String(required=True)
    time = fields.String(required=True, metadata={"format": "date-time"})
    message = fields.String(required=True, metadata={"description": "The commit's subject"})
    reason = fields.String(required=True, metadata={"description": "The editor's why"})
    action = fields.String(
        required=True, metadata={"description": "create, update, delete, revert or import"}
    )
    etag = fields.String(
        required=True, allow_none=True, metadata={"description": "The item's blob id then"}
    )


class ChangeSchema(Schema):
    type = fields.String(required=True)
    slug = fields.String(required=True)
    action = fields.String(required=True)
    etag = fields.String(required=True, allow_none=True)


class AuditEntrySchema(Schema):
    commit = fields.String(required=True)
    author_name = fields.String(required=True)
    author_email = fields.String(required=True)
    time = fields.String(required=True, metadata={"format": "date-time"})
    message = fields.String(required=True)
    reason = fields.String(required=True)
    changes = fields.List(fields.Nested(ChangeSchema), required=True)


class FeedChangeSchema(ChangeSchema):
    commit = fields.String(required=True)
    time = fields.String(required=True, metadata={"format": "date-time"})


class ChangesFeedSchema(Schema):
    changes = fields.List(fields.Nested(FeedChangeSchema), required=True)
    next = fields.String(
        required=True, allow_none=True, metadata={"description": "Pass as since next time"}
    )
    head = fields.String(required=True, allow_none=True)
    complete = fields.Boolean(
        required=True, metadata={"description": "False: ask again with next for more"}
    )


class JsonPatchOpSchema(Schema):
    op = fields.String(required=True, validate=validate.OneOf(["add", "remove", "replace"]))
    path = fields.String(required=True)
    value = fields.Raw(allow_none=True)


class RevisionRefSchema(Schema):
    commit = fields.String(required=True)
    etag = fields.String(required=True, allow_none=True)


class DiffSchema(Schema):
    type = fields.String(required=True)
    slug = fields.String(required=True)
    from_ = fields.Nested(RevisionRefSchema, data_key="from", required=True)
    to = fields.Nested(RevisionRefSchema, required=True)
    operations = fields.List(fields.Nested(JsonPatchOpSchema), required=True)
    patch = fields.String(required=True, metadata={"description": "Unified diff of the file"})


class CommitItemSchema(ChangeSchema):
    previous_etag = fields.String(required=True, allow_none=True)
    operations = fields.List(fields.Nested(JsonPatchOpSchema), required=True)


class CommitDetailSchema(Schema):
    commit = fields.String(required=True)
    parents = fields.List(fields.String(), required=True)
    author_name = fields.String(required=True)
    author_email = fields.String(required=True)
    time = fields.String(required=True, metadata={"format": "date-time"})
    authored = fields.String(required=True, metadata={"format": "date-time"})
    committer_name = fields.String(required=True)
    subject = fields.String(required=True)
    reason = fields.String(required=True)
    trailers = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    items = fields.List(fields.Nested(CommitItemSchema), required=True)
    patch = fields.String(required=True)


class BlameFieldSchema(VersionSchema):
    value = fields.Raw(allow_none=True, metadata={"description": "The field's current value"})


class BlameSchema(Schema):
    slug = fields.String(required=True)
    etag = fields.String(required=True)
    fields_ = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        values=fields.Nested(BlameFieldSchema),
        required=True,
    )


# --- preview links ------------------------------------------------------------------------------


class PreviewCreateSchema(Schema):
    ref = fields.String(
        validate=validate.OneOf(["main"]),
        metadata={"description": "Show the drafts as they move (give ref or commit)"},
    )
    commit = revision_field("Show exactly this revision of main (give ref or commit)")
    lifetime_hours = fields.Integer(
        load_default=168,
        validate=validate.Range(min=1, max=720),
        metadata={"description": "Hours until the link stops working, at most 30 days"},
    )
    description = fields.String(
        load_default="", validate=validate.Length(max=300), metadata={"description": "Why"}
    )

    @validates_schema
    def one_scope(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("ref" in data) == ("commit" in data):
            raise ValidationError("Give either ref or commit.", "_schema")


class PreviewSchema(Schema):
    id = fields.Integer(required=True)
    ref = fields.String(required=True, allow_none=True)
    commit = fields.String(required=True, allow_none=True)
    description = fields.String(required=True)
    created_by = fields.Integer(required=True, allow_none=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    expires_at = fields.String(required=True, metadata={"format": "date-time"})
    revoked_at = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})


class PreviewCreatedSchema(PreviewSchema):
    token = fields.String(required=True, metadata={"description": "Shown only now"})
    url = fields.String(required=True, metadata={"description": "The reference page with it"})


# --- scheduled publishing -------------------------------------------------------------------------


def _known_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("Not an IANA time zone, e.g. America/Vancouver.") from None


class ScheduleCreateSchema(Schema):
    at = fields.AwareDateTime(
        required=True, metadata={"description": "When to publish: ISO 8601 with an offset"}
    )
    zone = fields.String(
        load_default="UTC",
        validate=[validate.Length(max=100), _known_zone],
        metadata={"description": "The IANA zone the time is meant in, e.g. America/Vancouver"},
    )
    commit = revision_field("What to publish: a commit of main or a release (default: main now)")
    reason = fields.String(
        load_default="", validate=validate.Length(max=1000), metadata={"description": "Why"}
    )


class ScheduleSchema(Schema):
    id = fields.Integer(required=True)
    commit = fields.String(required=True)
    label = fields.String(required=True, metadata={"description": "The revision as given"})
    at = fields.String(required=True, metadata={"format": "date-time"})
    at_local = fields.String(required=True, metadata={"format": "date-time"})
    zone = fields.String(required=True)
    reason = fields.String(required=True)
    status = fields.String(
        required=True, validate=validate.OneOf(["pending", "done", "failed", "cancelled"])
    )
    result = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The published commit, or why it failed"},
    )
    created_by_name = fields.String(required=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    finished_at = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})


# --- webhooks -------------------------------------------------------------------------------------

WEBHOOK_EVENTS = [
    "content.changed", "site.published", "release.created", "ref.rewound", "schedule.failed",
]  # fmt: skip


def _webhook_url(**kwargs: Any) -> fields.Url:
    return fields.Url(
        **kwargs,
        schemes={"http", "https"},
        require_tld=False,
        validate=validate.Length(max=2000),
        metadata={"description": "Where messages are POSTed (http or https)"},
    )


def _events(**kwargs: Any) -> fields.List:
    return fields.List(
        fields.String(validate=validate.OneOf(WEBHOOK_EVENTS)),
        **kwargs,
        validate=validate.Length(min=1),
        metadata={"description": "Events to be told of"},
    )


class WebhookCreateSchema(Schema):
    url = _webhook_url(required=True)
    events = _events(load_default=lambda: list(WEBHOOK_EVENTS))
    description = fields.String(load_default="", validate=validate.Length(max=300))
    coalesce = fields.Boolean(
        load_default=False,
        metadata={"description": "One message covers every commit pending (rebuild hooks)"},
    )


class WebhookPatchSchema(Schema):
    url = _webhook_url()
    events = _events()
    description = fields.String(validate=validate.Length(max=300))
    active = fields.Boolean(metadata={"description": "False pauses deliveries"})
    coalesce = fields.Boolean()


class WebhookSchema(Schema):
    id = fields.Integer(required=True)
    url = fields.String(required=True)
    events = fields.List(fields.String(), required=True)
    description = fields.String(required=True)
    active = fields.Boolean(required=True)
    coalesce = fields.Boolean(required=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})


class WebhookCreatedSchema(WebhookSchema):
    secret = fields.String(required=True, metadata={"description": "whsec_...: shown only now"})


class AttemptSchema(Schema):
    at = fields.String(required=True, metadata={"format": "date-time"})
    status = fields.Integer(required=True, allow_none=True)
    ms = fields.Integer(required=True)
    error = fields.String(required=True, allow_none=True)


class DeliverySchema(Schema):
    id = fields.Integer(required=True)
    webhook_id = fields.String(required=True, metadata={"description": "The webhook-id header"})
    event = fields.String(required=True)
    status = fields.String(
        required=True, validate=validate.OneOf(["pending", "delivered", "failed"])
    )
    attempts = fields.Integer(required=True)
    last_status = fields.Integer(required=True, allow_none=True)
    last_error = fields.String(required=True, allow_none=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    payload = fields.Dict(required=True)
    log = fields.List(fields.Nested(AttemptSchema), required=True)
