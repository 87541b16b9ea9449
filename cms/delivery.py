"""Delivery to frontends: Markdown rendered to safe HTML, the whole site (or one edition) in one
document, and a workshop's calendar for calendar apps."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import nh3
from markdown_it import MarkdownIt
from marshmallow import Schema, fields

from cms.service.items import Item, children_of
from cms.types import TYPES, ContentType

_markdown = MarkdownIt("commonmark")

# What Markdown may produce; everything else (script, style, iframe, on* attributes,
# javascript: and data: URLs) is stripped by nh3 before it can reach a visitor's browser.
ALLOWED_TAGS = {
    "a", "abbr", "blockquote", "br", "code", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "img", "li", "ol", "p", "pre", "strong", "sub", "sup", "ul", "del", "s", "span",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "code": {"class"}}


@lru_cache(maxsize=4096)
def render_markdown(text: str) -> str:
    """Markdown of stored items as visitors see it: sanitised HTML, cached per text."""
    return markdown_to_html(text)


def markdown_to_html(text: str) -> str:
    """Markdown to sanitised HTML (uncached: for texts that are not stored, like previews)."""
    return nh3.clean(
        _markdown.render(text),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def present(ctype: ContentType, item: Item, render: bool) -> dict[str, Any]:
    """An item as the API serves it; with render, each Markdown field gets a `<field>_html`."""
    out = item.as_json()
    if render:
        for name in ctype.markdown:
            value = out.get(name)
            out[f"{name}_html"] = render_markdown(value) if isinstance(value, str) else None
    return out


def site_bundle(
    items: Mapping[str, Mapping[str, Item]], revision: str, render: bool
) -> dict[str, Any]:
    """Every type's valid items, with references to other items expanded in place."""
    shown = {
        type_name: {
            slug: present(ctype, item, render)
            for slug, item in items.get(type_name, {}).items()
            if item.error is None and item.data is not None
        }
        for type_name, ctype in TYPES.items()
    }
    bundle: dict[str, Any] = {"revision": revision}
    for type_name, ctype in TYPES.items():
        expanded = []
        for data in shown[type_name].values():
            data = dict(data)
            for name, target in ctype.links.items():
                if name in ctype.belongs_to:  # the parent: named, not repeated in each child
                    continue
                value = data.get(name)
                if isinstance(value, list):
                    data[name] = [shown[target][s] for s in value if s in shown[target]]
                elif value is not None:
                    data[name] = shown[target].get(value)
            expanded.append(data)
        bundle[type_name] = expanded
    return bundle


@cache
def site_schema() -> type[Schema]:
    """The bundle's shape for the spec: each type's item, its references expanded."""
    members: dict[str, fields.Field] = {
        "revision": fields.String(
            required=True, metadata={"description": "The commit the site is read from"}
        )
    }
    for type_name, ctype in TYPES.items():
        own: dict[str, fields.Field] = {}
        for name, field in ctype.item_schema_class().fields.items():
            target = ctype.links.get(name)
            if target is None or name in ctype.belongs_to:
                own[name] = copy.deepcopy(field)
            elif isinstance(field, fields.List):
                own[name] = fields.List(
                    fields.Nested(TYPES[target].item_schema_class), required=True
                )
            else:
                own[name] = fields.Nested(
                    TYPES[target].item_schema_class, allow_none=True, required=True
                )
        expanded = Schema.from_dict(own, name=f"Site{ctype.singular}")
        members[type_name] = fields.List(fields.Nested(expanded), required=True)
    return Schema.from_dict(members, name="Site")


def edition_items(
    items: Mapping[str, Mapping[str, Item]], workshop: str
) -> dict[str, dict[str, Item]] | None:
    """One workshop's part of the site: the workshop, its series, what belongs to it
    (sessions, papers, calls, sponsors), what those link to (talks, people), and the
    references (which no edition claims). None when there is no such workshop."""
    found = items.get("workshops", {}).get(workshop)
    if found is None or found.data is None:
        return None
    keep: dict[str, dict[str, Item]] = {name: {} for name in TYPES}
    keep["workshops"][workshop] = found
    keep["references"] = dict(items.get("references", {}))
    for type_name, ctype in TYPES.items():
        if ctype.belongs_to.get("workshop") == "workshops":  # from SQL for a large type
            keep[type_name] = children_of(items.get(type_name, {}), "workshop", workshop)
    series = found.data.get("series")
    if isinstance(series, str) and series in items.get("series", {}):
        keep["series"][series] = items["series"][series]
    grew = True
    while grew:  # follow links: sessions to talks, talks and papers to people
        grew = False
        for type_name, ctype in TYPES.items():
            for item in list(keep[type_name].values()):
                for name, target, slug in ctype.linked_slugs(item.data or {}):
                    if name in ctype.belongs_to or slug in keep[target]:
                        continue
                    if slug in items.get(target, {}):
                        keep[target][slug] = items[target][slug]
                        grew = True
    return keep


def calendar(
    items: Mapping[str, Mapping[str, Item]], workshop: str, stamp: datetime, host: str
) -> bytes:
    """The workshop's sessions and deadlines as an iCalendar file (RFC 5545): session times
    in the venue's zone (with its VTIMEZONE), deadlines in UTC, named AoE when they are."""
    cal = icalendar.Calendar()
    cal.add("prodid", "-//TerraBytes CMS//calendar//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    found = items["workshops"][workshop].data or {}
    cal.add("x-wr-calname", found.get("title") or workshop)
    for slug, item in sorted(items.get("sessions", {}).items()):
        data = item.data or {}
        if data.get("workshop") != workshop or item.error:
            continue
        where = ZoneInfo(data["zone"])
        event = _event(f"session-{slug}", workshop, host, stamp, data["title"])
        event.add("dtstart", datetime.fromisoformat(data["start"]).astimezone(where))
        event.add("dtend", datetime.fromisoformat(data["end"]).astimezone(where))
        event.add("location", ", ".join(x for x in (data.get("room"), found.get("location")) if x))
        event.add("categories", [data["kind"]])
        cal.add_component(event)
    for slug, item in sorted(items.get("calls-for-papers", {}).items()):
        data = item.data or {}
        if data.get("workshop") != workshop or item.error:
            continue
        for n, deadline in enumerate(data.get("deadlines") or []):
            due = datetime.fromisoformat(deadline["due"]).astimezone(UTC)
            zone_name = deadline.get("zone") or "UTC"
            summary = f"{deadline['name']} deadline ({zone_name}): {data['title']}"
            event = _event(f"deadline-{slug}-{n}", workshop, host, stamp, summary)
            event.add("dtstart", due)
            event.add("dtend", due)
            event.add("transp", "TRANSPARENT")
            cal.add_component(event)
    cal.add_missing_timezones()
    return bytes(cal.to_ical())


def _event(key: str, workshop: str, host: str, stamp: datetime, summary: str) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", f"{workshop}-{key}@{host}")
    event.add("dtstamp", stamp)
    event.add("summary", summary)
    return event
