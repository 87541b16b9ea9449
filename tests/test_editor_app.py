"""The editor app at /edit in headless Chromium: what an organizer does, checked in git."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import SCREENSHOTS, Server, git, new_token

from cms.service import ContentService

pytestmark = pytest.mark.slow
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
DOCS = Path(__file__).resolve().parent.parent / "docs"
WORKSHOP = "/api/v1/workshops/terrabytes-icml25"
Live = tuple[Server, ContentService]
# The app's behaviour does not depend on the index's database: the two tests that write and
# merge run on both backends, the other screens on SQLite (the API tests cover both fully).
ONE_BACKEND = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


# ---------------------------------------------------------------- helpers
def by(css: str) -> tuple[str, str]:
    from selenium.webdriver.common.by import By

    return (By.CSS_SELECTOR, css)


def wait(driver: Any, condition: Callable[[Any], Any], timeout: float = 20) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def find(driver: Any, css: str) -> Any:
    return wait(driver, lambda d: d.find_element(*by(css)))


def text_of(driver: Any, css: str) -> str:
    return str(driver.find_element(*by(css)).text)


def wait_text(driver: Any, css: str, text: str) -> str:
    wait(driver, lambda d: text in "".join(e.text for e in d.find_elements(*by(css))))
    return text_of(driver, css)


def button(driver: Any, label: str, scope: str = "body") -> Any:
    """The visible button (or link styled as one) whose text or aria-label is label."""

    def found(d: Any) -> Any:
        for el in d.find_elements(*by(f"{scope} button, {scope} a.button")):
            if label in (el.text.strip(), el.get_attribute("aria-label")) and el.is_displayed():
                return el
        return False

    return wait(driver, found)


def buttons(driver: Any) -> list[str]:
    return [
        e.text.strip() for e in driver.find_elements(*by("button, a.button")) if e.is_displayed()
    ]


def answer(driver: Any, reason: str | None, confirm: str) -> None:
    """Fill the open dialog's reason and press its confirm button."""
    dialog = find(driver, "dialog[open]")
    if reason is not None:
        dialog.find_element(*by("input")).send_keys(reason)
    button(driver, confirm, "dialog[open]").click()


def sign_in(driver: Any, srv: Server, token: str, at: str = "") -> None:
    driver.get(f"{srv.url}/edit#/{at}")
    find(driver, "#token").send_keys(token)
    button(driver, "Sign in").click()
    wait(driver, lambda d: d.find_element(*by("#nav")).is_displayed())


def open_item(driver: Any, path: str) -> None:
    driver.execute_script("location.hash = arguments[0]", f"#/t/{path}")
    wait(
        driver,
        lambda d: d.find_elements(*by("#history-title")) and d.find_elements(*by(".versions li")),
    )


def type_into(driver: Any, css: str, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    el = find(driver, css)
    el.send_keys(Keys.CONTROL, "a")
    el.send_keys(Keys.DELETE)
    el.send_keys(text)


def save(driver: Any, reason: str) -> str:
    type_into(driver, "#reason", reason)
    driver.execute_script("document.getElementById('flash').textContent = ''")
    button(driver, "Save").click()
    return str(wait(driver, lambda d: d.find_element(*by("#flash")).text))


def check_axe(driver: Any, screen: str) -> None:
    """axe-core on the page as it is: no serious or critical violation."""
    if not driver.execute_script("return typeof axe !== 'undefined'"):
        driver.execute_script(AXE.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations))"
        ".catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));"
    )
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{screen}: {bad}"


def shot(driver: Any, name: str, docs: bool = False) -> None:
    """A screenshot to look at; with CMS_UPDATE_DOCS=1 the README's own copies are refreshed."""
    driver.save_screenshot(str(SCREENSHOTS / f"editor-{name}.png"))
    if docs and os.environ.get("CMS_UPDATE_DOCS"):
        driver.save_screenshot(str(DOCS / f"editor-{name}.png"))


def no_console_errors(driver: Any) -> None:
    problems = [
        e["message"]
        for e in driver.get_log("browser")
        if (e["level"] == "SEVERE" and "the server responded with a status of" not in e["message"])
        or "Content Security Policy" in e["message"]
    ]
    assert problems == []


