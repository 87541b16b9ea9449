"""Fixtures: a fresh app on a fresh repository and database per test, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from cms import auth
from cms.app import create_app
from cms.service import ContentService

PG_ADMIN_URL = os.environ.get("CMS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BACKENDS = ["sqlite", "postgresql"]


def git(repo: Path, *args: str) -> str:
    """Plain git on a repository, with the user's config ignored."""
    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
    proc = subprocess.run(
        ["git", f"--git-dir={repo}", *args], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def assert_fsck_clean(repo: Path) -> None:
    git(repo, "fsck", "--strict", "--no-progress")
    assert not (repo / "index").exists(), "a bare repository must never get an index file"


def _pg_connect() -> Any:
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, connect_timeout=3, autocommit=True)


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    try:
        _pg_connect().close()
    except Exception as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is unreachable under CI: {exc}")
        return False
    return True


def make_db_url(backend: str, tmp_path: Path, available: bool) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'cms.sqlite3'}"
        return
    if not available:
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL} (CI=true makes this fail)")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with _pg_connect() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    finally:
        with _pg_connect() as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_available: bool
) -> Iterator[str]:
    yield from make_db_url(request.param, tmp_path, postgres_available)


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return tmp_path / "instance"


@pytest.fixture
def config(instance: Path, db_url: str) -> dict[str, Any]:
    return {"INSTANCE_PATH": str(instance), "DATABASE_URL": db_url, "TESTING": True}


@pytest.fixture
def app(config: dict[str, Any]) -> Iterator[Flask]:
    app = create_app(config)
    yield app
    svc: ContentService = app.extensions["cms"]
    svc.dispose()
    assert_fsck_clean(svc.store.path)


@pytest.fixture
def svc(app: Flask) -> ContentService:
    service: ContentService = app.extensions["cms"]
    return service


@pytest.fixture
def repo(svc: ContentService) -> Path:
    return svc.store.path


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def new_token(svc: ContentService, role: str, name: str = "", email: str = "") -> tuple[int, str]:
    with svc.accounts_session() as session:
        token, secret = auth.create_token(
            session, name or f"Test {role.title()}", email or f"{role}@example.org", role
        )
        return token.id, secret


@pytest.fixture
def tokens(svc: ContentService) -> dict[str, dict[str, str]]:
    """Authorization headers for each role."""
    out = {}
    for role in auth.ROLES:
        _, secret = new_token(svc, role, name="Valentin Barriere" if role == "editor" else "")
        out[role] = {"Authorization": f"Bearer {secret}"}
    return out


@pytest.fixture
def editor(tokens: dict[str, dict[str, str]]) -> dict[str, str]:
    return tokens["editor"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`cms serve` in its own process group, so SIGKILL takes master and workers at once."""

    def __init__(
        self, instance: Path, db_url: str, workers: int, env: dict[str, str] | None = None
    ) -> None:
        self.instance, self.db_url, self.workers = instance, db_url, workers
        self.env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = instance.parent / f"server-{self.port}.log"

    def start(self) -> None:
        env = {
            **os.environ,
            "CMS_INSTANCE_PATH": str(self.instance),
            "CMS_DATABASE_URL": self.db_url,
            **self.env,
        }
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cms.cli", "serve", "--port", str(self.port),
                 "--workers", str(self.workers)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.05)
        self.kill()
        tail = self.log_path.read_text(errors="replace")[-3000:]
        raise AssertionError(f"the server did not start within 30 s; its log ends:\n{tail}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)
        elif self.proc:
            # the master is gone; make sure no orphaned worker is left either
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


# ---------------------------------------------------------------- browsers (headless Chromium)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOTS = Path(os.environ.get("CMS_SCREENSHOTS", tempfile.gettempdir()))


def start_browser(width: int = 1200, height: int = 1600) -> Any:
    """Debian's chromium through Selenium; skipped without it, except under CI."""
    if not (CHROMIUM and CHROMEDRIVER):
        if IN_CI:
            pytest.fail("chromium and chromedriver must be installed under CI (.ci/run does it)")
        pytest.skip("no Chromium here: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP reports, errors
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    if width < 500:  # a window is never narrower than 500 px: emulate the phone's viewport
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    return driver


@pytest.fixture
def browsers() -> Iterator[Callable[..., Any]]:
    """Start as many browsers as a test needs (two editors at once); all quit at the end."""
    started: list[Any] = []

    def start(width: int = 1200, height: int = 1600) -> Any:
        started.append(start_browser(width, height))
        return started[-1]

    yield start
    for driver in started:
        driver.quit()


@pytest.fixture
def browser(browsers: Callable[..., Any]) -> Any:
    return browsers()


@pytest.fixture
def live(
    config: dict[str, Any], instance: Path, db_url: str
) -> Iterator[tuple[Server, ContentService]]:
    """The app served by `cms serve` (one worker), with an in-process service on the same
    repository and database to make tokens and look at the state."""
    app = create_app(config)
    svc: ContentService = app.extensions["cms"]
    srv = Server(instance, db_url, workers=1)
    srv.start()
    yield srv, svc
    srv.kill(signal.SIGTERM)
    svc.dispose()


def wait_for_text(driver: Any, element_id: str, text: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(lambda d: text in d.find_element(By.ID, element_id).text)
    return str(driver.find_element(By.TAG_NAME, "body").text)
