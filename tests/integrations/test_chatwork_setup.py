"""Chatwork setup: the organization's own OAuth client, consent, callback, OA-01…OA-12, OA-18.

"Nothing stored" is: no Integration with secrets, and no extra token request at the sandbox.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import requests
import time_machine
from sqlalchemy import func, select

from portal.accounts.permissions import Role
from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.extensions import db
from portal.integrations.models import AccountLink, Integration, IntegrationState, SetupSession
from portal.integrations.pipeline import SetupPipeline
from portal.integrations.registry import providers
from sandbox.testing import RunningSandbox
from tests.integrations.chatwork_flow import (
    TOKEN_CALL,
    account_id,
    connect,
    consent,
    demo_members,
    query_of,
    register_client,
    save_client,
)
from tests.integrations.conftest import calls

PAGE = "/settings/integrations/chatwork"


def stored() -> int:
    return (
        db.session.scalar(
            select(func.count()).select_from(Integration).where(Integration.secrets.is_not(None))
        )
        or 0
    )


def started(client: Any, sandbox: RunningSandbox) -> tuple[str, dict[str, Any]]:
    """Register and save a client; return the consent URL and the client."""
    registered = register_client(sandbox)
    response = save_client(client, registered["client_id"], registered["client_secret"])
    assert response.status_code == 302, response.text[:300]
    return response.headers["Location"], registered


def test_steps_show_the_exact_registration_values(
    admin_client: Any, sandbox: RunningSandbox
) -> None:
    page = admin_client.get(PAGE)
    assert page.status_code == 200
    text = page.text
    assert "http://127.0.0.1:5000/chatwork/oauth/callback" in text
    for scope in ("offline_access", "users.profile.me:read", "rooms.messages:write",
                  "contacts.all:read_write"):  # fmt: skip
        assert scope in text
    assert "Confidential" in text and 'data-copy="#chatwork-value-redirect"' in text
    assert "/chatwork/www/contacts.php" in text and 'id="chatwork-client-form"' in text


def test_connect_stores_client_and_tokens_sealed(
    admin_client: Any, sandbox: RunningSandbox, tenants: dict[str, Any]
) -> None:
    response, registered = connect(admin_client, sandbox)
    assert response.status_code == 302 and response.headers["Location"].endswith(PAGE)
    integration = db.session.scalar(select(Integration))
    assert integration.state is IntegrationState.CONNECTED
    assert integration.external_id == str(account_id(sandbox))
    assert integration.config["client_id"] == registered["client_id"]
    assert integration.config["dedicated"] is True
    secrets = integration.get_secrets()
    assert secrets["client_secret"] == registered["client_secret"]
    assert secrets["refresh_token"] and integration.token_expires_at is not None
    # Sealed at rest: the raw column never holds the secret.
    raw = db.session.execute(select(Integration.__table__.c.secrets)).scalar()
    assert registered["client_secret"] not in str(raw)
    page = admin_client.get(PAGE).text
    assert "Wistant通知用" in page and "chatwork-personal-reminder" not in page
    assert registered["client_secret"] not in page and 'data-secret-set="true"' in page
    # Contacts read in the background: 36 members and a partner, none with an e-mail.
    assert calls(sandbox, "chatwork:GET /api/v2/contacts") == 1
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "integration.connected")
    ).all()
    assert len(events) == 1 and registered["client_secret"] not in str(events[0].after)


def test_personal_account_gets_a_reminder(admin_client: Any, sandbox: RunningSandbox) -> None:
    response, _ = connect(admin_client, sandbox, account=account_id(sandbox, "デモ 管理者"))
    assert response.status_code == 302
    page = admin_client.get(PAGE).text
    assert "chatwork-personal-reminder" in page


def test_oa12_authorization_url(admin_client: Any, sandbox: RunningSandbox) -> None:
    url, registered = started(admin_client, sandbox)
    params = query_of(url)
    assert url.startswith("http://127.0.0.1:") and "/chatwork/www/packages/oauth2/login.php" in url
    assert params["client_id"] == registered["client_id"]
    assert params["response_type"] == "code"
    assert params["scope"].split(" ") == [
        "offline_access", "users.profile.me:read", "rooms.messages:write",
        "contacts.all:read_write",
    ]  # fmt: skip
    assert params["redirect_uri"] == "http://127.0.0.1:5000/chatwork/oauth/callback"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 43 and params["state"] != params["code_challenge"]
    assert "code_verifier" not in params and registered["client_secret"] not in url
    record = db.session.scalar(select(SetupSession))
    verifier = SetupPipeline(providers.get_or_404("chatwork"), record).fetch("code_verifier")
    assert verifier not in url and params["state"] != verifier


def test_oa11_exchange_uses_basic_auth_redirect_and_verifier(
    admin_client: Any, sandbox: RunningSandbox
) -> None:
    # The sandbox refuses a token request without Basic auth, the same redirect_uri or the
    # right code_verifier: a connection proves all three.
    before = calls(sandbox, TOKEN_CALL)
    response, _ = connect(admin_client, sandbox)
    assert response.status_code == 302 and calls(sandbox, TOKEN_CALL) == before + 1
    assert str(admin_client.application.config["CHATWORK_TOKEN_URL"]).startswith("https://")


def test_wrong_client_id_comes_back_to_step_3(admin_client: Any, sandbox: RunningSandbox) -> None:
    response = save_client(admin_client, "wrong-client-id-123", "some-secret-value")
    assert response.status_code == 302
    error_page = requests.get(response.headers["Location"], timeout=10)
    assert error_page.status_code == 400 and "11000" in error_page.text
    # The admin presses the browser's back button.
    page = admin_client.get(PAGE)
    assert 'id="chatwork-returned"' in page.text
    assert 'value="wrong-client-id-123"' in page.text and 'data-secret-set="true"' in page.text
    assert "some-secret-value" not in page.text
    assert stored() == 0


def test_oa09_cancel_keeps_the_form(admin_client: Any, sandbox: RunningSandbox) -> None:
    url, registered = started(admin_client, sandbox)
    callback = consent(sandbox, url, decision="cancel")
    assert "error=access_denied" in callback
    before = calls(sandbox, TOKEN_CALL)
    response = admin_client.get(callback)
    assert response.status_code == 302 and response.headers["Location"].endswith(PAGE)
    page = admin_client.get(PAGE).text
    assert f'value="{registered["client_id"]}"' in page and 'data-secret-set="true"' in page
    assert registered["client_secret"] not in page
    assert stored() == 0 and calls(sandbox, TOKEN_CALL) == before
    assert admin_client.get(callback).status_code == 400  # consumed
    # Saving again with the secret left empty keeps the one entered before.
    again = save_client(admin_client, registered["client_id"], "")
    assert again.status_code == 302 and "login.php" in again.headers["Location"]


def test_oa01_no_state(admin_client: Any, sandbox: RunningSandbox) -> None:
    started(admin_client, sandbox)
    before = calls(sandbox, TOKEN_CALL)
    response = admin_client.get("/chatwork/oauth/callback?code=abc")
    assert response.status_code == 400 and 'id="chatwork-client-form"' in response.text
    assert stored() == 0 and calls(sandbox, TOKEN_CALL) == before


def test_oa02_unknown_state(admin_client: Any, sandbox: RunningSandbox) -> None:
    started(admin_client, sandbox)
    before = calls(sandbox, TOKEN_CALL)
    response = admin_client.get("/chatwork/oauth/callback?code=abc&state=" + "A" * 43)
    assert response.status_code == 400
    assert stored() == 0 and calls(sandbox, TOKEN_CALL) == before


def test_oa03_state_in_another_session(
    app: Any, admin_client: Any, sandbox: RunningSandbox, tenants: dict[str, Any], make_user: Any
) -> None:
    url, _ = started(admin_client, sandbox)
    callback = consent(sandbox, url)
    other = app.test_client()
    other.login(make_user(tenants["own"], Role.ADMIN, "admin2@demo.example"))
    before = calls(sandbox, TOKEN_CALL)
    assert other.get(callback).status_code == 400
    assert stored() == 0 and calls(sandbox, TOKEN_CALL) == before


def test_oa04_replayed_state(admin_client: Any, sandbox: RunningSandbox) -> None:
    url, _ = started(admin_client, sandbox)
    callback = consent(sandbox, url)
    assert admin_client.get(callback).status_code == 302
    before = calls(sandbox, TOKEN_CALL)
    assert admin_client.get(callback).status_code == 400
    assert calls(sandbox, TOKEN_CALL) == before


def test_oa05_expired_state_back_to_step_3(admin_client: Any, sandbox: RunningSandbox) -> None:
    url, registered = started(admin_client, sandbox)
    callback = consent(sandbox, url)
    before = calls(sandbox, TOKEN_CALL)
    with time_machine.travel(utcnow() + timedelta(minutes=11)):
        response = admin_client.get(callback)
    assert response.status_code == 400
    assert f'value="{registered["client_id"]}"' in response.text
    assert registered["client_secret"] not in response.text
    assert stored() == 0 and calls(sandbox, TOKEN_CALL) == before


def test_oa06_slack_callback_with_a_chatwork_state(
    admin_client: Any, sandbox: RunningSandbox
) -> None:
    url, _ = started(admin_client, sandbox)
    callback = consent(sandbox, url)
    before = calls(sandbox, TOKEN_CALL)
    assert admin_client.get(callback.replace("/chatwork/", "/slack/")).status_code == 400
    assert stored() == 0 and calls(sandbox, TOKEN_CALL) == before


def test_oa07_unexpected_issuer(admin_client: Any, sandbox: RunningSandbox) -> None:
    url, _ = started(admin_client, sandbox)
    callback = consent(sandbox, url)
    before = calls(sandbox, TOKEN_CALL)
    response = admin_client.get(callback + "&iss=https%3A%2F%2Fevil.example")
    assert response.status_code == 400
    assert stored() == 0 and calls(sandbox, TOKEN_CALL) == before


def test_oa08_admin_lost_the_role(
    admin_client: Any, sandbox: RunningSandbox, tenants: dict[str, Any]
) -> None:
    url, _ = started(admin_client, sandbox)
    callback = consent(sandbox, url)
    tenants["admin"].role = Role.MEMBER
    db.session.commit()
    before = calls(sandbox, TOKEN_CALL)
    assert admin_client.get(callback).status_code == 403
    assert stored() == 0 and calls(sandbox, TOKEN_CALL) == before


def test_oa10_failed_exchange_back_to_step_3(admin_client: Any, sandbox: RunningSandbox) -> None:
    url, registered = started(admin_client, sandbox)
    callback = consent(sandbox, url)
    sandbox.control(
        "POST", "/_control/faults/fail", {"match": "/chatwork/oauth/token", "status": 500}
    )
    response = admin_client.get(callback)
    assert response.status_code == 400 and 'id="chatwork-setup-message"' in response.text
    assert registered["client_secret"] not in response.text
    assert stored() == 0
    second = save_client(admin_client, registered["client_id"], "").headers["Location"]
    assert query_of(second)["state"] != query_of(url)["state"]
    assert query_of(second)["code_challenge"] != query_of(url)["code_challenge"]
    assert admin_client.get(consent(sandbox, second)).status_code == 302


def test_wrong_secret_back_to_step_3(admin_client: Any, sandbox: RunningSandbox) -> None:
    registered = register_client(sandbox)
    url = save_client(admin_client, registered["client_id"], "not-the-secret").headers["Location"]
    response = admin_client.get(consent(sandbox, url))
    assert response.status_code == 400 and "not-the-secret" not in response.text
    assert stored() == 0


def test_oa18_exchange_uses_only_the_state_records_credentials(
    admin_client: Any, sandbox: RunningSandbox
) -> None:
    url, _ = started(admin_client, sandbox)
    callback = consent(sandbox, url)
    other = register_client(sandbox)  # company B's client
    record = db.session.scalar(select(SetupSession))
    pipeline = SetupPipeline(providers.get_or_404("chatwork"), record)
    record.data = {**pipeline.data, "client_id": other["client_id"],
                   "client_secret": other["client_secret"]}  # fmt: skip
    db.session.commit()
    response = admin_client.get(callback)
    assert response.status_code == 400
    assert stored() == 0


def test_invalid_client_id_is_refused_before_chatwork(
    admin_client: Any, sandbox: RunningSandbox
) -> None:
    response = save_client(admin_client, "bad id with spaces", "")
    assert response.status_code == 422
    assert 'id="chatwork-client-id-error"' in response.text
    assert 'id="chatwork-client-secret-error"' in response.text


def test_replacing_the_secret_keeps_links_and_reconnect_is_audited(
    admin_client: Any, sandbox: RunningSandbox, tenants: dict[str, Any], make_user: Any
) -> None:
    demo_members(tenants["own"], make_user, 3)
    _, registered = connect(admin_client, sandbox)
    from portal.integrations.providers.chatwork import name_matching

    integration = db.session.scalar(select(Integration))
    assert name_matching.apply_suggestions(integration, actor=tenants["admin"]) >= 1
    links = db.session.scalar(select(func.count()).select_from(AccountLink))
    # Replace the secret (same client): consent again with the same account.
    url = save_client(admin_client, registered["client_id"], registered["client_secret"])
    assert admin_client.get(consent(sandbox, url.headers["Location"])).status_code == 302
    assert db.session.scalar(select(func.count()).select_from(AccountLink)) == links
    # Disconnect and reconnect: both audited, links kept.
    assert admin_client.post_form(f"{PAGE}/disconnect").status_code == 302
    db.session.refresh(integration)
    assert integration.state is IntegrationState.DISCONNECTED and integration.secrets is None
    page = admin_client.get(PAGE).text
    assert f'value="{registered["client_id"]}"' in page  # the ID is kept; the secret is not
    url = save_client(admin_client, registered["client_id"], registered["client_secret"])
    assert admin_client.get(consent(sandbox, url.headers["Location"])).status_code == 302
    assert db.session.scalar(select(func.count()).select_from(AccountLink)) == links
    actions = db.session.scalars(select(AuditEvent.action)).all()
    assert actions.count("integration.connected") == 3
    assert actions.count("integration.disconnected") == 1


# --- correcting a wrong client ID (the seed: Chatwork's error page, back, the right ID only) --


def wizard() -> SetupPipeline:
    """This test's one Chatwork wizard, as stored."""
    return SetupPipeline(providers.get_or_404("chatwork"), db.session.scalar(select(SetupSession)))