def api(srv: Server, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
    headers = kwargs.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, srv.url + path, headers=headers, timeout=10, **kwargs)


def edit_by_api(srv: Server, token: str, path: str, patch: dict[str, Any]) -> None:
    etag = api(srv, "GET", f"{path}?ref=main", token).headers["ETag"]
    r = api(srv, "PATCH", path, token, json=patch, headers={"If-Match": etag})
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------- tests
def test_fix_the_typo_with_a_reason(browser: Any, live: Live) -> None:
    srv, svc = live
    _, token = new_token(svc, "editor", name="Ada Organizer", email="ada@example.org")
    sign_in(browser, srv, token)
    assert "Ada Organizer (editor)" in text_of(browser, "#who")
    wait_text(browser, "#count-workshops", "1")
    open_item(browser, "workshops/terrabytes-icml25")
    assert find(browser, "#f-location").get_attribute("value") == "Vancouvert, Canada"
    wait_text(browser, "#b-location", "Last set by")
    type_into(browser, "#f-location", "Vancouver, Canada")
    shot(browser, "form", docs=True)
    assert save(browser, "Fix the city's spelling (was 'Vancouvert')") == "Saved."

    repo = svc.store.path
    log = git(repo, "log", "-1", "--format=%an <%ae>%n%B", "main")
    assert log.startswith("Ada Organizer <ada@example.org>\n")
    assert "Fix the city's spelling (was 'Vancouvert')" in log
    changed = git(repo, "diff", "--unified=0", "main~1", "main").splitlines()
    edits = [line for line in changed if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert edits == ["-location: Vancouvert, Canada", "+location: Vancouver, Canada"]
    assert git(repo, "diff", "--name-only", "main~1", "main").split() == [
        "workshops/terrabytes-icml25.yaml"
    ]
    no_console_errors(browser)


def test_two_editors_never_overwrite_each_other(browsers: Callable[..., Any], live: Live) -> None:
    srv, svc = live
    ada, bob = browsers(), browsers()
    sign_in(ada, srv, new_token(svc, "editor", name="Ada", email="ada@example.org")[1])
    sign_in(bob, srv, new_token(svc, "editor", name="Bob", email="bob@example.org")[1])
    for driver in (ada, bob):
        open_item(driver, "workshops/terrabytes-icml25")

    # different fields from the same version: both kept, the second merged
    type_into(ada, "#f-location", "Vancouver, Canada")
    assert save(ada, "City typo") == "Saved."
    type_into(bob, "#f-event", "ICML 2025")
    assert "merged" in save(bob, "Full conference name")
    item = api(srv, "GET", f"{WORKSHOP}?ref=main", new_token(svc, "auditor")[1]).json()
    assert (item["location"], item["event"]) == ("Vancouver, Canada", "ICML 2025")

    # the same field, different values: Bob sees base, theirs and his, and decides
    type_into(ada, "#f-invited_talks", "Announced in May")
    assert "Saved" in save(ada, "Talks date")
    type_into(bob, "#f-invited_talks", "Three invited talks")
    assert "Choose what to keep" in save(bob, "Talks count")
    conflict = find(bob, "#field-invited_talks .conflict")
    assert "TBA" in conflict.find_element(*by(".three div:first-child pre")).text
    assert conflict.find_element(*by("pre.theirs")).text == "Announced in May"
    assert conflict.find_element(*by("pre.yours")).text == "Three invited talks"
    shot(bob, "conflict", docs=True)
    check_axe(bob, "conflict view")
    head = git(svc.store.path, "rev-parse", "main")
    item = api(srv, "GET", f"{WORKSHOP}?ref=main", new_token(svc, "auditor")[1]).json()
    assert item["invited_talks"] == "Announced in May"  # nothing written by the refused save
    button(bob, "Keep mine").click()
    assert save(bob, "Talks count, after seeing Ada's") == "Saved."
    assert git(svc.store.path, "rev-parse", "main~1") == head
    item = api(srv, "GET", f"{WORKSHOP}?ref=main", new_token(svc, "auditor")[1]).json()
    assert item["invited_talks"] == "Three invited talks"
    assert item["location"] == "Vancouver, Canada" and item["event"] == "ICML 2025"


@ONE_BACKEND
def test_markdown_preview_is_inert(browser: Any, live: Live) -> None:
    srv, svc = live
    sign_in(browser, srv, new_token(svc, "editor")[1])
    open_item(browser, "workshops/terrabytes-icml25")
    hostile = (
        "Hello **world** <script>window.pwned = 1</script>\n\n"
        '[click](javascript:window.pwned=2) <img src=x onerror="window.pwned=3">\n\n'
        '<a href="javascript:window.pwned=4">raw</a>'
    )
    type_into(browser, "#f-abstract", hostile)
    wait_text(browser, "#field-abstract .preview", "Hello world")
    preview = browser.find_element(*by("#field-abstract .preview")).get_attribute("innerHTML")
    assert "<strong>world</strong>" in preview
    for bad in ("<script", 'href="javascript', "onerror"):
        assert bad not in preview
    for link in browser.find_elements(*by("#field-abstract .preview a")):
        browser.execute_script("arguments[0].click()", link)
    assert browser.execute_script("return window.pwned === undefined")
    # the textarea keeps the text byte for byte
    assert browser.execute_script("return document.getElementById('f-abstract').value") == hostile


@ONE_BACKEND
def test_history_diff_and_revert(browser: Any, live: Live) -> None:
    srv, svc = live
    _, editor = new_token(svc, "editor", name="Ada", email="ada@example.org")
    edit_by_api(srv, editor, WORKSHOP, {"location": "Vancouver, Canada"})
    sign_in(browser, srv, editor)
    open_item(browser, "workshops/terrabytes-icml25")
    assert len(browser.find_elements(*by(".versions li"))) == 2
    button(browser, "Show differences").click()
    diff = wait_text(browser, "#diff", "location")
    assert "Vancouver, Canada" in diff
    check_axe(browser, "item with history and diff")
    shot(browser, "history")
    restore = [b for b in browser.find_elements(*by(".versions button")) if b.is_displayed()]
    assert len(restore) == 1  # the newest version is the current one
    restore[0].click()
    answer(browser, "Keep the page's own spelling until the organizers decide", "Restore")
    wait_text(browser, "#flash", "Restored")
    item = api(srv, "GET", f"{WORKSHOP}?ref=main", editor).json()
    assert item["location"] == "Vancouvert, Canada"
    log = git(svc.store.path, "log", "-1", "--format=%B", "main")
    assert "Keep the page's own spelling" in log
    wait(browser, lambda d: len(d.find_elements(*by(".versions li"))) == 3)


@ONE_BACKEND
def test_publishing_is_for_admins(browser: Any, live: Live) -> None:
    srv, svc = live
    _, editor = new_token(svc, "editor")
    _, admin = new_token(svc, "admin", name="Adam Admin", email="admin@example.org")
    edit_by_api(srv, editor, "/api/v1/people/valentin-barriere", {"affiliation": "Somewhere"})
    edit_by_api(srv, editor, WORKSHOP, {"location": "Vancouver, Canada"})

    sign_in(browser, srv, editor, "publish")
    wait_text(browser, ".notice", "Only admins publish")
    assert "Publish everything" not in buttons(browser)
    assert not [b for b in buttons(browser) if b.startswith("Publish")]
    open_item(browser, "workshops/terrabytes-icml25")
    assert "Publish this item" not in buttons(browser)
    assert api(srv, "POST", "/api/v1/publish", editor).status_code == 403

    button(browser, "Sign out").click()
    sign_in(browser, srv, admin, "publish")
    wait_text(browser, "main", "people/valentin-barriere")
    assert "Somewhere" in text_of(browser, "main")  # field by field
    check_axe(browser, "publishing")
    shot(browser, "publishing")
    button(browser, "Publish people/valentin-barriere").click()
    answer(browser, "New affiliation", "Publish")
    wait_text(browser, "#flash", "Published people/valentin-barriere")
    person = api(srv, "GET", "/api/v1/people/valentin-barriere").json()
    assert person["affiliation"] == "Somewhere"
    assert api(srv, "GET", WORKSHOP).json()["location"] == "Vancouvert, Canada"
    button(browser, "Publish everything").click()
    answer(browser, "Typo fixed", "Publish everything")
    wait_text(browser, "#flash", "Published everything")
    assert api(srv, "GET", WORKSHOP).json()["location"] == "Vancouver, Canada"
    wait_text(browser, "main", "Everything is published")
    find(browser, "#release-name").send_keys("v1")
    button(browser, "Create release").click()
    wait_text(browser, "#flash", "Release v1 created")
    assert [r["name"] for r in api(srv, "GET", "/api/v1/releases").json()] == ["v1"]


@ONE_BACKEND
def test_create_a_talk_and_refuse_deleting_its_speaker(browser: Any, live: Live) -> None:
    from selenium.webdriver.support.ui import Select

    srv, svc = live
    _, editor = new_token(svc, "editor")
    r = api(srv, "POST", "/api/v1/people", editor, json={"name": "Second Speaker"})
    assert r.status_code == 201
    sign_in(browser, srv, editor, "t/talks/new")
    button(browser, "Create").click()  # no title yet: the 422 shows beside the field
    assert "Length must be" in wait(browser, lambda d: text_of(d, "#e-title"))
    assert find(browser, "#f-title").get_attribute("aria-invalid") == "true"
    assert "Not saved" in text_of(browser, "#flash")
    find(browser, "#f-title").send_keys("Opening talk")
    assert not text_of(browser, "#e-title")
    picker = find(browser, "#f-speakers")
    wait(browser, lambda d: len(Select(picker).options) == 3)  # the prompt and two people
    for name in ("Valentin Barriere (valentin-barriere)", "Second Speaker (second-speaker)"):
        Select(find(browser, "#f-speakers")).select_by_visible_text(name)
        button(browser, "Add", "#field-speakers").click()
    assert "Second Speaker" in text_of(browser, "#field-speakers .chosen")
    Select(find(browser, "#f-status")).select_by_visible_text("confirmed")
    check_axe(browser, "new talk form")
    type_into(browser, "#reason", "First talk of the programme")
    button(browser, "Create").click()
    wait_text(browser, "#flash", "Created talks/opening-talk")
    talk = api(srv, "GET", "/api/v1/talks/opening-talk?ref=main", editor).json()
    assert talk["speakers"] == ["valentin-barriere", "second-speaker"]
    assert talk["status"] == "confirmed"

    browser.execute_script("location.hash = '#/t/people'")
    button(browser, "Delete Second Speaker").click()
    answer(browser, "Not coming", "Delete")
    wait_text(browser, "#flash", "talks/opening-talk")
    assert "Not deleted" in text_of(browser, "#flash")
    assert api(srv, "GET", "/api/v1/people/second-speaker?ref=main", editor).status_code == 200
    check_axe(browser, "people list")


@ONE_BACKEND
def test_unsaved_work_survives_a_reload_and_sign_out_leaves_no_trace(
    browser: Any, live: Live
) -> None:
    srv, svc = live
    _, editor = new_token(svc, "editor")
    sign_in(browser, srv, editor)
    open_item(browser, "workshops/terrabytes-icml25")
    leaving = "const e = new Event('beforeunload', {cancelable: true}); dispatchEvent(e);"
    assert not browser.execute_script(leaving + "return e.defaultPrevented")  # nothing unsaved
    type_into(browser, "#f-location", "Vancouver, BC, Canada")
    assert browser.execute_script(leaving + "return e.defaultPrevented")  # the browser asks
    browser.refresh()
    _accept_leave_prompt(browser)
    wait(browser, lambda d: d.find_elements(*by(".versions li")))
    assert find(browser, "#f-location").get_attribute("value") == "Vancouver, BC, Canada"
    assert "were restored" in text_of(browser, "main .notice")
    assert "Vancouver, BC" in json.dumps(browser.execute_script("return {...sessionStorage}"))

    button(browser, "Sign out").click()
    answer(browser, None, "Discard and sign out")
    find(browser, "#token")
    storage = browser.execute_script(
        "return [JSON.stringify({...sessionStorage}), JSON.stringify({...localStorage}),"
        " document.cookie, location.href]"
    )
    for place in storage:
        assert editor not in place
    assert storage[1] == "{}" and storage[2] == ""
    assert "Vancouver, BC" not in storage[0]
    assert api(srv, "GET", f"{WORKSHOP}?ref=main", editor).json()["location"] == (
        "Vancouvert, Canada"
    )


def _accept_leave_prompt(driver: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with contextlib.suppress(NoAlertPresentException):  # "leave the page?": yes
        driver.switch_to.alert.accept()


@ONE_BACKEND
def test_auditors_read_everything_and_change_nothing(browser: Any, live: Live) -> None:
    srv, svc = live
    edit_by_api(srv, new_token(svc, "editor")[1], WORKSHOP, {"location": "Vancouver, Canada"})
    sign_in(browser, srv, new_token(svc, "auditor")[1])
    open_item(browser, "workshops/terrabytes-icml25")
    wait_text(browser, "main", "Read only")
    assert find(browser, "#f-location").get_attribute("readonly") is not None
    labels = buttons(browser)
    for refused in ("Save", "Delete", "Publish this item", "Restore this version"):
        assert refused not in labels
    assert "Show differences" in labels
    check_axe(browser, "read-only item")
    browser.execute_script("location.hash = '#/t/talks'")
    wait_text(browser, "main", "0 talks")
    assert not [b for b in buttons(browser) if b.startswith(("New", "Delete"))]


@ONE_BACKEND
@pytest.mark.parametrize("width", [360, 1280])
def test_every_screen_is_accessible_and_fits(
    browsers: Callable[..., Any], live: Live, width: int
) -> None:
    srv, svc = live
    driver = browsers(width, 900)
    driver.get(srv.url + "/edit")
    find(driver, "#token")
    check_axe(driver, "sign in")
    sign_in(driver, srv, new_token(svc, "admin")[1])
    screens = {
        "dashboard": ("#/", "#count-people .count"),
        "list": ("#/t/references", "tbody tr"),
        "item": ("#/t/workshops/terrabytes-icml25", ".versions li"),
        "person": ("#/t/people/valentin-barriere", ".versions li"),
        "new": ("#/t/references/new", "#f-key"),
        "publishing": ("#/publish", "#release-name"),
    }
    for name, (hash_, ready) in screens.items():
        driver.execute_script("location.hash = arguments[0]", hash_)
        find(driver, ready)
        wait(driver, lambda d: "Loading" not in d.find_element(*by("main")).text)
        wait(driver, lambda d: all(e.text != "…" for e in d.find_elements(*by(".count"))))
        check_axe(driver, name)
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} scrolls sideways at {width} px"
        shot(driver, f"{name}-{width}")
    button(driver, "Publish everything").click()  # a dialog
    find(driver, "dialog[open]")
    check_axe(driver, "dialog")
    button(driver, "Cancel", "dialog[open]").click()
    no_console_errors(driver)


@ONE_BACKEND
def test_the_app_is_small_and_same_origin(live: Live) -> None:
    srv, _svc = live
    page = requests.get(srv.url + "/edit", timeout=10)
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe" not in csp
    assert "<script>" not in page.text and "http" not in page.text.replace("https://", "")
    assets = [
        requests.get(srv.url + f"/static/edit/{name}", timeout=10)
        for name in ("edit.js", "edit.css")
    ]
    assert all(a.status_code == 200 for a in assets)
    assert len(page.content) + sum(len(a.content) for a in assets) < 200_000


def set_value(driver: Any, css: str, value: str) -> None:
    """Set a control's value as typing would (date pickers differ by locale) and say so."""
    el = find(driver, css)
    driver.execute_script(
        "arguments[0].value = arguments[1];"
        "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
        el,
        value,
    )


@ONE_BACKEND
def test_a_type_declared_in_types_py_gets_its_form(browser: Any, live: Live) -> None:
    """Sessions and calls for papers came after the app: their forms come from the spec."""
    from selenium.webdriver.support.ui import Select

    srv, svc = live
    _, editor = new_token(svc, "editor")
    sign_in(browser, srv, editor, "t/sessions/new")
    picker = find(browser, "#f-workshop")
    wait(browser, lambda d: len(Select(picker).options) == 2)
    Select(picker).select_by_visible_text("TerraBytes @ ICML25 (terrabytes-icml25)")
    find(browser, "#f-title").send_keys("Opening remarks")
    Select(find(browser, "#f-kind")).select_by_visible_text("opening")
    set_value(browser, "#f-start", "2025-07-19T09:00:00")
    set_value(browser, "#field-start input.offset", "-07:00")
    set_value(browser, "#f-end", "2025-07-19T09:15:00")
    set_value(browser, "#field-end input.offset", "-07:00")
    set_value(browser, "#f-zone", "America/Vancouver")
    check_axe(browser, "new session form")
    button(browser, "Create").click()
    wait(browser, lambda d: d.find_element(*by("#flash")).text)
    shot(browser, "new-session")
    wait_text(browser, "#flash", "Created sessions/opening-remarks")
    s = api(srv, "GET", "/api/v1/sessions/opening-remarks?ref=main", editor).json()
    assert (s["start"], s["end"], s["zone"]) == (
        "2025-07-19T09:00:00-07:00", "2025-07-19T09:15:00-07:00", "America/Vancouver",
    )  # fmt: skip

    browser.execute_script("location.hash = '#/t/calls-for-papers/new'")
    Select(find(browser, "#f-workshop")).select_by_visible_text(
        "TerraBytes @ ICML25 (terrabytes-icml25)"
    )
    find(browser, "#f-title").send_keys("Call for papers")
    button(browser, "Add deadline").click()
    entry = find(browser, "#field-deadlines .entries li")
    entry.find_element(*by("input[type=text]")).send_keys("Submission")
    browser.execute_script(
        "const i = arguments[0].querySelector('input[type=datetime-local]');"
        "i.value = '2025-05-30T23:59:00'; i.dispatchEvent(new Event('input', {bubbles: true}));"
        "const o = arguments[0].querySelector('input.offset');"
        "o.value = '-12:00'; o.dispatchEvent(new Event('input', {bubbles: true}));",
        entry,
    )
    assert entry.find_element(*by("input[list]")).get_attribute("value") == "AoE"  # the default
    check_axe(browser, "new call for papers form")
    shot(browser, "call-for-papers")
    button(browser, "Create").click()
    wait_text(browser, "#flash", "Created calls-for-papers/call-for-papers")
    call = api(srv, "GET", "/api/v1/calls-for-papers/call-for-papers?ref=main", editor).json()
    assert call["deadlines"] == [
        {"name": "Submission", "due": "2025-05-30T23:59:00-12:00", "zone": "AoE"}
    ]


@ONE_BACKEND
def test_a_revoked_token_asks_to_sign_in_and_keeps_the_work(browser: Any, live: Live) -> None:
    from cms import auth

    srv, svc = live
    token_id, old = new_token(svc, "editor")
    sign_in(browser, srv, old)
    open_item(browser, "workshops/terrabytes-icml25")
    type_into(browser, "#f-location", "Vancouver, Canada")
    with svc.accounts_session() as session:
        auth.revoke_token(session, token_id)
    type_into(browser, "#reason", "Typo")
    button(browser, "Save").click()
    wait_text(browser, "#flash", "no longer accepted")
    find(browser, "#token")  # the sign-in screen, the old token forgotten
    assert old not in json.dumps(browser.execute_script("return {...sessionStorage}"))
    sign_in(browser, srv, new_token(svc, "editor")[1], "t/workshops/terrabytes-icml25")
    open_item(browser, "workshops/terrabytes-icml25")
    assert find(browser, "#f-location").get_attribute("value") == "Vancouver, Canada"
    assert save(browser, "Typo, after signing in again") == "Saved."
    assert (
        api(srv, "GET", WORKSHOP + "?ref=main", new_token(svc, "auditor")[1]).json()["location"]
        == "Vancouver, Canada"
    )


@ONE_BACKEND
def test_the_keyboard_reaches_everything_and_focus_shows(browser: Any, live: Live) -> None:
    from selenium.webdriver.common.keys import Keys

    srv, svc = live
    browser.get(srv.url + "/edit")
    find(browser, "#token")
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).send_keys(Keys.TAB).perform()  # the skip link first, shown on focus
    skip = browser.switch_to.active_element
    assert skip.text == "Skip to content" and skip.is_displayed()
    assert browser.execute_script(
        "return getComputedStyle(document.activeElement).outlineStyle"
    ) not in ("none", "")
    token = new_token(svc, "editor")[1]
    for _ in range(10):  # Tab on to the token field, type, Enter signs in
        if browser.switch_to.active_element.get_attribute("id") == "token":
            break
        browser.switch_to.active_element.send_keys(Keys.TAB)
    browser.switch_to.active_element.send_keys(token, Keys.ENTER)
    wait(browser, lambda d: d.find_element(*by("#nav")).is_displayed())
    open_item(browser, "workshops/terrabytes-icml25")
    unreachable = browser.execute_script(
        "return [...document.querySelectorAll('main button, main input, main select,"
        " main textarea, main a[href]')].filter(e => e.offsetParent !== null &&"
        " (e.tabIndex < 0 || e.disabled)).map(e => e.outerHTML.slice(0, 80))"
    )
    assert unreachable == []
    # Escape closes a dialog and gives the focus back to the page
    button(browser, "Delete").click()
    find(browser, "dialog[open]").send_keys(Keys.ESCAPE)
    wait(browser, lambda d: not d.find_elements(*by("dialog[open]")))


