"""How gunicorn runs the app: a sync worker whose own refusals (a request line over the limit)
are answered in the API's JSON error format, as documented in the spec, not as gunicorn's HTML.
"""

from __future__ import annotations

import json
from typing import Any

from gunicorn.http.errors import LimitRequestLine
from gunicorn.util import write_nonblock
from gunicorn.workers.sync import SyncWorker

# the longest request line (method, path, query, version) gunicorn accepts: its maximum
REQUEST_LINE_LIMIT = 8190


class JSONErrorWorker(SyncWorker):
    """gunicorn's sync worker; `handle_error` is its documented hook for custom workers."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        if not isinstance(exc, LimitRequestLine):
            super().handle_error(req, client, addr, exc)
            return
        body = json.dumps(
            {
                "code": 414,
                "status": "URI Too Long",
                "message": f"The request line is limited to {REQUEST_LINE_LIMIT} bytes: "
                "use fewer or shorter query parameters.",
            }
        ).encode()
        head = (
            "HTTP/1.1 414 URI Too Long\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            write_nonblock(client, head.encode("latin-1") + body)
        except OSError:
            self.log.debug("could not answer 414: the client is gone")
