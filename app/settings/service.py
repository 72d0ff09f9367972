"""Organisation-wide settings stored as JSON values in the settings table."""
from __future__ import annotations

import json

from app.extensions import db
from app.settings.models import Setting


def get_setting(key: str, default=None):
    """The stored value of `key`, or `default` when it is unset or unreadable."""
    row = db.session.get(Setting, key)
    if row is None:
        return default
    try:
        return json.loads(row.value)
    except ValueError:
        return default


def set_setting(key: str, value) -> None:
    """Store `value` (JSON-serialisable) under `key`. Not committed here: the calling service commits."""
    row = db.session.get(Setting, key)
    if row is None:
        db.session.add(Setting(key=key, value=json.dumps(value)))
    else:
        row.value = json.dumps(value)
