"""Where an admin page may send the browser back to: only paths of this site, never another host."""
from __future__ import annotations

from urllib.parse import urlsplit

MAX_TARGET = 2000


def local_target(target: str | None) -> str | None:
    """`target` if it is a path on this site ("/keys?page=2"), else None. Refused: absolute URLs,
    scheme-relative "//host", "/\\host" (browsers read a backslash as a slash), "javascript:" and other
    schemes, and any whitespace or control character (browsers drop some of them, making "/\\t/host")."""
    if not target or len(target) > MAX_TARGET or not target.startswith("/"):
        return None
    if "\\" in target or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return None
    return target
