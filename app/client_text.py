"""Client-chosen text made safe to keep in logs and the request log: printable characters only, capped."""
from __future__ import annotations

UNKNOWN_MODEL = "unknown"  # the label of every model name that is no catalog model or assistant
MAX_MODEL_NAME = 256  # longer `model` values are refused with 400


def printable(text: str, limit: int) -> str:
    """`text` without control, format and surrogate characters (no NUL, CR, LF or ESC), at most `limit`
    characters; a cut is marked with `…`."""
    if not text.isprintable():
        text = "".join(char for char in text[:limit * 4] if char.isprintable())
    return text if len(text) <= limit else text[:limit - 1] + "…"
