"""What every view shares: the strict JSON parser, the actor, ETag headers, documented errors."""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import flask_smorest
from flask import Response, current_app, g, request
from marshmallow import Schema, fields, validate
from werkzeug.routing import BaseConverter, ValidationError

from cms import auth, previews
from cms.api.parsing import StrictJSONParser
from cms.api.schemas import ErrorResponseSchema
from cms.errors import BadRequest, Invalid, PreconditionRequired
from cms.schemas import (
    COMMIT_PREFIX_PATTERN,
    IF_MATCH_PATTERN,
    MERGE_BASE_PATTERN,
    RELEASE_NAME_PATTERN,
    SLUG_MAX,
    SLUG_PATTERN,
    SLUG_RE,
)
from cms.service import REASON_MAX, REF_NAMES, ContentService, WriteResult
from cms.service.versions import Versions

F = TypeVar("F", bound=Callable[..., Any])


def _role_first() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    cls = getattr(view, "view_class", None)
    func = view if cls is None else getattr(cls, request.method.lower(), None)
    if func is None and cls is not None and request.method == "HEAD":
        func = getattr(cls, "get", None)
    role = getattr(func, "cms_role", None)
    if role is not None:
        require(role)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictJSONParser()
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **flask_smorest.Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        "multipart": "multipart/form-data",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.before_request(_role_first)

    @staticmethod
    def requires(role: str) -> Callable[[F], F]:
        """The role an operation needs: checked before its arguments are parsed, so a caller
        without it gets 401 or 403 whatever the body (a stranger learns nothing from a 422)."""

        def decorator(func: F) -> F:
            func.cms_role = role  # type: ignore[attr-defined]
            return func

        return decorator

    def errors(self, *codes: int) -> Any:
        """Document the error responses an operation can return, in flask-smorest's format."""

        def decorator(func: Any) -> Any:
            # rate limits and outages reach every route, and so does a too long request line
            for code in sorted({*codes, 414, 429, 503}):
                func = self.alt_response(code, response=f"Error{code}")(func)
            return func

        return decorator


ERROR_TEXT = {
    400: "Malformed request",
    401: "No or bad token",
    403: "The token's role is too low",
    404: "No such item",
    409: "Conflict: the slug is taken, the item is still referenced, or its file is invalid",
    410: "Gone: that position is no longer on the ref; resync",
    412: "Stale If-Match: the body holds the current item and its ETag",
    413: "Body too large",
    414: "Request line too long (8190 bytes at most)",
    415: "Unsupported type: the body is not JSON (multipart/form-data for an upload), or the "
    "uploaded file's bytes are not a type accepted",
    416: "Range not satisfiable",
    422: "Invalid fields or parameters",
    429: "Too many requests (or failed authentications): see Retry-After",
    428: "If-Match is required",
    503: "Temporarily unavailable (busy or a backend is down); see Retry-After",
    507: "Out of disk space",
}


def register_error_responses(api: flask_smorest.Api) -> None:
    """One response component per error status, shared by every operation."""
    for code, text in ERROR_TEXT.items():
        api.spec.components.response(
            f"Error{code}",
            {"description": text, "content": {"application/json": {"schema": ErrorResponseSchema}}},
        )


READ_ERRORS = (400, 401, 403, 404, 422, 429, 503)
WRITE_ERRORS = (400, 401, 403, 404, 409, 412, 413, 415, 422, 428, 429, 503, 507)
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
OPTIONAL_BEARER: list[dict[str, list[str]]] = [{}, {"bearerAuth": []}]


class SlugConverter(BaseConverter):
    """Only a valid slug reaches a view; anything else is a 404 before it."""

    regex = r"[a-z0-9]+(?:-[a-z0-9]+)*"

    def to_python(self, value: str) -> str:
        if len(value) > SLUG_MAX or not SLUG_RE.match(value):
            raise ValidationError()
        return value


def slug_param_schema(_converter: BaseConverter) -> dict[str, Any]:
    return {"type": "string", "pattern": SLUG_PATTERN, "maxLength": SLUG_MAX}


class CommitConverter(BaseConverter):
    """A commit id in a path. Anything without a slash reaches the view, which says what a
    commit id is (422); the spec gives the pattern."""


class ReleaseNameConverter(BaseConverter):
    """A release name in a path: checked by the service (404 for a name no release can have)."""


def commit_param_schema(_converter: BaseConverter) -> dict[str, Any]:
    return {"type": "string", "pattern": COMMIT_PREFIX_PATTERN}


