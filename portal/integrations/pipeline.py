"""The setup wizard engine: a provider's steps, run as data over one ``SetupSession`` row.

A provider describes its wizard as a list of steps (``setup_steps()``; the building blocks are
in ``wizard.py``, free of Flask), e.g. Slack's ``[OAuthAuthorizeStep(spec),
OAuthCallbackStep(spec)]`` or, for Chatwork, ``[ClientCredentialsStep(), OAuthAuthorizeStep(spec),
OAuthCallbackStep(spec)]``. The engine alone touches the row:

- it keeps the wizard's state server-side in ``SetupSession`` (encrypted ``data``, the step
  index, a *signature* of the step list so a deploy that changes the steps restarts the wizard
  cleanly, 10 minutes to live); the Flask session only names the row. A step's secrets
  (Chatwork's client secret) are also sealed to the wizard's owner
  (:meth:`SetupPipeline.bind_sealed`);
- binds it to the organization, the user, the provider and the browser session that started it;
- renders a step (its partial, with what :meth:`~.wizard.Step.context` supplies) and gives one
  request's input to ``step.post(wizard, form)``, acting on the :class:`~.wizard.StepResult`:
  the next step, the provider's consent page, the form again, an earlier form step, or the end;
- calls ``provider.build_connection(data)`` and ``services.save_connection`` when the last step
  advances, in one transaction, then ``provider.after_connect``.

Steps flagged ``auto = True`` run as soon as the wizard reaches them (the OAuth redirect), so a
form step followed by the authorize step sends the browser straight to the provider.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from flask import flash, redirect, render_template, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import delete, func, select, update
from werkzeug.wrappers import Response

from ..accounts.models import Organization, User
from ..accounts.permissions import Permission
from ..auth.sessions import current_hash
from ..crypto import SecretUnavailable, StoredSecret, seal, unseal
from ..database import utcnow
from ..extensions import db, htmx
from ..htmx import is_partial_request
from . import services
from .models import AccountLink, Integration, SetupSession, SignInSession
from .wizard import Attempt, SetupError, Step

if TYPE_CHECKING:  # a cycle: the provider packages import the engine (Chatwork's page reads it)
    from .providers.base import ChatProvider

log = logging.getLogger("portal.integrations.setup")

#: How long a wizard (and so an OAuth ``state``) lives: RFC 6749's code lifetime, slack_sdk's
#: state expiry (reliability.md OA-05).
SETUP_TTL = timedelta(minutes=10)

#: The data key holding the values bound with :meth:`SetupPipeline.bind_sealed`, sealed together.
SEALED = "sealed"


class CallbackRejected(Exception):
    """An OAuth callback that does not belong to a live wizard of this browser (OA-01…OA-08)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def hash_state(token: str) -> str:
    """The key a ``state`` value is stored under: only its SHA-256 is ever written."""
    return hashlib.sha256(token.encode()).hexdigest()


def steps_signature(steps: Sequence[Step]) -> str:
    """A fingerprint of the step list (classes and names), as Sentry's pipeline signature."""
    names = "|".join(f"{type(s).__module__}.{type(s).__qualname__}:{s.name}" for s in steps)
    return hashlib.sha256(names.encode()).hexdigest()


def _session_key(provider_key: str) -> str:
    return f"setup:{provider_key}"


