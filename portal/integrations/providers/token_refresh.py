"""The installed side of a provider whose stored access token expires and is refreshed.

Slack (with token rotation) and Chatwork store a refresh token with the access token. Several
worker processes may find the token about to expire at the same moment; the refresh token is
single-use at both, so only one of them may spend it. :meth:`RefreshingClient.refresh` is a
compare-and-swap on ``Integration.token_version`` under a row lock (OA-23/OA-25): a worker
that finds the version moved uses the pair the other one stored.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

from ...database import utcnow
from ...extensions import db
from ..models import Integration
from .base import ProviderError, stored_secrets


class RefreshingClient:
    """One integration's stored tokens, refreshed before they expire; subclasses exchange."""

    #: Refresh this long before the access token expires.
    refresh_margin: ClassVar[timedelta] = timedelta(seconds=120)

    def __init__(self, integration: Integration) -> None:
        self.integration = integration

    def _secrets(self) -> dict[str, Any]:
        return stored_secrets(self.integration)

    def _token(self) -> str:
        """The access token, refreshed first when it expires within the margin."""
        values = self._secrets()
        expires = self.integration.token_expires_at
        if (
            values.get("refresh_token")
            and expires is not None
            and expires - utcnow() < self.refresh_margin
        ):
            values = self.refresh()
        return str(values["access_token"])

    def refresh(self) -> dict[str, Any]:
        """Swap the refresh token for a new pair and store it before anyone uses it; commits.

        A refused exchange rolls back (releasing the lock) and propagates: a
        :class:`ProviderAuthError` there is a dead connection the worker marks needs-reconnect.
        """
        seen = self.integration.token_version
        db.session.refresh(self.integration, with_for_update=True)
        if self.integration.token_version != seen:
            values = self._secrets()
            db.session.commit()
            return values
        values = self._secrets()
        try:
            fresh, expires = self._exchange(values)
        except ProviderError:
            db.session.rollback()
            raise
        values = {**values, **fresh}
        self.integration.set_secrets(values)
        self.integration.token_expires_at = expires
        self.integration.token_version = seen + 1
        db.session.commit()
        return values

    def _exchange(self, values: dict[str, Any]) -> tuple[dict[str, Any], datetime | None]:
        """Spend ``values``' refresh token at the provider: the new secrets and their expiry."""
        raise NotImplementedError
