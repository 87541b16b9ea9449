"""Canonical YAML: the same item always gives the same bytes, and every seed file round-trips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cms.serialize import SerializationError, canonical_yaml, parse_yaml
from cms.types import TYPES

SEED = Path(__file__).resolve().parent.parent / "content_repo"
SEED_FILES = sorted(SEED.glob("*/*.yaml"))


def test_seed_has_every_kind_of_content() -> None:
    assert {p.parent.name for p in SEED_FILES} == {"workshops", "people", "references"}


@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_seed_file_round_trips(path: Path) -> None:
    raw = path.read_bytes()
    data = parse_yaml(raw)
    assert canonical_yaml(data) == raw  # serialize(parse(file)) == file
    assert parse_yaml(canonical_yaml(data)) == data  # parse(serialize(x)) == x
    ctype = TYPES[path.parent.name]
    assert ctype.file_bytes(ctype.schema.dump(ctype.schema.load(data))) == raw  # canonical
    # keys in schema order; fields added since are left out of the file while null
    assert list(data) == [n for n in ctype.field_names if n not in ctype.omit_null]
    assert raw.endswith(b"\n") and not raw.endswith(b"\n\n")


def test_multiline_text_is_a_literal_block() -> None:
    raw = canonical_yaml({"bio": "Line one\nLine two\n", "name": "x"})
    assert raw == b"bio: |\n  Line one\n  Line two\nname: x\n"


def test_dates_stay_strings() -> None:
    data = {"start": "2025-07-19T09:00:00-07:00", "announced_on": "2025-07-19"}
    assert parse_yaml(canonical_yaml(data)) == data


@pytest.mark.parametrize("raw", [b"- a list\n", b"just text\n", b"a: [\n", b"\xff\xfe", b"1: x\n"])
def test_unreadable_files_are_serialization_errors(raw: bytes) -> None:
    with pytest.raises(SerializationError):
        parse_yaml(raw)


json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(min_size=1), json_values, max_size=6))
def test_round_trip_property(data: dict[str, Any]) -> None:
    raw = canonical_yaml(data)
    assert parse_yaml(raw) == data
    assert canonical_yaml(parse_yaml(raw)) == raw