def chatwork_error(response: Any) -> None:
    """この内容で保存する went to Chatwork, which shows its error page for an unknown ID."""
    assert response.status_code == 302 and "login.php" in response.headers["Location"]
    page = requests.get(response.headers["Location"], timeout=10)
    assert page.status_code == 400 and "11000" in page.text


def test_oa22_wrong_client_id_corrected_after_back_with_the_secret_left_empty(
    admin_client: Any, sandbox: RunningSandbox
) -> None:
    registered = register_client(sandbox)
    typo = registered["client_id"][:-1] + ("x" if registered["client_id"][-1] != "x" else "y")
    chatwork_error(save_client(admin_client, typo, registered["client_secret"]))
    # The typed secret is sealed inside the encrypted wizard row, not a plain value in it.
    assert "client_secret" not in wizard().data
    assert wizard().fetch_sealed("client_secret") == registered["client_secret"]
    raw = db.session.execute(select(SetupSession.__table__.c.data)).scalar()
    assert registered["client_secret"] not in str(raw)
    # Back with the browser: the wrong ID, and a secret kept whatever the ID (never echoed).
    page = admin_client.get(PAGE).text
    assert 'id="chatwork-returned"' in page and f'value="{typo}"' in page
    assert 'data-secret-set="true"' in page and "data-secret-for-id" not in page
    assert registered["client_secret"] not in page
    # Correct the ID only, この内容で保存する, 許可する: connected with the secret typed before.
    before = calls(sandbox, TOKEN_CALL)
    saved = save_client(admin_client, registered["client_id"], "")
    assert saved.status_code == 302, saved.text[:300]
    assert query_of(saved.headers["Location"])["client_id"] == registered["client_id"]
    response = admin_client.get(consent(sandbox, saved.headers["Location"]))
    assert response.status_code == 302 and response.headers["Location"].endswith(PAGE)
    assert calls(sandbox, TOKEN_CALL) == before + 1
    integration = db.session.scalar(select(Integration))
    assert integration.state is IntegrationState.CONNECTED
    assert integration.config["client_id"] == registered["client_id"]
    assert integration.get_secrets()["client_secret"] == registered["client_secret"]
    assert db.session.scalar(select(func.count()).select_from(SetupSession)) == 0


