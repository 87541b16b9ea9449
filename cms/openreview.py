"""OpenReview's API v2 notes (as exported: `{"notes": [...]}` or a list of notes, each field
of a note's `content` carrying `{"value": ...}`) turned into papers of one workshop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cms.errors import Invalid

SITE = "https://openreview.net"


def read_export(path: Path) -> list[dict[str, Any]]:
    """The notes of an export file; Invalid with a reason when it is not one."""
    try:
        export = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Invalid(f"{path}: not a JSON file ({exc}).") from None
    notes = export.get("notes") if isinstance(export, dict) else export
    if not isinstance(notes, list) or not all(isinstance(n, dict) for n in notes):
        raise Invalid(f"{path}: an OpenReview export is a list of notes or {{'notes': [...]}}.")
    return notes


def _value(content: dict[str, Any], key: str, default: Any = None) -> Any:
    field = content.get(key)
    return field.get("value", default) if isinstance(field, dict) else default


def paper_from_note(note: dict[str, Any], workshop: str) -> dict[str, Any]:
    """One accepted paper: title, authors, abstract, links and presentation from a note."""
    note_id = note.get("id")
    content = note.get("content")
    if not isinstance(note_id, str) or not isinstance(content, dict):
        raise Invalid("Every note needs an 'id' and a 'content' object.")
    title = _value(content, "title")
    if not isinstance(title, str) or not title.strip():
        raise Invalid(f"Note {note_id} has no title.")
    authors = _value(content, "authors", [])
    if not isinstance(authors, list) or not all(isinstance(a, str) for a in authors):
        raise Invalid(f"Note {note_id}: authors must be a list of names.")
    links = [{"label": "OpenReview", "url": f"{SITE}/forum?id={note.get('forum') or note_id}"}]
    pdf = _value(content, "pdf")
    if isinstance(pdf, str) and pdf:
        links.append({"label": "PDF", "url": SITE + pdf if pdf.startswith("/") else pdf})
    code = _value(content, "code")
    if isinstance(code, str) and code.startswith(("http://", "https://")):
        links.append({"label": "Code", "url": code})
    venue = str(_value(content, "venue", "")).lower()
    presentation = next((p for p in ("oral", "spotlight") if p in venue), "poster")
    abstract = _value(content, "abstract", "")
    return {
        "workshop": workshop,
        "title": title.strip(),
        "authors": [{"name": name.strip(), "affiliation": "", "person": None} for name in authors],
        "abstract": abstract if isinstance(abstract, str) else "",
        "links": links,
        "presentation": presentation,
        "openreview_id": note_id,
    }


def keep_author_details(current: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """An editor may have added authors' affiliations and person pages: a re-import keeps
    them for the authors it still names."""
    known = {a.get("name"): a for a in current.get("authors") or []}
    authors = []
    for author in entry.get("authors") or []:
        before = known.get(author["name"], {})
        authors.append(
            {**author, **{k: before[k] for k in ("affiliation", "person") if before.get(k)}}
        )
    return {**entry, "authors": authors}
