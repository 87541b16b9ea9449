"""Canonical YAML: the one way an item becomes bytes in git, and back.

The same item always gives the same bytes (so the same blob id, which is its ETag): keys in
schema order, multi-line text as literal block scalars, no line folding, UTF-8, one trailing
newline. Values are JSON-shaped (str, int, bool, None, lists, dicts): dates are ISO strings.
"""

from __future__ import annotations

from typing import Any

import yaml


class SerializationError(ValueError):
    """A file in git is not a YAML mapping we can read."""


class _CanonicalDumper(yaml.SafeDumper):
    pass


# Line breaks other than \n do not survive plain or block scalars: YAML folds them on reading.
_ODD_BREAKS = frozenset("\r\x85\u2028\u2029")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if _ODD_BREAKS.intersection(value):
        style: str | None = '"'
    else:
        style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_CanonicalDumper.add_representer(str, _represent_str)


# libyaml's parser when PyYAML has it (its wheels do): the same constructor and resolver,
# parsing about ten times faster. Writing stays with the pure-Python emitter, whose bytes
# every blob id (ETag) in the repository was made with.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):  # type: ignore[valid-type,misc]
    """SafeLoader without implicit timestamps: dates stay the strings the API serves."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def canonical_yaml(data: dict[str, Any]) -> bytes:
    """Serialise an item (already in schema order) to its canonical bytes."""
    text = yaml.dump(
        data,
        Dumper=_CanonicalDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=2**31 - 1,
        indent=2,
        explicit_start=False,
    )
    return text.encode("utf-8")


def parse_yaml(raw: bytes) -> dict[str, Any]:
    """Parse an item's file; anything but a UTF-8 YAML mapping is a SerializationError."""
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=_Loader)  # noqa: S506 (safe loader subclass)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SerializationError(f"not valid UTF-8 YAML: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise SerializationError("not a YAML mapping with string keys")
    return data
