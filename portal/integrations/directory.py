"""Directory sync: copy a provider's people into ChatAccount, in the background, with progress.

``start_sync`` writes a :class:`DirectorySync` row, commits, then enqueues the huey task; the
task (``run_sync``) reads the provider page by page (``ChatClient.iter_directory``), upserts the
accounts in bulk (refreshing the directory's keys of ``extra``, such as the member's ``tz``,
and leaving the others alone) and updates the row after every page, which the page polls
(HTMX). Accounts that left the directory are marked inactive, never deleted: their links and
history stay.
Then, where the provider's directory has e-mail addresses and the organization has not chosen
preview only, every unique, exact match is linked as one batch (``linking.auto_link``): the
first sync links the organization, later ones its new hires. An hourly check starts a sync
for every connection whose last one is a day old (:func:`sync_daily`); providers that say
who joined or left in between (Slack's events) use :func:`store_entry` and
:func:`account_left`.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select, update

from ..database import utcnow
from ..extensions import db
from ..tasks import crontab, periodic_task, task
from . import linking
from .health import alert_admins, flag_link, mark_needs_reconnect
from .models import (
    AccountLink,
    ChatAccount,
    DirectorySync,
    Integration,
    IntegrationState,
    SyncState,
)
from .providers.base import DirectoryEntry, ProviderAuthError, ProviderError
from .registry import providers

log = logging.getLogger("portal.integrations.directory")

#: A queued/running sync whose row has not moved for this long was lost with its worker.
STALE_AFTER = timedelta(minutes=10)
#: How old the last sync may be before the hourly check starts another.
DAILY = timedelta(hours=24)


def latest_sync(integration: Integration) -> DirectorySync | None:
    """The integration's most recent sync run."""
    return db.session.scalar(
        select(DirectorySync)
        .where(DirectorySync.integration_id == integration.id)
        .order_by(DirectorySync.id.desc())
        .limit(1)
    )


def start_sync(integration: Integration, actor_id: int | None) -> DirectorySync:
    """Queue a sync (or return the one already queued/running); commits, then enqueues."""
    current = latest_sync(integration)
    if current is not None and current.active:
        if current.updated_at > utcnow() - STALE_AFTER:
            return current
        # A worker died mid-sync (huey drops a running task on a hard kill): start over.
        _finish(current, SyncState.FAILED, "interrupted")
    run = DirectorySync(
        organization_id=integration.organization_id,
        integration_id=integration.id,
        started_by_id=actor_id,
    )
    db.session.add(run)
    db.session.commit()
    sync_directory_task(run.id)
    return run


@task()
def sync_directory_task(run_id: int) -> None:
    """huey entry point: run the sync in the worker (inline in tests)."""
    run_sync(run_id)


def run_sync(run_id: int) -> DirectorySync | None:
    """Read the whole directory into ChatAccount, committing progress after every page."""
    run = db.session.get(DirectorySync, run_id)
    if run is None or not run.active:
        return run
    integration = db.session.get(Integration, run.integration_id)
    provider = providers.get(integration.provider) if integration else None
    if integration is None or provider is None or integration.state != IntegrationState.CONNECTED:
        _finish(run, SyncState.FAILED, "not_connected")
        return run
    run.state = SyncState.RUNNING
    db.session.commit()
    seen: set[str] = set()
    existing = _existing_accounts(integration.id)
    try:
        for page in provider.client(integration).iter_directory():
            _store_page(integration, page, existing)
            seen.update(entry.external_id for entry in page)
            run.pages += 1
            run.fetched = len(seen)
            db.session.commit()
    except ProviderError as problem:
        db.session.rollback()
        dead_token = isinstance(problem, ProviderAuthError)
        if dead_token:
            mark_needs_reconnect(integration, problem.code)
        _finish(run, SyncState.FAILED, problem.code)
        if dead_token:
            alert_admins(integration.id)
        return run
    gone = [
        account_id for external_id, (account_id, _) in existing.items() if external_id not in seen
    ]
    if gone:
        db.session.execute(
            update(ChatAccount)
            .where(ChatAccount.id.in_(gone), ChatAccount.is_active.is_(True))
            .values(is_active=False, synced_at=utcnow())
        )
    run.deactivated = len(gone)
    db.session.commit()
    if linking.auto_link_enabled(integration):
        try:
            linking.auto_link(integration, run)
        except Exception:
            # auto_link rolled its batch back whole; the run must not stay "running" (the page
            # would poll until STALE_AFTER), so it says what failed and the admin syncs again.
            log.exception("auto-link failed: integration=%s", integration.id)
            _finish(run, SyncState.FAILED, "auto_link_failed")
            return run
    _finish(run, SyncState.DONE, None)
    return run