def test_oa22_changed_client_id_with_a_new_secret_replaces_both(
    admin_client: Any, sandbox: RunningSandbox
) -> None:
    first, second = register_client(sandbox), register_client(sandbox)
    chatwork_error(save_client(admin_client, "wrong-client-id-123", first["client_secret"]))
    assert 'data-secret-set="true"' in admin_client.get(PAGE).text
    saved = save_client(admin_client, second["client_id"], second["client_secret"])
    assert wizard().fetch_sealed("client_secret") == second["client_secret"]
    assert admin_client.get(consent(sandbox, saved.headers["Location"])).status_code == 302
    integration = db.session.scalar(select(Integration))
    assert integration.config["client_id"] == second["client_id"]
    assert integration.get_secrets()["client_secret"] == second["client_secret"]


def test_oa22_connection_secret_is_kept_for_its_own_client_id_only(
    admin_client: Any, sandbox: RunningSandbox
) -> None:
    _, registered = connect(admin_client, sandbox)
    page = admin_client.get(PAGE).text
    assert 'data-secret-for-id="true"' in page and registered["client_secret"] not in page
    other = register_client(sandbox)
    refused = save_client(admin_client, other["client_id"], "")
    assert refused.status_code == 422 and 'id="chatwork-client-secret-error"' in refused.text
    assert 'data-secret-set="true"' in refused.text  # still true: the saved ID keeps its secret
    kept = save_client(admin_client, registered["client_id"], "")
    assert kept.status_code == 302 and "login.php" in kept.headers["Location"]
    assert wizard().fetch_sealed("client_secret") == registered["client_secret"]


