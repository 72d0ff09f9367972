"""API key secrets: generation, checksum, peppered hashing. Pure functions, no Flask and no database.

A key is `<prefix><32 random base62 chars><6 base62 chars of CRC32 over the random part>`, e.g.
`sk-pf-3fZq…Xb01Kq`. The checksum lets the gateway reject typos and garbage without a database
round trip; it is not a security feature (the 190 bits of randomness are).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6  # 62**6 > 2**32, so every CRC32 fits
BODY_LENGTH = RANDOM_LENGTH + CHECKSUM_LENGTH
DISPLAY_LENGTH = 8  # random characters shown after the prefix in the UI
MAX_PREFIX_LENGTH = 16
MAX_KEY_LENGTH = MAX_PREFIX_LENGTH + BODY_LENGTH

PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_-]{0,16}")
_BODY = re.compile(f"[0-9A-Za-z]{{{BODY_LENGTH}}}")


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        chars.append(ALPHABET[rest])
    return "".join(reversed(chars))


def checksum(random_part: str) -> str:
    """Six base62 characters of the CRC32 of the random part."""
    return _base62(zlib.crc32(random_part.encode("ascii")), CHECKSUM_LENGTH)


def validate_prefix(prefix: str) -> str:
    if not PREFIX_PATTERN.fullmatch(prefix or ""):
        raise ValueError("PFORTE_KEY_PREFIX must be at most 16 characters of A-Z, a-z, 0-9, '_' and '-'.")
    return prefix


def generate_key(prefix: str) -> str:
    """A new plaintext key from the operating system's CSPRNG."""
    random_part = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return validate_prefix(prefix) + random_part + checksum(random_part)


def is_well_formed(raw: str) -> bool:
    """Shape and checksum only. Any prefix of the allowed shape is accepted, so keys issued before
    PFORTE_KEY_PREFIX changed keep working."""
    if not isinstance(raw, str) or not BODY_LENGTH <= len(raw) <= MAX_KEY_LENGTH:
        return False
    body = raw[-BODY_LENGTH:]
    if not _BODY.fullmatch(body) or not PREFIX_PATTERN.fullmatch(raw[:-BODY_LENGTH]):
        return False
    return hmac.compare_digest(checksum(body[:RANDOM_LENGTH]), body[RANDOM_LENGTH:])


def hash_key(pepper: bytes, raw: str) -> str:
    """Hex HMAC-SHA-256 of the whole key under the instance pepper: the only form that is stored."""
    return hmac.new(pepper, raw.encode("ascii"), hashlib.sha256).hexdigest()


def display_prefix(raw: str) -> str:
    """What the UI shows of a key: the prefix and the first few random characters."""
    return raw[: len(raw) - BODY_LENGTH + DISPLAY_LENGTH]


def new_public_id() -> str:
    """The key's public identifier for URLs, the CLI and the audit trail (not a secret)."""
    return "key_" + "".join(secrets.choice(ALPHABET) for _ in range(16))
