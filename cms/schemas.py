"""Marshmallow schemas: the content types' fields, and the query fields and patterns that the
types' list queries and the API share (the API's own schemas are in cms/api/schemas.py)."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
SLUG_RE = re.compile(SLUG_PATTERN)
SLUG_MAX = 100

slug_validators = [
    validate.Length(min=1, max=SLUG_MAX),
    validate.Regexp(SLUG_PATTERN, error="Must match {regex}: lowercase letters, digits, dashes."),
]

# Limits keep one item well below the request body limit and the index's row size.
SHORT = 300
LONG = 100_000
MANY = 200


def short_text(description: str, *, min_length: int = 0, **kwargs: Any) -> fields.String:
    return fields.String(
        validate=validate.Length(min=min_length, max=SHORT),
        metadata={"description": description},
        **kwargs,
    )


def markdown_text(description: str, **kwargs: Any) -> fields.String:
    return fields.String(
        validate=validate.Length(max=LONG),
        metadata={"description": description + " (Markdown)", "format": "markdown"},
        **kwargs,
    )


# The spec names the type a slug field points to, so a client (the editor app) can offer a
# picker of existing items; the service checks the same links on every write.
LINKS_TO = "x-links-to"
BELONGS_TO = "x-belongs-to"  # a link to the item this one is part of (its workshop, series)
# Fields added after items were written: left out of the file while null, so that adding a
# field to a type never rewrites the files already in git (their blobs, ETags, diffs stay).
OMIT_NULL = "omit_null"


def slug_list(description: str, links_to: str) -> fields.List:
    return fields.List(
        fields.String(validate=slug_validators),
        validate=validate.Length(max=MANY),
        load_default=list,
        metadata={"description": description, LINKS_TO: links_to},
    )


def url_field(description: str) -> fields.Url:
    return fields.Url(
        allow_none=True,
        load_default=None,
        schemes={"http", "https"},
        validate=validate.Length(max=2000),
        metadata={"description": description, OMIT_NULL: True},
    )


# the kind of file a media link accepts, as a media type pattern: a photo must be an image
ACCEPTS = "x-accepts"


def media_link(description: str, accepts: str = "image/*") -> fields.String:
    """A field holding the slug of a media item (a photo, a logo): the file's sha256."""
    return fields.String(
        allow_none=True,
        load_default=None,
        validate=slug_validators,
        metadata={
            "description": description,
            LINKS_TO: "media",
            ACCEPTS: accepts,
            OMIT_NULL: True,
        },
    )


def link_list(description: str) -> fields.List:
    return fields.List(
        fields.Nested(LinkSchema),
        validate=validate.Length(max=50),
        load_default=list,
        metadata={"description": description},
    )


