"""The one interface every chat provider implements, and the errors it may raise.

A provider is a descriptor class (how to connect the service, what it is called) whose
``client(integration)`` returns the installed-side behaviour. The delivery pipeline only ever
talks to :class:`ChatClient`; it never imports a provider module.
"""

from __future__ import annotations

import abc
import inspect
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

from flask import url_for
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from sqlalchemy import select

from ...crypto import SecretUnavailable
from ...extensions import db
from ..models import AccountLink, ChatAccount, Integration
from ..wizard import Step


@dataclass(frozen=True)
class MessageAction:
    """A button on a DM (``notifications/actions.py`` decides which): ``key`` is what was
    pressed ("acknowledge", "confirm_link", "disown_link"), ``value`` the signed reference the
    provider echoes back with the press, ``style`` "primary", "danger" or "default"."""

    key: str
    label: str
    value: str
    style: str = "default"


@dataclass(frozen=True)
class Message:
    """A provider-neutral notification; each provider renders it in its own markup.

    ``actions`` are buttons for providers with :attr:`ChatProvider.buttons`; a provider without
    them gets ``actions_url`` instead, a portal page offering the same choices. ``notes`` say
    what was already done ("acknowledged at …"), shown under the body.
    """

    title: str
    body: str
    url: str | None = None
    locale: str = "ja"
    actions: tuple[MessageAction, ...] = ()
    actions_url: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeliveryResult:
    """What the provider said after accepting a message.

    ``account_extra``: keys of the recipient's ``ChatAccount.extra`` the send learned (Slack's
    DM channel id). The send writes nothing itself: the dispatcher merges them into the row
    with the outcome, in the same transaction (several outcomes share one).
    """

    provider_message_id: str | None
    account_extra: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class DirectoryEntry:
    """A person from the provider's directory, before it is stored as a ChatAccount.

    ``extra`` refreshes ``ChatAccount.extra`` key by key (``directory.merged_extra``): a value
    is stored, None removes the key, a key left out keeps what is stored.
    """

    external_id: str
    name: str
    email: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class PacingBudget:
    """How fast the delivery worker may call the provider for one workspace/token.

    ``key`` names the shared bucket ("slack:T0123"); ``rate`` is requests per second and
    ``burst`` the bucket size. Every worker process draws from the same bucket. A burst a
    fraction above a whole token (1.2) keeps a taker that comes late by up to that fraction of
    a token from losing the time, while any ``L`` seconds still see at most burst + rate x L.

    With ``window`` (seconds) the limit is learned instead (``notifications/ceiling.py``):
    ``rate`` is only the safe rate to start from, and the ceiling per ``window`` is found from
    the provider's 429s. For a limit the provider does not publish as a number.

    ``shared=False`` keeps the bucket in the worker process instead of the database: for a
    limit on one member's conversation, where a shared row costs a database write for every
    message while several processes sending one member several messages within a second is
    rare (and then answered by a 429 and a retry, like any other).
    """

    key: str
    rate: float
    burst: float = 1
    window: float | None = None
    shared: bool = True


@dataclass(frozen=True)
class URLSetting:
    """A provider URL the configuration reads from the environment variable ``name``.

    ``default`` is the real provider's; the sandbox serves it at the path ``sandbox``, on its
    browser port (``browser``: consent and registration pages, plain HTTP) or else on its HTTPS
    API port. Production refuses a value that is not https or points at this machine.
    """

    name: str
    default: str
    sandbox: str
    browser: bool = False

    def sandbox_url(self, http: str, https: str) -> str:
        """The URL on a sandbox reachable at ``http`` (browser pages) and ``https`` (APIs)."""
        return f"{http if self.browser else https}{self.sandbox}"


@dataclass(frozen=True)
class CoverageReason:
    """Why some members get no DM, and the page (``endpoint`` with ``provider=``) that fixes it:
    the coverage dashboard's one-click next step (``support/coverage.py``)."""

    label: Any
    step: Any
    endpoint: str = "integrations.members"
    args: tuple[tuple[str, str], ...] = ()
    anchor: str | None = None
    #: The members are linked, but not reachable: they do not count as working.
    linked: bool = False
    #: A directory re-sync may clear it (the account came back, a contact was accepted).
    resync: bool = False

    def url(self, provider: str, extra: Mapping[str, str]) -> str:
        """Where the next step is taken, keeping ``extra`` (support staff's ``org``)."""
        values: dict[str, Any] = {"provider": provider, **dict(self.args), **extra}
        return url_for(self.endpoint, _anchor=self.anchor, **values)


