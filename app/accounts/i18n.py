"""Language and time-zone choice: the user's setting, then a cookie, then the browser."""
from __future__ import annotations

from flask import current_app, request
from flask_login import current_user

LANGUAGES = ("en", "de")
LANGUAGE_COOKIE = "pforte_lang"


def select_locale() -> str:
    if getattr(current_user, "is_authenticated", False) and current_user.language in LANGUAGES:
        return current_user.language
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or current_app.config["BABEL_DEFAULT_LOCALE"]


def select_timezone() -> str | None:
    if getattr(current_user, "is_authenticated", False) and current_user.timezone:
        return current_user.timezone
    return request.cookies.get("pforte_tz") or None
