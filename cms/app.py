"""The application factory: config, the content service, the API and its error mapping."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from flask import Flask
from flask_cors import CORS
from flask_smorest import Api

from cms import errors, frontend, middleware
from cms.api import (
    common,
    content,
    editing,
    git_http,
    history,
    media,
    ops,
    previews,
    schedules,
    site,
    webhooks,
)
from cms.config import DEFAULTS, PACKAGED_SEED, ConfigError, default_instance_path
from cms.database import make_engine
from cms.service import ContentService
from cms.service.mirror import Mirror
from cms.service.notify import DeliveryPolicy
from cms.service.runner import Runner
from cms.service.versions import Versions
from cms.store.git import GitStore
from cms.store.objects import Identity


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    test_config = dict(test_config or {})
    instance_path = test_config.pop("INSTANCE_PATH", None) or default_instance_path()
    app = Flask(__name__, instance_path=str(instance_path), instance_relative_config=True)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("CMS")
    app.config.update(test_config)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.compact = True  # type: ignore[attr-defined]

    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    repo_path = instance / app.config["CONTENT_REPO"]
    db_url = app.config["DATABASE_URL"] or f"sqlite:///{instance / 'cms.sqlite3'}"
    app.config["DATABASE_URL"] = db_url
    accounts_url = app.config["ACCOUNTS_DATABASE_URL"] or (
        f"sqlite:///{instance / 'accounts.sqlite3'}" if db_url.startswith("sqlite") else db_url
    )
    app.config["ACCOUNTS_DATABASE_URL"] = accounts_url

    svc = ContentService(
        GitStore(repo_path),
        make_engine(db_url),
        Identity(app.config["COMMITTER_NAME"], app.config["COMMITTER_EMAIL"]),
        lock_timeout=float(app.config["LOCK_TIMEOUT"]),
        accounts_engine=make_engine(accounts_url) if accounts_url != db_url else None,
    )
    svc.bootstrap(seed_path(app.config["SEED_PATH"]))
    svc.gc_every = int(app.config["GC_EVERY"])
    svc.snapshot_max_items = int(app.config["SNAPSHOT_MAX_ITEMS"])
    if app.config["MIRROR_URL"]:
        svc.mirror = Mirror(
            svc.store, app.config["MIRROR_URL"], float(app.config["MIRROR_RETRY_MAX"])
        )
        svc.mirror.notify()  # catch up whatever was committed while no process was pushing
    policy = DeliveryPolicy(
        timeout=float(app.config["WEBHOOK_TIMEOUT"]),
        retry_base=float(app.config["WEBHOOK_RETRY_BASE"]),
        retry_window=float(app.config["WEBHOOK_RETRY_WINDOW"]),
    )
    svc.runner = Runner(svc, float(app.config["RUNNER_INTERVAL"]), policy)
    # the runner's thread starts with the first request a process serves: in every gunicorn
    # worker, never in a CLI command
    app.before_request(svc.runner.ensure_started)
    app.extensions["cms"] = svc
    app.extensions["cms_versions"] = Versions(svc)

    for name, (converter, _) in common.CONVERTERS.items():
        app.url_map.converters[name] = converter
    api = StrictApi(app, spec_kwargs={"info": {"description": API_DESCRIPTION}})
    for converter, param_schema in common.CONVERTERS.values():
        api.register_converter(converter, param_schema)
    api.spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "description": "A token from `cms tokens create`"},
    )
    common.register_error_responses(api)
    content.register(api)
    api.register_blueprint(media.files)
    api.register_blueprint(history.blp)
    api.register_blueprint(site.blp)
    api.register_blueprint(schedules.blp)
    api.register_blueprint(webhooks.blp)
    api.register_blueprint(previews.blp)
    api.register_blueprint(editing.blp)
    api.register_blueprint(ops.blp)
    app.extensions["cms_api"] = api
    origins = [o.strip() for o in str(app.config["CORS_ORIGINS"] or "").split(",") if o.strip()]
    if origins:
        CORS(
            app,
            resources={r"/api/*": {"origins": origins}, r"/openapi.json": {"origins": origins}},
            expose_headers=[
                "ETag",
                "X-Pagination",
                "X-Content-Revision",
                "X-Merged",
                "Location",
                "Retry-After",
            ],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "X-Change-Reason",
                "X-Merge-Base",
            ],
            methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            max_age=600,
        )
    app.register_blueprint(git_http.blp)
    app.register_blueprint(frontend.blp)  # not in the spec: git's own protocol
    errors.register_error_handlers(app)
    middleware.init_app(app)
    return app


def seed_path(setting: str | None) -> Path | None:
    """The seed folder: the packaged one by default; a configured one must exist."""
    if setting is None:
        return PACKAGED_SEED
    if not setting:
        return None
    path = Path(setting)
    if not path.is_dir():
        raise ConfigError(
            f"CMS_SEED_PATH={setting!r} is not a folder (unset it for the built-in seed)"
        )
    return path


class StrictApi(Api):
    """No catch-all `default` response: every status an operation returns is documented.

    The spec is written when first asked for (`/openapi.json`, `cms openapi`), not while the
    app is made: documenting the blueprints was two thirds of `create_app`, which every worker
    and every test runs, and most never read the spec. `register_blueprint` below is
    flask-smorest's own (0.47), with its `register_views_in_doc` call and tag put off until
    then; flask-smorest offers no public switch for it. An upgrade that changes it fails
    `tests/test_openapi.py` (the spec drift test compares a fresh app's spec with the
    committed file) and `test_the_spec_is_documented_lazily`.
    """

    DEFAULT_ERROR_RESPONSE_NAME = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._undocumented: list[tuple[Any, str, Any]] = []
        self._documenting = threading.Lock()
        super().__init__(*args, **kwargs)

    def register_blueprint(self, blp: Any, *, parameters: Any = None, **options: Any) -> None:
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        self._undocumented.append((blp, name, parameters))

    @property
    def spec(self) -> Any:
        with self._documenting:
            while self._undocumented:
                blp, name, parameters = self._undocumented.pop(0)
                blp.register_views_in_doc(
                    self, self._app, self._spec, name=name, parameters=parameters
                )
                self._spec.tag({"name": name, "description": blp.description})
        return self._spec

    @spec.setter
    def spec(self, value: Any) -> None:
        self._spec = value


API_DESCRIPTION = """\
The content of scientific workshop sites as JSON. Every edit is one git commit.

Reads without a token see the published site; `?ref=main` (auditor token or above) shows
drafts. Every item carries an `ETag` (its git blob id); writes to an existing item need it
in `If-Match`. Errors share one JSON shape: `code`, `status`, `message`, `errors`.
"""
