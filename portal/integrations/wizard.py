"""What a setup wizard is made of, free of Flask: steps, their results, and what they see.

A provider describes its wizard as a list of :class:`Step` objects; the engine
(``pipeline.py``) runs them over one server-side record that only it touches. A step:

- shows itself: the engine renders ``_step_<name>.html`` with what :meth:`Step.context`
  supplies (Chatwork's kept client ID, its registration values);
- handles its input in :meth:`Step.post`, through the :class:`Wizard` it is given (bound
  values, sealed secrets, a fresh OAuth ``state``), and answers a :class:`StepResult`:
  :func:`advance`, :func:`leave` (off to the provider's consent page), :func:`invalid` (this
  form again, with errors), :func:`back` (an earlier form step again, with a message) or
  :func:`error` (the wizard ends).

:class:`SetupError` is what ``ChatProvider.build_connection`` raises to refuse what the wizard
collected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:  # this module stays free of Flask: flask_babel and the models are types here
    from flask_babel.speaklater import LazyString

    from .models import Integration


class SetupError(Exception):
    """The collected data cannot become a connection; the message is shown to the admin."""


@dataclass(frozen=True)
class StepResult:
    """What a step's ``post`` decided; build it with the functions below."""

    action: Literal["advance", "leave", "invalid", "back", "error"]
    message: str = ""
    status: int | None = 400
    #: ``leave``: where the browser goes (a top-level navigation).
    url: str = ""
    #: ``back``: the name of the earlier step to show again.
    step: str = ""
    #: ``invalid``: a message per form field.
    errors: Mapping[str, str] = field(default_factory=dict)


def advance() -> StepResult:
    """The step is done: go to the next one (or finish the wizard)."""
    return StepResult("advance")


def leave(url: str) -> StepResult:
    """The step is done and the browser goes to ``url`` (the provider's consent page); the
    next request of this wizard is the provider's redirect back."""
    return StepResult("leave", url=url)


def invalid(
    errors: Mapping[str, str] | None = None, message: str = "", status: int = 422
) -> StepResult:
    """Stay on this step and show its form again with ``errors`` (and ``message``)."""
    return StepResult("invalid", message=message, status=status, errors=dict(errors or {}))


def back(step: str, message: str, status: int = 400) -> StepResult:
    """Show the earlier form step ``step`` again with ``message``: e.g. the provider refused the
    credentials typed there. What the wizard bound stays, so the form keeps it."""
    return StepResult("back", message=message, status=status, step=step)


def error(message: str, status: int | None = 400) -> StepResult:
    """End the wizard with ``message``: an error page with ``status``, or (``status=None``) a
    flash on the provider page — for an ordinary outcome such as the admin pressing キャンセル."""
    return StepResult("error", message=message, status=status)


@dataclass(frozen=True)
class Attempt:
    """A read-only snapshot of one run of a wizard: what it bound (sealed values opened), when
    it started, and whether it is still running (else it failed, expired or was abandoned)."""

    values: Mapping[str, Any]
    started_at: datetime
    live: bool

    def fetch(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


class Wizard(Protocol):
    """What a step sees of the running wizard; the record behind it is the engine's."""

    @property
    def organization_id(self) -> int:
        """The organization the wizard connects."""
        ...

    @property
    def previous(self) -> Attempt | None:
        """This admin's earlier attempt in this browser session, when this one replaced it: a
        form step may offer what was typed there again (Chatwork's client secret)."""
        ...

    def bind(self, key: str, value: Any) -> None:
        """Remember ``value`` for later steps (stored encrypted)."""
        ...

    def fetch(self, key: str, default: Any = None) -> Any:
        """A value bound by an earlier step."""
        ...

    def bind_sealed(self, key: str, value: Any) -> None:
        """Remember a secret, sealed to this wizard's owner (organization, admin, browser)."""
        ...

    def fetch_sealed(self, key: str) -> Any:
        """A value bound with :meth:`bind_sealed` (``None`` when absent or not ours)."""
        ...

    def issue_state(self) -> str:
        """A new single-use OAuth ``state`` naming this wizard (only its hash is stored)."""
        ...


class Step:
    """One wizard step. ``name`` is a slug used in URLs and template names."""

    name: str
    title: str | LazyString
    #: Run on arrival, without waiting for the browser (the redirect to the provider).
    auto: bool = False
    #: While this step waits for the provider, the provider page shows this earlier step
    #: instead, with ``returned`` set: the admin came back without finishing (Chatwork's error
    #: page for a wrong client ID, the back button, a closed tab). ``None``: show this step.
    returns_to: str | None = None

    def context(self, attempt: Attempt | None, integration: Integration | None) -> dict[str, Any]:
        """What the step's template shows besides the engine's own values: ``attempt`` is the
        run being shown (this admin's live or latest one, if any), ``integration`` the
        organization's earlier connection with the provider, if any."""
        return {}

    def post(self, wizard: Wizard, form: Mapping[str, str]) -> StepResult:
        """Handle the step's input: a form, or for an OAuth callback its query string."""
        raise NotImplementedError(f"{type(self).__name__} takes no input")
