"""SMTP catcher: an aiosmtpd server on 127.0.0.1 that keeps every message in memory.

The portal's e-mail channel sends real SMTP to it (`SMTP_URL=smtp://127.0.0.1:1025`); the
inspector shows one inbox per recipient, with Japanese subjects and multipart bodies decoded.
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

MAX_MAILS = 5000


@dataclass
class CaughtMail:
    """One received message, decoded for display."""

    id: int
    received_at: float
    mail_from: str
    recipients: list[str]
    subject: str
    header_from: str
    header_to: str
    text: str
    html: str
    size: int
    message_id: str = ""
    #: The portal's own delivery id header, so tests can count sends per delivery.
    delivery: str = ""

    def public(self) -> dict[str, Any]:
        """JSON for the control API."""
        return {
            "id": self.id,
            "received_at": self.received_at,
            "mail_from": self.mail_from,
            "recipients": self.recipients,
            "subject": self.subject,
            "from": self.header_from,
            "to": self.header_to,
            "text": self.text,
            "html": self.html,
            "size": self.size,
            "message_id": self.message_id,
            "delivery": self.delivery,
        }


class MailStore:
    """Thread-safe list of caught mail (the SMTP thread writes, Flask threads read)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mails: list[CaughtMail] = []
        self._next_id = 1
        #: Messages received since the last clear, including those dropped past MAX_MAILS.
        self.received = 0

    def clear(self) -> None:
        """Drop every caught message."""
        with self._lock:
            self._mails.clear()
            self.received = 0

    def add(self, mail_from: str, recipients: list[str], raw: bytes) -> CaughtMail:
        """Parse and keep one message."""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            mail = CaughtMail(
                id=self._next_id,
                received_at=time.time(),
                mail_from=mail_from,
                recipients=[r.lower() for r in recipients],
                subject=str(message.get("Subject", "")),
                header_from=str(message.get("From", "")),
                header_to=str(message.get("To", "")),
                text=_body(message, "plain"),
                html=_body(message, "html"),
                size=len(raw),
                message_id=str(message.get("Message-ID", "")),
                delivery=str(message.get("X-Chat-Connect-Delivery", "")),
            )
            self._next_id += 1
            self.received += 1
            self._mails.append(mail)
            del self._mails[:-MAX_MAILS]
            return mail

    def all(self, recipient: str | None = None) -> list[CaughtMail]:
        """Caught mail, newest first, optionally for one recipient."""
        with self._lock:
            mails = list(reversed(self._mails))
        if recipient:
            mails = [m for m in mails if recipient.lower() in m.recipients]
        return mails

    def inboxes(self) -> dict[str, list[CaughtMail]]:
        """Mail grouped by recipient address, newest first."""
        boxes: dict[str, list[CaughtMail]] = {}
        for mail in self.all():
            for recipient in mail.recipients:
                boxes.setdefault(recipient, []).append(mail)
        return dict(sorted(boxes.items()))


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or not isinstance(part, EmailMessage):
        return ""
    try:
        return str(part.get_content())
    except (LookupError, ValueError):  # unknown charset or broken transfer encoding
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


class _CatchingHandler:
    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        self.store.add(str(envelope.mail_from), [str(r) for r in envelope.rcpt_tos], raw)
        return "250 Message accepted for delivery"


def start_smtp(store: MailStore, port: int, host: str = "127.0.0.1") -> Controller:
    """Start the catcher in its own thread; call `.stop()` on the result to end it."""
    controller = Controller(_CatchingHandler(store), hostname=host, port=port)
    controller.start()
    return controller
