"""``/me/accounts``: the signed-in member's links and recent deliveries."""

from __future__ import annotations

from flask import render_template
from flask_login import current_user
from sqlalchemy import select

from ..accounts.permissions import Permission, require
from ..extensions import db
from ..integrations.models import AccountLink, ChatAccount, Integration
from ..notifications.models import Delivery, Notification
from . import bp


@bp.get("/me/accounts")
@require(Permission.VIEW_OWN_ACCOUNTS)
def accounts() -> str:
    """The member's linked chat accounts and their twenty most recent deliveries."""
    links = db.session.execute(
        select(AccountLink, ChatAccount, Integration)
        .join(ChatAccount, ChatAccount.id == AccountLink.chat_account_id)
        .join(Integration, Integration.id == AccountLink.integration_id)
        .where(AccountLink.user_id == current_user.id)
        .order_by(Integration.provider)
    ).all()
    deliveries = db.session.execute(
        select(Delivery, Notification)
        .join(Notification, Notification.id == Delivery.notification_id)
        .where(Notification.recipient_id == current_user.id)
        .order_by(Delivery.id.desc())
        .limit(20)
    ).all()
    return render_template("me/accounts.html", links=links, deliveries=deliveries)
