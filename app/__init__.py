"""Pforte: a self-hosted gateway for language-model API keys.

Importing this package stays cheap so that `pforte serve` can monkey-patch with gevent first.
"""


def create_app(overrides: dict | None = None):
    """Build the Flask application (see app.factory)."""
    from app.factory import create_app as _create_app

    return _create_app(overrides)
