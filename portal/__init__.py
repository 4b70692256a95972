"""Chat Connect portal: the application factory."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask
from jinja2 import ChoiceLoader
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import CONFIGS, BaseConfig, check_production


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the portal. ``config`` (tests) overrides the class chosen by ``PORTAL_ENV``.

    The body reads as a table of contents: configuration, extensions, request hooks,
    blueprints, providers, error pages, commands.
    """
    app = Flask(__name__, instance_path=os.environ.get("PORTAL_INSTANCE_PATH") or None)

    # 1. Configuration
    env = os.environ.get("PORTAL_ENV", "development")
    config_class: type[BaseConfig] = CONFIGS[env]
    app.config.from_object(config_class())
    if config:
        app.config.update(config)
        env = app.config.get("ENV_NAME", env)
    if env == "production":
        check_production(app.config)
    if app.config["TRUSTED_PROXY_COUNT"]:
        count = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)  # type: ignore[method-assign]
    os.makedirs(app.instance_path, exist_ok=True)
    from . import converters, inbound

    converters.init_app(app)  # before any rule is added

    # 2. Extensions
    from . import crypto, database, i18n
    from .extensions import csrf, db, htmx, login_manager, migrate

    database.init_app(app)
    crypto.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(app.root_path), "migrations"))
    csrf.init_app(app)
    htmx.init_app(app)
    i18n.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = None  # server-side sessions do this job (auth/sessions.py)

    # 3. Request hooks: body limits (first), request id, security headers, HTMX flash, sessions
    inbound.init_app(app)
    from . import htmx as htmx_responses
    from . import security, templating
    from .auth import sessions  # noqa: F401  (registers the user loader)

    security.init_app(app)
    htmx_responses.init_app(app)
    templating.init_app(app)

    # 4. Blueprints
    from .accounts import bp as accounts_bp
    from .api import bp as api_bp
    from .audit import bp as audit_bp
    from .auth import bp as auth_bp
    from .integrations import bp as integrations_bp
    from .main import bp as main_bp
    from .me import bp as me_bp
    from .notifications import bp as notifications_bp
    from .preferences.views import bp as preferences_bp
    from .webhooks.views import bp as webhooks_bp

    for blueprint in (
        main_bp,
        auth_bp,
        accounts_bp,
        integrations_bp,
        notifications_bp,
        me_bp,
        preferences_bp,
        webhooks_bp,
        audit_bp,
        api_bp,
    ):
        app.register_blueprint(blueprint)
    app.register_blueprint(__import__("portal.support", fromlist=["bp"]).bp)

    # 5. Providers (explicit registry; see integrations/providers/__init__.py) and the
    #    templates each one keeps in its own package
    from .integrations.providers import providers

    assert app.jinja_env.loader is not None
    app.jinja_env.loader = ChoiceLoader([app.jinja_env.loader, providers.template_loader()])

    # 6. Error pages, HTMX-aware
    from . import errors

    errors.init_app(app)

    # 7. Commands
    from . import cli

    cli.init_app(app)
    return app
