"""Provider sandbox: local stand-ins for Slack, Chatwork and Microsoft (Entra ID, Graph, Bot
Framework) with an inspector, a JSON control API and an SMTP catcher.

Run it with `python -m sandbox --port 5001 --tls-port 5443 --smtp-port 1025`; tests use
`sandbox.testing.run_sandbox`. See `sandbox/README.md`.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from sandbox.config import Settings


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the sandbox WSGI app. `config` holds Settings fields (portal_url, instance_dir, …)."""
    # Imported here so that importing `sandbox` (e.g. for sandbox.config) stays cheap.
    from sandbox import control, inspector, traffic, webhooks
    from sandbox.chatwork import api as chatwork_api
    from sandbox.chatwork import oauth as chatwork_oauth
    from sandbox.chatwork import www as chatwork_www
    from sandbox.microsoft import batch as _batch  # noqa: F401 - adds Graph's $batch
    from sandbox.microsoft import botconnector, graph, identity
    from sandbox.microsoft import mailbox as _mailbox  # noqa: F401 - adds mailboxSettings
    from sandbox.microsoft import sign_in as _ms_sign_in  # noqa: F401 - adds the sign-in routes
    from sandbox.microsoft import teamwork as _teamwork  # noqa: F401 - adds Graph's app routes
    from sandbox.slack import api as slack_api
    from sandbox.slack import interactivity as slack_interactivity
    from sandbox.slack import methods as _slack_methods  # noqa: F401 - registers the methods
    from sandbox.slack import oauth as slack_oauth
    from sandbox.slack import openid as slack_openid
    from sandbox.state import SandboxState

    settings = Settings()
    settings.update(config or {})
    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # readable Japanese in bodies
    app.extensions["sandbox"] = SandboxState(settings)
    for blueprint in (
        slack_oauth.bp,
        slack_openid.bp,
        slack_api.bp,
        slack_interactivity.bp,
        chatwork_www.bp,
        chatwork_oauth.bp,
        chatwork_api.bp,
        identity.login_bp,
        identity.botframework_bp,
        graph.bp,
        botconnector.bp,
        inspector.bp,
        control.bp,
    ):
        app.register_blueprint(blueprint)
    webhooks.init_app(app)
    traffic.init_app(app)
    return app
