"""Log output of `pforte serve`: one line per record on stderr, plain `key=value` or JSON (PFORTE_LOG_JSON).

Every record written while a request is handled carries that request's id, so an error in the log can be
matched with the x-request-id a client reports.
"""
from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from app.ops.observe import request_id

NEEDS_QUOTES = re.compile(r'[ "=\\]')


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id()
        return True


def _plain_value(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if not text or NEEDS_QUOTES.search(text) or not text.isprintable():
        return _quoted(text)
    return text


def _quoted(text: str) -> str:
    """A JSON string, with every character that is not printable escaped too (CR, LF, ESC, C1 controls,
    Unicode line separators, bidi controls): a value can neither start a new line nor drive a terminal."""
    quoted = json.dumps(text, ensure_ascii=False)
    if quoted.isprintable():
        return quoted
    return "".join(char if char.isprintable() else json.dumps(char)[1:-1] for char in quoted)


class PlainFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = dict(getattr(record, "fields", None) or {})
        if getattr(record, "request_id", None) and "request_id" not in fields:
            fields["request_id"] = record.request_id
        if fields:
            extra = " ".join(f"{name}={_plain_value(value)}" for name, value in fields.items())
            head, sep, rest = text.partition("\n")  # keep a traceback below the fields
            text = f"{head} {extra}{sep}{rest}"
        return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", None) or {})
        if getattr(record, "request_id", None) and "request_id" not in entry:
            entry["request_id"] = record.request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(json_lines: bool = False, level: int = logging.INFO) -> None:
    """Replace the root handlers with one stderr handler in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else PlainFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
