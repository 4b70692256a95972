"""The audit records of a link made or removed, one shape for every path that changes links.

The support console's link history (``support/services.py``) and the audit log read these
records back, so a link made by the admin, an e-mail match, a Chatwork name suggestion or a
CSV import must describe the account the same way. The module sits below ``linking`` so that
provider packages and ``transfer`` can write the records without importing the link services.
Each record also reports the change to the organization's webhook endpoints.
"""

from __future__ import annotations

from typing import Any

from ..accounts.models import Organization, User
from ..audit import service as audit
from ..webhooks import reports
from .models import ChatAccount, Integration, LinkMethod


def account_data(account: ChatAccount | None) -> dict[str, Any]:
    """What a link record says of the chat account: its id in the tool, name and e-mail."""
    if account is None:
        return {}
    return {"external_id": account.external_id, "name": account.name, "email": account.email}


def link_data(
    integration: Integration, account: ChatAccount | None, method: LinkMethod
) -> dict[str, Any]:
    """A link as the audit trail keeps it: the account, how it was made and the tool."""
    return {**account_data(account), "method": method.value, "provider": integration.provider}


def record_link_created(
    integration: Integration,
    organization: Organization | None,
    *,
    actor: User | None,
    member: tuple[int, str | None],
    account: ChatAccount,
    method: LinkMethod,
    before: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Audit that ``member`` (id, name) was linked to ``account``; the caller commits."""
    audit.record(
        "link.created",
        organization=organization,
        actor=actor,
        target=("user", *member),
        before=before,
        after=link_data(integration, account, method),
        data=data,
    )
    reports.link_event(
        "link.created", integration, user_id=member[0], account=account, method=method
    )


def record_link_removed(
    integration: Integration,
    organization: Organization | None,
    *,
    actor: User | None,
    member: tuple[int, str | None],
    account: ChatAccount | None,
    method: LinkMethod,
    data: dict[str, Any] | None = None,
) -> None:
    """Audit that ``member``'s link to ``account`` was removed; the caller commits."""
    audit.record(
        "link.removed",
        organization=organization,
        actor=actor,
        target=("user", *member),
        before=link_data(integration, account, method),
        data=data,
    )
    reports.link_event(
        "link.removed", integration, user_id=member[0], account=account, method=method
    )
