"""What a workshop edition holds beyond its announcement: the series it belongs to, sessions
(the schedule), accepted papers, calls for papers and sponsors; and the time rules they share.

Times are instants with an offset, kept in the venue's IANA zone: whatever offset an editor
sends, the stored text is the wall time in that zone with that zone's offset at that instant
(so a session across a DST change gets the right one), and the zone's name is stored beside
it. A deadline may be "AoE" (anywhere on earth: UTC-12), and stays AoE.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from cms import schemas as s

AOE = "AoE"
AOE_ZONE = timezone(timedelta(hours=-12), AOE)
_ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*$")


def zone(name: str) -> tzinfo:
    """The zone for an IANA name or AoE; ValidationError for anything else."""
    if name == AOE:
        return AOE_ZONE
    if len(name) > 64 or not _ZONE_NAME.match(name):
        raise ValidationError("Not an IANA time zone name, e.g. America/Vancouver.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError(f"Unknown time zone '{name}'.") from None


def _iana_zone(name: str) -> None:
    if name == AOE:
        raise ValidationError("AoE is for deadlines; a session takes place in the venue's zone.")
    zone(name)


def zone_field(description: str, *, aoe: bool = False, **kwargs: Any) -> fields.String:
    return fields.String(
        validate=zone if aoe else _iana_zone,
        metadata={"description": description, "format": "time-zone"},
        **kwargs,
    )


def instant(description: str, **kwargs: Any) -> fields.AwareDateTime:
    return fields.AwareDateTime(
        metadata={"description": description + ", ISO 8601 with its offset"}, **kwargs
    )


def in_zone(value: datetime | None, zone_name: str | None) -> datetime | None:
    """The instant as the wall time of the zone (unchanged when either is missing)."""
    if value is None or not zone_name:
        return value
    try:
        return value.astimezone(zone(zone_name))
    except ValidationError:
        return value  # the zone field reports it


def belongs_to(target: str, description: str, **kwargs: Any) -> fields.String:
    """The item this one is part of (a workshop, a series): checked on every write, and not
    expanded in the site bundle (the bundle is that parent's)."""
    return fields.String(
        validate=s.slug_validators,
        metadata={"description": description, s.LINKS_TO: target, s.BELONGS_TO: True},
        **kwargs,
    )


class SeriesSchema(s.ContentSchema):
    name = s.short_text("Name of the series, e.g. TerraBytes", required=True, min_length=1)
    description = s.markdown_text("What the series is about", load_default="")
    website = s.url_field("Website of the series")


SESSION_KINDS = (
    "opening",
    "keynote",
    "invited-talk",
    "contributed-talk",
    "poster",
    "panel",
    "break",
    "closing",
)


class SessionSchema(s.ContentSchema):
    workshop = belongs_to("workshops", "Slug of the workshop it is part of", required=True)
    title = s.short_text("Title of the session", required=True, min_length=1)
    kind = fields.String(
        required=True,
        validate=validate.OneOf(SESSION_KINDS),
        metadata={"description": "What happens: " + ", ".join(SESSION_KINDS)},
    )
    start = instant("When it starts", required=True)
    end = instant("When it ends", required=True)
    zone = zone_field("The venue's IANA time zone, e.g. America/Vancouver", required=True)
    room = s.short_text("Room or place", load_default="")
    talks = s.slug_list("Slugs of the talks in it, in order", "talks")
    papers = s.slug_list("Slugs of the papers presented in it, in order", "papers")
    description = s.markdown_text("What the session is about", load_default="")

    @validates_schema
    def end_after_start(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("start") and data.get("end") and data["end"] <= data["start"]:
            raise ValidationError("Must be after start.", "end")

    @post_load
    def wall_times(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        for name in ("start", "end"):
            if name in data:
                data[name] = in_zone(data[name], data.get("zone"))
        return data


class AuthorSchema(s.ContentSchema):
    name = s.short_text("Name as the paper gives it", required=True, min_length=1)
    affiliation = s.short_text("Institution", load_default="")
    person = fields.String(
        allow_none=True,
        load_default=None,
        validate=s.slug_validators,
        metadata={"description": "Slug of the person, when they have a page", s.LINKS_TO: "people"},
    )


PRESENTATIONS = ("oral", "spotlight", "poster")


class PaperSchema(s.ContentSchema):
    workshop = belongs_to("workshops", "Slug of the workshop that accepted it", required=True)
    title = s.short_text("Title of the paper", required=True, min_length=1)
    authors = fields.List(
        fields.Nested(AuthorSchema),
        validate=validate.Length(max=s.MANY),
        load_default=list,
        metadata={"description": "Authors in order"},
    )
    abstract = s.markdown_text("Abstract", load_default="")
    links = s.link_list("PDF, OpenReview, code")
    presentation = fields.String(
        load_default="poster",
        validate=validate.OneOf(PRESENTATIONS),
        metadata={"description": "oral, spotlight or poster"},
    )
    session = fields.String(
        allow_none=True,
        load_default=None,
        validate=s.slug_validators,
        metadata={"description": "Slug of the session it is presented in", s.LINKS_TO: "sessions"},
    )
    openreview_id = s.short_text(
        "The OpenReview note it was imported from", allow_none=True, load_default=None
    )


class DeadlineSchema(s.ContentSchema):
    name = s.short_text("What is due, e.g. Submission", required=True, min_length=1)
    due = instant("When it is due", required=True)
    zone = zone_field(
        "AoE (anywhere on earth, UTC-12) or an IANA time zone", aoe=True, load_default=AOE
    )

    @post_load
    def wall_time(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["due"] = in_zone(data.get("due"), data.get("zone"))
        return data


class CallForPapersSchema(s.ContentSchema):
    workshop = belongs_to("workshops", "Slug of the workshop that calls for papers", required=True)
    title = s.short_text("Title, e.g. Call for papers", required=True, min_length=1)
    introduction = s.markdown_text("What the call asks for", load_default="")
    topics = fields.List(
        fields.String(validate=validate.Length(min=1, max=s.SHORT)),
        validate=validate.Length(max=s.MANY),
        load_default=list,
        metadata={"description": "Topics of interest"},
    )
    submission_url = s.url_field("Where to submit")
    page_limit = fields.Integer(
        allow_none=True,
        load_default=None,
        strict=True,
        validate=validate.Range(1, 1000),
        metadata={"description": "Most pages a submission may have, references excluded"},
    )
    page_limit_note = s.short_text(
        "More on the format, e.g. 4 pages for short papers", load_default=""
    )
    deadlines = fields.List(
        fields.Nested(DeadlineSchema),
        validate=validate.Length(max=50),
        load_default=list,
        metadata={"description": "Dates: submission, notification, camera-ready, ..."},
    )


SPONSOR_TIERS = ("platinum", "gold", "silver", "bronze", "supporter")


class SponsorSchema(s.ContentSchema):
    workshop = belongs_to("workshops", "Slug of the workshop it sponsors", required=True)
    name = s.short_text("Name of the sponsor", required=True, min_length=1)
    tier = fields.String(
        load_default="supporter",
        validate=validate.OneOf(SPONSOR_TIERS),
        metadata={"description": ", ".join(SPONSOR_TIERS)},
    )
    url = s.url_field("The sponsor's website")
    logo = s.media_link("The sponsor's logo (a media item)")
