"""Bot Framework activities, acted on as services: install, uninstall, who has the bot.

An install stores the member's conversation reference (so the bot may write to them), links
the installer's account when auto-link is on and the e-mail is unique, and greets once; an
uninstall forgets the conversation and flags the link. Each function owns its transaction.
The view has already verified the token and the schema of every field read here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ....database import utcnow
from ....extensions import db
from ....me import actions
from ...health import flag_link
from ...linking import link_by_email
from ...models import (
    AccountLink,
    ChatAccount,
    InboundEvent,
    Integration,
    IntegrationState,
    LinkMethod,
)
from ..base import ProviderError
from .botframework import allowed_service_url
from .client import CARD_CONTENT_TYPE, TeamsClient, render_card

log = logging.getLogger("portal.integrations.teams")

#: The bot's first words after an install (the seed: 「こんにちは◯◯さん」と表示されたら成功です).
GREETINGS = {"ja": "こんにちは{name}さん", "en": "Hello {name}"}

Outcome = Literal["handled", "ignored", "unknown_tenant", "duplicate"]


def receive(activity: Mapping[str, Any]) -> Outcome:
    """Act on one verified activity: an install or uninstall of a connected tenant, once per
    ``activity.id`` (committed before the work, so a retry racing the first is a duplicate)."""
    kind = activity_kind(activity)
    if kind == "other":
        return "ignored"
    integration = connected_integration(activity_tenant(activity))
    if integration is None:
        return "unknown_tenant"
    activity_id = activity.get("id")
    if activity_id:
        db.session.add(InboundEvent(provider="teams", event_id=str(activity_id)[:128]))
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            return "duplicate"
    if kind == "install":
        handle_install(integration, activity)
    else:
        handle_uninstall(integration, activity)
    return "handled"


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object, limit: int = 256) -> str:
    return value[:limit] if isinstance(value, str) else ""


def activity_tenant(activity: Mapping[str, Any]) -> str:
    """The tenant of an activity: channelData.tenant.id, else conversation.tenantId."""
    channel_data = activity.get("channelData")
    tenant = channel_data.get("tenant") if isinstance(channel_data, Mapping) else None
    value = tenant.get("id") if isinstance(tenant, Mapping) else None
    if not value:
        conversation = activity.get("conversation")
        value = conversation.get("tenantId") if isinstance(conversation, Mapping) else None
    return _text(value, 64).lower()


def _is_personal(activity: Mapping[str, Any]) -> bool:
    conversation = activity.get("conversation")
    kind = conversation.get("conversationType") if isinstance(conversation, Mapping) else None
    return kind in (None, "personal")


def _bot_in(activity: Mapping[str, Any], key: str) -> bool:
    recipient = activity.get("recipient")
    bot = recipient.get("id") if isinstance(recipient, Mapping) else None
    members = activity.get(key)
    return (
        bool(bot)
        and isinstance(members, list)
        and any(isinstance(m, Mapping) and m.get("id") == bot for m in members)
    )


def activity_kind(activity: Mapping[str, Any]) -> str:
    """ "install", "uninstall" or "other" (personal scope only)."""
    kind, action = activity.get("type"), activity.get("action")
    if not _is_personal(activity):
        return "other"
    if (kind == "installationUpdate" and action in ("add", "add-upgrade")) or (
        kind == "conversationUpdate" and _bot_in(activity, "membersAdded")
    ):
        return "install"
    if (kind == "installationUpdate" and action == "remove") or (
        kind == "conversationUpdate" and _bot_in(activity, "membersRemoved")
    ):
        return "uninstall"
    return "other"


def connected_integration(tenant: str) -> Integration | None:
    """The connected Teams integration of a tenant, if any organization has one."""
    if not tenant:
        return None
    return db.session.scalar(
        select(Integration).where(
            Integration.provider == "teams",
            Integration.external_id == tenant,
            Integration.state == IntegrationState.CONNECTED,
        )
    )


def handle_install(integration: Integration, activity: Mapping[str, Any]) -> bool:
    """Store the conversation reference, link when allowed, greet once; commits.

    Returns whether a greeting was sent (the second activity of one install does not greet).
    """
    sender = _mapping(activity.get("from"))
    conversation = activity.get("conversation")
    conversation_id = _text(conversation.get("id") if isinstance(conversation, Mapping) else None)
    object_id = _text(sender.get("aadObjectId"), 64).lower()
    user_id = _text(sender.get("id"))
    service_url = _text(activity.get("serviceUrl"), 2048)
    if not (conversation_id and object_id and user_id and allowed_service_url(service_url)):
        return False
    client = TeamsClient(integration)
    account = db.session.scalar(
        select(ChatAccount).where(
            ChatAccount.integration_id == integration.id, ChatAccount.external_id == object_id
        )
    )
    if account is None:
        # Not in the directory yet (joined since the last sync): ask Teams who this is.
        profile: dict[str, Any] = {}
        try:
            profile = client.member(service_url, conversation_id, user_id)
        except ProviderError as problem:
            log.info("teams member lookup failed: code=%s", problem.code)
        email = _text(profile.get("email") or profile.get("userPrincipalName"), 254).lower()
        account = ChatAccount(
            organization_id=integration.organization_id,
            integration_id=integration.id,
            external_id=object_id,
            name=_text(profile.get("name") or sender.get("name") or object_id, 200),
            email=email if email and "#ext#" not in email else None,
            extra={},
        )
        db.session.add(account)
    extra = dict(account.extra or {})
    greeted_before = extra.get("conversation_id") == conversation_id
    recipient = activity.get("recipient")
    extra.update(
        teams_user_id=user_id,
        conversation_id=conversation_id,
        service_url=service_url,
        bot_id=_text(recipient.get("id") if isinstance(recipient, Mapping) else None),
        tenant_id=integration.external_id,
        installed_at=extra.get("installed_at") if greeted_before else utcnow().isoformat(),
    )
    extra.pop("removed_at", None)
    account.extra = extra
    db.session.flush()
    link = db.session.scalar(
        select(AccountLink).where(
            AccountLink.integration_id == integration.id,
            AccountLink.chat_account_id == account.id,
        )
    )
    if link is not None and link.flagged_reason:
        link.flagged_reason = None  # reachable again
    db.session.commit()
    if link is None:
        _link_installer(integration, account)
    if greeted_before:
        return False
    name = _text(sender.get("name"), 100) or account.name
    locale = "ja" if _text(activity.get("locale"), 16).lower().startswith("ja") else "en"
    greeting = GREETINGS[locale].format(name=name)
    try:
        client.connector(
            service_url,
            f"v3/conversations/{quote(conversation_id, safe=':@')}/activities",
            {"type": "message", "text": greeting},
        )
    except ProviderError as problem:
        log.warning("teams greeting not sent: code=%s", problem.code)
        return False
    return True


def _link_installer(integration: Integration, account: ChatAccount) -> None:
    """Auto-link is on: link the installer's account to the one member with its e-mail."""
    link_by_email(integration, account, method=LinkMethod.BOT_INSTALL)


