"""Encryption of upstream credentials at rest (Fernet, with the instance's generated key)."""
from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken


class CredentialUnreadable(ValueError):
    """The stored credential cannot be decrypted with this instance's key."""


def encrypt_credential(plaintext: str, key: str) -> str:
    """Fernet token (text) for a credential."""
    return Fernet(key.encode()).encrypt(plaintext.encode()).decode()


def decrypt_credential(token: str, key: str) -> str:
    """The credential behind a Fernet token; CredentialUnreadable if the key does not fit."""
    try:
        return Fernet(key.encode()).decrypt(token.encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise CredentialUnreadable("the credential cannot be decrypted with this instance's key") from exc
