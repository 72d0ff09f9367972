"""Encryption of upstream credentials at rest (Fernet, with the instance's generated key).

A credential is sealed together with the base URL it was entered for, so that it is never sent anywhere
else: a connection whose base URL has changed without the credential being entered again (or re-bound by
an owner) has no usable credential. Tokens from before this binding hold the bare credential."""
from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken

_BOUND = "pforte-credential-v2"


class CredentialUnreadable(ValueError):
    """The stored credential cannot be decrypted with this instance's key."""


def encrypt_credential(plaintext: str, key: str, base_url: str) -> str:
    """Fernet token (text) for a credential, bound to `base_url`."""
    payload = json.dumps({"format": _BOUND, "credential": plaintext, "base_url": base_url})
    return Fernet(key.encode()).encrypt(payload.encode()).decode()


def decrypt_credential(token: str, key: str) -> tuple[str, str | None]:
    """(credential, the base URL it was entered for; None for an unbound token from before);
    CredentialUnreadable if the key does not fit."""
    try:
        text = Fernet(key.encode()).decrypt(token.encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise CredentialUnreadable("the credential cannot be decrypted with this instance's key") from exc
    if text.startswith("{"):
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
        if isinstance(payload, dict) and payload.get("format") == _BOUND:
            return str(payload.get("credential") or ""), str(payload.get("base_url") or "")
    return text, None


def credential_for(token: str | None, key: str, base_url: str) -> str | None:
    """The credential to send to `base_url`: None when none is stored or it was entered for another URL."""
    if not token:
        return None
    credential, bound_to = decrypt_credential(token, key)
    if bound_to is not None and bound_to != base_url:
        return None
    return credential or None
