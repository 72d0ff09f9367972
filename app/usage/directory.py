"""The keys as the usage pages show them: plain dicts, read through the keys domain."""
from __future__ import annotations

from app.keys import service as keys


def _summary(key) -> dict:
    return {"id": key.id, "public_id": key.public_id, "name": key.name, "prefix": key.prefix,
            "status": key.status}


def key_summary(public_id: str) -> dict | None:
    """One key as a plain dict, or None if there is no such key."""
    try:
        return _summary(keys.get_key(public_id))
    except keys.KeyNotFound:
        return None


def key_directory() -> dict[int, dict]:
    """Every key (id → plain dict), for names in the top-keys table and the key filter."""
    return {key.id: _summary(key) for key in keys.iter_keys()}


def key_names(key_ids: list[int]) -> dict[int, dict]:
    """The keys among key_ids that still exist (id → plain dict)."""
    if not key_ids:
        return {}
    wanted = set(key_ids)
    return {key_id: key for key_id, key in key_directory().items() if key_id in wanted}


def key_choices() -> list[dict]:
    """Every key for the dashboard's key filter, by name."""
    return sorted(key_directory().values(), key=lambda key: (key["name"].lower(), key["public_id"]))
