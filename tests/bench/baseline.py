"""The baseline: a bare Flask app returning the CMS's own bytes from memory, with ETag and 304."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, Response, request


def create_app() -> Flask:
    app = Flask(__name__)
    folder = Path(os.environ["BENCH_PAYLOADS"])
    bodies = {name: (folder / f"{name}.json").read_bytes() for name in ("item", "list", "site")}
    etags = {name: (folder / f"{name}.etag").read_text() for name in bodies}

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    @app.get("/<name>")
    def payload(name: str) -> Response:
        headers = {"ETag": etags[name], "Cache-Control": "no-cache"}
        if request.headers.get("If-None-Match") == etags[name]:
            return Response(status=304, headers=headers)
        return Response(bodies[name], mimetype="application/json", headers=headers)

    return app
