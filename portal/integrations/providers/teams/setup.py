"""Microsoft Teams' setup wizard: Entra ID admin consent for the whole tenant, then the proof.

「Microsoft Teamsと連携する」 sends the admin to Entra's v2 admin-consent page; the answer names
a tenant, which is trusted only once a client-credentials Graph token issued for it now carries
that ``tid`` (reliability.md OA-17). Nothing per tenant is stored as a secret: the app's own
client credentials serve every tenant.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ....database import utcnow
from ...models import Integration
from ...wizard import SetupError, Step, StepResult, Wizard, advance, error
from ..base import ConnectionData, ProviderError
from ..oauth import OAuthAuthorizeStep, OAuthSpec
from .client import TeamsClient
from .tokens import GRAPH_SCOPE, acquire_token, forget_tokens, token_tenant_id

log = logging.getLogger("portal.integrations.teams")

GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


#: 「Microsoft Teamsと連携する」: Entra's v2 admin consent for the app in the admin's tenant.
#: "organizations": the admin's own tenant, whichever it is (never "common" on v2). No PKCE:
#: admin consent returns no code, only the tenant (proven in the callback step).
#: ``/.default`` asks for every application permission on our Entra app registration (the
#: package docstring lists them: ``User.Read.All``,
#: ``TeamsAppInstallation.ReadWriteSelfForUser.All``, ``MailboxSettings.Read``); a tenant whose
#: admin consented before one was added lacks it until the admin consents again.
TEAMS_SPEC = OAuthSpec(
    provider_key="teams",
    authorize_url_setting="MS_CONSENT_URL",
    authorize_path="/organizations/v2.0/adminconsent",
    client_id_setting="MS_APP_ID",
    required_settings=("MS_CLIENT_SECRET",),
    scopes=(GRAPH_SCOPE,),
    pkce=False,
)


def setup_steps() -> list[Step]:
    """Admin consent (the shared authorize step) and the proof of the tenant."""
    return [
        OAuthAuthorizeStep(TEAMS_SPEC, title=_l("Connect Microsoft Teams"), name="consent"),
        AdminConsentCallbackStep(),
    ]


class AdminConsentCallbackStep(Step):
    """The consent answer: trust the ``tenant`` only once a token for it proves it (OA-17)."""

    name = "callback"
    title = _l("Confirm the tenant")

    def post(self, wizard: Wizard, form: Mapping[str, str]) -> StepResult:
        problem = form.get("error")
        if problem:
            if problem in ("access_denied", "consent_required", "permission_denied"):
                return error(
                    _(
                        "The consent was cancelled or refused on Microsoft's page. Sign in as a "
                        "Teams Administrator or Global Administrator and try again."
                    ),
                    None,
                )
            return error(_("Microsoft refused the consent (%(code)s).", code=problem[:64]))
        tenant = str(form.get("tenant") or "").strip().lower()
        if form.get("admin_consent", "").lower() != "true" or not GUID.match(tenant):
            return error(_("The answer from Microsoft named no tenant. Please start again."))
        forget_tokens(tenant)  # the proof is a token issued now, not one cached earlier
        try:
            token = acquire_token(tenant, GRAPH_SCOPE)
        except ProviderError as failure:
            log.warning("teams consent not proven: code=%s", failure.code)
            return error(
                _(
                    "Microsoft did not confirm the consent for this tenant (%(code)s). "
                    "Please start again.",
                    code=failure.code,
                ),
                502 if failure.retryable else 400,
            )
        if token_tenant_id(token) != tenant:
            log.warning("teams consent: token tid does not match the returned tenant")
            return error(_("Microsoft did not confirm the consent for this tenant."))
        wizard.bind("tenant_id", tenant)
        wizard.bind("consented_at", utcnow().isoformat())
        return advance()


def build_connection(data: Mapping[str, Any]) -> ConnectionData:
    """The consented tenant and its display name (Graph /organization, when it answers)."""
    tenant = str(data.get("tenant_id") or "")
    if not GUID.match(tenant):
        raise SetupError(_("The answer from Microsoft named no tenant. Please start again."))
    name = None
    probe = Integration(provider="teams", external_id=tenant)
    try:
        name = TeamsClient(probe).organization_name()
    except ProviderError as problem:
        log.info("teams organization name unavailable: code=%s", problem.code)
    return ConnectionData(
        external_id=tenant,
        display_name=name or tenant,
        config={
            "tenant_id": tenant,
            "tenant_name": name,
            "consented_at": data.get("consented_at"),
            "bot_name": current_app.config.get("TEAMS_BOT_NAME"),
        },
        secrets={},  # client credentials: nothing per tenant to keep
    )