class SetupPipeline:
    """One run of a provider's wizard for the signed-in admin (a :class:`~.wizard.Wizard`)."""

    def __init__(
        self, provider: ChatProvider, record: SetupSession, previous: Attempt | None = None
    ) -> None:
        self.provider = provider
        self.record = record
        self.steps = provider.setup_steps()
        #: The attempt this one replaced (see ``Wizard.previous``).
        self.previous = previous

    # --- life cycle --------------------------------------------------------------------------

    @classmethod
    def start(cls, provider: ChatProvider, organization: Organization, user: User) -> SetupPipeline:
        """Begin a fresh wizard, dropping this user's unfinished one for the provider (whose
        values stay readable to the first step as ``previous``)."""
        last = cls.last(provider, organization, user)
        previous = last.attempt() if last is not None else None
        db.session.execute(
            delete(SetupSession).where(
                SetupSession.organization_id == organization.id,
                SetupSession.user_id == user.id,
                SetupSession.provider == provider.key,
            )
        )
        token = secrets.token_urlsafe(32)
        record = SetupSession(
            state_hash=hash_state(token),
            organization_id=organization.id,
            user_id=user.id,
            browser_session=current_hash() or "",
            provider=provider.key,
            step_index=0,
            signature=steps_signature(provider.setup_steps()),
            data={},
            expires_at=utcnow() + SETUP_TTL,
        )
        db.session.add(record)
        session[_session_key(provider.key)] = record.state_hash
        return cls(provider, record, previous)

    @classmethod
    def last(
        cls, provider: ChatProvider, organization: Organization, user: User
    ) -> SetupPipeline | None:
        """This user's latest wizard for ``provider`` in this browser session, in any state
        (finished with an error, expired, abandoned): to read what was typed, never to run."""
        record = db.session.scalar(
            select(SetupSession)
            .where(
                SetupSession.organization_id == organization.id,
                SetupSession.user_id == user.id,
                SetupSession.provider == provider.key,
                SetupSession.browser_session == (current_hash() or ""),
            )
            .order_by(SetupSession.created_at.desc())
            .limit(1)
        )
        return None if record is None else cls(provider, record)

    @classmethod
    def resume(
        cls, provider: ChatProvider, organization: Organization, user: User
    ) -> SetupPipeline | None:
        """The wizard this browser has in progress for ``provider``, if still valid."""
        state_hash = session.get(_session_key(provider.key))
        record = db.session.get(SetupSession, state_hash) if state_hash else None
        if (
            record is None
            or record.consumed_at is not None
            or record.expires_at <= utcnow()
            or record.provider != provider.key
            or record.organization_id != organization.id
            or record.user_id != user.id
            or record.browser_session != (current_hash() or "")
        ):
            return None
        pipeline = cls(provider, record)
        return pipeline if record.signature == steps_signature(pipeline.steps) else None

    @classmethod
    def from_callback(
        cls, provider: ChatProvider, state: str | None, organization: Organization, user: User
    ) -> SetupPipeline:
        """Load and consume the wizard a provider's redirect names; raise :class:`CallbackRejected`.

        Every check of reliability.md OA-01…OA-08 happens here, before any token request:
        the state must exist, be unused and unexpired, belong to this provider's redirect URI
        (mix-up defence), this browser session, this user and this organization. It is consumed
        with a compare-and-set, so two concurrent replays cannot both pass.
        """
        if not state or len(state) > 200:
            raise CallbackRejected(_("The response from the provider had no valid state."))
        record = db.session.get(SetupSession, hash_state(state))
        if record is None:
            raise CallbackRejected(_("This setup link is unknown or was already used."))
        problem = state_problem(record, provider.key, organization, user)
        if problem:
            log.warning(
                "oauth callback rejected: provider=%s reason=%s user=%s",
                provider.key,
                problem,
                user.id,
            )
            raise CallbackRejected(problem)
        if not claim_state(SetupSession, record.state_hash):
            raise CallbackRejected(_("This setup link is unknown or was already used."))
        db.session.refresh(record)
        pipeline = cls(provider, record)
        if record.signature != steps_signature(pipeline.steps):
            raise CallbackRejected(_("The setup steps changed meanwhile. Please start again."))
        return pipeline

    def issue_state(self) -> str:
        """A new ≥256-bit OAuth ``state`` for this wizard; only its hash is stored.

        Re-keying the row on every authorize step keeps each ``state`` single use even when an
        admin comes back to the same wizard.
        """
        token = secrets.token_urlsafe(32)
        self.record.state_hash = hash_state(token)
        self.record.expires_at = utcnow() + SETUP_TTL
        session[_session_key(self.provider.key)] = self.record.state_hash
        return token

    # --- data -------------------------------------------------------------------------------

    @property
    def organization_id(self) -> int:
        return self.record.organization_id

    @property
    def live(self) -> bool:
        """Still running: neither finished, failed nor expired."""
        return self.record.consumed_at is None and self.record.expires_at > utcnow()

    def attempt(self) -> Attempt:
        """A read-only snapshot of this run, for a step's template context."""
        return Attempt(self.opened(), self.record.created_at, self.live)

    def bind(self, key: str, value: Any) -> None:
        """Remember ``value`` for later steps (stored encrypted)."""
        self.record.data = {**self.data, key: value}

    def fetch(self, key: str, default: Any = None) -> Any:
        """A value bound by an earlier step."""
        return self.data.get(key, default)

    @property
    def data(self) -> dict[str, Any]:
        """Everything bound so far (decrypted on first use after loading)."""
        value = self.record.data
        if isinstance(value, StoredSecret):
            value = value.reveal()
            self.record.data = value
        return dict(value or {})

    @property
    def owner(self) -> str:
        """Whom the sealed values belong to: the wizard's provider, organization, admin and browser
        session. Not the row's key, which changes with every ``state`` (:meth:`issue_state`)."""
        record = self.record
        return (
            f"setup:{record.provider}:org:{record.organization_id}:user:{record.user_id}"
            f":browser:{record.browser_session}"
        )

    def bind_sealed(self, key: str, value: Any) -> None:
        """Remember a secret for later steps, sealed to :attr:`owner` inside the encrypted data:
        values copied in from another organization's, admin's or browser's wizard do not open."""
        self.bind(SEALED, seal({**self._sealed(), key: value}, self.owner))

    def fetch_sealed(self, key: str) -> Any:
        """A value bound with :meth:`bind_sealed` (``None`` when absent or sealed for another)."""
        return self._sealed().get(key)

    def opened(self) -> dict[str, Any]:
        """Everything bound, the sealed values opened: what ``build_connection`` reads."""
        data = self.data
        data.pop(SEALED, None)
        return {**data, **self._sealed()}

    def _sealed(self) -> dict[str, Any]:
        stored = self.data.get(SEALED)
        if stored is None:
            return {}
        try:
            value = unseal(stored, self.owner)
        except SecretUnavailable:  # fail closed: the step asks for the secret again
            log.warning("setup secrets sealed for another owner: provider=%s", self.provider.key)
            return {}
        return dict(value) if isinstance(value, dict) else {}

    @property
    def index(self) -> int:
        """The position of the step the wizard is on."""
        return min(self.record.step_index, len(self.steps) - 1)

    @property
    def step(self) -> Step:
        """The step the wizard is on."""
        return self.steps[self.index]

    # --- running ----------------------------------------------------------------------------

    def handle(self, form: Mapping[str, str]) -> ResponseReturnValue:
        """Give ``form`` to the current step and act on its result."""
        result = self.step.post(self, form)
        if result.action == "advance":
            return self.advance()
        if result.action == "error":
            return self.fail(result.message, result.status)
        if result.action == "leave":
            self.record.step_index += 1  # the next request is the provider's redirect back
            db.session.commit()
            return top_level_redirect(result.url)
        index = self.index
        if result.action == "back":
            index = step_index(self.steps, result.step)
            self.record.step_index = index
            self.record.error = result.message[:1000]
        db.session.commit()
        return self.show(
            index, status=result.status or 400, message=result.message, errors=result.errors
        )

    def advance(self) -> ResponseReturnValue:
        """Move to the next step; past the last one, finish."""
        self.record.step_index += 1
        if self.record.step_index >= len(self.steps):
            return self.finish()
        if self.step.auto:
            return self.handle({})
        db.session.commit()
        return redirect(url_for("integrations.provider", provider=self.provider.key))

    def fail(self, message: str, status: int | None = 400) -> ResponseReturnValue:
        """End the wizard: nothing is stored but the consumed setup row and its message."""
        db.session.rollback()
        record = db.session.get(SetupSession, self.record.state_hash)
        if record is not None:
            record.consumed_at = record.consumed_at or utcnow()
            record.error = message[:1000]
        db.session.commit()
        session.pop(_session_key(self.provider.key), None)
        log.info("setup ended: provider=%s message=%s", self.provider.key, message)
        if status is None:
            flash(message, "error")
            return redirect(url_for("integrations.provider", provider=self.provider.key))
        return render_setup_error(self.provider, message, status)

    def finish(self) -> ResponseReturnValue:
        """Store the connection and its audit entry in one transaction, then run after_connect."""
        try:
            connection = self.provider.build_connection(self.opened())
            organization = db.session.get(Organization, self.record.organization_id)
            user = db.session.get(User, self.record.user_id)
            assert organization is not None and user is not None
            integration = services.save_connection(self.provider, organization, user, connection)
        except SetupError as problem:
            return self.fail(str(problem))
        db.session.execute(
            delete(SetupSession).where(SetupSession.state_hash == self.record.state_hash)
        )
        db.session.commit()
        session.pop(_session_key(self.provider.key), None)
        self.provider.after_connect(integration, user.id)
        flash(_("%(provider)s is connected.", provider=self.provider.name), "success")
        return redirect(url_for("integrations.provider", provider=self.provider.key))

    # --- pages ------------------------------------------------------------------------------

    def show(
        self, index: int | None = None, status: int = 200, **context: Any
    ) -> ResponseReturnValue:
        """The wizard page at step ``index`` (default: the current one) with this run's values."""
        return render_wizard(
            self.provider,
            self.steps,
            self.index if index is None else index,
            attempt=self.attempt(),
            integration=_integration(self.provider, self.record.organization_id),
            status=status,
            **context,
        )

    def page(self) -> ResponseReturnValue:
        """What the provider page shows of this live wizard: its step, or — when that step waits
        for the provider and says so — the earlier step it returns to, marked ``returned``."""
        target = self.step.returns_to
        if target is None:
            return self.show()
        return self.show(step_index(self.steps, target), returned=True)


