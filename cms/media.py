"""Media kept in git: images and PDFs, their type decided by their bytes, never by their name.

A media item is two files in the content repository: the file itself under a content-addressed
name, `media/<sha256>.<ext>`, and its metadata beside it, `media/<sha256>.yaml` (the item).
The slug is the sha256 of the bytes, so anyone can check a clone with `sha256sum`, and the
URL a file is served at never changes what it serves (it is cached as immutable).

No Git LFS: a plain `git clone` gives auditors every byte.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema
from PIL import Image

from cms import schemas as s
from cms.errors import CMSError

FOLDER = "media"
# Pillow's name for a format -> (media type, extension). Nothing else is accepted.
IMAGE_FORMATS = {
    "PNG": ("image/png", "png"),
    "JPEG": ("image/jpeg", "jpg"),
    "WEBP": ("image/webp", "webp"),
    "GIF": ("image/gif", "gif"),
}
PDF = ("application/pdf", "pdf")
EXTENSIONS = {ext: mt for mt, ext in [*IMAGE_FORMATS.values(), PDF]}
# what a client may claim, by media type or by the name's extension
CLAIMS = {**{mt: mt for mt in EXTENSIONS.values()}, "image/jpg": "image/jpeg"}
NAME_EXTENSIONS = {**EXTENSIONS, "jpeg": "image/jpeg"}
FILE_NAME = re.compile(r"^[0-9a-f]{64}\.(?:png|jpg|webp|gif|pdf)$")
PATH = re.compile(r"^media/[0-9a-f]{64}\.(?:png|jpg|webp|gif|pdf)$")
SVG = re.compile(rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*|<!DOCTYPE[^>]*>\s*)*<svg[\s>]", re.S)
MAX_PIXELS = 50_000_000  # a decompression bomb is refused, not decoded


class Refused(CMSError):
    """A file the CMS does not store; status is the HTTP answer (413, 415 or 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Sniffed:
    """What a file's bytes are."""

    media_type: str
    extension: str
    width: int | None = None
    height: int | None = None


def sniff(data: bytes) -> Sniffed:
    """The type of a file from its bytes: an image Pillow can read whole, or a PDF."""
    if data.startswith(b"%PDF-"):
        if b"%%EOF" not in data[-1024:]:
            raise Refused(422, "This PDF is truncated: it has no end-of-file marker.")
        return Sniffed(*PDF)
    if SVG.match(data[:4096]):
        raise Refused(
            415,
            "SVG is not accepted: an SVG file can carry scripts. Upload a PNG or WebP instead.",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                found, size = probe.format, probe.size
                if found in IMAGE_FORMATS:
                    if size[0] * size[1] > MAX_PIXELS:
                        raise Refused(422, f"The image is too large: {size[0]} x {size[1]} pixels.")
                    probe.verify()  # reads the whole file: a truncated image is refused here
    except Refused:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise Refused(422, "The image is too large to decode safely.") from None
    except Exception:  # Pillow raises many kinds for what is not an image it reads
        found = None
        size = (0, 0)
    if found not in IMAGE_FORMATS:
        raise Refused(
            415, "Only PNG, JPEG, WebP and GIF images and PDF files are accepted (by their bytes)."
        )
    media_type, extension = IMAGE_FORMATS[found]
    return Sniffed(media_type, extension, size[0], size[1])


def claimed_type(content_type: str | None, filename: str | None) -> str | None:
    """The type a client says a file is: its part's Content-Type, else its name's extension."""
    given = (content_type or "").split(";")[0].strip().lower()
    if given and given != "application/octet-stream":
        return CLAIMS.get(given, given)
    ext = (filename or "").rpartition(".")[2].lower() if "." in (filename or "") else ""
    return NAME_EXTENSIONS.get(ext)


def inspect(data: bytes, content_type: str | None, filename: str | None) -> Sniffed:
    """Sniff a file and check it is what the client says it is."""
    if not data:
        raise Refused(422, "The file is empty.")
    found = sniff(data)
    claim = claimed_type(content_type, filename)
    if claim is not None and claim != found.media_type:
        raise Refused(
            422, f"The file was sent as {claim} but its bytes are {found.media_type}: check it."
        )
    return found


def metadata(
    data: bytes, found: Sniffed, given: dict[str, Any], filename: str | None
) -> dict[str, Any]:
    """The sidecar of a new file: what the server measured, and what the editor gave."""
    digest = hashlib.sha256(data).hexdigest()
    name = given.get("name") or _clean_name(filename) or f"{digest[:12]}.{found.extension}"
    return {
        "name": name,
        "alt": given.get("alt") or "",
        "credit": given.get("credit") or "",
        "licence": given.get("licence") or "",
        "path": f"{FOLDER}/{digest}.{found.extension}",
        "media_type": found.media_type,
        "size": len(data),
        "width": found.width,
        "height": found.height,
        "sha256": digest,
    }


def _clean_name(filename: str | None) -> str:
    base = (filename or "").replace("\\", "/").rpartition("/")[2]
    return "".join(c for c in base if c.isprintable()).strip()[: s.SHORT]


# fields the server sets from the bytes: read-only in the API, checked in the file
SERVER_FIELDS = ("path", "media_type", "size", "width", "height", "sha256")


class MediaSchema(s.ContentSchema):
    """A media item's sidecar, `media/<sha256>.yaml`."""

    name = s.short_text(
        "A name for people, e.g. the uploaded file's name", required=True, min_length=1
    )
    alt = s.short_text(
        "Text alternative, read out instead of an image (required for images)", load_default=""
    )
    credit = s.short_text("Who made it, e.g. 'Photo: Jane Doe'", load_default="")
    licence = s.short_text("Its licence, e.g. CC-BY-4.0", load_default="")
    path = fields.String(
        required=True,
        validate=validate.Regexp(PATH.pattern),
        metadata={
            "description": "Where the file is in the repository; it is served at /<path>",
            "readOnly": True,
        },
    )
    media_type = fields.String(
        required=True,
        validate=validate.OneOf(sorted(EXTENSIONS.values())),
        metadata={"description": "The type its bytes are", "readOnly": True},
    )
    size = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1),
        metadata={"description": "Bytes", "readOnly": True},
    )
    width = fields.Integer(
        allow_none=True, strict=True, metadata={"description": "Pixels", "readOnly": True}
    )
    height = fields.Integer(
        allow_none=True, strict=True, metadata={"description": "Pixels", "readOnly": True}
    )
    sha256 = fields.String(
        required=True,
        validate=validate.Regexp(r"^[0-9a-f]{64}$"),
        metadata={"description": "SHA-256 of the bytes: also the slug", "readOnly": True},
    )

    @validates_schema
    def consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("media_type", "").startswith("image/") and not (data.get("alt") or "").strip():
            raise ValidationError("Images need a text alternative.", "alt")
        path, digest = data.get("path"), data.get("sha256")
        if path and digest and not path.startswith(f"{FOLDER}/{digest}."):
            raise ValidationError("Must be named after the file's sha256.", "path")
        ext = (path or "").rpartition(".")[2]
        if path and EXTENSIONS.get(ext) != data.get("media_type"):
            raise ValidationError("Its extension must match its media type.", "path")