def release_param_schema(_converter: BaseConverter) -> dict[str, Any]:
    return {"type": "string", "pattern": RELEASE_NAME_PATTERN, "maxLength": 100}


# what names its content (a commit, a file's hash) never changes: cached for a year
IMMUTABLE = "public, max-age=31536000, immutable"

# ids are 32-bit integers in SQL: a larger one names nothing (404), never a database error
ID = "int(max=2147483647)"

CONVERTERS = {
    "slug": (SlugConverter, slug_param_schema),
    "commit": (CommitConverter, commit_param_schema),
    "release": (ReleaseNameConverter, release_param_schema),
}


def reason_header() -> fields.String:
    return fields.String(
        data_key="X-Change-Reason",
        validate=validate.Length(max=REASON_MAX),
        metadata={"description": "Why: kept in the commit message (UTF-8, one line)"},
    )


class WriteHeadersSchema(Schema):
    if_match = fields.String(
        data_key="If-Match",
        metadata={
            "description": "The item's ETag, as read (required on PUT, PATCH and DELETE); "
            "several may be listed, any one matching will do",
            "pattern": IF_MATCH_PATTERN,
        },
    )
    reason = reason_header()


class MergeHeadersSchema(WriteHeadersSchema):
    merge_base = fields.String(
        data_key="X-Merge-Base",
        metadata={
            "description": "Instead of If-Match: the ETag the edit started from, to merge it "
            "field by field with what changed since (409 on a real conflict)",
            "pattern": MERGE_BASE_PATTERN,
        },
    )


class ReasonHeadersSchema(Schema):
    reason = reason_header()


# --- per request ---------------------------------------------------------------------------------


def service() -> ContentService:
    svc: ContentService = current_app.extensions["cms"]
    return svc


def versions() -> Versions:
    v: Versions = current_app.extensions["cms_versions"]
    return v


PAGINATION_HEADER = {
    "X-Pagination": {
        "description": "JSON: total, total_pages, first_page, last_page, page, "
        "previous_page, next_page",
        "schema": {"type": "string"},
    }
}


def pagination_header(total: int, page: int, page_size: int) -> dict[str, str]:
    meta = {"total": total, "total_pages": max(1, math.ceil(total / page_size))}
    meta.update(first_page=1, last_page=meta["total_pages"], page=page)
    if page > 1:
        meta["previous_page"] = page - 1
    if page < meta["total_pages"]:
        meta["next_page"] = page + 1
    return {"X-Pagination": json.dumps(meta)}


def actor() -> auth.Actor:
    if "actor" not in g:
        if "Authorization" not in request.headers:
            g.actor = auth.ANONYMOUS  # no database round trip for the public site
        else:
            with service().accounts_session(write=False) as session:
                g.actor = auth.authenticate(session, request.headers.get("Authorization"))
    result: auth.Actor = g.actor
    return result


def require(role: str) -> auth.Actor:
    who = actor()
    auth.require(who, role)
    return who


def read_ref(ref: str) -> str:
    """The full ref a read may see: drafts (main) need an auditor token or above."""
    if ref != "published":
        require("auditor")
    return REF_NAMES[ref]


def read_scope(query: dict[str, Any]) -> tuple[str, str | None]:
    """(full ref, revision or None) a read of items, lists or the site serves: what ref and at
    ask for, or, with a preview link's token, exactly what the link was made for."""
    token = query.get("preview")
    if token is None:
        return read_ref(query.get("ref", "published")), query.get("at")
    if "at" in query or query.get("ref", "published") != "published":
        raise BadRequest("A preview link reads what it was made for: send no ref or at with it.")
    with service().accounts_session() as session:
        g.preview = scope = previews.scope_of(session, token)
    if scope.commit is not None:
        return REF_NAMES["main"], scope.commit
    return scope.ref or REF_NAMES["main"], None


def published_only() -> bool:
    """Anonymous readers travel the published line only; a preview link goes where it says."""
    return actor().role == "anonymous" and g.get("preview") is None


def change_reason(headers: dict[str, Any]) -> str | None:
    value = headers.get("reason")
    if value is None:
        return None
    try:  # WSGI hands headers over as latin-1; editors write UTF-8
        return str(value.encode("latin-1").decode("utf-8"))
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise Invalid(
            "X-Change-Reason must be UTF-8.",
            errors={"headers": {"X-Change-Reason": ["Not valid UTF-8."]}},
        ) from None


