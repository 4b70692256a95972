"""Fixtures: a migrated database (SQLite or PostgreSQL), an app per test, clients that log in.

The suite runs on SQLite by default and on PostgreSQL when ``TEST_DATABASE_URL`` names a
server; the database itself is created (and dropped) here. The schema comes from the Alembic
migrations, so every run also proves the migrations build what the models describe.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jinja2.bccache import Bucket, BytecodeCache
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from portal import create_app
from portal.accounts.models import Organization, User
from portal.accounts.permissions import Role
from portal.config import sandbox_urls
from portal.extensions import db
from portal.notifications import pacing
from portal.notifications.transports import chat as chat_transport
from portal.tasks import huey
from sandbox.testing import RunningSandbox, run_sandbox

# Background tasks run inline in tests (huey's immediate mode, in-memory storage).
huey.immediate = True

PASSWORD = "correct horse battery"
# Fast hash for tests only: thousands of logins in the access matrix would otherwise take minutes.
PASSWORD_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
TEST_KEY = "dGVzdC1lbmNyeXB0aW9uLWtleS0zMi1ieXRlcy1vayE="
_CSRF = re.compile(r'"X-CSRFToken": "([^"]+)"')


def base_config(database_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "ENV_NAME": "testing",
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "PORTAL_ENCRYPTION_KEYS": TEST_KEY,
        "SQLALCHEMY_DATABASE_URI": database_url,
        **extra,
    }


def _migrate(database_url: str) -> None:
    from flask_migrate import upgrade

    app = create_app(base_config(database_url))
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database: a template file for SQLite, a fresh database for PostgreSQL."""
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        path = tmp_path_factory.mktemp("db") / "template.sqlite3"
        url = f"sqlite:///{path}"
        _migrate(url)
        yield url
        return
    url = make_url(server_url).set(database=f"chat_connect_test_{os.getpid()}")
    # pre_ping: DL-10 restarts the server mid-session; the clean-up below must reconnect.
    admin = create_engine(
        make_url(server_url).set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        pool_pre_ping=True,
    )
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{url.database}"'))
        connection.execute(text(f'CREATE DATABASE "{url.database}"'))
    rendered = url.render_as_string(hide_password=False)
    _migrate(rendered)
    yield rendered
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


def fresh_database(template: str, tmp_path: Path) -> str:
    """An empty, migrated database for one test."""
    if template.startswith("sqlite"):
        target = tmp_path / "portal.sqlite3"
        shutil.copyfile(template.removeprefix("sqlite:///"), target)
        return f"sqlite:///{target}"
    engine = create_engine(template)
    with engine.begin() as connection:
        tables = (
            connection.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    " AND tablename <> 'alembic_version'"
                )
            )
            .scalars()
            .all()
        )
        connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    # The truncated tables included the pacing buckets and integrations: forget this process's
    # reservations and when it last stamped an integration's last success.
    pacing.forget_local_state()
    chat_transport.forget_local_state()
    return template


@pytest.fixture(scope="session")
def provider_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """The sandbox providers, once per test session; events go nowhere until a live server."""
    with run_sandbox(tmp_path_factory.mktemp("sandbox"), portal_url="http://127.0.0.1:9") as box:
        yield box


@pytest.fixture
def sandbox(provider_sandbox: RunningSandbox) -> RunningSandbox:
    """The sandbox reset to its seeded state (directories, no tokens, no faults)."""
    provider_sandbox.reset()
    return provider_sandbox


def sandbox_config(box: RunningSandbox) -> dict[str, Any]:
    """Portal settings that point every provider URL, the CA and SMTP at ``box``."""
    return {
        "PROVIDER_CA_BUNDLE": box.ca_bundle,
        "SMTP_URL": f"smtp://127.0.0.1:{box.smtp_port}",
        **sandbox_urls(box.http_url, box.https_url),
    }


class _CompiledTemplates(BytecodeCache):
    """Compiled templates kept for the whole session, shared by every test's app.

    Each test builds its own app, and with it a Jinja environment that would compile every
    template it renders again: about a quarter of the suite's time went to that. The key
    includes the template's source checksum, so an edited template is compiled afresh.
    """

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_TEMPLATES = _CompiledTemplates()


