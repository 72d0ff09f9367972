"""Conversation content at rest: JSON sealed with Fernet under the instance's generated conversation key
(`conversation_key` in the instance secrets, separate from the key that protects upstream credentials)."""
from __future__ import annotations

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken


class ContentUnreadable(ValueError):
    """Stored content that this instance's conversation key cannot open."""


@lru_cache(maxsize=4)
def _fernet(key: str) -> Fernet:
    return Fernet(key.encode())


def encode(value) -> bytes:
    """The compact UTF-8 JSON whose length the size caps count."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def decode(plaintext: bytes):
    return json.loads(plaintext)


def seal(plaintext: bytes, key: str) -> str:
    """A Fernet token (text) for encoded content."""
    return _fernet(key).encrypt(plaintext).decode()


def unseal(token: str, key: str) -> bytes:
    """The encoded content inside a token; ContentUnreadable if the key does not fit or it is damaged."""
    try:
        return _fernet(key).decrypt(token.encode())
    except (InvalidToken, ValueError) as exc:
        raise ContentUnreadable("stored conversation content cannot be decrypted with this instance's key") \
            from exc
