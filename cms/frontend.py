"""The pages a person opens: the reference frontend at `/` (the published workshop, from the
public API alone), the editor app at `/edit` (a client of the same API) and the API's
documentation at `/docs` (Swagger UI, served from the package)."""

from __future__ import annotations

from flask import Blueprint, Response, make_response, render_template, request

blp = Blueprint("frontend", __name__, static_folder="static", static_url_path="/static")

# The page loads its own script and style only; the API's HTML is sanitised, and this policy
# stops anything that slipped through from running.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _page(template: str, csp: str) -> Response:
    response = make_response(render_template(template, title="TerraBytes CMS"))
    response.headers["Content-Security-Policy"] = csp
    response.headers["Cache-Control"] = "no-cache"
    return response


@blp.route("/")
def index() -> Response:
    response = _page("index.html", CSP)
    if "preview" in request.args:  # a shared draft: kept out of search engines
        response.headers["X-Robots-Tag"] = "noindex"
    return response


# Swagger UI sets styles from its script (allowed) and draws icons as data: images; it fetches
# only the spec, from this origin.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@blp.route("/docs")
def docs() -> Response:
    return _page("docs.html", DOCS_CSP)


# The editor app: its own script and style only; the Markdown preview is the server's sanitised
# HTML (images may come from https); a file chosen for upload is previewed from a blob: URL;
# it talks to this origin alone and is never framed.
EDIT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@blp.route("/edit")
def edit() -> Response:
    response = _page("edit.html", EDIT_CSP)
    response.headers["X-Robots-Tag"] = "noindex"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
