"""Media: the upload (a file and its details in one multipart body) and the files themselves,
served at the content-addressed path they have in the repository."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from flask import Response, current_app, request, url_for
from flask.views import MethodView
from flask_smorest.fields import Upload
from marshmallow import Schema, ValidationError
from werkzeug.datastructures import FileStorage

from cms import media
from cms.api.common import (
    BEARER,
    IMMUTABLE,
    READ_ERRORS,
    WRITE_ERRORS,
    WRITE_RESPONSE_HEADERS,
    Blueprint,
    WriteHeadersSchema,
    change_reason,
    require,
    service,
    written,
)
from cms.errors import NotFound
from cms.service import WriteResult
from cms.types import TYPES, ContentType

FORM_OVERHEAD = 64 * 1024  # the details and the multipart framing around the file


class FileField(Upload):
    """A file part of a multipart body (flask-smorest documents it as binary)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, FileStorage):
            raise ValidationError("Send a file here (a file part of the multipart body).")
        return value


def upload_schema(ctype: ContentType) -> Schema:
    """The upload form: the file, and the item's editable fields (all optional here)."""
    own: dict[str, Any] = {
        "file": FileField(
            required=True,
            metadata={
                "description": "PNG, JPEG, WebP, GIF or PDF, decided by its bytes; at most "
                "CMS_MEDIA_MAX_BYTES (5 MiB by default). SVG is refused."
            },
        )
    }
    for name, field in ctype.input_schema_class().fields.items():
        field = copy.deepcopy(field)
        field.required = False
        own[name] = field
    return Schema.from_dict(own, name=f"{ctype.singular}Upload")()


def upload_operation(blp: Blueprint, ctype: ContentType, item_schema: type[Schema]) -> Callable:
    """POST on a media type's collection: store a file and its sidecar in one commit."""
    limit_key = "MEDIA_MAX_BYTES"

    @blp.before_request
    def larger_bodies() -> None:
        if request.method == "POST" and request.endpoint == f"{ctype.name}.Collection":
            request.max_content_length = int(current_app.config[limit_key]) + FORM_OVERHEAD

    @blp.requires("editor")
    @blp.arguments(WriteHeadersSchema(), location="headers")
    @blp.arguments(upload_schema(ctype), location="multipart")
    @blp.response(201, item_schema, headers=WRITE_RESPONSE_HEADERS)
    @blp.errors(*WRITE_ERRORS)
    @blp.doc(
        security=BEARER,
        summary="Upload a file (image or PDF) with its details",
        operationId=f"create{ctype.singular}",
        description="One commit adds the file under `media/<sha256>.<ext>` and its details "
        "beside it in `media/<sha256>.yaml`; the slug is the sha256. Images need `alt`. "
        "Uploading a file that is already there is a 409.",
    )
    def post(self: MethodView, headers: dict[str, Any], body: dict[str, Any]) -> Response:
        who = require("editor")
        upload: FileStorage = body.pop("file")
        limit = int(current_app.config[limit_key])
        raw = upload.stream.read(limit + 1)
        if len(raw) > limit:
            raise media.Refused(413, f"The file is larger than {limit} bytes.")
        found = media.inspect(raw, upload.content_type, upload.filename)
        data = media.metadata(raw, found, body, upload.filename)
        result: WriteResult = service().upload(ctype, data, raw, who, change_reason(headers))
        assert result.item is not None
        return written(result, 201, url_for(f"{ctype.name}.Item", slug=result.item.slug))

    return post


files = Blueprint(
    "media-files",
    __name__,
    url_prefix="/media",
    description="The media files, at their path in the repository: immutable",
)


@files.route("/<string:name>")
class MediaFile(MethodView):
    @files.response(
        200,
        {"type": "string", "format": "binary"},
        content_type="application/octet-stream",
        description="The file, with its sniffed type (image/png, image/jpeg, image/webp, "
        "image/gif, application/pdf); range requests are answered 206",
        headers={"ETag": {"description": "Its sha256", "schema": {"type": "string"}}},
    )
    @files.alt_response(206, description="The byte range asked for")
    @files.alt_response(304, description="Not modified")
    @files.errors(*READ_ERRORS, 416)
    @files.doc(
        security=[],
        summary="A media file, by its content-addressed name",
        operationId="downloadMediaFile",
    )
    def get(self, name: str) -> Response:
        if not media.FILE_NAME.match(name):
            raise NotFound("No such file: media files are named <sha256>.<ext>.")
        ctype = TYPES[media.FOLDER]
        digest, _, ext = name.partition(".")
        found = service().media_file(ctype, digest, f"{media.FOLDER}/{name}")
        if found is None:
            raise NotFound(f"No media file {name} on the site or in the drafts.")
        raw, item = found
        response = Response(raw, mimetype=media.EXTENSIONS[ext])
        response.set_etag(digest)
        response.headers["Cache-Control"] = IMMUTABLE
        if ext == "pdf":  # never rendered in this origin: downloaded under its name
            label = str((item.data or {}).get("name") or name)
            ascii_name = "".join(c for c in label if " " <= c <= "~" and c not in '"\\') or name
            response.headers["Content-Disposition"] = (
                f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(label)}"
            )
        response.make_conditional(request, accept_ranges=True, complete_length=len(raw))
        return response  # made conditional in place: 304, 206 or 416 by the request