def _existing_accounts(integration_id: int) -> dict[str, tuple[int, bool]]:
    """external id → (account id, still active after this run); starts as "not seen"."""
    rows = db.session.execute(
        select(ChatAccount.external_id, ChatAccount.id).where(
            ChatAccount.integration_id == integration_id
        )
    )
    return {external_id: (account_id, False) for external_id, account_id in rows}


def _store_page(
    integration: Integration, page: list[DirectoryEntry], existing: dict[str, tuple[int, bool]]
) -> None:
    """Insert new accounts and refresh known ones, a page at a time (bulk statements)."""
    now = utcnow()
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    stored = _stored_extras([existing[e.external_id][0] for e in page if e.external_id in existing])
    for entry in page:
        values: dict[str, Any] = {
            "name": entry.name,
            "email": entry.email,
            "is_active": True,
            "synced_at": now,
        }
        known = existing.get(entry.external_id)
        if known is None:
            new.append(
                {
                    "organization_id": integration.organization_id,
                    "integration_id": integration.id,
                    "external_id": entry.external_id,
                    "extra": merged_extra({}, entry.extra),
                    **values,
                }
            )
        else:
            before = stored.get(known[0], {})
            after = merged_extra(before, entry.extra)
            if after != before:
                # Written only when the directory's keys changed: the rest of ``extra`` (a
                # DM channel, a conversation reference) is the delivery side's, and a row
                # left alone cannot lose what a concurrent writer put there.
                values["extra"] = after
            changed.append({"id": known[0], **values})
            existing[entry.external_id] = (known[0], True)
    if new:
        db.session.execute(insert(ChatAccount), new)
    if changed:
        db.session.execute(update(ChatAccount), changed)


def _stored_extras(account_ids: list[int]) -> dict[int, dict[str, Any]]:
    """account id → its ``extra`` as stored, for the known accounts of one page."""
    if not account_ids:
        return {}
    rows = db.session.execute(
        select(ChatAccount.id, ChatAccount.extra).where(ChatAccount.id.in_(account_ids))
    )
    return {account_id: dict(extra or {}) for account_id, extra in rows}


def merged_extra(stored: dict[str, Any], directory: dict[str, object]) -> dict[str, Any]:
    """``stored`` refreshed with what the directory says: a value replaces the stored one,
    None removes it (the directory now says "unknown", e.g. a time zone that is no longer
    valid), and a key the entry does not carry is kept (the provider could not tell this
    time, e.g. Graph refused the mailbox settings)."""
    merged = dict(stored)
    for key, value in directory.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def store_entry(integration: Integration, entry: DirectoryEntry) -> ChatAccount:
    """One person the provider told us about between syncs (Slack's ``team_join`` and
    ``user_change``): stored or refreshed like a sync would; the caller commits."""

    def stored() -> ChatAccount | None:
        return db.session.scalar(
            select(ChatAccount).where(
                ChatAccount.integration_id == integration.id,
                ChatAccount.external_id == entry.external_id,
            )
        )

    known = stored()
    _store_page(integration, [entry], {entry.external_id: (known.id, False)} if known else {})
    db.session.flush()
    account = stored()
    assert account is not None  # just written
    db.session.refresh(account)
    return account


def account_left(integration: Integration, external_id: str) -> ChatAccount | None:
    """The provider says this person left (Slack ``user_change`` with ``deleted``): the
    account is deactivated and its link flagged, as the next sync would; the caller commits."""
    account = db.session.scalar(
        select(ChatAccount).where(
            ChatAccount.integration_id == integration.id, ChatAccount.external_id == external_id
        )
    )
    if account is None or not account.is_active:
        return account
    account.is_active = False
    account.synced_at = utcnow()
    link = db.session.scalar(select(AccountLink).where(AccountLink.chat_account_id == account.id))
    if link is not None and not link.flagged_reason:
        flag_link(link, "account_deleted")
    return account


@periodic_task(crontab(minute="17"))
def sync_daily() -> None:
    """Every hour, start a sync for each connected integration whose last one is a day old,
    so new hires and leavers show up without anyone pressing 再同期."""
    stale_before = utcnow() - DAILY
    for integration in db.session.scalars(
        select(Integration).where(Integration.state == IntegrationState.CONNECTED)
    ).all():
        last = latest_sync(integration)
        if last is None or (not last.active and last.created_at < stale_before):
            start_sync(integration, None)


def _finish(run: DirectorySync, state: SyncState, error: str | None) -> None:
    run.state = state
    run.error = error
    run.finished_at = utcnow()
    db.session.commit()
