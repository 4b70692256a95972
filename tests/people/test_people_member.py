"""/me/accounts, channel choice, link-change notices, confirmation and held sensitive content."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.integrations import linking
from portal.integrations.models import AccountLink, LinkMethod
from portal.me import notices
from portal.notifications import mail
from portal.notifications.models import Delivery, DeliveryState, Notification
from portal.notifications.services import create_notification, route
from tests.people.people_helpers import link, slack


def _actions(organization_id: int) -> list[str]:
    return list(
        db.session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.organization_id == organization_id)
            .order_by(AuditEvent.id)
        )
    )


@pytest.fixture
def sent_mail(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    outbox: list[Any] = []
    monkeypatch.setattr(mail, "send", outbox.append)
    return outbox


def test_me_accounts_shows_how_and_when_linked_and_last_dm(client: Any, tenants: Any) -> None:
    integration, accounts = slack(tenants["own"])
    row = link(integration, tenants["member"], accounts[0], LinkMethod.EMAIL)
    notification, _new = create_notification(
        tenants["own"], tenants["member"], title="請求書", body="本文"
    )
    db.session.commit()
    delivery = notification.deliveries[0]
    delivery.state = DeliveryState.SENT
    delivery.sent_at = row.created_at
    db.session.commit()
    client.login(tenants["member"])
    page = client.get("/me/accounts")
    assert page.status_code == 200
    assert accounts[0].name in page.text
    assert f'id="me-link-{row.id}"' in page.text
    assert "None yet" not in page.text  # the last DM is shown
    assert 'name="channel" value="both"' in page.text


def test_channel_choice_routes_email_and_both(client: Any, tenants: Any) -> None:
    integration, accounts = slack(tenants["own"])
    member = tenants["member"]
    link(integration, member, accounts[0], LinkMethod.MANUAL)
    assert route(member).channel == "slack"
    client.login(member)
    assert client.post_form("/me/accounts/channel", {"channel": "email"}).status_code == 302
    db.session.refresh(member)
    assert route(member).channel == "email"
    assert route(member).reason == "member_preference"
    client.post_form("/me/accounts/channel", {"channel": "both"})
    db.session.refresh(member)
    notification, _new = create_notification(tenants["own"], member, title="t", body="b")
    db.session.commit()
    assert sorted(d.channel for d in notification.deliveries) == ["email", "slack"]
    assert "member.channel_changed" in _actions(tenants["own"].id)
    # The organization can switch the choice off: the default routing applies again.
    tenants["own"].allow_channel_choice = False
    db.session.commit()
    assert route(member).channel == "slack"
    assert client.post_form("/me/accounts/channel", {"channel": "email"}).status_code == 403


def test_link_notice_goes_to_chat_and_email_with_confirm_link(tenants: Any) -> None:
    integration, accounts = slack(tenants["own"])
    member = tenants["member"]
    linking.link_account(
        integration, member, accounts[0], actor=tenants["admin"], method=LinkMethod.SUGGESTION
    )
    notice = db.session.scalar(select(Notification).where(Notification.recipient_id == member.id))
    assert notice is not None
    assert accounts[0].name in notice.title
    assert sorted(d.channel for d in notice.deliveries) == ["email", "slack"]
    assert notice.url and "/me/links/confirm/" in notice.url  # auto match: asks to confirm


def test_unlink_notice_by_email(tenants: Any) -> None:
    integration, accounts = slack(tenants["own"])
    member = tenants["member"]
    link(integration, member, accounts[0], LinkMethod.MANUAL)
    assert linking.unlink_account(integration, member, actor=tenants["admin"])
    notice = db.session.scalars(
        select(Notification).where(Notification.recipient_id == member.id)
    ).one()
    assert "unlinked" in notice.title or "解除" in notice.title
    assert [d.channel for d in notice.deliveries] == ["email"]


def test_bulk_auto_link_notifies_each_member_after_commit(tenants: Any, make_user: Any) -> None:
    integration, _accounts = slack(tenants["own"], accounts=3)
    for n in (1, 2):
        make_user(tenants["own"], email=f"person{n}@demo.example")
    assert linking.apply_email_matches(integration, actor=tenants["admin"]) == 2
    notices_sent = db.session.scalars(select(Notification)).all()
    assert len(notices_sent) == 2
    assert all(n.url and "/me/links/confirm/" in n.url for n in notices_sent)


def test_sensitive_held_until_confirmed_then_released(client: Any, tenants: Any) -> None:
    integration, accounts = slack(tenants["own"])
    member = tenants["member"]
    row = link(integration, member, accounts[0], LinkMethod.EMAIL)
    held, _new = create_notification(
        tenants["own"], member, title="給与明細", body="…", sensitive=True
    )
    plain, _new = create_notification(tenants["own"], member, title="お知らせ", body="…")
    db.session.commit()
    assert held.deliveries[0].state is DeliveryState.SKIPPED
    assert held.deliveries[0].reason == "held_unconfirmed"
    assert plain.deliveries[0].state is DeliveryState.PENDING
    token = notices.confirm_token(row)
    client.login(member)
    page = client.get(f"/me/links/confirm/{token}")
    assert page.status_code == 200 and accounts[0].name in page.text
    assert client.post_form(f"/me/links/confirm/{token}").status_code == 302
    db.session.refresh(row)
    delivery = db.session.get(Delivery, held.deliveries[0].id)
    assert row.confirmed_at is not None
    assert delivery is not None and delivery.state is DeliveryState.PENDING
    assert delivery.reason == "released_confirmed"
    assert "link.confirmed" in _actions(tenants["own"].id)
    # Confirmed: new sensitive content is no longer held.
    later, _new = create_notification(tenants["own"], member, title="x", body="y", sensitive=True)
    assert later.deliveries[0].state is DeliveryState.PENDING


def test_hold_is_configurable(client: Any, tenants: Any) -> None:
    integration, accounts = slack(tenants["own"])
    link(integration, tenants["member"], accounts[0], LinkMethod.EMAIL)
    client.login(tenants["admin"])
    page = client.get("/settings/notification-policy")
    assert page.status_code == 200
    client.post_form("/settings/notification-policy", {"allow_choice": "on"})
    db.session.refresh(tenants["own"])
    assert tenants["own"].hold_sensitive_until_confirmed is False
    notification, _new = create_notification(
        tenants["own"], tenants["member"], title="x", body="y", sensitive=True
    )
    assert notification.deliveries[0].state is DeliveryState.PENDING
    assert "organization.policy_changed" in _actions(tenants["own"].id)


def test_confirm_token_of_someone_else_or_relinked_is_refused(
    app: Any, client: Any, tenants: Any
) -> None:
    integration, accounts = slack(tenants["own"])
    row = link(integration, tenants["member"], accounts[0], LinkMethod.EMAIL)
    token = notices.confirm_token(row)
    admin = app.test_client()
    admin.login(tenants["admin"])
    assert admin.get(f"/me/links/confirm/{token}").status_code == 404
    client.login(tenants["member"])
    assert client.get("/me/links/confirm/forged.token").status_code == 400
    db.session.delete(row)
    db.session.commit()
    link(integration, tenants["member"], accounts[1], LinkMethod.EMAIL)
    assert client.get(f"/me/links/confirm/{token}").status_code == 400


def test_not_me_unlinks_audits_and_mails_admins(
    client: Any, tenants: Any, sent_mail: list[Any]
) -> None:
    integration, accounts = slack(tenants["own"])
    member = tenants["member"]
    row = link(integration, member, accounts[0], LinkMethod.EMAIL)
    held, _new = create_notification(tenants["own"], member, title="秘", body="…", sensitive=True)
    db.session.commit()
    client.login(member)
    assert client.post_form(f"/me/accounts/{row.id}/not-me").status_code == 302
    assert db.session.scalar(select(AccountLink).where(AccountLink.user_id == member.id)) is None
    actions = _actions(tenants["own"].id)
    assert "link.disowned" in actions and "link.removed" in actions
    to = [str(m["To"]) for m in sent_mail]
    assert any("admin@demo.example" in t for t in to)
    # The held sensitive notification now goes by e-mail instead of waiting forever.
    delivery = db.session.get(Delivery, held.deliveries[0].id)
    assert delivery is not None
    assert delivery.channel == "email" and delivery.state is DeliveryState.PENDING
    # Another member's link cannot be disowned.
    db.session.expunge(row)
    other = link(integration, tenants["admin"], accounts[1], LinkMethod.MANUAL)
    assert client.post_form(f"/me/accounts/{other.id}/not-me").status_code == 404


def test_notice_text_names_provider_and_account(tenants: Any) -> None:
    integration, accounts = slack(tenants["own"])
    linking.link_account(integration, tenants["member"], accounts[2], actor=tenants["admin"])
    notice = db.session.scalars(select(Notification)).one()
    assert re.search("Slack", notice.title)
    assert "/me/accounts" in notice.body
