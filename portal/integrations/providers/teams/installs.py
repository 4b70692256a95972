"""Install the Teams app for every linked member, so DMs reach people who never added the bot.

Graph's proactive install (msteams-docs ``graph-proactive-bots-and-messages.md``), per member:
``POST /users/{id}/teamwork/installedApps`` (201; 409 means it is there already), then
``GET …/installedApps?$filter=teamsApp/id eq '{id}'`` and ``GET …/{installation}/chat`` for
the chat id, stored as the member's conversation so the next DM goes straight out. Teams
also tells the bot (``conversationUpdate``), which ``inbound.handle_install`` records as for
a member who added the bot themselves.

- The app's org-catalog id is looked up on every run: uploading the app again changes it
  (company-communicator #848).
- Paced under Graph's limits per app per tenant: installs at :data:`INSTALL_RATE` of 30/s,
  reads at :data:`READ_RATE` of 60/s, by :data:`WORKERS` threads sharing one gate each;
  a 429 blocks the gate for its ``Retry-After`` and the member is tried again.
- One member's failure never stops the others; the run stops only for what fails everyone
  (the app is not in the catalog, the consent lacks the permission).
- A member who removed the app is left alone: installing it again would overrule them.
- The per-member outcome is kept in ``ChatAccount.extra["install"]`` and tallied in
  :class:`~...models.AppInstallRun`, the row the page polls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import requests
from flask import Flask, current_app
from sqlalchemy import select

from ....database import utcnow
from ....extensions import db
from ....tasks import crontab, periodic_task, task
from ...models import AccountLink, AppInstallRun, ChatAccount, Integration, SyncState
from ...services import LIVE_STATES
from ..base import ProviderError
from .pacing import Gate
from .tokens import GRAPH_SCOPE, acquire_token, forget_tokens, verify

log = logging.getLogger("portal.integrations.teams.installs")

#: Installs per second per tenant: Graph allows 30 per app per tenant in any second, so 28
#: evenly spaced leave room for the jitter of the network.
INSTALL_RATE = 28.5
#: Reads per second per tenant (the installation and its chat): Graph allows 60.
READ_RATE = 57.0
#: Requests in flight at once: a member takes three calls of 100–300 ms each at Graph, so
#: 32 threads keep 28 installs/s going even when a member takes a whole second.
WORKERS = 32
#: How often one member's request may meet a 429, or a 5xx, before it counts as failed.
MAX_THROTTLED = 8
MAX_TEMPORARY = 3
#: A run whose row has not moved for this long was left by a killed worker.
STALE_AFTER = timedelta(minutes=10)
#: Outcomes kept per member; "installed" and "already" make the member reachable.
REACHABLE = ("installed", "already")


class RunStopped(Exception):
    """What no member can get past: the whole run ends with this code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Outcome:
    """One member's result."""

    account_id: int
    state: str  # installed | already | blocked | failed | skipped
    code: str | None = None
    chat_id: str | None = None


