"""The strict JSON reading of a client's request body: what Python's json module lets through but no
upstream can take is refused here as a 400 (NaN and Infinity, numbers that overflow a float, top-level
integers beyond int64, lone UTF-16 surrogates, which cannot be encoded to UTF-8 when the body is forwarded).
The checks cost next to nothing on the hot path: the hooks run only for floats and the constants, integers
keep the C fast path (token arrays can hold thousands)."""
from __future__ import annotations

import json
import math
import re

INT_LIMIT = 2 ** 63  # no top-level field of any upstream API takes an integer beyond int64
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # the only way a lone surrogate gets into the body


class BodyError(ValueError):
    """The body is JSON that Pforte refuses; the message says why."""


def _refuse_constant(name: str):
    raise BodyError(f"{name} is not a valid JSON number.")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise BodyError(f"The number {text[:40]} is too large.")
    return value


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_float)


def parse(raw: bytes):
    """The decoded body. Raises BodyError (a clear reason) or ValueError / RecursionError (not JSON)."""
    text = raw.decode(json.detect_encoding(raw))  # as json.loads(bytes); invalid UTF-8 is a ValueError
    value = _DECODER.decode(text)
    if isinstance(value, dict):
        for name, item in value.items():
            if type(item) is int and not -INT_LIMIT <= item < INT_LIMIT:
                raise BodyError(f"The number in '{name[:64]}' is too large.")
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BodyError("The body holds an unpaired UTF-16 surrogate (\\ud800-\\udfff), which is not "
                            "valid Unicode.") from None
    return value