def handle_uninstall(integration: Integration, activity: Mapping[str, Any]) -> bool:
    """Forget the conversation and flag the member's link; commits. False if unknown."""
    sender = _mapping(activity.get("from"))
    object_id = _text(sender.get("aadObjectId"), 64).lower()
    account = (
        db.session.scalar(
            select(ChatAccount).where(
                ChatAccount.integration_id == integration.id, ChatAccount.external_id == object_id
            )
        )
        if object_id
        else None
    )
    if account is None:
        return False
    extra = dict(account.extra or {})
    extra.pop("conversation_id", None)
    extra["removed_at"] = utcnow().isoformat()
    account.extra = extra
    link = db.session.scalar(
        select(AccountLink).where(
            AccountLink.integration_id == integration.id,
            AccountLink.chat_account_id == account.id,
        )
    )
    if link is not None and not link.flagged_reason:
        flag_link(link, "bot_removed")
    db.session.commit()
    return True


def installed_accounts(integration: Integration, limit: int = 100) -> tuple[list[ChatAccount], int]:
    """Accounts that added the bot (a live conversation reference): a page and the total."""
    installed = ChatAccount.extra["conversation_id"].as_string().is_not(None)
    where = (ChatAccount.integration_id == integration.id, installed)
    total = db.session.scalar(select(func.count()).select_from(ChatAccount).where(*where)) or 0
    rows = db.session.scalars(
        select(ChatAccount).where(*where).order_by(ChatAccount.name, ChatAccount.id).limit(limit)
    ).all()
    return list(rows), total


def install_link() -> str:
    """Teams deep link to the app (TEAMS_APP_ID, the manifest id; else the bot's app id)."""
    config = current_app.config
    app_id = config.get("TEAMS_APP_ID") or config.get("MS_APP_ID") or ""
    return f"https://teams.microsoft.com/l/app/{quote(str(app_id))}"


# --- card actions (Universal Actions) ------------------------------------------------------------

#: The invoke Teams sends for an ``Action.Execute`` press.
CARD_ACTION = "adaptiveCard/action"
ERROR_TYPE = "application/vnd.microsoft.error"


def is_card_action(activity: Mapping[str, Any]) -> bool:
    return activity.get("type") == "invoke" and activity.get("name") == CARD_ACTION


def card_action(activity: Mapping[str, Any]) -> dict[str, Any]:
    """Act on a schema-checked ``adaptiveCard/action`` invoke; the invoke response: the updated
    card (statusCode 200) or an error (403 someone else pressed, 404 not ours/unknown
    tenant). Commits through ``me/actions.press``, which trusts nothing from the activity."""
    integration = connected_integration(activity_tenant(activity))
    if integration is None:
        return _invoke_error(404, "NotFound", "This organization is not connected.")
    action = activity["value"]["action"]
    presser = _text(_mapping(activity.get("from")).get("aadObjectId"), 64)
    try:
        pressed = actions.press(integration, action["data"]["value"], action["verb"], presser)
    except actions.Refused as problem:
        db.session.rollback()
        log.warning("teams card action refused: %s", problem.reason)
        if problem.reason == "not_recipient":
            return _invoke_error(403, "Forbidden", "Only the recipient can answer this message.")
        return _invoke_error(404, "NotFound", "This action is not known.")
    return {"statusCode": 200, "type": CARD_CONTENT_TYPE, "value": render_card(pressed.message())}


def _invoke_error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"statusCode": status, "type": ERROR_TYPE, "value": {"code": code, "message": message}}