@pytest.fixture
def app(
    database_template: str, tmp_path: Path, provider_sandbox: RunningSandbox
) -> Iterator[Flask]:
    application = create_app(
        base_config(
            fresh_database(database_template, tmp_path),
            HUEY_SQLITE_PATH=str(tmp_path / "huey.sqlite3"),
            # Tests run deliveries explicitly (dispatcher.run_due) to control timing.
            DELIVERY_AUTOWAKE=False,
            DELIVERY_CONCURRENCY=4,
            **sandbox_config(provider_sandbox),
        )
    )
    application.test_client_class = PortalClient
    application.jinja_env.bytecode_cache = _TEMPLATES
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def live_server(app: Flask, sandbox: RunningSandbox) -> Iterator[str]:
    """Serve ``app`` over real HTTP so the sandbox can call it (Slack events, Teams activities)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_BASE_URL"] = url
    sandbox.configure(portal_url=url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()
    server.server_close()
    sandbox.configure(portal_url="http://127.0.0.1:9")


class PortalClient(FlaskClient):
    """A test client that signs in and sends the CSRF token like the browser does.

    Each request runs in its own application context, as in production: the test's own
    context (and its ``g`` and database session) is not shared with the request. The test's
    session is committed before and after every request, so setup is visible to the request
    and the request's writes are visible to the test.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        db.session.commit()
        # Buffered: a streamed body (CSV export) is read while the request's context is alive.
        kwargs.setdefault("buffered", True)
        with self.application.app_context():
            response = super().open(*args, **kwargs)
        db.session.commit()
        return response

    def login(self, user: User, password: str = PASSWORD) -> None:
        page = self.get("/login")
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
        assert token, "login page has no CSRF token"
        response = self.post(
            "/login", data={"csrf_token": token.group(1), "email": user.email, "password": password}
        )
        assert response.status_code == 302, response.text

    def csrf_token(self) -> str:
        page = self.get("/", follow_redirects=True)
        match = _CSRF.search(page.text)
        assert match, "page has no CSRF token"
        return match.group(1)

    def post_form(self, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self.post(url, data={"csrf_token": self.csrf_token(), **(data or {})}, **kwargs)


@pytest.fixture
def client(app: Flask) -> PortalClient:
    return app.test_client()  # type: ignore[return-value]


@pytest.fixture
def make_org(app: Flask) -> Any:
    def make(slug: str = "acme", name: str = "株式会社アクメ") -> Organization:
        organization = Organization(slug=slug, name=name)
        db.session.add(organization)
        db.session.commit()
        return organization

    return make


@pytest.fixture
def make_user(app: Flask) -> Any:
    counter = iter(range(1, 1_000_000))

    def make(
        organization: Organization | None,
        role: Role = Role.MEMBER,
        email: str | None = None,
        name: str | None = None,
    ) -> User:
        n = next(counter)
        user = User(
            email=email or f"user{n}@{organization.slug if organization else 'support'}.example",
            name=name or f"テスト ユーザー{n}",
            role=role,
            organization_id=organization.id if organization else None,
            password_hash=PASSWORD_HASH,
        )
        db.session.add(user)
        db.session.commit()
        return user

    return make


@pytest.fixture
def tenants(make_org: Any, make_user: Any) -> dict[str, Any]:
    """Two organizations with an admin and a member each, and one support user."""
    own, other = make_org("demo", "デモ株式会社"), make_org("sample", "サンプル商事")
    return {
        "own": own,
        "other": other,
        "admin": make_user(own, Role.ADMIN, "admin@demo.example"),
        "member": make_user(own, Role.MEMBER, "member@demo.example"),
        "other_admin": make_user(other, Role.ADMIN, "admin@sample.example"),
        "other_member": make_user(other, Role.MEMBER, "member@sample.example"),
        "support": make_user(None, Role.SUPPORT, "support@chat-connect.example"),
    }
