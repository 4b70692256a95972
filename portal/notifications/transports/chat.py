"""A chat provider's DM: one transport per registered provider, through its ``ChatClient``.

Before each send the transport takes a token from every budget the provider lists for the
recipient (workspace, conversation…), so the fleet as a whole stays under each limit. A rate
limit answer blocks the widest budget, the workspace's, for every worker: it does not say
which limit it hit, and the widest holds the narrower ones too. Permanent errors leave their
mark where an admin sees it: a dead token marks the integration for reconnection, a gone
account flags its link (DL-07); the e-mail fallback is the dispatcher's.
"""

from __future__ import annotations

import math
import time

from flask_babel import gettext
from sqlalchemy import select, update

from ...accounts.models import User
from ...crypto import SecretUnavailable
from ...database import utcnow
from ...extensions import db
from ...integrations import health
from ...integrations.models import AccountLink, ChatAccount, Integration, IntegrationState
from ...integrations.providers.base import (
    ChatProvider,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    RecipientNotFound,
)
from .. import actions, pacing
from ..backoff import retry_delay
from ..channels import Attempt, Failed, Later, Outcome, Retry, Sent, Transport
from ..models import Delivery
from .email import EmailTransport


class ChatTransport(Transport):
    fallback = EmailTransport.key  # a member who cannot get the DM gets the e-mail

    def __init__(self, provider: ChatProvider) -> None:
        self.provider = provider
        self.key = provider.key

    def name(self) -> str:
        return str(self.provider.name)

    def destination(self, delivery: Delivery, recipient: User) -> str:
        account = (
            db.session.get(ChatAccount, delivery.chat_account_id)
            if delivery.chat_account_id
            else None
        )
        if account is None:
            return ""
        return str(gettext("as a direct message to %(account)s", account=account.name))

    def send(self, attempt: Attempt) -> Outcome:
        delivery, integration, account = attempt.delivery, attempt.integration, attempt.account
        if (
            integration is None
            or integration.organization_id != delivery.organization_id  # PT-14
            or integration.state is not IntegrationState.CONNECTED
        ):
            # DL-14: never send with a dead token; the member gets the e-mail instead.
            return Failed("integration_unavailable")
        if account is None or account.integration_id != integration.id:
            return Failed("RecipientNotFound")
        budgets = self.provider.budgets(integration, account)
        wait = pacing.await_tokens(budgets)
        if wait > 0:
            return Later(wait)
        message = actions.message_for(
            attempt.notification,
            attempt.recipient,
            self.provider,
            integration,
            account,
            link=attempt.link,
        )
        try:
            result = self.provider.client(integration).send_direct_message(account, message)
        except ProviderRateLimited as exc:
            wait = exc.retry_after if exc.retry_after is not None else retry_delay(1)
            pacing.limited(budgets[0], wait)
            return Later(wait, exc.code, str(exc))
        except ProviderAuthError as exc:
            _break_integration(integration, exc.code)
            return Failed(exc.code, str(exc))
        except SecretUnavailable:
            _break_integration(integration, "secret_unreadable")
            return Failed("secret_unreadable")
        except RecipientNotFound as exc:
            _flag_link(integration, account, exc.code)
            return Failed(exc.code, str(exc))
        except ProviderError as exc:
            return Retry(exc.code, str(exc)) if exc.retryable else Failed(exc.code, str(exc))
        return Sent(result.provider_message_id, result.account_extra)

    def after_sent(self, attempt: Attempt) -> None:
        # Health shows the last successful send; a minute's precision spares a write per message.
        # When this process wrote it is remembered here: reading the row's value back would cost
        # a query per message (the outcome's commit expired it).
        integration_id = attempt.integration_id
        if integration_id is None:
            return
        moment = time.monotonic()
        slot = (str(db.engine.url), integration_id)
        if moment - _success_written.get(slot, -math.inf) < SUCCESS_PRECISION:
            return
        _success_written[slot] = moment
        db.session.execute(
            update(Integration)
            .where(Integration.id == integration_id)
            .values(last_success_at=utcnow())
        )
        db.session.commit()


#: Seconds of precision of ``Integration.last_success_at``.
SUCCESS_PRECISION = 60.0
#: When this process last wrote it, by (database, integration id): monotonic seconds.
_success_written: dict[tuple[str, int], float] = {}


def forget_local_state() -> None:
    """For a process whose database was emptied under it (the test suite on PostgreSQL)."""
    _success_written.clear()


def _break_integration(integration: Integration, reason: str) -> None:
    fresh = db.session.get(Integration, integration.id, populate_existing=True)
    if fresh is not None and fresh.state is IntegrationState.CONNECTED:
        health.mark_needs_reconnect(fresh, reason)
        db.session.commit()
        health.alert_admins(fresh.id)


def _flag_link(integration: Integration, account: ChatAccount, code: str) -> None:
    link = db.session.scalar(
        select(AccountLink).where(
            AccountLink.integration_id == integration.id, AccountLink.chat_account_id == account.id
        )
    )
    if link is not None and link.flagged_reason is None:
        health.flag_link(link, code)
        db.session.commit()
