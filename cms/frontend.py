"""The reference frontend: one page that shows the published workshop using only the public API."""

from __future__ import annotations

from flask import Blueprint, Response, make_response, render_template

blp = Blueprint("frontend", __name__, static_folder="static", static_url_path="/static")

# The page loads its own script and style only; the API's HTML is sanitised, and this policy
# stops anything that slipped through from running.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@blp.route("/")
def index() -> Response:
    response = make_response(render_template("index.html", title="TerraBytes CMS"))
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-cache"
    return response
