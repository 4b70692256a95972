"""The notification channels' transports, registered explicitly (see :mod:`..channels`).

- ``email`` — :class:`.email.EmailTransport`, the default: it reaches every member, takes over
  when a chat delivery ends unsent, and carries every link-change notice.
- every registered chat provider's key — :class:`.chat.ChatTransport`, a DM through that
  provider's client.

Adding a transport (outbound webhooks are the next one):
1. Create ``transports/<key>.py`` with a :class:`..channels.Transport` subclass: its ``key``,
   ``name()``, ``destination()``, ``fallback`` and ``send(attempt)`` returning an outcome
   (``Sent``, ``Later``, ``Retry``, ``Failed``); never write the delivery row, the
   dispatcher does.
2. Register an instance below.
3. Route to it: :func:`..services.create_notification` writes deliveries for ``Route`` keys.
The dispatcher, the delivery log's channel filter and the API description pick it up from
the registry.
"""

from typing import Any

from sqlalchemy import event

from ..channels import transports
from ..models import Delivery
from .chat import ChatTransport
from .email import EmailTransport

transports.register(EmailTransport(), default=True)
transports.register_chat(ChatTransport)


@event.listens_for(Delivery.channel, "set", retval=True)
def _known_channel(_target: Delivery, value: Any, _old: Any, _initiator: Any) -> Any:
    """A delivery is written only for a registered channel. (Rows already stored may name one
    that is gone: they still load, and the dispatcher hands them to the fallback.)"""
    if value not in transports:
        raise ValueError(f"unknown notification channel {value!r}")
    return value


__all__ = ["transports"]
