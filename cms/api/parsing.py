"""How request bodies are read: JSON strictly (UTF-8, no duplicate keys, bounded depth), and a
file with its details as multipart/form-data."""

from __future__ import annotations

import json
from typing import Any

import flask_smorest
from marshmallow import Schema
from marshmallow.utils import missing
from webargs.flaskparser import FlaskParser, is_json_request
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import CombinedMultiDict
from werkzeug.exceptions import UnsupportedMediaType

JSON_TYPES = ("application/json", "application/merge-patch+json")


class StrictJSONParser(FlaskParser):
    """JSON bodies: UTF-8 only, no duplicate keys, bounded depth, a JSON media type (else 415)."""

    DEFAULT_VALIDATION_STATUS = 422
    # a file and its details in one multipart/form-data body (a media upload)
    __location_map__ = {**FlaskParser.__location_map__, "multipart": "load_multipart"}

    def load_multipart(self, req: Any, schema: Schema) -> Any:
        if req.mimetype != "multipart/form-data":
            raise UnsupportedMediaType(
                f"Send the file as multipart/form-data (got {req.mimetype or 'none'})."
            )
        return MultiDictProxy(CombinedMultiDict([req.form, req.files]), schema)

    def load_json(self, req: Any, schema: Schema) -> Any:
        """webargs' public hook for the JSON location: the body, strictly parsed."""
        if not is_json_request(req):
            raise UnsupportedMediaType(
                f"Send the body as {' or '.join(JSON_TYPES)} (got {req.mimetype or 'none'})."
            )
        raw = req.get_data(cache=True)
        if not raw:
            return missing  # no body: the schema says what is required
        try:
            return json.loads(
                raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant
            )
        except UnicodeDecodeError as exc:
            problem = f"Body is not UTF-8: {exc.reason}"
        except RecursionError:
            problem = "JSON nested too deeply"
        except json.JSONDecodeError as exc:
            problem = exc.msg
        except ValueError as exc:  # a duplicate key or a NaN, from the hooks below
            problem = str(exc)
        flask_smorest.abort(400, message=f"Malformed JSON body: {problem}.")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out
