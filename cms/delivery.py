"""Delivery to frontends: Markdown rendered to safe HTML, and the whole site in one document."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any

import nh3
from markdown_it import MarkdownIt
from marshmallow import Schema, fields

from cms.service.items import Item
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
            if target is None:
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
