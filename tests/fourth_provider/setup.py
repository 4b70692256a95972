"""The fourth provider's wizard: the workspace ID (a form step), consent, and the callback.

It uses what the engine offers every provider: a form step with its own template context and
422 on invalid input, the shared OAuth steps, and a callback that goes back to the form with a
message when the service refuses the exchange.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from portal.integrations.models import Integration
from portal.integrations.providers.base import ConnectionData, ProviderError
from portal.integrations.providers.oauth import (
    OAuthAuthorizeStep,
    OAuthCallbackStep,
    OAuthExchanger,
    OAuthSpec,
)
from portal.integrations.wizard import (
    Attempt,
    SetupError,
    Step,
    StepResult,
    Wizard,
    advance,
    back,
    invalid,
)

from .service import SERVICE, Refused

WORKSPACE_ID = re.compile(r"W[0-9A-Z]{4,20}")

SPEC = OAuthSpec(
    provider_key="fourth",
    authorize_url_setting="FOURTH_AUTHORIZE_URL",
    client_id_setting="FOURTH_CLIENT_ID",
    scopes=("dm:write", "people:read"),
)


class WorkspaceStep(Step):
    """The admin names the workspace to connect (its ID, from the service's settings)."""

    name = "workspace"
    title = "Name the workspace"

    def context(self, attempt: Attempt | None, integration: Integration | None) -> dict[str, Any]:
        typed = attempt.fetch("workspace") if attempt is not None else None
        saved = (integration.config or {}).get("workspace") if integration else None
        return {"workspace": typed or saved or "", "hint": "Settings → About this workspace"}

    def post(self, wizard: Wizard, form: Mapping[str, str]) -> StepResult:
        workspace = str(form.get("workspace") or "").strip().upper()
        wizard.bind("workspace", workspace[:32])
        if not WORKSPACE_ID.fullmatch(workspace):
            return invalid({"workspace": "A workspace ID starts with W."})
        return advance()


class FourthCallbackStep(OAuthCallbackStep):
    """A refused exchange goes back to the workspace form, which keeps what was typed."""

    returns_to = "workspace"

    def post(self, wizard: Wizard, form: Mapping[str, str]) -> StepResult:
        result = super().post(wizard, form)
        if result.action == "error" and result.status == 502:
            return back("workspace", "The service refused the connection: check the ID.")
        return result


def setup_steps(exchanger: OAuthExchanger) -> list[Step]:
    return [
        WorkspaceStep(),
        OAuthAuthorizeStep(SPEC, title="Allow on Fourth"),
        FourthCallbackStep(SPEC, exchanger, title="Finish the connection"),
    ]


def exchange_code(*, code: str, redirect_uri: str, code_verifier: str | None) -> dict[str, Any]:
    try:
        return SERVICE.exchange(code, redirect_uri)
    except Refused as problem:
        raise ProviderError("the service refused the code", code=problem.code) from None


def build_connection(data: Mapping[str, Any]) -> ConnectionData:
    token = data.get("token") or {}
    if not token.get("access_token"):
        raise SetupError("The service returned no token.")
    if token.get("workspace_id") != data.get("workspace"):
        raise SetupError("The service connected another workspace than the one named.")
    return ConnectionData(
        external_id=str(token["workspace_id"]),
        display_name=str(token.get("workspace_name") or token["workspace_id"]),
        config={"workspace": token["workspace_id"]},
        secrets={"access_token": token["access_token"]},
    )
