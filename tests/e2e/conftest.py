"""Browser tests: the real portal and sandbox on free ports, driven by Debian's Chromium.

Screenshots go to ``artifacts/screenshots/`` (git-ignored). Any Content-Security-Policy
violation reported by the browser fails the test (PT-31).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from portal import create_app, demo
from portal.config import sandbox_urls
from portal.extensions import db
from sandbox.testing import RunningSandbox, run_sandbox
from tests.conftest import base_config

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
# Without the background-networking flags Chromium tries to reach Google at every start,
# which this machine's closed network refuses.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with run_sandbox(tmp_path_factory.mktemp("sandbox")) as running:
        yield running


@pytest.fixture(scope="session")
def portal_url(sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The portal served by a real WSGI server, with demo data, against the sandbox."""
    from flask_migrate import upgrade

    database = tmp_path_factory.mktemp("portal") / "portal.sqlite3"
    app = create_app(
        base_config(
            f"sqlite:///{database}",
            PROVIDER_CA_BUNDLE=sandbox.ca_bundle,
            SMTP_URL=f"smtp://127.0.0.1:{sandbox.smtp_port}",
            **sandbox_urls(sandbox.http_url, sandbox.https_url),
        )
    )
    with app.app_context():
        upgrade()
        demo.load()
        db.session.remove()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_BASE_URL"] = url
    sandbox.configure(portal_url=url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Chromium is not installed (make browser installs it); browser tests never skip"
        )
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any, portal_url: str) -> Iterator[Any]:
    context = browser.new_context(
        locale="ja-JP", base_url=portal_url, viewport={"width": 1280, "height": 860}
    )
    tab = context.new_page()
    violations: list[str] = []
    tab.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    tab.set_default_timeout(10_000)
    yield tab
    context.close()
    assert violations == [], f"CSP violations: {violations}"


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(page: Any, email: str, password: str = demo.DEFAULT_PASSWORD) -> None:
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
