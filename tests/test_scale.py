"""Large types are read from SQL a page at a time (CMS_SNAPSHOT_MAX_ITEMS): every list, filter,
sort, search, page, bundle and calendar answers exactly as the in-memory path does, on both
databases, and a read never mixes two commits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cms.app import create_app
from cms.service import PUBLISHED, ContentService
from cms.service.items import PagedItems, SnapshotMoved

H = dict[str, str]
TITLES = [
    "Élan vital",
    "Straße der Daten",
    "STRASSE again",
    "under_score 100%",
    "a-b",
    "ab",
    "Zeta",
]


@pytest.fixture
def paged(config: dict[str, Any], app: Flask) -> Iterator[Flask]:
    """Another worker on the same repository and index that holds no type in memory."""
    other = create_app({**config, "SNAPSHOT_MAX_ITEMS": 0})
    yield other
    other.extensions["cms"].dispose()


@pytest.fixture
def content(client: FlaskClient, tokens: dict[str, H]) -> None:
    """Two more workshops, sessions, and papers with every kind of title and missing field."""
    editor = tokens["editor"]

    def post(type_name: str, body: dict[str, Any]) -> None:
        r = client.post(f"/api/v1/{type_name}", json=body, headers=editor)
        assert r.status_code == 201, r.get_json()

    for n, day in ((2, "2026-07-11"), (3, "2027-07-10")):
        post("workshops", {"title": f"TerraBytes {n}", "start": f"{day}T09:00:00-07:00",
                           "end": f"{day}T18:00:00-07:00", "announced_on": day})  # fmt: skip
    workshops = ["terrabytes-icml25", "terrabytes-2", "terrabytes-3"]
    post("sessions", {"workshop": "terrabytes-icml25", "title": "Posters", "kind": "poster",
                      "start": "2025-07-19T20:00:00Z", "end": "2025-07-19T21:00:00Z",
                      "zone": "America/Vancouver"})  # fmt: skip
    for n in range(24):
        body: dict[str, Any] = {
            "workshop": workshops[n % 3],
            "title": f"{TITLES[n % len(TITLES)]} {n // len(TITLES)}",
            "presentation": ("oral", "spotlight", "poster")[n % 3 if n % 5 else 0],
            "slug": f"paper-{n:02d}" if n % 4 else f"p{n}",
        }
        if n % 6 == 0:
            body["session"] = "posters"
        if n % 7 == 0:
            body["openreview_id"] = f"or{n}"
        post("papers", body)
    r = client.post("/api/v1/publish", headers=tokens["admin"])
    assert r.status_code == 200


QUERIES = [
    "papers",
    "papers?sort=-slug",
    "papers?sort=title&page_size=5&page=2",
    "papers?sort=-title&page_size=7&page=4",
    "papers?sort=presentation",
    "papers?sort=-presentation&page_size=3&page=3",
    "papers?sort=session",
    "papers?sort=-session",
    "papers?sort=openreview_id",
    "papers?workshop=terrabytes-2&sort=-title",
    "papers?workshop=nowhere",
    "papers?presentation=oral&workshop=terrabytes-icml25",
    "papers?session=posters",
    "papers?q=strasse",
    "papers?q=%C3%89LAN",
    "papers?q=100%25",
    "papers?q=_",
    "papers?q=paper-1&sort=-slug",
    "papers?page=99",
    "workshops?announced_on=2026-07-11",
    "workshops?sort=-announced_on",
    "references?year=2022&sort=-slug",
    "references?sort=year",
    "references?sort=-year&page_size=2&page=2",
    "people?name=Nobody",
    "site",
    "site?workshop=terrabytes-2",
    "site?workshop=terrabytes-icml25&render=html",
    "site?workshop=nowhere",
    "workshops/terrabytes-icml25/calendar.ics",
    "papers/paper-05",
    "papers/nothing",
]


@pytest.mark.usefixtures("content")
@pytest.mark.parametrize("ref", ["published", "main"])
def test_paged_reads_answer_as_the_in_memory_ones(
    app: Flask, paged: Flask, tokens: dict[str, H], ref: str
) -> None:
    auditor = tokens["auditor"]
    memory, sql = app.test_client(), paged.test_client()
    for query in QUERIES:
        url = f"/api/v1/{query}{'&' if '?' in query else '?'}ref={ref}"
        a, b = memory.get(url, headers=auditor), sql.get(url, headers=auditor)
        assert (a.status_code, a.headers.get("X-Pagination"), a.headers.get("ETag")) == (
            b.status_code, b.headers.get("X-Pagination"), b.headers.get("ETag")), url  # fmt: skip
        assert a.data == b.data, url
    # the paged worker really read from SQL
    snap = paged.extensions["cms"].snapshot(f"refs/heads/{ref}")
    assert all(isinstance(items, PagedItems) for items in snap.items.values())
    assert not any(isinstance(items, PagedItems) for items in
                   app.extensions["cms"].snapshot(f"refs/heads/{ref}").items.values())  # fmt: skip
    listed = json.loads(
        memory.get(f"/api/v1/papers?ref={ref}", headers=auditor).headers["X-Pagination"]
    )
    assert listed["total"] == 24


@pytest.mark.usefixtures("content")
def test_a_paged_worker_follows_writes_and_never_mixes_commits(
    app: Flask, paged: Flask, tokens: dict[str, H]
) -> None:
    editor, admin = tokens["editor"], tokens["admin"]
    writer, reader = app.test_client(), paged.test_client()
    svc: ContentService = paged.extensions["cms"]
    before = reader.get("/api/v1/papers/p0")
    assert before.status_code == 200
    stale = svc.snapshot(PUBLISHED)
    # an edit lands and is published by another worker
    r = writer.patch("/api/v1/papers/p0", json={"title": "Renamed"},
                     headers={**editor, "If-Match": before.headers["ETag"]})  # fmt: skip
    assert r.status_code == 200
    assert writer.post("/api/v1/publish", headers=admin).status_code == 200
    # what the old snapshot read stays what it was at its commit; a new read through it
    # notices the move, instead of serving the new row as the old commit
    assert stale.items["papers"]["p0"].data["title"] != "Renamed"
    with pytest.raises(SnapshotMoved):
        stale.items["papers"]["p4"]
    after = reader.get("/api/v1/papers/p0")
    assert after.get_json()["title"] == "Renamed"
    assert after.headers["X-Content-Revision"] != before.headers["X-Content-Revision"]
    titles = [p["title"] for p in reader.get("/api/v1/papers?q=renamed").get_json()]
    assert titles == ["Renamed"]
    # revalidation on the paged worker
    assert (
        reader.get(
            "/api/v1/papers/p0", headers={"If-None-Match": after.headers["ETag"]}
        ).status_code
        == 304
    )
    assert svc.check() == []