ORCID_RE = re.compile(r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$")


def orcid(value: str) -> None:
    """An ORCID iD: 16 characters in groups of four, the last a checksum (ISO 7064 11,2)."""
    if not ORCID_RE.match(value):
        raise ValidationError("An ORCID iD looks like 0000-0002-1825-0097.")
    total = 0
    for digit in value.replace("-", "")[:-1]:
        total = (total + int(digit)) * 2
    check = (12 - total % 11) % 11
    if value[-1] != ("X" if check == 10 else str(check)):
        raise ValidationError("Not a valid ORCID iD: its check digit does not match.")


class ContentSchema(Schema):
    """Base of every content type's schema: unknown fields are an error."""

    class Meta:
        unknown = RAISE
        ordered = True


class LinkSchema(ContentSchema):
    label = short_text("What the link points to", required=True)
    url = fields.Url(
        required=True,
        schemes={"http", "https", "mailto"},
        validate=validate.Length(max=2000),
        metadata={"description": "Absolute URL"},
    )


class WorkshopSchema(ContentSchema):
    title = short_text("Title of the workshop", required=True, min_length=1)
    event = short_text("The conference it is part of", load_default="")
    location = short_text("Where it takes place", load_default="")
    start = fields.AwareDateTime(
        required=True, metadata={"description": "Start, ISO 8601 with a time zone offset"}
    )
    end = fields.AwareDateTime(
        required=True, metadata={"description": "End, ISO 8601 with a time zone offset"}
    )
    abstract = markdown_text("Short abstract", load_default="")
    introduction = markdown_text("Opening paragraph of the announcement", load_default="")
    motivation = markdown_text("Motivation, with its citations", load_default="")
    initiative = markdown_text("What the initiative is and does", load_default="")
    organizers = slug_list("Slugs of the people who organize it", "people")
    author = fields.String(
        allow_none=True,
        load_default=None,
        validate=slug_validators,
        metadata={
            "description": "Slug of the person who wrote the announcement",
            LINKS_TO: "people",
        },
    )
    announced_on = fields.Date(
        allow_none=True, load_default=None, metadata={"description": "Date of the announcement"}
    )
    invited_talks = short_text("Note on the invited talks, e.g. TBA", load_default="")
    website = fields.Url(
        allow_none=True,
        load_default=None,
        schemes={"http", "https"},
        validate=validate.Length(max=2000),
        metadata={"description": "Website of the workshop, if it has one"},
    )
    website_note = short_text("Text shown next to the website link", load_default="")
    series = fields.String(
        allow_none=True,
        load_default=None,
        validate=slug_validators,
        metadata={
            "description": "Slug of the series this edition belongs to",
            LINKS_TO: "series",
            BELONGS_TO: True,
            OMIT_NULL: True,
        },
    )

    @validates_schema
    def end_after_start(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            raise ValidationError("Must not be before start.", "end")


class PersonSchema(ContentSchema):
    name = short_text("Full name", required=True, min_length=1)
    affiliation = short_text("Institution", load_default="")
    role = short_text("Role in the workshop, e.g. organizer or speaker", load_default="")
    bio = markdown_text("Short biography", load_default="")
    links = link_list("Home page, profiles")
    orcid = fields.String(
        allow_none=True,
        load_default=None,
        validate=orcid,
        metadata={"description": "ORCID iD, e.g. 0000-0002-1825-0097", OMIT_NULL: True},
    )
    homepage = url_field("Personal home page")
    photo = media_link("A portrait (a media item)")


class TalkSchema(ContentSchema):
    title = short_text("Title of the talk", required=True, min_length=1)
    speakers = slug_list("Slugs of the speakers", "people")
    abstract = markdown_text("Abstract of the talk", load_default="")
    time = fields.AwareDateTime(
        allow_none=True, load_default=None, metadata={"description": "When it starts"}
    )
    status = fields.String(
        load_default="tba",
        validate=validate.OneOf(["tba", "confirmed", "cancelled"]),
        metadata={"description": "tba, confirmed or cancelled"},
    )


class ReferenceSchema(ContentSchema):
    key = short_text(
        "The citation as the page gives it, e.g. 'Rolf et al., 2024'",
        required=True,
        min_length=1,
    )
    authors = fields.List(
        fields.String(validate=validate.Length(max=SHORT)),
        validate=validate.Length(max=MANY),
        load_default=list,
        metadata={"description": "Authors, when known"},
    )
    year = fields.Integer(
        allow_none=True,
        load_default=None,
        strict=True,
        validate=validate.Range(1000, 3000),
        metadata={"description": "Year of publication"},
    )
    title = short_text("Title, when known", allow_none=True, load_default=None)
    url = fields.Url(
        allow_none=True,
        load_default=None,
        schemes={"http", "https"},
        validate=validate.Length(max=2000),
        metadata={"description": "Where to read it, when known"},
    )


# --- what queries share (the content types' list queries too) -----------------------------------


REF_CHOICES = ("published", "main")

# What a revision may be: a commit id (7-40 hex), a release name, or an ISO 8601 time. The
# spec says so; the server answers anything else with 400 (and an unknown one with 404).
REVISION_PATTERN = (
    r"^(?:[0-9a-f]{7,40}|(?![0-9a-fA-F]{7,}$)[A-Za-z][A-Za-z0-9._-]{0,99}"
    r"|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?(?:Z|[+-]\d{2}:?\d{2})?)$"
)
COMMIT_PATTERN = r"^[0-9a-f]{40}$"
COMMIT_PREFIX_PATTERN = r"^[0-9a-f]{7,40}$"
# a release name as safe_tag_name accepts it (HEAD, main and published are refused too)
RELEASE_NAME_PATTERN = (
    r"^(?![0-9a-fA-F]{7,}$)(?!.*\.\.)(?!.*(?:\.|\.lock)$)[A-Za-z][A-Za-z0-9._-]{0,99}$"
)
MERGE_BASE_PATTERN = r'^"?[0-9a-f]{40}"?$'
# If-Match: one or more strong ETags (git blob ids), quoted, comma-separated
IF_MATCH_PATTERN = r'^\s*"[0-9a-f]{40}"(?:\s*,\s*"[0-9a-f]{40}")*\s*$'


def revision_field(description: str, **kwargs: Any) -> fields.String:
    return fields.String(
        validate=validate.Length(max=100),
        metadata={"description": description, "pattern": REVISION_PATTERN},
        **kwargs,
    )


class RefQuerySchema(Schema):
    ref = fields.String(
        load_default="published",
        validate=validate.OneOf(REF_CHOICES),
        metadata={"description": "Which ref to read: 'main' (drafts) needs an auditor token"},
    )


class AtQuerySchema(RefQuerySchema):
    at = revision_field(
        "Read as of a revision: a commit id (7-40 hex), a release name, "
        "or an ISO 8601 time (the version in force then)"
    )


class PreviewQuerySchema(AtQuerySchema):
    preview = fields.String(
        metadata={
            "description": "A preview link's token: read the drafts or the commit it was made "
            "for, without an account (no ref or at with it)",
            "pattern": r"^prv_[A-Za-z0-9_-]{43}$",
        },
    )


class RenderQuerySchema(PreviewQuerySchema):
    render = fields.String(
        validate=validate.OneOf(["html"]),
        metadata={"description": "'html' adds <field>_html with each Markdown field rendered"},
    )


class SiteQuerySchema(RenderQuerySchema):
    workshop = fields.String(
        validate=slug_validators,
        metadata={
            "description": "Only this workshop's edition: its series, sessions, papers, "
            "calls, sponsors, and the talks and people they name"
        },
    )


def page_fields(what: str = "Entries") -> dict[str, fields.Field]:
    """`page` and `page_size` of a paginated list of `what`."""
    return {
        "page": fields.Integer(
            load_default=1, validate=validate.Range(min=1, max=1_000_000),
            metadata={"description": "Page number, from 1"},
        ),
        "page_size": fields.Integer(
            load_default=20, validate=validate.Range(min=1, max=100),
            metadata={"description": f"{what} per page, at most 100"},
        ),
    }  # fmt: skip
