"""The reference frontend in a real headless Chromium (Debian's chromium and chromium-driver)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from conftest import SCREENSHOTS, Server, new_token, wait_for_text

from cms.service import ContentService

pytestmark = pytest.mark.slow
IMAGES = "[...document.querySelectorAll('#organizers img, #sponsors img')]"


def test_front_page_shows_the_published_workshop(
    browser: Any, live: tuple[Server, ContentService]
) -> None:
    srv, _svc = live
    browser.get(srv.url + "/")
    page = wait_for_text(browser, "location", "Vancouvert, Canada")
    assert "TerraBytes @ ICML25" in page
    assert (
        "At the intersection of data curation, data archiving, and representation learning" in page
    )
    assert "Jul 19, 2025 9:00 AM — 6:00 PM" in page
    assert "ICML25" in page and "Valentin Barriere" in page
    assert "(Rolf et al., 2024)" in page and "(Kattenborn et al., 2022)" in page
    assert "the the TerraBytes workshop" in page
    assert "Invited Talks\nTBA" in page
    assert browser.execute_script("return document.title") == "TerraBytes @ ICML25"
    browser.save_screenshot(str(SCREENSHOTS / "terrabytes-front-page.png"))


def test_drafts_preview_with_an_auditor_token(
    browser: Any, live: tuple[Server, ContentService]
) -> None:
    from selenium.webdriver.common.by import By

    srv, svc = live
    _, editor = new_token(svc, "editor")
    _, auditor = new_token(svc, "auditor")
    url = srv.url + "/api/v1/workshops/terrabytes-icml25"
    etag = requests.get(url, timeout=10).headers["ETag"]
    r = requests.patch(url, json={"location": "Vancouver, Canada"},
                       headers={"Authorization": f"Bearer {editor}", "If-Match": etag}, timeout=10)  # fmt: skip
    assert r.status_code == 200
    browser.get(srv.url + "/")
    wait_for_text(browser, "location", "Vancouvert, Canada")  # the public page is unchanged
    browser.get(srv.url + "/?ref=main")
    wait_for_text(browser, "status", "token")  # drafts need a token first
    browser.find_element(By.ID, "token").send_keys(auditor)
    browser.find_element(By.CSS_SELECTOR, "#preview button").click()
    wait_for_text(browser, "location", "Vancouver, Canada")


def test_api_docs_render_offline_under_their_policy(
    browser: Any, live: tuple[Server, ContentService]
) -> None:
    """/docs: Swagger UI from the package (no CDN), started by a file, not an inline script."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    srv, _svc = live
    browser.get(srv.url + "/docs")
    WebDriverWait(browser, 30).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock-tag")) >= 18
    )
    tags = [
        e.get_attribute("data-tag") for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-tag")
    ]
    assert {"workshops", "people", "papers", "media", "media-files", "site"} <= set(tags)
    for tag in ("people", "site"):  # every tag starts closed and opens on a click
        browser.find_element(By.CSS_SELECTOR, f".opblock-tag[data-tag='{tag}']").click()
    WebDriverWait(browser, 10).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 15
    )
    summaries = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")]
    assert "/api/v1/people/{slug}" in summaries and "/api/v1/site" in summaries
    assert "TerraBytes CMS" in browser.find_element(By.CSS_SELECTOR, ".info .title").text
    problems = [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" or "Content Security Policy" in entry["message"]
    ]
    assert problems == []
    page = requests.get(srv.url + "/docs", timeout=10)
    assert "<script>" not in page.text and "cdn" not in page.text
    browser.save_screenshot(str(SCREENSHOTS / "terrabytes-api-docs.png"))


def test_a_preview_link_shows_the_drafts_without_an_account(
    browser: Any, live: tuple[Server, ContentService]
) -> None:
    srv, svc = live
    editor = {"Authorization": f"Bearer {new_token(svc, 'editor')[1]}"}
    url = srv.url + "/api/v1/workshops/terrabytes-icml25"
    etag = requests.get(url + "?ref=main", headers=editor, timeout=10).headers["ETag"]
    requests.patch(url, json={"location": "Vancouver, Canada"},
                   headers={**editor, "If-Match": etag}, timeout=10).raise_for_status()  # fmt: skip
    link = requests.post(srv.url + "/api/v1/previews", json={"ref": "main"}, headers=editor,
                         timeout=10).json()  # fmt: skip
    browser.get(srv.url + link["url"])
    page = wait_for_text(browser, "location", "Vancouver, Canada")
    assert "Preview: this content may not be published yet." in page
    assert browser.execute_script("return sessionStorage.length + localStorage.length") == 0
    browser.save_screenshot(str(SCREENSHOTS / "terrabytes-preview.png"))