def if_match(headers: dict[str, Any]) -> tuple[str, ...] | None:
    """The blob ids a write accepts (RFC 9110: any listed tag may match); weak tags never
    match (strong comparison). None when the header is missing."""
    if headers.get("if_match") is None:
        return None
    tags = request.if_match
    if tags.star_tag:
        raise PreconditionRequired(
            "If-Match: * would overwrite whatever is there: send the item's ETag."
        )
    # werkzeug gives None for an empty tag (""); only weak or empty tags: nothing matches
    return tuple(sorted(tag for tag in tags.as_set() if tag)) or ("",)


def preconditions(headers: dict[str, Any]) -> tuple[tuple[str, ...] | None, str | None]:
    """(If-Match tags, merge base): a write names one or the other, never both."""
    value = headers.get("merge_base")
    if value is None:
        return if_match(headers), None
    if headers.get("if_match") is not None:
        raise BadRequest("Send If-Match (strict) or X-Merge-Base (merge), not both.")
    base = value.strip()
    if not re.match(MERGE_BASE_PATTERN, base):
        raise Invalid(
            "X-Merge-Base is the ETag the edit started from.",
            errors={"headers": {"X-Merge-Base": ["Not an ETag (a quoted git blob id)."]}},
        )
    return None, base.strip('"')


def not_modified(tag: str) -> bool:
    """If-None-Match lists the tag (weak comparison, as RFC 9110 asks for it), or is *."""
    if "If-None-Match" not in request.headers:
        return False
    return request.if_none_match.contains_weak(tag.removeprefix("W/").strip('"'))


_encoded: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
_encoded_bytes = 0
ENCODED_MAX_BYTES = 8 * 1024 * 1024


def cached_body(key: tuple[Any, ...], build: Callable[[], Any]) -> Callable[[], bytes]:
    """A JSON body encoded once per key. Keys name immutable things (a blob, a commit)."""

    def body() -> bytes:
        global _encoded_bytes
        hit = _encoded.get(key)
        if hit is not None:
            _encoded.move_to_end(key)
            return hit
        hit = current_app.json.dumps(build()).encode()
        # the least recently used go first: bounded in count and in bytes, so a worker's
        # memory stays flat however large the bodies (a big edition's bundle) and however
        # many commits go by
        _encoded[key] = hit
        _encoded_bytes += len(hit)
        while _encoded and (len(_encoded) > 2048 or _encoded_bytes > ENCODED_MAX_BYTES):
            _encoded_bytes -= len(_encoded.popitem(last=False)[1])
        return hit

    return body


def json_response(
    payload: Any,
    status: int = 200,
    *,
    etag: str | None = None,
    revision: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A JSON answer with its validators; 304 when the client's copy is current.

    payload may be a callable returning the encoded body (see cached_body): it is not even
    called when the answer is a 304.
    """
    extra = dict(headers or {})
    if etag:
        extra["ETag"] = etag
    if revision:
        extra["X-Content-Revision"] = revision
    if request.method in ("GET", "HEAD"):
        default_cache = "private, no-cache" if actor().role != "anonymous" else "no-cache"
        extra.setdefault("Cache-Control", default_cache)
        extra["Vary"] = "Authorization, Origin"
        if g.get("preview") is not None:  # drafts by link: no shared cache, no search engine
            extra["Cache-Control"] = "private, no-cache"
            extra["X-Robots-Tag"] = "noindex"
        if etag and not_modified(etag):
            return Response(status=304, headers=extra)
    if callable(payload):
        return Response(payload(), status=status, headers=extra, mimetype="application/json")
    response: Response = current_app.json.response(payload)  # type: ignore[assignment]
    response.status_code = status
    response.headers.update(extra)
    return response


def quoted(blob: str) -> str:
    return f'"{blob}"'


WRITE_RESPONSE_HEADERS = {
    "ETag": {"description": "The item's new ETag (git blob id)", "schema": {"type": "string"}},
    "X-Content-Revision": {
        "description": "The commit on main that holds this version",
        "schema": {"type": "string"},
    },
}


def written(
    result: WriteResult,
    status: int = 200,
    location: str | None = None,
    merge_asked: bool = False,
) -> Response:
    headers = {"Location": location} if location else {}
    if merge_asked:
        headers["X-Merged"] = "true" if result.merged else "false"
    if result.item is None:
        return Response(status=204, headers={"X-Content-Revision": result.commit})
    return json_response(
        result.item.as_json(),
        status,
        etag=quoted(result.item.blob),
        revision=result.commit,
        headers=headers,
    )
