"""The application factory: config → extensions → blueprints → error handlers → CLI."""
from __future__ import annotations

import importlib
from pathlib import Path

from flask import Flask

from app import database  # noqa: F401  (registers the SQLite pragmas)
from app.config import build_flask_config, default_instance_path
from app.extensions import babel, csrf, db, limiter, login_manager, migrate
from app.paths import resource_dir

# Every domain exposes `bp` in these modules; order only matters for URL precedence.
BLUEPRINT_MODULES = (
    "app.gateway.routes",
    "app.ops.views",
    "app.accounts.views",
    "app.keys.views",
    "app.catalog.views",
    "app.assistants.views",
    "app.usage.views",
    "app.audit.views",
    "app.settings.views",
    "app.docs.views",
)


def create_app(overrides: dict | None = None) -> Flask:
    overrides = dict(overrides or {})
    instance_path = Path(overrides.pop("INSTANCE_PATH", None) or default_instance_path()).resolve()
    instance_path.mkdir(parents=True, exist_ok=True)
    app = Flask(
        "app",
        instance_path=str(instance_path),
        template_folder=str(resource_dir("templates")),
        static_folder=str(resource_dir("static")),
    )
    app.config.update(build_flask_config(instance_path, overrides))
    configure_extensions(app)
    configure_blueprints(app)
    configure_security(app)
    configure_errors(app)
    configure_cli(app)
    configure_providers(app)
    return app


def configure_providers(app: Flask) -> None:
    from app import providers

    providers.configure(app.config["PFORTE_UPSTREAM_POOL_SIZE"], app.config.get("PFORTE_UPSTREAM_CA_BUNDLE"))


def configure_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=str(resource_dir("migrations")), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)
    from app.accounts.i18n import select_locale, select_timezone

    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    import_models()


def import_models() -> None:
    """Import every domain's tables so that metadata (and Alembic) sees them."""
    for name in ("accounts", "keys", "catalog", "usage", "audit", "settings", "policy", "assistants",
                 "conversations"):
        importlib.import_module(f"app.{name}.models")


def configure_blueprints(app: Flask) -> None:
    for module_name in BLUEPRINT_MODULES:
        module = importlib.import_module(module_name)
        app.register_blueprint(module.bp)
        if getattr(module, "csrf_exempt", False):
            csrf.exempt(module.bp)


def configure_security(app: Flask) -> None:
    from app.accounts.security import install_security
    from app.navigation import install_template_helpers

    install_security(app)
    install_template_helpers(app)


def configure_errors(app: Flask) -> None:
    from app.errors import install_error_handlers

    install_error_handlers(app)


def configure_cli(app: Flask) -> None:
    from app.cli import register_commands

    register_commands(app)
