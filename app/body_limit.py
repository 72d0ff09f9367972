"""The body limit of the admin pages for chunked requests.

Werkzeug refuses a Content-Length over MAX_CONTENT_LENGTH with 413, but cuts a chunked body (no
Content-Length) off at the limit without a word, so a form would be read half. This middleware sits
between the ApiDispatcher and Flask, so the client API never passes it. It reads a chunked body up to one
byte past the limit: within the limit the body goes on with its length; past it the request is given a
length over the limit, which Flask answers with its 413 page, and the rest is never read.
"""
from __future__ import annotations

import io


class ChunkedBodyLimit:
    def __init__(self, app, limit: int | None):
        self.app = app
        self.limit = limit

    def __call__(self, environ, start_response):
        if (self.limit is not None and "CONTENT_LENGTH" not in environ
                and environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"):
            data = _read_up_to(environ["wsgi.input"], self.limit + 1)
            environ["wsgi.input"] = io.BytesIO(data[:self.limit])
            environ["CONTENT_LENGTH"] = str(len(data))
            del environ["HTTP_TRANSFER_ENCODING"]  # werkzeug ignores a Content-Length next to it
        return self.app(environ, start_response)


def _read_up_to(stream, size: int) -> bytes:
    """Up to `size` bytes: a chunked input gives at most one chunk per read."""
    parts, left = [], size
    while left > 0:
        part = stream.read(min(left, 65536))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)
