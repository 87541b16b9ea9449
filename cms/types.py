"""The content types, each declared once: routes, spec and storage derive from them."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from marshmallow import Schema, fields, missing, validate

from cms import media as m
from cms import programme as p
from cms import schemas as s
from cms.serialize import canonical_yaml

SIMPLE_FIELDS = (fields.String, fields.Integer, fields.Date, fields.Boolean)


@dataclass(frozen=True)
class ContentType:
    """A content type: its name is also its folder in git and its path in the API."""

    name: str
    singular: str
    fields_schema: type[s.ContentSchema]
    title_field: str
    markdown: tuple[str, ...] = ()
    # set by the server, read-only in the API (what a media file's bytes are)
    server_fields: tuple[str, ...] = ()
    # a field naming a file the item owns beside its YAML file (a media item's bytes)
    companion_field: str | None = None

    @property
    def folder(self) -> str:
        return self.name

    def path(self, slug: str) -> str:
        return f"{self.folder}/{slug}.yaml"

    @cached_property
    def field_names(self) -> tuple[str, ...]:
        return tuple(self.fields_schema().fields)

    @cached_property
    def links(self) -> dict[str, str]:
        """Field name -> the type whose slugs it holds (checked on every write)."""
        return {
            name: f.metadata[s.LINKS_TO]
            for name, f in self.fields_schema().fields.items()
            if s.LINKS_TO in f.metadata
        }

    @cached_property
    def belongs_to(self) -> dict[str, str]:
        """The links to what this item is part of (its workshop): not expanded in bundles."""
        return {
            name: target
            for name, target in self.links.items()
            if self.fields_schema().fields[name].metadata.get(s.BELONGS_TO)
        }

    @cached_property
    def nested_links(self) -> dict[str, dict[str, str]]:
        """List-of-objects field -> {its field -> linked type}: authors' person slugs."""
        out = {}
        for name, f in self.fields_schema().fields.items():
            inner = getattr(f, "inner", None)
            if isinstance(inner, fields.Nested) and isinstance(inner.schema, Schema):
                links = {
                    sub: sf.metadata[s.LINKS_TO]
                    for sub, sf in inner.schema.fields.items()
                    if s.LINKS_TO in sf.metadata
                }
                if links:
                    out[name] = links
        return out

    def linked_slugs(self, data: Mapping[str, Any]) -> list[tuple[str, str, str]]:
        """(field, type, slug) for every item this one links to, nested links included."""
        out = []
        for name, target in self.links.items():
            value = data.get(name)
            for slug in value if isinstance(value, list) else [value] if value else []:
                out.append((name, target, slug))
        for name, subs in self.nested_links.items():
            for entry in data.get(name) or []:
                for sub, target in subs.items():
                    if isinstance(entry, Mapping) and entry.get(sub):
                        out.append((name, target, entry[sub]))
        return out

    def links_to(self, type_name: str) -> bool:
        targets = [
            *self.links.values(),
            *(t for d in self.nested_links.values() for t in d.values()),
        ]
        return type_name in targets

    @cached_property
    def omit_null(self) -> frozenset[str]:
        return frozenset(
            name for name, f in self.fields_schema().fields.items() if f.metadata.get(s.OMIT_NULL)
        )

    def file_bytes(self, data: dict[str, Any]) -> bytes:
        """The item as its file in git: canonical YAML, late-added fields left out while null."""
        return canonical_yaml(
            {k: v for k, v in data.items() if not (v is None and k in self.omit_null)}
        )

    def companions(self, data: Mapping[str, Any] | None) -> tuple[str, ...]:
        """Paths of the files this item owns beside its own: they follow it in every write,
        revert and publication."""
        if self.companion_field is None or not data or not data.get(self.companion_field):
            return ()
        return (str(data[self.companion_field]),)

    @cached_property
    def schema(self) -> Schema:
        """Validates a whole item as stored (server fields too) and gives its canonical,
        JSON-ready form."""
        if self.server_fields:
            return _derive(self.fields_schema, f"{self.singular}Stored")()
        return self.input_schema_class()

    @cached_property
    def input_schema_class(self) -> type[Schema]:
        return _derive(self.fields_schema, f"{self.singular}Input", exclude=self.server_fields)

    @cached_property
    def create_schema_class(self) -> type[Schema]:
        extra = {
            "slug": fields.String(
                validate=s.slug_validators,
                metadata={"description": f"Defaults to the {self.title_field}, slugified"},
            )
        }
        return _derive(
            self.fields_schema, f"{self.singular}Create", extra=extra, exclude=self.server_fields
        )

    @cached_property
    def patch_schema_class(self) -> type[Schema]:
        """JSON merge patch (RFC 7396): every field optional, null removes it."""
        return _derive(
            self.fields_schema, f"{self.singular}Patch", patch=True, exclude=self.server_fields
        )

    @cached_property
    def item_schema_class(self) -> type[Schema]:
        extra = {
            "slug": fields.String(required=True, metadata={"description": "The item's id"}),
            "etag": fields.String(
                required=True, metadata={"description": "Git blob id of the item's file"}
            ),
        }
        rendered = {  # the second shape: ?render=html adds sanitised HTML
            f"{name}_html": fields.String(
                allow_none=True,
                metadata={"description": f"{name} rendered to sanitised HTML (?render=html)"},
            )
            for name in self.markdown
        }
        return _derive(self.fields_schema, self.singular, extra=extra, after=rendered, output=True)

    @cached_property
    def filter_fields(self) -> tuple[str, ...]:
        return tuple(
            name
            for name, f in self.fields_schema().fields.items()
            if isinstance(f, SIMPLE_FIELDS) and name not in self.markdown
        )

    @cached_property
    def query_schema_class(self) -> type[Schema]:
        sortable = ("slug", *self.filter_fields)
        extra: dict[str, fields.Field] = {
            "q": fields.String(
                validate=validate.Length(min=1, max=s.SHORT),
                metadata={
                    "description": f"Only items whose {self.title_field} or slug contains "
                    "this text, ignoring case"
                },
            ),
            **s.page_fields("Items"),
            "sort": fields.String(
                load_default="slug",
                validate=validate.OneOf([*sortable, *(f"-{n}" for n in sortable)]),
                metadata={"description": "Field to sort by; a leading '-' sorts descending"},
            ),
        }
        filters = {}
        for name in self.filter_fields:
            f = copy.deepcopy(self.fields_schema().fields[name])
            f.required = False
            f.allow_none = False
            f.load_default = missing
            f.metadata = {"description": f"Only items whose {name} equals this"}
            if isinstance(f, fields.Integer):
                f.strict = False  # a query string is text
            filters[name] = f
        at_fields = s.RenderQuerySchema().fields
        return Schema.from_dict(
            {
                **filters,
                **extra,
                "ref": copy.deepcopy(at_fields["ref"]),
                "at": copy.deepcopy(at_fields["at"]),
                "render": copy.deepcopy(at_fields["render"]),
                "preview": copy.deepcopy(at_fields["preview"]),
            },
            name=f"{self.singular}Query",
        )


