"""Domain errors carry data; this module alone turns them (and every HTTP error) into JSON."""

from __future__ import annotations

import errno
import logging
from typing import Any

from flask import Flask, Response, jsonify
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLTimeoutError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

log = logging.getLogger(__name__)


class CMSError(Exception):
    """Base of the errors a client can cause or meet; status and payload say how to answer."""

    status = 400
    headers: dict[str, str] = {}

    def __init__(self, message: str, *, errors: dict[str, Any] | None = None, **extra: Any):
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.extra = extra


class BadRequest(CMSError):
    status = 400


class Unauthorized(CMSError):
    status = 401
    headers = {"WWW-Authenticate": 'Bearer realm="cms"'}


class Forbidden(CMSError):
    status = 403


class NotFound(CMSError):
    status = 404


class Conflict(CMSError):
    status = 409


class StaleETag(CMSError):
    """412: the body carries the current item and its ETag, so a client can merge and retry."""

    status = 412

    def __init__(self, current: dict[str, Any] | None, etag: str | None) -> None:
        super().__init__(
            "The item changed since you read it: merge with 'current' and retry with its ETag."
            if current is not None
            else "The item no longer exists.",
            current=current,
            etag=etag,
        )


class MergeConflict(CMSError):
    """409: both sides changed the same fields differently; nothing was written."""

    status = 409

    def __init__(
        self, conflicts: dict[str, Any], current: dict[str, Any] | None, etag: str | None
    ) -> None:
        super().__init__(
            f"Both you and someone else changed {', '.join(conflicts)}: choose for each field "
            "and retry with X-Merge-Base set to this ETag.",
            conflicts=conflicts,
            current=current,
            etag=etag,
        )


class Invalid(CMSError):
    status = 422


class PreconditionRequired(CMSError):
    status = 428


class Unavailable(CMSError):
    status = 503
    headers = {"Retry-After": "2"}


class InsufficientStorage(CMSError):
    status = 507
    headers = {"Retry-After": "30"}


class RepositoryFailure(Exception):
    """The content repository could not be read or written: not the client's doing."""


def error_response(
    status: int,
    message: str,
    *,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    name: str | None = None,
    **extra: Any,
) -> Response:
    payload: dict[str, Any] = {
        "code": status,
        "status": name or HTTP_STATUS_CODES.get(status, "Error"),
        "message": message,
    }
    if errors:
        payload["errors"] = errors
    payload.update({k: v for k, v in extra.items() if v is not None})
    response = jsonify(payload)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def handle_cms_error(exc: CMSError) -> Response:
    return error_response(
        exc.status, exc.message, errors=exc.errors, headers=exc.headers, **exc.extra
    )


def handle_http_exception(exc: HTTPException) -> Response:
    """Every werkzeug/webargs error as flask-smorest's JSON, keeping headers it must carry."""
    code = exc.code or 500
    if isinstance(exc, InternalServerError):
        original = getattr(exc, "original_exception", None)
        if original is not None and not isinstance(original, HTTPException):
            return handle_unexpected(original)
    data = getattr(exc, "data", None) or {}
    headers = {
        k: v for k, v in exc.get_headers() if k.lower() not in ("content-type", "content-length")
    }
    headers.update(data.get("headers") or {})
    if code == 429:
        data = {"message": f"Too many requests ({exc.description}): retry after Retry-After."}
    errors = data.get("errors") or data.get("messages")
    message = str(data.get("message") or "") or (
        "Some fields or parameters are invalid: see errors." if errors else str(exc.description)
    )
    return error_response(code, message, errors=errors, headers=headers, name=exc.name)


def handle_unexpected(exc: BaseException) -> Response:
    """Outages (database down, disk full, storage read-only or failing) are 503/507 with
    Retry-After; anything else is a bug: logged with its traceback, answered 500."""
    if isinstance(exc, (OperationalError, DBAPIError, SQLTimeoutError)):
        log.error("database unavailable: %s", exc)
        return handle_cms_error(Unavailable("The database is unavailable; retry shortly."))
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        log.error("out of disk space: %s", exc)
        return handle_cms_error(InsufficientStorage("The server is out of disk space."))
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EIO):
        log.error("storage unavailable: %s", exc)
        return handle_cms_error(Unavailable("The content repository is unavailable."))
    log.error("unexpected error", exc_info=exc)
    return error_response(500, "Internal error; it has been logged.")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(CMSError, handle_cms_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
