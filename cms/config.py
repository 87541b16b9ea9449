"""Defaults for every setting; CMS_* environment variables and create_app(test_config) override."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# the seed content, shipped in the package (a link to content_repo/ in a checkout)
PACKAGED_SEED = Path(__file__).resolve().parent / "seed"


class ConfigError(Exception):
    """A setting that cannot work: the server refuses to start, saying which and why."""


DEFAULTS: dict[str, Any] = {
    # where the data lives; relative paths are inside the instance folder
    "CONTENT_REPO": "content.git",
    "DATABASE_URL": None,  # default: sqlite:///<instance>/cms.sqlite3
    # tokens; default: sqlite:///<instance>/accounts.sqlite3 beside a SQLite index, and the
    # index's own database when that is PostgreSQL (shared by every host, in tables of their
    # own that a rebuild never drops)
    "ACCOUNTS_DATABASE_URL": None,
    # what a new repository starts with: None is the packaged TerraBytes seed, "" nothing
    "SEED_PATH": None,
    # who commits: the editor is the author, the CMS the committer
    "COMMITTER_NAME": "TerraBytes CMS",
    "COMMITTER_EMAIL": "cms@terrabytes.invalid",
    "LOCK_TIMEOUT": 10.0,
    # one JSON line per request (with its request id) on stderr
    "ACCESS_LOG": True,
    # `git gc --auto` in the background after this many commits by one worker (0: never)
    "GC_EVERY": 500,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    # a type with more items than this on a ref is read from SQL a page at a time instead of
    # being held in every worker's memory
    "SNAPSHOT_MAX_ITEMS": 1000,
    # the largest media file (image, PDF) an editor may upload; larger is 413
    "MEDIA_MAX_BYTES": 5 * 1024 * 1024,
    # browsers on these origins may call the API (comma-separated; "*" for any)
    "CORS_ORIGINS": "",
    # an off-site copy: any URL git can push to; pushed in the background after every commit
    "MIRROR_URL": "",
    "MIRROR_RETRY_MAX": 60.0,
    # seconds between two rounds of the runner (scheduled publications); 0: no runner
    "RUNNER_INTERVAL": 1.0,
    # webhooks: seconds to connect and read; first wait after a failure (doubling, jittered);
    # how long a message is retried before it is given up
    "WEBHOOK_TIMEOUT": 5.0,
    "WEBHOOK_RETRY_BASE": 5.0,
    "WEBHOOK_RETRY_WINDOW": 86400.0,
    # rate limits (Flask-Limiter): in memory per worker, or shared through e.g. redis://
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_KEY_PREFIX": "cms",  # tells the counters of several sites in one Redis apart
    "RATELIMIT_AUTH_FAILURES": "300/minute",
    "RATELIMIT_WRITES": "1200/minute",
    # the API and its spec
    "API_TITLE": "TerraBytes CMS",
    "API_VERSION": "1.0.0",
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    # /docs: Swagger UI served from the package (cms/static/vendor), see cms/frontend.py
}


def default_instance_path() -> str:
    return os.environ.get("CMS_INSTANCE_PATH") or str(Path.cwd() / "instance")
