"""E-mail: the channel that reaches every member, and where undeliverable chat messages go."""

from __future__ import annotations

from flask_babel import gettext

from ...accounts.models import Organization, User
from ...extensions import db
from .. import mail
from ..channels import Attempt, Failed, Outcome, Retry, Sent, Transport
from ..explain import explain_reason
from ..models import Delivery

#: Routing reasons that need no sentence in the message (the usual case).
_PLAIN_REASONS = ("not_linked", "linked")


class EmailTransport(Transport):
    key = "email"
    fallback = None  # the last resort

    def name(self) -> str:
        return str(gettext("E-mail"))

    def destination(self, delivery: Delivery, recipient: User) -> str:
        return str(gettext("to %(email)s", email=recipient.email))

    def send(self, attempt: Attempt) -> Outcome:
        delivery, notification = attempt.delivery, attempt.notification
        organization = db.session.get(Organization, notification.organization_id)
        # One id per attempt: a retried message is a new message to the mail server.
        message_id = f"<delivery-{delivery.id}.{delivery.attempts}@chat-connect.example>"
        message = mail.build(
            attempt.recipient,
            "notification",
            message_id=message_id,
            notification=notification,
            organization=organization,
            reason="" if delivery.reason in _PLAIN_REASONS else explain_reason(delivery.reason),
        )
        message["X-Chat-Connect-Delivery"] = str(delivery.id)
        try:
            mail.send(message)
        except mail.MailError as exc:
            if exc.permanent:
                return Failed("smtp_permanent", str(exc))
            return Retry("smtp_temporary", str(exc))
        return Sent(message_id)