def test_refused_client_id_keeps_the_typed_secret(
    admin_client: Any, sandbox: RunningSandbox
) -> None:
    registered = register_client(sandbox)
    refused = save_client(admin_client, "bad id with spaces", registered["client_secret"])
    assert refused.status_code == 422 and 'id="chatwork-client-id-error"' in refused.text
    assert 'data-secret-set="true"' in refused.text
    assert "chatwork-client-secret-error" not in refused.text
    saved = save_client(admin_client, registered["client_id"], "")
    assert admin_client.get(consent(sandbox, saved.headers["Location"])).status_code == 302
    integration = db.session.scalar(select(Integration))
    assert integration.get_secrets()["client_secret"] == registered["client_secret"]


def test_new_browser_session_does_not_reuse_an_old_attempts_secret(
    app: Any, admin_client: Any, sandbox: RunningSandbox, tenants: dict[str, Any]
) -> None:
    registered = register_client(sandbox)
    chatwork_error(save_client(admin_client, "wrong-client-id-123", registered["client_secret"]))
    later = app.test_client()  # the same admin, signed in again
    later.login(tenants["admin"])
    page = later.get(PAGE).text
    assert "data-secret-set" not in page and "wrong-client-id-123" not in page
    before = calls(sandbox, TOKEN_CALL)
    refused = save_client(later, registered["client_id"], "")
    assert refused.status_code == 422 and 'id="chatwork-client-secret-error"' in refused.text
    assert calls(sandbox, TOKEN_CALL) == before and stored() == 0