def setup_page(
    provider: ChatProvider, organization: Organization, user: User
) -> ResponseReturnValue:
    """The provider page while it is not connected: this admin's live wizard where it stands,
    else the first step (showing what this admin's latest attempt kept, if a step keeps any)."""
    if user.can(Permission.MANAGE_INTEGRATIONS):
        pipeline = SetupPipeline.resume(provider, organization, user)
        if pipeline is not None and pipeline.record.step_index > 0:
            return pipeline.page()
    last = SetupPipeline.last(provider, organization, user)
    return render_wizard(
        provider,
        provider.setup_steps(),
        0,
        attempt=last.attempt() if last is not None else None,
        integration=_integration(provider, organization.id),
    )


def callback_refused(
    provider: ChatProvider, organization: Organization, user: User, message: str, status: int
) -> ResponseReturnValue:
    """A provider redirect that belongs to no live wizard: the error page, or — when the
    callback step returns to an earlier form step — that form with ``message``."""
    steps = provider.setup_steps()
    target = next((s.returns_to for s in steps if s.name == "callback"), None)
    if target is None:
        return render_setup_error(provider, message, status)
    last = SetupPipeline.last(provider, organization, user)
    return render_wizard(
        provider,
        steps,
        step_index(steps, target),
        attempt=last.attempt() if last is not None else None,
        integration=_integration(provider, organization.id),
        status=status,
        message=message,
    )