@dataclass(frozen=True)
class Setting:
    """Another setting the configuration reads from the environment for a provider: its app's
    credentials, a bot's name. ``default`` applies in production, ``sandbox`` in development and
    tests (the sandbox's own app), when given."""

    name: str
    default: str | None = None
    sandbox: str | None = None


class ProviderError(Exception):
    """Base of every provider failure. ``code`` is the provider's own error name."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or type(self).__name__


class ProviderAuthError(ProviderError):
    """The stored credentials are dead (revoked, uninstalled): reconnect required."""


class RecipientNotFound(ProviderError):
    """This chat account is gone, deactivated or blocks the app: flag the link."""


class ProviderRateLimited(ProviderError):
    """HTTP 429. ``retry_after`` (seconds, when given) is the floor for the next attempt."""

    retryable = True

    def __init__(
        self, message: str, *, retry_after: float | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, code=code or "ratelimited")
        self.retry_after = retry_after


class TemporaryProviderError(ProviderError):
    """5xx, timeouts, connection errors: retry with backoff."""

    retryable = True


@dataclass(frozen=True)
class ConnectionData:
    """What a finished setup wizard produced, before it is stored as an Integration.

    ``secrets`` are sealed to the row; ``config`` is shown on the page, so it never holds one.
    """

    external_id: str
    display_name: str
    config: dict[str, Any]
    secrets: dict[str, Any]
    token_expires_at: datetime | None = None


class ChatClient(Protocol):
    """The installed side of a provider: what the worker and the linking screens call."""

    def send_direct_message(self, account: ChatAccount, message: Message) -> DeliveryResult:
        """Deliver ``message`` to ``account`` as a DM; raise a :class:`ProviderError` otherwise."""
        ...

    def iter_directory(self) -> Iterator[list[DirectoryEntry]]:
        """Yield the provider's directory page by page, people only (no bots, no leavers)."""
        ...

    def revoke(self) -> None:
        """Revoke the stored credentials at the provider (disconnect); best effort."""
        ...


class SignInRefused(Exception):
    """The member signed in at the provider, but not as someone this integration can link
    (another workspace, an unverified identity); the message is shown to the member."""


@dataclass(frozen=True)
class SignInRequest:
    """What the member's browser carries to the provider's sign-in page."""

    state: str
    nonce: str
    redirect_uri: str
    #: PKCE S256 challenge, for providers that take one (Entra); Slack's OIDC ignores it.
    code_challenge: str