class Installer:
    """The Graph side of one run: thread-safe, no database."""

    def __init__(self, app: Flask, tenant: str) -> None:
        config = app.config
        self.app = app
        self.tenant = tenant
        self.base = str(config["MS_GRAPH_URL"]).rstrip("/") + "/v1.0"
        self.manifest_id = str(config.get("TEAMS_APP_ID") or "")
        with app.app_context():
            self.verify = verify()
        # Configurable only so a benchmark with compressed windows can scale them alike.
        self.installs = Gate(float(config.get("TEAMS_INSTALL_RATE") or INSTALL_RATE))
        self.reads = Gate(float(config.get("TEAMS_READ_RATE") or READ_RATE))
        self.workers = int(config.get("TEAMS_INSTALL_WORKERS") or WORKERS)
        self.session = requests.Session()
        self.session.trust_env = False
        # One kept-alive connection per thread, not requests' default of ten.
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=self.workers)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.stopped: str | None = None
        self.catalog_id = ""
        #: 429s met (each waited out); counted across threads.
        self.throttled_calls = 0
        self._count = threading.Lock()
        self._cached: tuple[str, float] | None = None

    def _token(self) -> str:
        """The tenant's Graph token, asked of msal at most once a minute by the whole run
        (msal serves it from its cache until five minutes before it expires)."""
        with self._count:
            if self._cached and time.monotonic() < self._cached[1]:
                return self._cached[0]
        with self.app.app_context():
            token = acquire_token(self.tenant, GRAPH_SCOPE)
        with self._count:
            self._cached = (token, time.monotonic() + 60)
        return token

    def _forget_token(self) -> None:
        with self._count:
            self._cached = None
        with self.app.app_context():
            forget_tokens(self.tenant)

    def _call(self, method: str, path: str, gate: Gate, **kwargs: Any) -> requests.Response:
        """One Graph call through ``gate``; waits out 429s and retries 5xx, then answers."""
        throttled = temporary = 0
        refreshed = False
        while True:
            gate.wait()
            try:
                response = self.session.request(
                    method,
                    f"{self.base}{path}",
                    headers={"Authorization": f"Bearer {self._token()}"},
                    timeout=15,
                    verify=self.verify,
                    **kwargs,
                )
            except requests.RequestException:
                response = None
            status = response.status_code if response is not None else 599
            if status == 429 and throttled < MAX_THROTTLED:
                throttled += 1
                with self._count:
                    self.throttled_calls += 1
                gate.hold(_retry_after(response) or 1.0)
                continue
            if status >= 500 and temporary < MAX_TEMPORARY:
                temporary += 1
                time.sleep(0.5 * temporary)
                continue
            if status == 401 and not refreshed:
                refreshed = True
                self._forget_token()
                continue
            if response is None:
                raise requests.ConnectionError("Graph unreachable")
            return response

    def resolve(self) -> str:
        """The app's id in the tenant's org catalog (re-read on every run)."""
        if not self.manifest_id:
            raise RunStopped("app_id_missing")
        response = self._call(
            "GET",
            "/appCatalogs/teamsApps",
            self.reads,
            params={"$filter": f"externalId eq '{self.manifest_id}'"},
        )
        if response.status_code == 403:
            raise RunStopped("permission_missing")
        values = _json(response).get("value") if response.status_code == 200 else None
        if not values or not isinstance(values[0], dict) or not values[0].get("id"):
            raise RunStopped("app_not_in_catalog")
        self.catalog_id = str(values[0]["id"])
        return self.catalog_id

    def install(self, account_id: int, object_id: str) -> Outcome:
        """Install for one member and find their chat; never raises for this member alone."""
        if self.stopped:
            return Outcome(account_id, "skipped", self.stopped)
        user = f"/users/{quote(object_id, safe='')}/teamwork/installedApps"
        bind = f"{self.base}/appCatalogs/teamsApps/{self.catalog_id}"
        try:
            response = self._call("POST", user, self.installs, json={"teamsApp@odata.bind": bind})
        except requests.RequestException:
            return Outcome(account_id, "failed", "unreachable")
        except ProviderError as problem:  # no Graph token: nobody else will get one either
            self.stopped = problem.code
            return Outcome(account_id, "skipped", self.stopped)
        status = response.status_code
        if status in (201, 409):
            state = "installed" if status == 201 else "already"
            return Outcome(account_id, state, None, self._chat(user))
        code = str((_json(response).get("error") or {}).get("code") or "")
        message = str((_json(response).get("error") or {}).get("message") or "").lower()
        if status == 403 and "permission" in message and "policy" not in message:
            self.stopped = "permission_missing"
            return Outcome(account_id, "skipped", self.stopped)
        if status == 403:
            return Outcome(account_id, "blocked", "blocked_by_policy")
        if status == 404 and code != "Request_ResourceNotFound" and "user" not in message:
            self.stopped = "app_not_in_catalog"
            return Outcome(account_id, "skipped", self.stopped)
        if status == 404:
            return Outcome(account_id, "failed", "user_not_found")
        return Outcome(account_id, "failed", f"http_{status}")

    def _chat(self, user: str) -> str | None:
        """The chat id of the member's personal chat with the bot, if Graph says."""
        try:
            found = self._call(
                "GET",
                user,
                self.reads,
                params={
                    "$expand": "teamsApp",
                    "$filter": f"teamsApp/id eq '{self.catalog_id}'",
                },
            )
            values = _json(found).get("value") if found.status_code == 200 else None
            if not values or not isinstance(values[0], dict) or not values[0].get("id"):
                return None
            chat = self._call(
                "GET", f"{user}/{quote(str(values[0]['id']), safe='')}/chat", self.reads
            )
        except (requests.RequestException, ProviderError):
            return None
        chat_id = _json(chat).get("id") if chat.status_code == 200 else None
        return str(chat_id)[:512] if chat_id else None


def _json(response: requests.Response | None) -> dict[str, Any]:
    try:
        value = response.json() if response is not None else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _retry_after(response: requests.Response | None) -> float | None:
    try:
        return max(0.0, float((response.headers if response is not None else {})["Retry-After"]))
    except (KeyError, ValueError):
        return None


# --- runs -----------------------------------------------------------------------------------


def latest_run(integration: Integration) -> AppInstallRun | None:
    return db.session.scalar(
        select(AppInstallRun)
        .where(AppInstallRun.integration_id == integration.id)
        .order_by(AppInstallRun.id.desc())
        .limit(1)
    )


def pending_accounts(integration: Integration, *, retry: bool) -> list[ChatAccount]:
    """Linked accounts the bot cannot reach yet: no conversation, not removed by the member;
    ``retry`` includes those an earlier run could not install for."""
    rows = db.session.scalars(
        select(ChatAccount)
        .join(AccountLink, AccountLink.chat_account_id == ChatAccount.id)
        .where(ChatAccount.integration_id == integration.id, ChatAccount.is_active.is_(True))
        .order_by(ChatAccount.id)
    ).all()
    found = []
    for account in rows:
        extra = account.extra or {}
        tried = (extra.get("install") or {}).get("state")
        if extra.get("conversation_id") or extra.get("teams_user_id") or extra.get("removed_at"):
            continue
        if tried and not retry:
            continue
        found.append(account)
    return found