class StateRecord(Protocol):
    """What an OAuth round trip remembers server-side: the admin's wizard (``SetupSession``)
    and a member's sign-in (``SignInSession``) alike."""

    organization_id: int
    user_id: int
    browser_session: str
    provider: str
    expires_at: datetime
    consumed_at: datetime | None


def state_problem(
    record: StateRecord, provider_key: str, organization: Organization, user: User
) -> str | None:
    """Why the ``state`` naming ``record`` must be refused on this request (OA-03…OA-08), or
    ``None``: used, expired, issued for another provider's redirect URI (mix-up defence),
    another browser session or user, another organization."""
    if record.consumed_at is not None:
        return str(_("This setup link is unknown or was already used."))
    if record.expires_at <= utcnow():
        return str(_("The setup took too long and expired. Please start again."))
    if record.provider != provider_key:
        return str(_("The response arrived for a different chat tool than the one you started."))
    if record.browser_session != (current_hash() or "") or record.user_id != user.id:
        return str(_("This setup was started in another browser session."))
    if record.organization_id != organization.id:
        return str(_("This setup was started for another organization."))
    return None


def claim_state(model: type[SetupSession] | type[SignInSession], state_hash: str) -> bool:
    """Consume a state record with a compare-and-set; commits. False when another request
    consumed it first (two replays at once cannot both pass)."""
    claimed = db.session.execute(
        update(model)
        .where(model.state_hash == state_hash, model.consumed_at.is_(None))
        .values(consumed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


def step_index(steps: Sequence[Step], name: str) -> int:
    """The position of the step called ``name`` (a provider's own step list names it)."""
    return next(i for i, step in enumerate(steps) if step.name == name)


def _integration(provider: ChatProvider, organization_id: int) -> Integration | None:
    return db.session.scalar(
        select(Integration).where(
            Integration.organization_id == organization_id, Integration.provider == provider.key
        )
    )


def render_wizard(
    provider: ChatProvider,
    steps: Sequence[Step],
    index: int,
    *,
    attempt: Attempt | None,
    integration: Integration | None,
    status: int = 200,
    **context: Any,
) -> ResponseReturnValue:
    """A wizard page (or its ``#setup-wizard`` region) showing ``steps[index]``.

    The step partial is ``integrations/providers/<key>/_step_<name>.html`` when the provider
    has one, else ``integrations/setup/_step_<name>.html``; it sees the step's own context, the
    organization's earlier integration and how many member links it keeps (``kept_links``).
    """
    step = steps[min(index, len(steps) - 1)]
    kept = 0
    if integration is not None:
        kept = (
            db.session.scalar(
                select(func.count())
                .select_from(AccountLink)
                .where(AccountLink.integration_id == integration.id)
            )
            or 0
        )
    values: dict[str, Any] = {
        "errors": {},
        "message": None,
        "returned": False,
        **step.context(attempt, integration),
        **context,
    }
    template = (
        "integrations/setup/_wizard.html"
        if is_partial_request()
        else "integrations/setup/wizard.html"
    )
    body = render_template(
        template,
        provider=provider,
        steps=steps,
        index=index,
        step=step,
        step_templates=[
            f"integrations/providers/{provider.key}/_step_{step.name}.html",
            f"integrations/setup/_step_{step.name}.html",
        ],
        integration=integration,
        kept_links=kept,
        **values,
    )
    return body, status


def render_setup_error(provider: ChatProvider, message: str, status: int) -> ResponseReturnValue:
    """A clear full page for a failed setup, with a way back to the provider page."""
    response = render_template("integrations/setup/error.html", provider=provider, message=message)
    return response, status


def top_level_redirect(url: str) -> Response:
    """Leave the portal: a 302, or ``HX-Redirect`` so HTMX does a full navigation."""
    if htmx:
        response = Response("", status=204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url)
