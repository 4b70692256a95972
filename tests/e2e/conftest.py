"""Browser tests: the real portal and sandbox on free ports, driven by Debian's Chromium.

Screenshots go to ``artifacts/screenshots/`` (git-ignored). Any Content-Security-Policy
violation reported by the browser fails the test (PT-31).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
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
def running_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with run_sandbox(tmp_path_factory.mktemp("sandbox")) as running:
        yield running


@pytest.fixture
def sandbox(running_sandbox: RunningSandbox) -> RunningSandbox:
    """The sandbox in its seeded state: every browser test starts from the same world."""
    running_sandbox.reset()
    return running_sandbox


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database with the demo data, copied for each test."""
    from flask_migrate import upgrade

    database = tmp_path_factory.mktemp("template") / "portal.sqlite3"
    app = create_app(base_config(f"sqlite:///{database}"))
    with app.app_context():
        upgrade()
        demo.load()
        db.session.remove()
        db.engine.dispose()
    return database


def _deliver_until(app: Any, stop: threading.Event) -> None:
    """The delivery worker's loop: claim and send whatever is due (notifications, webhooks), a
    few times a second.

    A few deliveries per pass: a pass waits for the providers' pacing (Slack: one message a
    second), and the test's teardown waits for the pass, so a test that leaves 36 link notices
    queued would otherwise wait half a minute for them after its last step.
    """
    from portal.notifications import dispatcher
    from portal.preferences import digests
    from portal.webhooks import sender

    with app.app_context():
        while not stop.is_set():
            digests.build_due()
            dispatcher.run_due(limit=4)
            sender.run_due(limit=8)
            db.session.remove()
            stop.wait(0.2)


@dataclass(frozen=True)
class Portal:
    url: str
    database: Path
    app: Any


@pytest.fixture
def portal(sandbox: RunningSandbox, demo_database: Path, tmp_path: Path) -> Iterator[Portal]:
    """The portal served by a real WSGI server, with fresh demo data, against the sandbox."""
    database = tmp_path / "portal.sqlite3"
    shutil.copyfile(demo_database, database)
    app = create_app(
        base_config(
            f"sqlite:///{database}",
            PROVIDER_CA_BUNDLE=sandbox.ca_bundle,
            SMTP_URL=f"smtp://127.0.0.1:{sandbox.smtp_port}",
            HUEY_SQLITE_PATH=str(tmp_path / "huey.sqlite3"),
            # Deliveries go out from a worker loop beside the server, as in `make run`, not
            # inline in the request that queued them.
            DELIVERY_AUTOWAKE=False,
            **sandbox_urls(sandbox.http_url, sandbox.https_url),
        )
    )
    stop = threading.Event()
    worker = threading.Thread(target=_deliver_until, args=(app, stop), daemon=True)
    worker.start()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_BASE_URL"] = url
    sandbox.configure(portal_url=url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Portal(url, database, app)
    stop.set()
    worker.join(timeout=30)
    server.shutdown()
    server.server_close()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def portal_url(portal: Portal) -> str:
    return portal.url


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


def browser_tab(browser: Any, portal_url: str) -> Iterator[Any]:
    """A tab in a browser context of its own (its own cookies: one person signed in), failing
    the test on any Content-Security-Policy violation it logged."""
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


@pytest.fixture
def page(browser: Any, portal_url: str) -> Iterator[Any]:
    yield from browser_tab(browser, portal_url)


@pytest.fixture
def axe_page(browser: Any, portal_url: str) -> Iterator[Any]:
    """A tab for the accessibility checks (tests/e2e/a11y.py): like ``page``, but this context
    alone bypasses the portal's Content-Security-Policy, so Playwright can inject axe-core."""
    context = browser.new_context(
        locale="ja-JP",
        base_url=portal_url,
        viewport={"width": 1280, "height": 860},
        bypass_csp=True,
    )
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


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


def settled(page: Any) -> None:
    """Wait until htmx has no request in flight (a boosted navigation, a partial swap).

    ``wait_for_load_state`` returns at once on a document that already reached that state, and
    a boosted navigation never resets it; htmx marks each element whose request is in flight
    with the class ``htmx-request`` until its answer is swapped in.
    """
    page.wait_for_function("() => document.querySelector('.htmx-request') === null")


def open_system_menu(page: Any, entry: str) -> None:
    """Open the header's 「システム」 menu and click ``entry`` in it (in either language)."""
    page.click("#system-menu > summary")
    page.locator("#system-menu").get_by_role("link", name=entry, exact=True).click()


def open_integrations(page: Any, email: str = "admin@demo.example") -> None:
    """Sign in, in Japanese, and open 「システム」→「外部ツールの連携」, as the seed says."""
    login(page, email)
    if page.locator("button[lang=ja]").count():  # another browser test left English selected
        page.click("button[lang=ja]")
        page.wait_for_load_state("networkidle")
    open_system_menu(page, "外部ツールの連携")
    page.wait_for_url("**/settings/integrations")
    # The admin already lands on this page after login, so the URL matches before the boosted
    # navigation has swapped the page in; a click before that would be lost with the old body.
    settled(page)


def connect_slack(page: Any) -> None:
    """On the Slack page: "Add to Slack", #general, 許可する, and the directory read."""
    page.click("#provider-slack .provider-link")
    page.click("#setup-start")
    page.wait_for_url("**/slack/oauth/v2/authorize**")
    page.select_option("select[name=channel]", label="#general")
    page.click("button[value=allow]")
    page.wait_for_url("**/settings/integrations/slack")
    expect(page.locator("[data-sync-state=done]")).to_be_visible()
