"""POST /v1/messages (Anthropic Messages API). Placeholder until the Anthropic translation lands."""
from __future__ import annotations

import json

from flask import Response


def handle_messages() -> Response:
    body = {"type": "error", "error": {"type": "not_found_error", "message": "The Messages API is not available yet."}}
    return Response(json.dumps(body), status=404, mimetype="application/json")
