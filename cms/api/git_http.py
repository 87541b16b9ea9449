"""The content repository over git's smart HTTP protocol, read-only, for auditors (`git clone`).

`git http-backend` runs as a CGI program. Only the two upload-pack endpoints are served; a
push (receive-pack) is refused before anything runs, whoever asks.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from typing import IO

from flask import Blueprint, Response, request, stream_with_context
from werkzeug.exceptions import RequestEntityTooLarge

from cms import auth
from cms.api.common import service
from cms.errors import BadRequest, Forbidden, NotFound, Unauthorized

blp = Blueprint("git", __name__, url_prefix="/git/content.git")

ALLOWED = {("GET", "info/refs"), ("POST", "git-upload-pack")}
BASIC_REALM = {"WWW-Authenticate": 'Basic realm="cms content repository"'}
MAX_UPLOAD_REQUEST = 64 * 1024 * 1024


class GitUnauthorized(Unauthorized):
    headers = BASIC_REALM


def _authorize() -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    secret = ""
    if scheme.lower() == "basic":
        try:
            _user, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise GitUnauthorized("Malformed Basic credentials.") from None
    elif scheme.lower() == "bearer":
        secret = value.strip()
    if not secret:
        raise GitUnauthorized("Clone with an auditor token as the password.")
    with service().accounts_session() as session:
        try:
            who = auth.actor_for_secret(session, secret)
        except Unauthorized as exc:
            raise GitUnauthorized(exc.message) from None
    auth.require(who, "auditor")


@blp.route("/<path:subpath>", methods=["GET", "POST"])
def smart_http(subpath: str) -> Response:
    if "receive-pack" in subpath or "receive-pack" in request.args.get("service", ""):
        raise Forbidden("This repository is read-only: pushes are refused.")
    if (request.method, subpath) not in ALLOWED:
        raise NotFound("Only git's smart HTTP clone and fetch are served here.")
    if subpath == "info/refs" and request.args.get("service") != "git-upload-pack":
        raise NotFound("Only the smart HTTP protocol is served (service=git-upload-pack).")
    _authorize()
    return _run_backend(subpath)


def _request_body() -> IO[bytes]:
    """The request body on disk, gunzipped when the client compressed it; the limit counts
    the bytes git would read (decompressed), so a small bomb cannot fill the disk."""
    body = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115 (closed by the stream)
    request.max_content_length = MAX_UPLOAD_REQUEST
    source: IO[bytes] = request.stream
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        source = gzip.GzipFile(fileobj=request.stream)  # type: ignore[assignment]
    size = 0
    try:
        while chunk := source.read(65536):
            size += len(chunk)
            if size > MAX_UPLOAD_REQUEST:
                raise RequestEntityTooLarge(
                    f"A fetch request is limited to {MAX_UPLOAD_REQUEST} bytes, decompressed."
                )
            body.write(chunk)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        body.close()
        raise BadRequest(f"The request body is not valid gzip: {exc}") from None
    except BaseException:
        body.close()
        raise
    body.seek(0)
    return body


def _run_backend(subpath: str) -> Response:
    base_env, repo = service().git_backend_env()
    env = {
        **base_env,
        "GIT_PROJECT_ROOT": str(repo.parent),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": f"/{repo.name}/{subpath}",
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": "service=git-upload-pack" if subpath == "info/refs" else "",
        "CONTENT_TYPE": request.headers.get("Content-Type", ""),
        "REMOTE_USER": "auditor",
        "REMOTE_ADDR": request.remote_addr or "",
    }
    protocol = request.headers.get("Git-Protocol", "")
    if re.fullmatch(r"[A-Za-z0-9=:._-]{1,100}", protocol):
        env["GIT_PROTOCOL"] = protocol
    body = _request_body() if request.method == "POST" else None
    proc = subprocess.Popen(
        ["git", "http-backend"],
        stdin=body if body is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdout is not None
    status, headers = 200, {}
    while True:
        line = proc.stdout.readline().rstrip(b"\r\n")
        if not line:
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers[name.strip()] = value.strip()

    def stream() -> Iterator[bytes]:
        try:
            assert proc.stdout is not None
            while chunk := proc.stdout.read(65536):
                yield chunk
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if body is not None:
                body.close()

    return Response(stream_with_context(stream()), status=status, headers=headers)