def test_attempt_secret_expires_an_hour_after_it_was_typed(
    admin_client: Any, sandbox: RunningSandbox
) -> None:
    registered = register_client(sandbox)
    start = utcnow()
    chatwork_error(save_client(admin_client, "wrong-client-id-123", registered["client_secret"]))
    # Saving again keeps the typed secret, but the hour counts from the typing, not the save.
    with time_machine.travel(start + timedelta(minutes=25)):
        assert 'data-secret-set="true"' in admin_client.get(PAGE).text
    with time_machine.travel(start + timedelta(minutes=50)):
        chatwork_error(save_client(admin_client, "wrong-client-id-456", ""))
    with time_machine.travel(start + timedelta(minutes=70)):
        page = admin_client.get(PAGE).text
        assert "wrong-client-id-456" in page and "data-secret-set" not in page
        refused = save_client(admin_client, registered["client_id"], "")
    assert refused.status_code == 422 and 'id="chatwork-client-secret-error"' in refused.text


def test_oa18_another_organizations_sealed_secret_does_not_open(
    app: Any, admin_client: Any, sandbox: RunningSandbox, tenants: dict[str, Any]
) -> None:
    registered = register_client(sandbox)
    chatwork_error(save_client(admin_client, "wrong-client-id-123", registered["client_secret"]))
    ours = db.session.scalar(select(SetupSession)).data
    other = app.test_client()
    other.login(tenants["other_admin"])
    chatwork_error(save_client(other, "other-client-id-789", "another-secret"))
    # Company A's encrypted wizard data copied into company B's row: the seal refuses it.
    record = db.session.scalar(
        select(SetupSession).where(SetupSession.organization_id == tenants["other"].id)
    )
    record.data = ours
    db.session.commit()
    page = other.get(PAGE).text
    assert 'value="wrong-client-id-123"' in page and "data-secret-set" not in page
    refused = save_client(other, registered["client_id"], "")
    assert refused.status_code == 422 and 'id="chatwork-client-secret-error"' in refused.text
    assert registered["client_secret"] not in refused.text and stored() == 0