class SignInPending(Exception):
    """The member proved who they are, but one more step on their side is needed before the
    account can receive DMs (Chatwork: a contact request to the notification account). The
    message says what to do; ``resume`` is what :meth:`MemberSignIn.resume` is given later."""

    def __init__(self, message: str, resume: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.resume = dict(resume)


class MemberSignIn(abc.ABC):
    """A provider's user sign-in, for members linking their own account (``/me/accounts``).

    The portal keeps the state, the nonce and the PKCE verifier (``me/self_link.py``); the
    provider builds the authorize URL and turns the answer into the member's directory entry,
    having verified whatever the provider signs (Slack's id_token, Entra's claims).
    """

    def available(self, integration: Integration) -> bool:
        """Whether members of this connection can sign in (Chatwork: the client has the
        scope and the redirect URI the sign-in needs)."""
        return True

    @abc.abstractmethod
    def authorize_url(self, integration: Integration, request: SignInRequest) -> str:
        """The provider's sign-in page for ``request``."""

    @abc.abstractmethod
    def identify(
        self,
        integration: Integration,
        *,
        code: str,
        redirect_uri: str,
        nonce: str,
        code_verifier: str,
    ) -> DirectoryEntry:
        """Exchange ``code`` and return who signed in, as an entry of ``integration``'s
        directory; raise :class:`SignInRefused` for someone it cannot link,
        :class:`SignInPending` when the member has one more step to do, or
        :class:`ProviderError` when the provider refuses."""

    def resume(self, integration: Integration, resume: Mapping[str, Any]) -> DirectoryEntry:
        """Carry on after :class:`SignInPending` (the member did their step): the entry, or
        :class:`SignInPending` again."""
        raise SignInRefused(str(_l("The setup expired. Please start again.")))


class ChatProvider(abc.ABC):
    """Describes one chat service. Subclasses are registered in ``providers/__init__.py``."""

    #: Slug everything is keyed on: URLs, templates, audit data, logger names.
    key: ClassVar[str]
    #: Display name, as in the vendor's help page.
    name: ClassVar[str]
    #: Where the provider stands in every list (the vendor's help page: Slack, Chatwork, Teams).
    order: ClassVar[int] = 100
    #: The provider's URLs, read from the environment (``config.py`` asks the registry).
    url_settings: ClassVar[tuple[URLSetting, ...]] = ()
    #: Its other settings (credentials…), read from the environment the same way.
    settings: ClassVar[tuple[Setting, ...]] = ()
    #: The settings among ``url_settings`` the browser is sent to for consent: the CSP's
    #: ``form-action`` allows their origins (``security.py``).
    consent_settings: ClassVar[tuple[str, ...]] = ()
    #: The coverage reasons only this provider gives (``unlinked_reasons``,
    #: ``unreachable_reason``), with their next steps; the generic ones are in support/coverage.
    coverage_reasons: ClassVar[Mapping[str, CoverageReason]] = {}
    #: Ask requests per second we allow ourselves per workspace/token (pacing budget).
    rate_per_second: ClassVar[float] = 1.0
    #: What one connection is called on its card, in the vendor's words (Teams: a tenant).
    connection_label: ClassVar[str | LazyString] = _l("Workspace")
    #: Steps done outside the portal before the wizard's first one (Chatwork's account and
    #: OAuth client): the progress list numbers them first, as the provider's page does.
    setup_preparation: ClassVar[tuple[str | LazyString, ...]] = ()
    #: The directory gives each person's e-mail address, so a sync links members whose address
    #: is the same (the seed's 自動的に紐付け). Chatwork contacts carry none: names suggest.
    links_by_email: ClassVar[bool] = False
    #: DMs can carry buttons that call the portal back (Slack Block Kit, Teams Universal
    #: Actions); without them a DM with choices carries a link to a portal page instead.
    buttons: ClassVar[bool] = False

    @abc.abstractmethod
    def client(self, integration: Integration) -> ChatClient:
        """Return a client that acts with ``integration``'s credentials."""

    def icon_url(self) -> str:
        """The logo on the provider's card: ``static/img/<key>.svg`` unless it says otherwise."""
        return url_for("static", filename=f"img/{self.key}.svg")

    def template_folder(self) -> str:
        """Where this provider's templates live: ``templates/`` beside the module that defines
        the class, served as ``integrations/providers/<key>/…`` (see ``registry.py``)."""
        return str(Path(inspect.getfile(type(self))).parent / "templates")

    def likely_accounts(
        self, integration: Integration, users: Sequence[tuple[int, str]]
    ) -> Mapping[int, int]:
        """For unlinked members ``(id, name)``, the one unlinked account each likely is
        (``{user_id: chat_account_id}``): where an invitation is also sent as a DM. The
        default: the only active unlinked account whose name is the same, ignoring width and
        spaces; a provider that matches names better (Chatwork) says so itself."""
        taken = select(AccountLink.chat_account_id).where(
            AccountLink.integration_id == integration.id
        )
        by_name: dict[str, list[int]] = {}
        for account_id, name in db.session.execute(
            select(ChatAccount.id, ChatAccount.name).where(
                ChatAccount.integration_id == integration.id,
                ChatAccount.is_active.is_(True),
                ChatAccount.id.not_in(taken),
            )
        ):
            by_name.setdefault(_name_key(name), []).append(account_id)
        return {
            user_id: found[0]
            for user_id, name in users
            if len(found := by_name.get(_name_key(name), [])) == 1 and _name_key(name)
        }

    def member_sign_in(self) -> MemberSignIn | None:
        """How a member links their own account by signing in at the provider, if they can:
        ``/me/accounts`` offers "Connect my account" for each connected provider that has one."""
        return None

    def setup_steps(self) -> list[Step]:
        """The setup wizard, as data (see ``integrations/wizard.py``)."""
        raise NotImplementedError(f"{self.key} has no setup wizard")

    def build_connection(self, data: Mapping[str, Any]) -> ConnectionData:
        """Turn what the wizard collected into a connection; raise ``SetupError`` to refuse it."""
        raise NotImplementedError(f"{self.key} has no setup wizard")

    def after_connect(self, integration: Integration, actor_id: int | None) -> None:  # noqa: B027
        """Side effects once a connection is committed (e.g. start the directory sync)."""

    def page_context(self, integration: Integration) -> dict[str, Any]:
        """What the provider's own parts of its connected page show (``_connected.html``,
        ``_matching.html`` in its templates), besides the connection and its members."""
        return {}

    def pacing(self, integration: Integration) -> PacingBudget:
        """The worker's send budget for ``integration``: one bucket per workspace/token,
        shared by every worker, so the fleet as a whole stays under the provider's limit.
        Override where the provider's limit differs (rate, burst, or what it is keyed on)."""
        return PacingBudget(
            f"{self.key}:{integration.external_id or integration.id}", self.rate_per_second, 1
        )

    def budgets(self, integration: Integration, account: ChatAccount) -> list[PacingBudget]:
        """Every bucket one DM to ``account`` draws from, widest first; the worker takes a token
        from each before it sends. The default: the workspace's (:meth:`pacing`). A provider
        that also limits each conversation (Teams) adds that bucket."""
        return [self.pacing(integration)]

    def unlinked_reasons(
        self, integration: Integration, user_ids: Sequence[int]
    ) -> Mapping[int, str]:
        """Provider-specific reasons why these members are not linked, for the coverage
        dashboard: ``{user_id: reason}`` with a reason from ``support.coverage.REASONS`` or
        :attr:`coverage_reasons`, such as ``"not_contact"`` (Chatwork). Members left out get
        the generic reasons (e-mail match available, no e-mail match, account deactivated).
        The default knows nothing more."""
        return {}

    def flagged_text(self, reason: str) -> str:
        """How a member's row says the provider refused messages to the linked account
        (``AccountLink.flagged_reason``). The default shows the provider's own code."""
        return reason

    def unreachable_reason(self, extra: Mapping[str, Any]) -> str | None:
        """Why a linked account (its ``ChatAccount.extra``) cannot receive a DM yet, if it
        cannot: e.g. ``"bot_not_installed"`` (Teams). The default: every link is reachable."""
        return None

    def refreshes_tokens(self, integration: Integration) -> bool:
        """Whether an expiring access token is renewed without the admin (refresh token, client
        credentials): its expiry then needs no warning; only a failed renewal does."""
        return False

    def client_secret_expires_at(self, integration: Integration) -> datetime | None:
        """When the client secret this integration depends on stops working, if known."""
        value = (integration.config or {}).get("client_secret_expires_at")
        if not isinstance(value, str):
            return None
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return None
        return when if when.tzinfo is not None else None


def _name_key(name: str | None) -> str:
    """A name as compared for likely accounts: NFKC (full/half width alike), no spaces."""
    return "".join(unicodedata.normalize("NFKC", name or "").casefold().split())


def stored_secrets(integration: Integration) -> dict[str, Any]:
    """The integration's decrypted secrets with an access token, or ProviderAuthError.

    An unreadable value (wrong key, tampered row) or a missing token means the connection is
    dead: the worker then marks the integration "reconnect required" and e-mails the member.
    """
    try:
        values = integration.get_secrets()
    except SecretUnavailable:
        raise ProviderAuthError("stored token unreadable", code="secret_unreadable") from None
    if not values.get("access_token"):
        raise ProviderAuthError("no stored token", code="not_authed")
    return values
