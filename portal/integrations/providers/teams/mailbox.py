"""Members' time zones from Graph, read during the directory sync.

``GET /users/{id}/mailboxSettings`` gives ``timeZone``, a Windows name ("Tokyo Standard Time")
or sometimes an IANA one; it needs the application permission ``MailboxSettings.Read``. One
call per member, so they go in JSON batches (``POST /v1.0/$batch``, 20 at most), paced by a
:class:`~.pacing.Gate`:

- Graph evaluates every request of a batch against its limits on its own, so the gate counts
  requests, not batches. No per-tenant limit binds mailbox settings: the Outlook limits are
  per mailbox (10,000 per 10 minutes, 4 at once), and Graph's global one is 130,000 per
  10 seconds per app, shared by every customer tenant (and everything else we ask Graph).
  :data:`RATE` a second per tenant is two batches: 10,000 members take about four minutes
  more than /users alone, and 100 tenants reading at the same minute (``sync_daily`` starts
  every day-old one at :17) use under a third of the global limit. :data:`BURST` lets a small
  tenant through without waiting.
- The time zone is a nicety: nothing here fails the sync. The run's first request goes alone:
  a 403 means the consent lacks ``MailboxSettings.Read`` (it is the same for every member), so
  nobody else is asked in that run, and the zones are simply left out.
- Per member: a zone we can load is stored; no mailbox (404) or no usable zone removes a stored
  one; a 429 or 5xx is retried, then the stored zone is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ...time_zones import iana_from_windows
from ..base import DirectoryEntry, ProviderAuthError, ProviderError
from .pacing import Gate

if TYPE_CHECKING:
    from .client import TeamsClient

log = logging.getLogger("portal.integrations.teams")

#: Graph's JSON batching maximum.
BATCH_SIZE = 20
#: Mailbox settings requests a second per tenant, and at most at once (see the docstring).
RATE, BURST = 40.0, 60.0
#: Rounds of a batch's throttled (429) or failed (5xx) requests before they are given up.
ROUNDS = 4
#: The wait between rounds when Graph names none (a 5xx), seconds.
BACKOFF = 0.5

#: A member's outcome: a zone name, None (Graph says there is none), or _UNKNOWN (keep).
_UNKNOWN = object()


class TimeZoneReader:
    """One directory sync's mailbox settings reads: its gate, and whether Graph refused."""

    def __init__(self, client: TeamsClient) -> None:
        self.client = client
        self.gate = Gate(RATE, BURST)
        self.denied = False
        self.probed = False

    def fill(self, page: list[DirectoryEntry]) -> None:
        """Set ``extra["tz"]`` on the page's members whose mailbox says (None: it says none).

        Guests are skipped: their mailbox is in their home tenant.
        """
        members = [entry for entry in page if not entry.extra.get("guest")]
        for chunk in self._chunks(members):
            if self.denied:
                return
            for entry, zone in zip(chunk, self._read(chunk), strict=True):
                if zone is not _UNKNOWN:
                    entry.extra["tz"] = zone

    def _chunks(self, members: list[DirectoryEntry]) -> Iterator[list[DirectoryEntry]]:
        """Batches of BATCH_SIZE, the run's first of one member alone (the permission probe)."""
        start = 0
        while start < len(members):
            size = BATCH_SIZE if self.probed else 1
            self.probed = True
            yield members[start : start + size]
            start += size

    def _read(self, chunk: list[DirectoryEntry]) -> list[object]:
        """Each member's outcome, in the chunk's order."""
        outcomes: list[object] = [_UNKNOWN] * len(chunk)
        pending = set(range(len(chunk)))
        for _ in range(ROUNDS):
            if not pending or self.denied:
                break
            self.gate.wait(len(pending))
            try:
                answers = self.client.graph_batch([_request(n, chunk[n]) for n in sorted(pending)])
            except ProviderAuthError as problem:
                self._deny(problem.code)
                break
            except ProviderError as problem:  # Graph is down: the next page will say so
                log.info("teams mailbox settings unavailable: code=%s", problem.code)
                break
            pause = self._take(answers, pending, outcomes)
            if pending and not self.denied:
                self.gate.hold(pause)
        return outcomes

    def _take(
        self, answers: list[dict[str, Any]], pending: set[int], outcomes: list[object]
    ) -> float:
        """Record the batch's answers; return how long to wait before asking again for those
        still pending (throttled or failed)."""
        pause = 0.0
        for answer in answers:
            n = _index(answer.get("id"))
            if n not in pending:
                continue
            status = answer.get("status")
            if status == 429 or (isinstance(status, int) and status >= 500):
                pause = max(pause, _retry_after(answer) or BACKOFF)
                continue
            pending.discard(n)
            if status == 200:
                outcomes[n] = iana_from_windows(_body(answer).get("timeZone"))
            elif status == 404:  # no mailbox (MailboxNotEnabledForRESTAPI), or gone
                outcomes[n] = None
            elif status == 403:
                self._deny(_error_code(answer))
        # Ids Graph left unanswered are asked again too, after a short wait.
        return pause or BACKOFF

    def _deny(self, code: str) -> None:
        log.info("teams mailbox settings refused (code=%s): no time zones this sync", code)
        self.denied = True


def _request(n: int, entry: DirectoryEntry) -> dict[str, Any]:
    user = quote(entry.external_id, safe="")
    return {"id": str(n), "method": "GET", "url": f"/users/{user}/mailboxSettings"}


def _index(value: object) -> int:
    return int(value) if isinstance(value, str) and value.isdigit() else -1


def _body(answer: dict[str, Any]) -> dict[str, Any]:
    body = answer.get("body")
    return body if isinstance(body, dict) else {}


def _error_code(answer: dict[str, Any]) -> str:
    error = _body(answer).get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return str(code)[:64] if code else "http_403"


def _retry_after(answer: dict[str, Any]) -> float | None:
    headers = answer.get("headers")
    value = headers.get("Retry-After") if isinstance(headers, dict) else None
    try:
        return min(max(0.0, float(value)), 30.0) if value is not None else None
    except (TypeError, ValueError):
        return None
