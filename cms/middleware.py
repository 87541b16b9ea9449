"""Every request: a request id, security headers, a structured access log line, rate limits."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, has_request_context, request
from flask_limiter import ApplicationLimit, Limiter
from flask_limiter.util import get_remote_address

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
access_log = logging.getLogger("cms.access")


class RequestIdFilter(logging.Filter):
    """Adds the current request id to every log record (`-` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def _start() -> None:
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
    g.started = time.perf_counter()


def _finish(response: Response) -> Response:
    response.headers["X-Request-Id"] = g.get("request_id", "")
    if response.status_code not in (429, 503, 507):  # the limiter adds it to every answer
        response.headers.pop("Retry-After", None)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if response.mimetype == "text/html" and response.status_code != 304:
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; "
            "img-src 'self' data: https:; frame-ancestors 'none'; base-uri 'none'",
        )
    if access_log.isEnabledFor(logging.INFO):
        access_log.info(
            json.dumps(
                {
                    "request_id": g.get("request_id"),
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "ms": round(
                        (time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2
                    ),
                    "remote": request.remote_addr,
                    "actor": getattr(g.get("actor"), "token_id", None),
                }
            )
        )
    return response


def _token_key() -> str:
    header = request.headers.get("Authorization", "")
    if not header:
        return f"ip:{get_remote_address()}"
    return "token:" + hashlib.sha256(header.encode("latin-1", "replace")).hexdigest()[:32]


def _not_a_write() -> bool:
    return request.method not in WRITE_METHODS


def _no_credentials() -> bool:
    return "Authorization" not in request.headers


def _public_read() -> bool:
    return _no_credentials() and _not_a_write()


def configure_logging(enabled: bool) -> None:
    """One JSON line per request on `cms.access`; other CMS logs carry the request id too."""
    logger = logging.getLogger("cms")
    if enabled and not logger.handlers:
        handler = logging.StreamHandler()
        handler.addFilter(RequestIdFilter())
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
        )
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        access = logging.getLogger("cms.access")
        access_handler = logging.StreamHandler()
        access_handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(access_handler)
        access.propagate = False


def init_app(app: Flask) -> Limiter:
    app.before_request(_start)
    app.after_request(_finish)
    configure_logging(bool(app.config["ACCESS_LOG"]) and not app.testing)
    limits: list[Any] = [
        # a wrong token costs: guessing is slowed, honest clients without a token are not
        ApplicationLimit(
            app.config["RATELIMIT_AUTH_FAILURES"],
            key_function=get_remote_address,
            scope="auth-failures",
            exempt_when=_no_credentials,
            deduct_when=lambda response: response.status_code == 401,
        ),
        ApplicationLimit(
            app.config["RATELIMIT_WRITES"],
            key_function=_token_key,
            scope="writes",
            exempt_when=_not_a_write,
        ),
    ]
    limiter = Limiter(
        key_func=get_remote_address,
        app=app,
        application_limits=limits,
        storage_uri=app.config["RATELIMIT_STORAGE_URI"],
        headers_enabled=True,
        retry_after="delta-seconds",
        enabled=bool(app.config["RATELIMIT_ENABLED"]),
        key_prefix=app.config["RATELIMIT_KEY_PREFIX"],
    )

    # Neither limit can apply to a public read (no credentials to fail, no write to count):
    # the limiter's public filter exempts it before any limit is looked at.
    limiter.request_filter(_public_read)
    return limiter
