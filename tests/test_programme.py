"""Content model v2 through the API: series and editions, sessions in their time zone,
accepted papers, calls for papers with AoE deadlines, sponsors, people's ORCID, the edition's
bundle and its calendar, and the OpenReview import."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import icalendar
import pytest
from conftest import git
from flask.testing import FlaskClient
from test_cli import cms

WORKSHOP = "/api/v1/workshops/terrabytes-icml25"
H = dict[str, str]


def write(client: FlaskClient, auth: H, method: str, url: str, body: Any, **headers: str) -> Any:
    if method in ("PATCH", "PUT", "DELETE") and "If-Match" not in headers:
        headers["If-Match"] = client.get(url + "?ref=main", headers=auth).headers["ETag"]
    return client.open(url, method=method, json=body, headers={**auth, **headers})


def create(client: FlaskClient, auth: H, type_name: str, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(f"/api/v1/{type_name}", json=body, headers=auth)
    assert r.status_code == 201, r.get_json()
    return dict(r.get_json())


def session(**extra: Any) -> dict[str, Any]:
    return {
        "workshop": "terrabytes-icml25",
        "title": "Opening remarks",
        "kind": "opening",
        "start": "2025-07-19T16:00:00Z",
        "end": "2025-07-19T16:15:00Z",
        "zone": "America/Vancouver",
        "room": "West 118",
        **extra,
    }


def publish(client: FlaskClient, tokens: dict[str, H]) -> None:
    r = client.post("/api/v1/publish", headers=tokens["admin"])
    assert r.status_code == 200, r.get_json()


# ---------------------------------------------------------------- series and editions
def test_a_series_holds_editions_and_the_seed_stays_verbatim(
    client: FlaskClient, editor: H, repo: Path
) -> None:
    create(client, editor, "series", {"name": "TerraBytes"})
    r = write(client, editor, "PATCH", WORKSHOP, {"series": "terrabytes"})
    assert r.status_code == 200 and r.get_json()["series"] == "terrabytes"
    lines = [
        line
        for line in git(repo, "diff", "--unified=0", "main~1", "main").splitlines()
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert lines == ["+series: terrabytes"]  # nothing else of the seed file moves
    nxt = create(client, editor, "workshops", {
        "title": "TerraBytes @ NeurIPS26", "start": "2026-12-12T09:00:00-08:00",
        "end": "2026-12-12T17:00:00-08:00", "series": "terrabytes",
    })  # fmt: skip
    create(client, editor, "workshops", {
        "title": "Elsewhere", "start": "2026-01-01T09:00:00Z", "end": "2026-01-01T10:00:00Z",
    })  # fmt: skip
    r = client.get("/api/v1/workshops?series=terrabytes&ref=main&sort=slug", headers=editor)
    assert [w["slug"] for w in r.get_json()] == ["terrabytes-icml25", nxt["slug"]]
    r = write(client, editor, "PATCH", WORKSHOP, {"series": "nope"})
    assert r.status_code == 422 and "series" in r.get_json()["errors"]["json"]
    r = write(client, editor, "DELETE", "/api/v1/series/terrabytes", None)
    assert r.status_code == 409
    assert "workshops/terrabytes-icml25 (series)" in r.get_json()["referrers"]


def test_late_added_fields_never_rewrite_existing_files(
    client: FlaskClient, editor: H, repo: Path
) -> None:
    r = write(client, editor, "PATCH", "/api/v1/people/valentin-barriere", {"role": "chair"})
    assert r.status_code == 200
    body = r.get_json()
    assert body["orcid"] is None and body["homepage"] is None  # in the API, as null
    text = git(repo, "show", "main:people/valentin-barriere.yaml")
    assert "orcid" not in text and "homepage" not in text  # not in the file while null


# ---------------------------------------------------------------- sessions and time zones
def test_session_times_are_kept_in_the_venue_zone(client: FlaskClient, editor: H) -> None:
    s = create(client, editor, "sessions", session())
    assert s["start"] == "2025-07-19T09:00:00-07:00"  # 16:00Z is 9 AM in Vancouver
    assert s["end"] == "2025-07-19T09:15:00-07:00"
    assert s["zone"] == "America/Vancouver"
    r = client.get("/api/v1/sessions?workshop=terrabytes-icml25&ref=main", headers=editor)
    assert [x["slug"] for x in r.get_json()] == ["opening-remarks"]


def test_a_dst_change_gives_each_session_its_own_offset(client: FlaskClient, editor: H) -> None:
    create(client, editor, "workshops", {
        "title": "Autumn", "start": "2025-11-01T09:00:00-07:00", "end": "2025-11-03T17:00:00-08:00",
    })  # fmt: skip
    before = create(client, editor, "sessions", session(
        workshop="autumn", title="Saturday", start="2025-11-01T17:00:00Z", end="2025-11-01T18:00:00Z",
    ))  # fmt: skip
    after = create(client, editor, "sessions", session(
        workshop="autumn", title="Monday", start="2025-11-03T17:00:00Z", end="2025-11-03T18:00:00Z",
    ))  # fmt: skip
    assert before["start"] == "2025-11-01T10:00:00-07:00"  # PDT
    assert after["start"] == "2025-11-03T09:00:00-08:00"  # PST, after the change


def test_across_the_date_line_dates_are_the_venues(client: FlaskClient, editor: H) -> None:
    create(client, editor, "workshops", {
        "title": "Kiritimati", "start": "2025-07-20T09:00:00+14:00", "end": "2025-07-20T17:00:00+14:00",
    })  # fmt: skip
    s = create(client, editor, "sessions", session(
        workshop="kiritimati", zone="Pacific/Kiritimati",
        start="2025-07-19T19:00:00Z", end="2025-07-19T20:00:00Z",
    ))  # fmt: skip
    assert s["start"] == "2025-07-20T09:00:00+14:00"  # a day ahead of UTC
    r = client.post("/api/v1/sessions", headers=editor, json=session(
        workshop="kiritimati", zone="Pacific/Kiritimati", title="Too early",
        start="2025-07-19T09:00:00Z", end="2025-07-19T10:00:00Z",
    ))  # fmt: skip  # 23:00 on the 19th there: the day before the workshop
    assert r.status_code == 422
    assert "Outside the workshop's dates" in r.get_json()["errors"]["json"]["start"][0]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"zone": "Mars/Olympus_Mons"}, "zone"),
        ({"zone": "../../etc/passwd"}, "zone"),
        ({"zone": "AoE"}, "zone"),
        ({"zone": ""}, "zone"),
        ({"end": "2025-07-19T15:00:00Z"}, "end"),
        ({"end": "2025-07-19T16:00:00Z"}, "end"),
        ({"start": "2025-07-19T16:00:00"}, "start"),  # naive: no offset
        ({"kind": "party"}, "kind"),
        ({"workshop": "no-such-workshop"}, "workshop"),
        ({"talks": ["no-such-talk"]}, "talks"),
        ({"start": "2025-07-21T16:00:00Z", "end": "2025-07-21T17:00:00Z"}, "start"),
    ],
)
def test_bad_sessions_are_refused_beside_the_field(
    client: FlaskClient, editor: H, change: dict[str, Any], field: str
) -> None:
    r = client.post("/api/v1/sessions", json=session(**change), headers=editor)
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["errors"]["json"]
    assert client.get("/api/v1/sessions?ref=main", headers=editor).get_json() == []


# ---------------------------------------------------------------- papers, people, sponsors
def test_papers_link_authors_to_people(client: FlaskClient, editor: H) -> None:
    paper = {
        "workshop": "terrabytes-icml25",
        "title": "Clouds Are Not Noise",
        "authors": [
            {"name": "Valentin Barriere", "person": "valentin-barriere"},
            {"name": "A. Student", "affiliation": "Somewhere"},
        ],
        "abstract": "We **keep** the clouds.",
        "links": [{"label": "PDF", "url": "https://example.org/clouds.pdf"}],
        "presentation": "spotlight",
    }
    p = create(client, editor, "papers", paper)
    assert p["authors"][1] == {"name": "A. Student", "affiliation": "Somewhere", "person": None}
    r = client.get("/api/v1/papers/clouds-are-not-noise?ref=main&render=html", headers=editor)
    assert "<strong>keep</strong>" in r.get_json()["abstract_html"]
    r = client.post("/api/v1/papers", headers=editor, json={
        **paper, "title": "Other", "authors": [{"name": "X", "person": "nobody"}],
    })  # fmt: skip
    assert r.status_code == 422 and "authors" in r.get_json()["errors"]["json"]
    r = write(client, editor, "DELETE", "/api/v1/people/valentin-barriere", None)
    assert r.status_code == 409
    assert "papers/clouds-are-not-noise (authors)" in r.get_json()["referrers"]
    s = create(client, editor, "sessions", session(kind="poster", papers=[p["slug"]]))
    r = write(client, editor, "PATCH", f"/api/v1/papers/{p['slug']}", {"session": s["slug"]})
    assert r.status_code == 200 and r.get_json()["session"] == s["slug"]


@pytest.mark.parametrize(
    ("orcid", "status"),
    [
        ("0000-0002-1825-0097", 200),
        ("0000-0001-5109-3700", 200),
        ("0000-0002-1694-233X", 200),
        ("0000-0002-1825-0098", 422),  # wrong check digit
        ("0000-0002-1825-009", 422),
        ("https://orcid.org/0000-0002-1825-0097", 422),
    ],
)
def test_orcid_is_checked(client: FlaskClient, editor: H, orcid: str, status: int) -> None:
    r = write(client, editor, "PATCH", "/api/v1/people/valentin-barriere", {"orcid": orcid})
    assert r.status_code == status, r.get_json()
    if status == 422:
        assert "check digit" in json.dumps(r.get_json()) or "looks like" in json.dumps(r.get_json())


def test_sponsors_have_tiers(client: FlaskClient, editor: H) -> None:
    s = create(client, editor, "sponsors", {
        "workshop": "terrabytes-icml25", "name": "Orbital Data", "tier": "gold",
        "url": "https://example.org",
    })  # fmt: skip
    assert s["tier"] == "gold"
    r = client.post("/api/v1/sponsors", headers=editor, json={
        "workshop": "terrabytes-icml25", "name": "X", "tier": "diamond",
    })  # fmt: skip
    assert r.status_code == 422 and "tier" in r.get_json()["errors"]["json"]


# ---------------------------------------------------------------- calls for papers, AoE
def test_aoe_deadlines_keep_their_meaning(client: FlaskClient, editor: H) -> None:
    c = create(client, editor, "calls-for-papers", {
        "workshop": "terrabytes-icml25", "title": "Call for papers",
        "topics": ["Large EO datasets", "Foundation models"], "page_limit": 4,
        "submission_url": "https://openreview.net/group?id=example",
        "deadlines": [
            {"name": "Submission", "due": "2025-05-30T23:59:00-12:00", "zone": "AoE"},
            {"name": "Notification", "due": "2025-06-09T12:00:00Z"},  # AoE by default
            {"name": "Camera-ready", "due": "2025-06-20T23:59:00-07:00",
             "zone": "America/Vancouver"},
        ],
    })  # fmt: skip
    submission, notification, camera = c["deadlines"]
    assert submission == {"name": "Submission", "due": "2025-05-30T23:59:00-12:00", "zone": "AoE"}
    assert notification["due"] == "2025-06-09T00:00:00-12:00" and notification["zone"] == "AoE"
    assert camera["due"] == "2025-06-20T23:59:00-07:00"
    r = client.post("/api/v1/calls-for-papers", headers=editor, json={
        "workshop": "terrabytes-icml25", "title": "Bad",
        "deadlines": [{"name": "Submission", "due": "2025-05-30T23:59:00", "zone": "AoE"}],
    })  # fmt: skip
    assert r.status_code == 422 and "deadlines" in r.get_json()["errors"]["json"]


# ---------------------------------------------------------------- an edition's bundle, calendar
def _programme(client: FlaskClient, editor: H) -> None:
    create(client, editor, "talks", {"title": "Keynote", "speakers": ["valentin-barriere"]})
    create(client, editor, "sessions", session(kind="keynote", title="Keynote", talks=["keynote"]))
    create(client, editor, "calls-for-papers", {
        "workshop": "terrabytes-icml25", "title": "Call for papers",
        "deadlines": [{"name": "Submission", "due": "2025-05-30T23:59:00-12:00"}],
    })  # fmt: skip
    create(client, editor, "workshops", {
        "title": "Other edition", "start": "2026-01-01T09:00:00Z", "end": "2026-01-01T17:00:00Z",
    })  # fmt: skip
    create(client, editor, "sessions", session(
        workshop="other-edition", title="Elsewhere", start="2026-01-01T10:00:00Z",
        end="2026-01-01T11:00:00Z", zone="Europe/Paris",
    ))  # fmt: skip


def test_site_for_one_edition(client: FlaskClient, editor: H, tokens: dict[str, H]) -> None:
    _programme(client, editor)
    publish(client, tokens)
    whole = client.get("/api/v1/site").get_json()
    assert len(whole["sessions"]) == 2 and len(whole["workshops"]) == 2
    r = client.get("/api/v1/site?workshop=terrabytes-icml25")
    assert r.status_code == 200
    one = r.get_json()
    assert [w["slug"] for w in one["workshops"]] == ["terrabytes-icml25"]
    assert [s["slug"] for s in one["sessions"]] == ["keynote"]
    assert one["sessions"][0]["workshop"] == "terrabytes-icml25"  # the parent stays a slug
    assert one["sessions"][0]["talks"][0]["title"] == "Keynote"  # children are expanded
    assert [p["slug"] for p in one["people"]] == ["valentin-barriere"]
    assert len(one["calls-for-papers"]) == 1 and len(one["references"]) == 6
    assert r.headers["ETag"] != client.get("/api/v1/site").headers["ETag"]
    assert client.get("/api/v1/site?workshop=nope").status_code == 404
    assert client.get("/api/v1/site?workshop=Bad_Slug").status_code == 422


def test_calendar_parses_back_with_zones_and_deadlines(
    client: FlaskClient, editor: H, tokens: dict[str, H]
) -> None:
    _programme(client, editor)
    url = f"{WORKSHOP}/calendar.ics"
    r = client.get(url)
    assert r.status_code == 200
    assert not icalendar.Calendar.from_ical(r.data).walk("VEVENT")  # nothing published yet
    publish(client, tokens)
    r = client.get(url)
    assert r.status_code == 200 and r.mimetype == "text/calendar"
    cal = icalendar.Calendar.from_ical(r.data)
    assert [z["TZID"] for z in cal.walk("VTIMEZONE")] == ["America/Vancouver"]
    events = {str(e["SUMMARY"]): e for e in cal.walk("VEVENT")}
    assert set(events) == {"Keynote", "Submission deadline (AoE): Call for papers"}
    keynote = events["Keynote"]
    start = keynote.decoded("DTSTART")
    assert start.isoformat() == "2025-07-19T09:00:00-07:00"
    assert str(start.tzinfo) == "America/Vancouver"
    assert keynote["DTSTART"].params["TZID"] == "America/Vancouver"
    due = events["Submission deadline (AoE): Call for papers"].decoded("DTSTART")
    assert due.isoformat() == "2025-05-31T11:59:00+00:00"  # 23:59 AoE
    assert b"\r\n" in r.data and r.data.startswith(b"BEGIN:VCALENDAR")
    again = client.get(url, headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304
    assert client.get("/api/v1/workshops/nope/calendar.ics").status_code == 404
    assert client.get(f"{url}?ref=main").status_code == 401


# ---------------------------------------------------------------- the OpenReview import
NOTES = {
    "notes": [
        {
            "id": "AbC123xyz",
            "forum": "AbC123xyz",
            "content": {
                "title": {"value": "Self-Supervised Pretraining on Sentinel-2 Time Series"},
                "authors": {"value": ["Jane Doe", "John Roe"]},
                "authorids": {"value": ["~Jane_Doe1", "~John_Roe1"]},
                "abstract": {"value": "We pretrain on *many* pixels."},
                "pdf": {"value": "/pdf/0123456789abcdef.pdf"},
                "venue": {"value": "TerraBytes ICML 2025 Oral"},
            },
        },
        {
            "id": "DeF456uvw",
            "content": {
                "title": {"value": "A Benchmark for Cloud Masks"},
                "authors": {"value": ["Ana Lima"]},
                "abstract": {"value": "Clouds."},
                "venue": {"value": "TerraBytes ICML 2025 Poster"},
            },
        },
    ]
}


def test_openreview_import_is_one_commit_and_idempotent(
    client: FlaskClient, editor: H, instance: Path, db_url: str, repo: Path, tmp_path: Path
) -> None:
    notes = copy.deepcopy(NOTES)
    export = tmp_path / "notes.json"
    export.write_text(json.dumps(notes), encoding="utf-8")
    before = git(repo, "rev-parse", "main").strip()
    out = cms(instance, db_url, "import", "openreview", str(export),
              "--workshop", "terrabytes-icml25", "--reason", "Accepted papers, round 1")  # fmt: skip
    assert "2 created, 0 updated" in out.stdout
    assert git(repo, "rev-list", "--count", f"{before}..main").strip() == "1"
    message = git(repo, "log", "-1", "--format=%B", "main")
    assert "Accepted papers, round 1" in message and "CMS-Action: import" in message
    r = client.get("/api/v1/papers?ref=main&sort=title", headers=editor)
    papers = {p["openreview_id"]: p for p in r.get_json()}
    first = papers["AbC123xyz"]
    assert first["presentation"] == "oral" and papers["DeF456uvw"]["presentation"] == "poster"
    assert [a["name"] for a in first["authors"]] == ["Jane Doe", "John Roe"]
    assert {"label": "PDF", "url": "https://openreview.net/pdf/0123456789abcdef.pdf"} in first[
        "links"
    ]
    # an editor links an author to a person and puts the paper in a session
    r = write(client, editor, "PATCH", f"/api/v1/papers/{first['slug']}", {"authors": [
        {"name": "Jane Doe", "affiliation": "ESA", "person": "valentin-barriere"},
        {"name": "John Roe"},
    ]})  # fmt: skip
    assert r.status_code == 200
    head = git(repo, "rev-parse", "main").strip()
    out = cms(
        instance, db_url, "import", "openreview", str(export), "--workshop", "terrabytes-icml25"
    )
    assert "0 created, 0 updated, 2 unchanged; nothing to commit" in out.stdout
    assert git(repo, "rev-parse", "main").strip() == head  # the same file twice: no commit
    notes["notes"][1]["content"]["title"] = {"value": "A Benchmark for Cloud Masks, v2"}
    export.write_text(json.dumps(notes), encoding="utf-8")
    out = cms(
        instance, db_url, "import", "openreview", str(export), "--workshop", "terrabytes-icml25"
    )
    assert "0 created, 1 updated, 1 unchanged" in out.stdout
    jane = client.get(f"/api/v1/papers/{first['slug']}?ref=main", headers=editor).get_json()
    assert jane["authors"][0]["person"] == "valentin-barriere"  # the editor's work is kept


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not a JSON file"),
        ('{"notes": 3}', "list of notes"),
        ('[{"id": "x", "content": {}}]', "no title"),
        ('[{"content": {"title": {"value": "T"}}}]', "'id'"),
    ],
)
def test_openreview_import_refuses_bad_files(
    instance: Path, db_url: str, repo: Path, tmp_path: Path, client: FlaskClient,
    content: str, message: str,
) -> None:  # fmt: skip
    export = tmp_path / "bad.json"
    export.write_text(content, encoding="utf-8")
    before = git(repo, "rev-parse", "main")
    out = cms(instance, db_url, "import", "openreview", str(export),
              "--workshop", "terrabytes-icml25", check=False)  # fmt: skip
    assert out.returncode != 0 and message in out.stderr and "Traceback" not in out.stderr
    assert git(repo, "rev-parse", "main") == before


def test_openreview_import_into_no_workshop_is_refused(
    instance: Path, db_url: str, repo: Path, tmp_path: Path, client: FlaskClient
) -> None:
    export = tmp_path / "notes.json"
    export.write_text(json.dumps(NOTES), encoding="utf-8")
    out = cms(instance, db_url, "import", "openreview", str(export), "--workshop", "nope",
              check=False)  # fmt: skip
    assert out.returncode != 0 and "No workshops item 'nope'" in out.stderr