def upload(srv: Server, auth: dict[str, str], color: str, name: str, alt: str) -> str:
    """A small PNG uploaded as a media item: its slug."""
    import io

    from PIL import Image

    data = io.BytesIO()
    Image.new("RGB", (96, 48), color).save(data, "PNG")
    r = requests.post(f"{srv.url}/api/v1/media", files={"file": (name, data.getvalue())},
                      data={"alt": alt}, headers=auth, timeout=10)  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["slug"])


def test_front_page_shows_the_programme_in_the_venues_time(
    browsers: Any, live: tuple[Server, ContentService]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    srv, svc = live
    auth = {"Authorization": f"Bearer {new_token(svc, 'admin')[1]}"}

    def post(type_name: str, body: dict[str, Any]) -> None:
        r = requests.post(f"{srv.url}/api/v1/{type_name}", json=body, headers=auth, timeout=10)
        assert r.status_code == 201, r.text

    post("talks", {"title": "Foundation models for EO", "speakers": ["valentin-barriere"]})
    post("sessions", {"workshop": "terrabytes-icml25", "title": "Keynote", "kind": "keynote",
                      "start": "2025-07-19T16:30:00Z", "end": "2025-07-19T17:15:00Z",
                      "zone": "America/Vancouver", "room": "West 118",
                      "talks": ["foundation-models-for-eo"]})  # fmt: skip
    post("papers", {"workshop": "terrabytes-icml25", "title": "Clouds Are Not Noise",
                    "authors": [{"name": "A. Student"}], "presentation": "spotlight",
                    "links": [{"label": "PDF", "url": "https://example.org/c.pdf"}]})  # fmt: skip
    post("calls-for-papers", {"workshop": "terrabytes-icml25", "title": "Call for Papers",
                              "topics": ["Large EO datasets"], "page_limit": 4,
                              "deadlines": [{"name": "Submission",
                                             "due": "2099-05-30T23:59:00-12:00"}]})  # fmt: skip
    logo, photo = (
        upload(srv, auth, color, name, alt)
        for color, name, alt in (("navy", "orbital.png", "Orbital Data"),
                                 ("olive", "vb.png", "Valentin Barriere"))
    )  # fmt: skip
    post("sponsors", {"workshop": "terrabytes-icml25", "name": "Orbital Data", "tier": "gold",
                      "logo": logo})  # fmt: skip
    person = f"{srv.url}/api/v1/people/valentin-barriere"
    etag = requests.get(person + "?ref=main", headers=auth, timeout=10).headers["ETag"]
    r = requests.patch(
        person, json={"photo": photo}, headers={**auth, "If-Match": etag}, timeout=10
    )
    assert r.status_code == 200, r.text
    r = requests.post(f"{srv.url}/api/v1/publish", headers=auth, timeout=10)
    assert r.status_code == 200
    for width in (1280, 360):
        browser = browsers(width, 1400)
        browser.get(srv.url + "/")
        page = wait_for_text(browser, "schedule", "Keynote")
        assert "9:30 AM — 10:15 AM" in page  # Vancouver time, as the venue gives it
        assert "Times in the venue's time zone (America/Vancouver)." in page
        assert "your time: " in page  # the browser runs in UTC here
        assert "Foundation models for EO — Valentin Barriere" in page  # talks list
        schedule = browser.find_element(By.ID, "schedule").text
        assert "Foundation models for EO — Valentin Barriere" in schedule
        assert "Clouds Are Not Noise" in page and "spotlight" in page
        assert "May 30, 2099 11:59 PM AoE (in " in page
        assert "Orbital Data gold" in page
        browser.execute_script("document.getElementById('sponsors').scrollIntoView()")
        WebDriverWait(browser, 10).until(lambda d: d.execute_script(
            f"return {IMAGES}.every(i => i.complete && i.naturalWidth > 0)"))  # fmt: skip
        alts = browser.execute_script(f"return {IMAGES}.map(i => i.alt)")
        assert alts == ["Valentin Barriere", "Orbital Data"]  # lazy, loaded when in view
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        browser.execute_script("document.getElementById('schedule-section').scrollIntoView()")
        browser.save_screenshot(str(SCREENSHOTS / f"terrabytes-programme-{width}.png"))