def start_install(integration: Integration, actor_id: int | None) -> AppInstallRun:
    """Queue a run for every linked member the bot cannot reach (or return the one running);
    turns on installing for members linked later; commits, then enqueues."""
    current = latest_run(integration)
    if current is not None and current.active:
        if current.updated_at > utcnow() - STALE_AFTER:
            return current
        _finish(current, SyncState.FAILED, "interrupted")
    config = dict(integration.config or {})
    config["proactive_install"] = True
    integration.config = config
    run = AppInstallRun(
        organization_id=integration.organization_id,
        integration_id=integration.id,
        started_by_id=actor_id,
    )
    db.session.add(run)
    db.session.commit()
    install_task(run.id, True)
    return run


@task()
def install_task(run_id: int, retry: bool) -> None:
    """huey entry point (inline in tests)."""
    run_install(run_id, retry=retry)


@periodic_task(crontab(minute="*/5"))
def install_newly_linked() -> None:
    """Every five minutes: members linked since, where the admin turned installing on."""
    integrations = db.session.scalars(
        select(Integration).where(
            Integration.provider == "teams", Integration.state.in_(LIVE_STATES)
        )
    ).all()
    for integration in integrations:
        if not (integration.config or {}).get("proactive_install"):
            continue
        current = latest_run(integration)
        if current is not None and current.active:
            continue
        if pending_accounts(integration, retry=False):
            run = AppInstallRun(
                organization_id=integration.organization_id, integration_id=integration.id
            )
            db.session.add(run)
            db.session.commit()
            run_install(run.id, retry=False)


def run_install(run_id: int, *, retry: bool) -> AppInstallRun | None:
    """Install for the run's members, committing progress about every half second."""
    run = db.session.get(AppInstallRun, run_id)
    if run is None or not run.active:
        return run
    integration = db.session.get(Integration, run.integration_id)
    if integration is None or integration.state not in LIVE_STATES or not integration.external_id:
        _finish(run, SyncState.FAILED, "not_connected")
        return run
    run.state = SyncState.RUNNING
    targets = [(a.id, a.external_id) for a in pending_accounts(integration, retry=retry)]
    run.total = len(targets)
    db.session.commit()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    installer = Installer(app, integration.external_id)
    try:
        installer.resolve()
    except RunStopped as stopped:
        _finish(run, SyncState.FAILED, stopped.code)
        return run
    except requests.RequestException:
        _finish(run, SyncState.FAILED, "unreachable")
        return run
    except ProviderError as problem:  # no Graph token for the tenant (consent withdrawn…)
        _finish(run, SyncState.FAILED, problem.code)
        return run
    service_url = str(current_app.config.get("TEAMS_SERVICE_URL") or "")
    _apply_all(run, integration, installer, targets, service_url)
    run.throttled = installer.throttled_calls
    if installer.stopped:
        _finish(run, SyncState.FAILED, installer.stopped)
    else:
        _finish(run, SyncState.DONE, None)
    return run


def _apply_all(
    run: AppInstallRun,
    integration: Integration,
    installer: Installer,
    targets: Iterable[tuple[int, str]],
    service_url: str,
) -> None:
    last = time.monotonic()
    with ThreadPoolExecutor(installer.workers, thread_name_prefix="teams-install") as pool:
        futures: list[Future[Outcome]] = [
            pool.submit(installer.install, account_id, object_id)
            for account_id, object_id in targets
        ]
        for future in as_completed(futures):
            _record(run, integration, future.result(), service_url)
            if time.monotonic() - last > 0.5:
                run.throttled = installer.throttled_calls
                db.session.commit()
                last = time.monotonic()
    db.session.commit()


def _record(
    run: AppInstallRun, integration: Integration, outcome: Outcome, service_url: str
) -> None:
    run.done += 1
    if outcome.state == "skipped":
        return
    # The run's tallies are named after the outcomes.
    setattr(run, outcome.state, getattr(run, outcome.state) + 1)
    account = db.session.get(ChatAccount, outcome.account_id)
    if account is None:
        return
    db.session.refresh(account)  # the bot's conversationUpdate may have written it meanwhile
    extra = dict(account.extra or {})
    extra["install"] = {"state": outcome.state, "code": outcome.code, "at": utcnow().isoformat()}
    if outcome.chat_id and not extra.get("conversation_id"):
        extra.update(
            conversation_id=outcome.chat_id,
            service_url=extra.get("service_url") or service_url,
            tenant_id=integration.external_id,
        )
        link = db.session.scalar(
            select(AccountLink).where(AccountLink.chat_account_id == account.id)
        )
        if link is not None and link.flagged_reason == "bot_not_installed":
            link.flagged_reason = None  # reachable now
    account.extra = extra


def _finish(run: AppInstallRun, state: SyncState, error: str | None) -> None:
    run.state = state
    run.error = error
    run.finished_at = utcnow()
    db.session.commit()