def _derive(
    base: type[Schema],
    name: str,
    *,
    extra: Mapping[str, fields.Field] | None = None,
    after: Mapping[str, fields.Field] | None = None,
    patch: bool = False,
    output: bool = False,
    exclude: tuple[str, ...] = (),
) -> type[Schema]:
    """A schema class derived from base, with its own name in the spec.

    Inputs subclass base (keeping its field order and schema validators); a patch or an output
    schema gets copies of base's fields with required and nullable adjusted, between `extra`
    and `after`. Unknown fields are an error on input; output only dumps. Fields in `exclude`
    (set by the server) are left out of an input.
    """
    if not (patch or output):
        attrs: dict[str, Any] = dict(extra or {})
        if exclude:
            attrs["Meta"] = type("Meta", (base.Meta,), {"exclude": exclude})
        return type(name, (base,), attrs)
    own: dict[str, Any] = dict(extra or {})
    for fname, f in base().fields.items():
        if fname in exclude:
            continue
        f = copy.deepcopy(f)
        f.required = output
        f.allow_none = True if patch else f.allow_none
        f.load_default = missing
        own[fname] = f
    own.update(after or {})
    return Schema.from_dict(own, name=name)


TYPES: dict[str, ContentType] = {
    t.name: t
    for t in (
        ContentType(
            name="workshops",
            singular="Workshop",
            fields_schema=s.WorkshopSchema,
            title_field="title",
            markdown=("abstract", "introduction", "motivation", "initiative"),
        ),
        ContentType(
            name="people",
            singular="Person",
            fields_schema=s.PersonSchema,
            title_field="name",
            markdown=("bio",),
        ),
        ContentType(
            name="talks",
            singular="Talk",
            fields_schema=s.TalkSchema,
            title_field="title",
            markdown=("abstract",),
        ),
        ContentType(
            name="references",
            singular="Reference",
            fields_schema=s.ReferenceSchema,
            title_field="key",
        ),
        ContentType(
            name="series",
            singular="Series",
            fields_schema=p.SeriesSchema,
            title_field="name",
            markdown=("description",),
        ),
        ContentType(
            name="sessions",
            singular="Session",
            fields_schema=p.SessionSchema,
            title_field="title",
            markdown=("description",),
        ),
        ContentType(
            name="papers",
            singular="Paper",
            fields_schema=p.PaperSchema,
            title_field="title",
            markdown=("abstract",),
        ),
        ContentType(
            name="calls-for-papers",
            singular="CallForPapers",
            fields_schema=p.CallForPapersSchema,
            title_field="title",
            markdown=("introduction",),
        ),
        ContentType(
            name="sponsors",
            singular="Sponsor",
            fields_schema=p.SponsorSchema,
            title_field="name",
        ),
        ContentType(
            name=m.FOLDER,
            singular="MediaFile",
            fields_schema=m.MediaSchema,
            title_field="name",
            server_fields=m.SERVER_FIELDS,
            companion_field="path",
        ),
    )
}


def item_key(path: str) -> tuple[str, str] | None:
    """(type, slug) for a path the CMS owns in the repository, None for any other file."""
    folder, _, name = path.partition("/")
    if folder not in TYPES or not name.endswith(".yaml") or "/" in name:
        return None
    slug = name[: -len(".yaml")]
    return (folder, slug) if s.SLUG_RE.match(slug) and len(slug) <= s.SLUG_MAX else None