@ONE_BACKEND
def test_upload_a_logo_with_its_alt_text(browser: Any, live: Live, tmp_path: Path) -> None:
    """The media form comes from the spec too: a file input, refusals shown where they belong."""
    import hashlib
    import io

    from PIL import Image

    srv, svc = live
    _, editor = new_token(svc, "editor")
    picture = io.BytesIO()
    Image.new("RGB", (120, 60), "darkorange").save(picture, "PNG")
    logo = tmp_path / "terrabytes-logo.png"
    logo.write_bytes(picture.getvalue())
    sign_in(browser, srv, editor, "t/media/new")
    find(browser, "#f-file").send_keys(str(logo))
    wait(browser, lambda d: d.execute_script(
        "const i = document.querySelector('.media-preview'); return !i.hidden && i.naturalWidth"))  # fmt: skip
    button(browser, "Create").click()  # no alt text: refused, said at the field
    wait_text(browser, "#e-alt", "text alternative")
    assert find(browser, "#f-alt").get_attribute("aria-invalid") == "true"
    find(browser, "#f-alt").send_keys("TerraBytes logo: an orange rectangle")
    find(browser, "#f-licence").send_keys("CC-BY-4.0")
    check_axe(browser, "new media form")
    button(browser, "Create").click()
    digest = hashlib.sha256(logo.read_bytes()).hexdigest()
    wait_text(browser, "#flash", f"Created media/{digest}")
    wait(browser, lambda d: d.execute_script(
        "const i = document.querySelector('.media-facts img'); return i && i.naturalWidth"))  # fmt: skip
    assert "image/png" in text_of(browser, ".media-facts figcaption")
    assert "120 \u00d7 60 pixels" in text_of(browser, ".media-facts figcaption")
    assert find(browser, "#f-name").get_attribute("value") == "terrabytes-logo.png"
    check_axe(browser, "media item")
    shot(browser, "media")
    no_console_errors(browser)
    item = api(srv, "GET", f"/api/v1/media/{digest}?ref=main", editor).json()
    assert (item["alt"], item["licence"]) == ("TerraBytes logo: an orange rectangle", "CC-BY-4.0")
    # a sponsor's logo is chosen among the images, and shown once chosen
    from selenium.webdriver.support.ui import Select

    browser.execute_script("location.hash = '#/t/sponsors/new'")
    logo_picker = find(browser, "#f-logo")
    wait(browser, lambda d: len(Select(logo_picker).options) == 2)
    Select(logo_picker).select_by_visible_text(f"terrabytes-logo.png ({digest[:12]}\u2026)")
    wait(browser, lambda d: d.execute_script(
        "const i = document.querySelector('#field-logo .media-preview');"
        "return !i.hidden && i.naturalWidth && i.alt"))  # fmt: skip
    check_axe(browser, "new sponsor form with a logo")
    shot(browser, "sponsor-logo")
