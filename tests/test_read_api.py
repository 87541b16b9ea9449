"""The read API as frontends meet it: seed content verbatim, ETags, 304, pagination, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import git
from flask.testing import FlaskClient

SEED = (Path(__file__).resolve().parent.parent.parent / "shared" / "seed").glob("*.txt")
ABSTRACT = (
    "At the intersection of data curation, data archiving, and representation learning, this "
    "workshop will foster a holistic discussion covering major steps in the Earth Observation "
    "from downlinked satellite data, training paradigms to downstream applications."
)
WORKSHOP = "/api/v1/workshops/terrabytes-icml25"


def test_workshop_serves_the_seed_page_verbatim(client: FlaskClient) -> None:
    r = client.get(WORKSHOP)
    assert r.status_code == 200
    w = r.get_json()
    assert w["title"] == "TerraBytes @ ICML25"
    assert w["abstract"] == ABSTRACT
    assert w["location"] == "Vancouvert, Canada"
    assert w["event"] == "ICML25"
    assert w["organizers"] == ["valentin-barriere"]
    assert w["author"] == "valentin-barriere"
    assert w["start"] == "2025-07-19T09:00:00-07:00"
    assert w["end"] == "2025-07-19T18:00:00-07:00"
    assert w["invited_talks"] == "TBA"
    assert w["website"] is None
    assert "the the TerraBytes workshop" in w["introduction"]
    assert "(Rolf et al., 2024)" in w["motivation"]
    assert "(Kattenborn et al., 2022)" in w["motivation"]
    for text in SEED:  # every paragraph is the page's own text, byte for byte
        page = text.read_text(encoding="utf-8")
        for field in ("abstract", "introduction", "motivation", "initiative"):
            assert w[field] in page


def test_people_and_references_invent_nothing(client: FlaskClient) -> None:
    person = client.get("/api/v1/people/valentin-barriere").get_json()
    assert person["name"] == "Valentin Barriere"
    assert person["affiliation"] == "" and person["bio"] == "" and person["links"] == []
    refs = client.get("/api/v1/references?page_size=100").get_json()
    assert sorted(r["key"] for r in refs) == sorted(
        [
            "Rolf et al., 2024",
            "Tarasiou et al., 2023",
            "Mai et al., 2022",
            "Cornebise et al., 2022",
            "Tiede et al., 2021",
            "Kattenborn et al., 2022",
        ]
    )
    for ref in refs:
        assert ref["title"] is None and ref["url"] is None and ref["authors"] == []
        assert str(ref["year"]) in ref["key"]
    assert client.get("/api/v1/talks").get_json() == []


def test_etag_is_the_git_blob_id_and_304(client: FlaskClient, repo: Path) -> None:
    r = client.get(WORKSHOP)
    blob = git(repo, "rev-parse", "published:workshops/terrabytes-icml25.yaml").strip()
    assert r.headers["ETag"] == f'"{blob}"'
    assert r.get_json()["etag"] == blob
    assert r.headers["X-Content-Revision"] == git(repo, "rev-parse", "published").strip()
    again = client.get(WORKSHOP, headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == r.headers["ETag"]
    other = client.get(WORKSHOP, headers={"If-None-Match": '"' + "0" * 40 + '"'})
    assert other.status_code == 200


def test_list_weak_etag_and_304(client: FlaskClient) -> None:
    r = client.get("/api/v1/references")
    assert r.headers["ETag"].startswith('W/"')
    assert (
        client.get("/api/v1/references", headers={"If-None-Match": r.headers["ETag"]}).status_code
        == 304
    )


def test_pagination_header_and_pages(client: FlaskClient) -> None:
    r = client.get("/api/v1/references?page=2&page_size=4")
    assert r.status_code == 200
    assert len(r.get_json()) == 2
    meta = json.loads(r.headers["X-Pagination"])
    assert meta == {
        "total": 6,
        "total_pages": 2,
        "first_page": 1,
        "last_page": 2,
        "page": 2,
        "previous_page": 1,
    }
    assert client.get("/api/v1/references?page=9").get_json() == []


def test_filters_and_sort(client: FlaskClient) -> None:
    r = client.get("/api/v1/references?year=2022&sort=-slug")
    assert [x["slug"] for x in r.get_json()] == [
        "mai-et-al-2022",
        "kattenborn-et-al-2022",
        "cornebise-et-al-2022",
    ]
    r = client.get("/api/v1/references?sort=year")
    assert [x["year"] for x in r.get_json()] == [2021, 2022, 2022, 2022, 2023, 2024]
    assert client.get("/api/v1/people?name=Nobody").get_json() == []


@pytest.mark.parametrize(
    ("url", "status", "named"),
    [
        ("/api/v1/people/..%2f..%2fetc", 404, None),
        ("/api/v1/people/.git", 404, None),
        ("/api/v1/people/.GIT", 404, None),
        ("/api/v1/people/Valentin-Barriere", 404, None),
        ("/api/v1/people/" + "a" * 300, 404, None),
        ("/api/v1/people/" + "a" * 101, 404, None),
        ("/api/v1/people/trailing-", 404, None),
        ("/api/v1/people/nobody", 404, None),
        ("/api/v1/people/%00", 404, None),
        ("/api/v1/nothings", 404, None),
        ("/api/v1/people?page_size=100000", 422, "page_size"),
        ("/api/v1/people?page=-1", 422, "page"),
        ("/api/v1/people?page=abc", 422, "page"),
        ("/api/v1/people?sort=password", 422, "sort"),
        ("/api/v1/people?ref=refs/heads/main", 422, "ref"),
        ("/api/v1/references?year=notanumber", 422, "year"),
        ("/api/v1/people?bogus=1", 422, "bogus"),
    ],
)
def test_bad_paths_and_parameters_are_json_errors(
    client: FlaskClient, url: str, status: int, named: str | None
) -> None:
    r = client.get(url)
    assert r.status_code == status
    body = r.get_json()
    assert body["code"] == status and body["message"]
    if named:
        assert named in body["errors"]["query"]


def test_drafts_need_an_auditor_token(
    client: FlaskClient, tokens: dict[str, dict[str, str]]
) -> None:
    r = client.get(WORKSHOP + "?ref=main")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    for role in ("auditor", "editor", "admin"):
        assert client.get(WORKSHOP + "?ref=main", headers=tokens[role]).status_code == 200


@pytest.mark.parametrize(
    "header", ["Bearer nope", "Basic dXNlcjpwYXNz", "Bearer " + "cms_" + "x" * 43, "Bearer"]
)
def test_bad_token_on_a_read_is_401_not_anonymous(client: FlaskClient, header: str) -> None:
    r = client.get(WORKSHOP, headers={"Authorization": header})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
