"""Configuration classes, read from the environment only.

``create_app`` picks the class named by ``PORTAL_ENV`` (development, testing, production) and then
applies a mapping passed by tests. Every key is listed in ``.env.example``.
"""

from __future__ import annotations

import functools
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

# The providers declare their URL settings; importing the package registers all of them.
from .integrations.providers import providers

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"

# Development-only keys: a fresh clone must run with no setup. Production refuses them.
DEV_SECRET_KEY = "dev-only-secret-key-change-me"  # noqa: S105 - refused in production
DEV_ENCRYPTION_KEY = "ZGV2LW9ubHktZW5jcnlwdGlvbi1rZXktMzJieXRlcyE="


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def provider_url_defaults() -> dict[str, str]:
    """Every provider URL setting with its real provider host (``ChatProvider.url_settings``)."""
    return {setting.name: setting.default for setting in providers.url_settings()}


def sandbox_urls(http: str, https: str) -> dict[str, str]:
    """Provider URLs of a sandbox reachable at ``http`` (browser pages) and ``https`` (APIs):
    development's defaults, and what tests starting a sandbox on free ports configure."""
    return {setting.name: setting.sandbox_url(http, https) for setting in providers.url_settings()}


class BaseConfig:
    """Settings shared by every environment."""

    ENV_NAME = "base"
    SECRET_KEY = _env("SECRET_KEY")
    PORTAL_ENCRYPTION_KEYS = _env("PORTAL_ENCRYPTION_KEYS")
    SQLALCHEMY_DATABASE_URI = _env("DATABASE_URL", f"sqlite:///{INSTANCE / 'portal.sqlite3'}")
    # The worker sends from DELIVERY_CONCURRENCY threads, each with its own connection.
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict[str, Any]] = {
        "pool_pre_ping": True,
        "pool_size": 10,
        "max_overflow": 40,
        # JSON as readable UTF-8, so searches can match Japanese inside JSON columns (a Chatwork
        # contact's department or organization in ChatAccount.extra).
        "json_serializer": functools.partial(json.dumps, ensure_ascii=False),
    }
    PUBLIC_BASE_URL = _env("PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    SMTP_URL = _env("SMTP_URL", "smtp://127.0.0.1:1025")
    MAIL_FROM = _env("MAIL_FROM", "Chat Connect <no-reply@chat-connect.example>")
    REDIS_URL = _env("REDIS_URL")
    HUEY_SQLITE_PATH = _env("HUEY_SQLITE_PATH", str(INSTANCE / "huey.sqlite3"))
    PROVIDER_CA_BUNDLE = _env("PROVIDER_CA_BUNDLE")

    # Sessions: server-side records (see auth/sessions.py); the cookie only names one.
    SESSION_COOKIE_HTTPONLY = True
    # Lax, not Strict: the OAuth return from Slack/Chatwork/Microsoft is a top-level GET that
    # must carry the session cookie, or the state binding fails.
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_IDLE_TIMEOUT = timedelta(minutes=30)
    SESSION_ABSOLUTE_TIMEOUT = timedelta(hours=12)
    PERMANENT_SESSION_LIFETIME = timedelta(hours=12)
    # Roles that must sign in with a second factor (reliability.md PT-45); comma-separated.
    MFA_REQUIRED_ROLES = tuple(
        r.strip()
        for r in (_env("MFA_REQUIRED_ROLES", "admin,support") or "").split(",")
        if r.strip()
    )
    LOGIN_FAILURES_PER_MINUTE = 5
    LOGIN_FAILURES_PER_IP_PER_MINUTE = 30
    # Only a proxy we run may set X-Forwarded-For; 0 means "trust no proxy".
    TRUSTED_PROXY_COUNT = int(_env("TRUSTED_PROXY_COUNT", "0") or 0)

    WTF_CSRF_TIME_LIMIT = None  # tied to the session, which already expires
    # The absolute ceiling; each route's own limit is set by portal/inbound.py (1 MiB unless
    # the view declares more, as the CSV import does).
    MAX_CONTENT_LENGTH = 60 * 1024 * 1024
    MAX_FORM_MEMORY_SIZE = 1024 * 1024

    BABEL_DEFAULT_LOCALE = "ja"
    BABEL_DEFAULT_TIMEZONE = "Asia/Tokyo"
    LANGUAGES = ("ja", "en")

    # Delivery worker (portal/notifications/dispatcher.py)
    DELIVERY_LEASE_SECONDS = float(_env("DELIVERY_LEASE_SECONDS", "60") or 60)
    #: The stuck-delivery guard e-mails the admins once a delivery was abandoned mid-send by
    #: its worker more than this many times (notifications/stuck.py).
    STUCK_LEASE_ALERT_AFTER = int(_env("STUCK_LEASE_ALERT_AFTER", "3") or 3)
    DELIVERY_CONCURRENCY = int(_env("DELIVERY_CONCURRENCY", "8") or 8)
    DELIVERY_BATCH = int(_env("DELIVERY_BATCH", "32") or 32)
    DELIVERY_SWEEP_SECONDS = float(_env("DELIVERY_SWEEP_SECONDS", "10") or 10)
    DELIVERY_AUTOWAKE = True

    #: Outbound webhooks: sends in flight per worker, seconds before an answer counts as lost,
    #: and whether an endpoint may be plain http or reach a receiver on this machine (loopback;
    #: development and tests only — private and metadata addresses are refused everywhere).
    WEBHOOK_CONCURRENCY = int(_env("WEBHOOK_CONCURRENCY", "32") or 32)
    WEBHOOK_TIMEOUT_SECONDS = float(_env("WEBHOOK_TIMEOUT_SECONDS", "15") or 15)
    WEBHOOK_REQUIRE_HTTPS = True
    WEBHOOK_ALLOW_LOOPBACK = False
    #: How long the secret before a rotation keeps signing, so receivers can switch over.
    WEBHOOK_ROTATION_OVERLAP_HOURS = 24

    MEMBERS_PER_PAGE = 50
    AUDIT_PER_PAGE = 50
    SANDBOX = False

    def __init__(self) -> None:
        # Each provider's URLs (real hosts; development and tests point them at the sandbox)
        # and its other settings, such as its app's credentials (``ChatProvider.settings``).
        for key, default in provider_url_defaults().items():
            setattr(self, key, _env(key, default))
        for setting in providers.settings():
            setattr(self, setting.name, _env(setting.name, setting.default))


class DevelopmentConfig(BaseConfig):
    """``make run``: SQLite under instance/, the sandbox providers, the SMTP catcher."""

    ENV_NAME = "development"
    # The demo logins of `make run` work with a password alone; set it to try the second step.
    MFA_REQUIRED_ROLES = tuple(
        r.strip() for r in (_env("MFA_REQUIRED_ROLES", "") or "").split(",") if r.strip()
    )
    SECRET_KEY = _env("SECRET_KEY", DEV_SECRET_KEY)
    PORTAL_ENCRYPTION_KEYS = _env("PORTAL_ENCRYPTION_KEYS", DEV_ENCRYPTION_KEY)
    SANDBOX = True
    WEBHOOK_REQUIRE_HTTPS = False  # the sandbox's receiver is plain http on loopback
    WEBHOOK_ALLOW_LOOPBACK = True
    PROVIDER_CA_BUNDLE = _env("PROVIDER_CA_BUNDLE", str(INSTANCE / "sandbox-ca" / "ca.pem"))

    def __init__(self) -> None:
        super().__init__()
        sandbox = sandbox_urls(
            _env("SANDBOX_HTTP_URL", "http://127.0.0.1:5001") or "",
            _env("SANDBOX_HTTPS_URL", "https://127.0.0.1:5443") or "",
        )
        for key, value in sandbox.items():
            setattr(self, key, _env(key, value))
        for setting in providers.settings():
            if setting.sandbox is not None:  # the sandbox's own app and hosts
                setattr(self, setting.name, _env(setting.name, setting.sandbox))


class TestingConfig(DevelopmentConfig):
    """pytest: a database per test run, CSRF on (tests send the token like a browser)."""

    ENV_NAME = "testing"
    TESTING = True
    SQLALCHEMY_DATABASE_URI = _env("TEST_DATABASE_URL", "sqlite://")


class ProductionConfig(BaseConfig):
    """gunicorn behind TLS: secure cookies, real provider hosts, no development keys."""

    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-session"
    PREFERRED_URL_SCHEME = "https"


CONFIGS: dict[str, type[BaseConfig]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


class ConfigError(RuntimeError):
    """The process must not start with this configuration."""


def check_production(config: dict[str, Any]) -> None:
    """Refuse to start production with development keys, insecure transport or sandbox URLs."""
    problems = []
    if not config.get("SECRET_KEY") or config["SECRET_KEY"] == DEV_SECRET_KEY:
        problems.append("SECRET_KEY must be set to a private value")
    keys = config.get("PORTAL_ENCRYPTION_KEYS") or ""
    if not keys or DEV_ENCRYPTION_KEY in keys:
        problems.append("PORTAL_ENCRYPTION_KEYS must be set to private keys")
    if config.get("PORTAL_ENCRYPTION_KEYS") == config.get("SECRET_KEY"):
        problems.append("PORTAL_ENCRYPTION_KEYS must differ from SECRET_KEY")
    # requests-oauthlib's transport check must never be switched off in production.
    if os.environ.get("OAUTHLIB_INSECURE_TRANSPORT"):
        problems.append("OAUTHLIB_INSECURE_TRANSPORT must not be set")
    if not str(config.get("PUBLIC_BASE_URL", "")).startswith("https://"):
        problems.append("PUBLIC_BASE_URL must be https://")
    for key in provider_url_defaults():
        value = str(config.get(key, ""))
        if not value.startswith("https://") or "127.0.0.1" in value or "localhost" in value:
            problems.append(f"{key} must point at the real provider over https")
    if config.get("PROVIDER_CA_BUNDLE"):
        problems.append("PROVIDER_CA_BUNDLE is for the sandbox only")
    if problems:
        raise ConfigError("; ".join(problems))
