"""Template helpers shared by every admin page: navigation, role names, locale and time zone."""
from __future__ import annotations

from flask import Flask
from flask_babel import get_locale, get_timezone
from flask_babel import lazy_gettext as _l

NAV_ITEMS = (
    ("keys.index", _l("API keys")),
    ("catalog.index", _l("Models")),
    ("assistants.index", _l("Assistants")),
    ("usage.dashboard", _l("Usage")),
    ("docs.use_api", _l("Use the API")),
    ("audit.index", _l("Audit trail")),
    ("accounts.users", _l("Users")),
    ("settings.index", _l("Settings")),
)
ROLE_LABELS = {"owner": _l("Owner"), "admin": _l("Admin"), "auditor": _l("Auditor")}


def install_template_helpers(app: Flask) -> None:
    @app.context_processor
    def helpers():
        def nav_items():
            return [(e, label) for e, label in NAV_ITEMS if e in app.view_functions]

        return {
            "nav_items": nav_items,
            "role_label": lambda role: ROLE_LABELS.get(role, role),
            "current_locale": lambda: str(get_locale() or "en"),
            "current_timezone": lambda: str(get_timezone() or "UTC"),
        }
