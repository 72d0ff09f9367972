"""The application factory: config → extensions → blueprints → request rules → error handlers → CLI →
upstream transport → the WSGI middleware stack."""
from __future__ import annotations

from pathlib import Path

from flask import Flask

from app import (
    database,  # noqa: F401  (registers the SQLite pragmas)
    providers,
)
from app.accounts import account_views, users_views
from app.accounts import blueprint as accounts_blueprint
from app.accounts import models as accounts_models
from app.accounts import views as accounts_views
from app.accounts.i18n import select_locale, select_timezone
from app.accounts.security import TrustedProxyScheme, install_security, is_api_path
from app.assistants import models as assistants_models
from app.assistants import views as assistants_views
from app.audit import models as audit_models
from app.audit import views as audit_views
from app.body_limit import ChunkedBodyLimit
from app.catalog import models as catalog_models
from app.catalog import views as catalog_views
from app.cli import register_commands
from app.config import build_flask_config, default_instance_path
from app.conversations import models as conversations_models
from app.docs import views as docs_views
from app.errors import install_error_handlers
from app.extensions import babel, csrf, db, limiter, login_manager, migrate
from app.gateway import routes as gateway_routes
from app.gateway.dispatch import ApiDispatcher
from app.keys import models as keys_models
from app.keys import views as keys_views
from app.navigation import install_template_helpers
from app.ops import views as ops_views
from app.ops.observe import RequestObserver
from app.paths import resource_dir
from app.policy import models as policy_models
from app.policy import views as policy_views  # the organisation settings page
from app.settings import models as settings_models
from app.usage import models as usage_models
from app.usage import views as usage_views

# Every domain's tables, so that the metadata (and Alembic) sees them.
MODELS = (accounts_models, keys_models, catalog_models, usage_models, audit_models, settings_models,
          policy_models, assistants_models, conversations_models)

# The modules whose routes live on the accounts blueprint.
ACCOUNTS_PAGES = (accounts_views, users_views, account_views)

# Order only matters for URL precedence.
BLUEPRINTS = (
    gateway_routes.bp,
    ops_views.bp,
    accounts_blueprint.bp,
    keys_views.bp,
    catalog_views.bp,
    assistants_views.bp,
    usage_views.bp,
    audit_views.bp,
    policy_views.bp,
    docs_views.bp,
)
CSRF_EXEMPT = (gateway_routes.bp,)  # the client API authenticates with keys, not cookies


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
    install_security(app)
    install_template_helpers(app)
    install_error_handlers(app)
    register_commands(app)
    providers.configure(app.config["PFORTE_UPSTREAM_POOL_SIZE"], app.config.get("PFORTE_UPSTREAM_CA_BUNDLE"),
                        providers.AnswerLimits(body=app.config["PFORTE_UPSTREAM_MAX_BODY_BYTES"],
                                     event=app.config["PFORTE_UPSTREAM_MAX_EVENT_BYTES"],
                                     inflated=app.config["PFORTE_UPSTREAM_MAX_INFLATED_BYTES"]))
    build_wsgi_stack(app)
    return app


def configure_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=str(resource_dir("migrations")), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)


def configure_blueprints(app: Flask) -> None:
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    for blueprint in CSRF_EXEMPT:
        csrf.exempt(blueprint)


def build_wsgi_stack(app: Flask) -> None:
    """Wrap Flask's WSGI app in the middleware, outermost first:

    1. TrustedProxyScheme (only with PFORTE_TRUSTED_PROXIES): takes X-Forwarded-Proto from a trusted proxy,
       so that every layer below sees the scheme the client used.
    2. RequestObserver: request id, access log and metrics for every request, API and admin pages alike.
    3. ApiDispatcher: answers the client API's routes itself, inside an app context; everything else
       (admin pages, HEAD, OPTIONS) goes on to Flask.
    4. ChunkedBodyLimit: MAX_CONTENT_LENGTH for chunked bodies too (the admin pages' 413).
    5. Flask.
    """
    proxies = str(app.config.get("PFORTE_TRUSTED_PROXIES") or "")
    stack = ApiDispatcher(app, ChunkedBodyLimit(app.wsgi_app, app.config["MAX_CONTENT_LENGTH"]))
    stack = RequestObserver(stack, is_api_path, proxies)
    if proxies:
        stack = TrustedProxyScheme(stack, proxies)
    app.wsgi_app = stack
