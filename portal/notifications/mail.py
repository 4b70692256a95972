"""E-mail over real SMTP (``SMTP_URL``): multipart text + HTML, in the recipient's language.

``SMTP_URL`` forms: ``smtp://host:port`` (plain, e.g. the sandbox catcher),
``smtp+starttls://user:password@host:587``, ``smtps://user:password@host:465``.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import current_app, render_template, url_for
from flask_babel import force_locale
from sqlalchemy import select

from ..accounts.models import User
from ..accounts.permissions import Role
from ..extensions import db

TIMEOUT_SECONDS = 20
log = logging.getLogger(__name__)


class MailError(Exception):
    """The SMTP server refused or could not be reached; ``permanent`` for 5xx refusals."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def locale_for(user: User) -> str:
    return user.locale or current_app.config["BABEL_DEFAULT_LOCALE"]


def build(
    to: User, template: str, *, message_id: str | None = None, **context: object
) -> EmailMessage:
    """Render ``email/<template>.txt`` and ``.html`` in ``to``'s language into one message."""
    with force_locale(locale_for(to)):
        subject = render_template(f"email/{template}.subject.txt", user=to, **context).strip()
        text = render_template(f"email/{template}.txt", user=to, **context)
        html = render_template(f"email/{template}.html", user=to, **context)
    message = EmailMessage()
    # A header is one line: the API refuses line breaks in titles, but a row written before
    # it did (or by our own code) must still build rather than fail on every attempt.
    message["Subject"] = " ".join(subject.split())
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = formataddr((to.name, to.email))
    message["Message-ID"] = message_id or make_msgid(domain="chat-connect.example")
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def send(message: EmailMessage) -> None:
    """Deliver ``message`` through ``SMTP_URL``; raise :class:`MailError` on failure."""
    url = urlsplit(current_app.config["SMTP_URL"])
    host, port = url.hostname or "127.0.0.1", url.port
    try:
        if url.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port or 465, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(host, port or 25, timeout=TIMEOUT_SECONDS)
        with client:
            if url.scheme == "smtp+starttls":
                client.starttls(context=ssl.create_default_context())
            if url.username:
                client.login(unquote(url.username), unquote(url.password or ""))
            client.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailError("the mail server refused the recipient", permanent=True) from exc
    except smtplib.SMTPResponseException as exc:
        raise MailError(f"SMTP {exc.smtp_code}", permanent=500 <= exc.smtp_code < 600) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"mail server unreachable: {type(exc).__name__}") from exc


def external_url(endpoint: str, **values: Any) -> str:
    """An absolute portal URL built outside a request (workers), from ``PUBLIC_BASE_URL``."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    with current_app.test_request_context(base_url=base):
        return url_for(endpoint, _external=True, **values)


def email_admins(
    organization_id: int, template: str, context: Callable[[User], dict[str, Any]]
) -> int:
    """Send ``template`` to every active admin of the organization, each in their language.

    ``context(admin)`` runs inside the admin's locale, so translated values come out right.
    Returns how many were accepted; a refused message is logged, never raised: the portal
    shows the same information (banners, audit log), the e-mail is a courtesy.
    """
    admins = db.session.scalars(
        select(User).where(
            User.organization_id == organization_id,
            User.role == Role.ADMIN,
            User.is_active_flag.is_(True),
        )
    ).all()
    sent = 0
    for admin in admins:
        with force_locale(locale_for(admin)):
            values = context(admin)
        try:
            send(build(admin, template, **values))
            sent += 1
        except MailError:
            log.warning("could not e-mail admin %s (%s)", admin.id, template)
    return sent
