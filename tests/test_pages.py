"""Pages: 外部ツールの連携, members (search, paging, HTMX partial), /me/accounts, /healthz,
security headers (PT-30…PT-34) and language selection."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import force_locale, gettext

from portal.accounts.permissions import Role
from portal.extensions import db
from portal.integrations.models import Integration, IntegrationState


def test_integrations_page_shows_a_card_per_provider(client: Any, tenants: dict[str, Any]) -> None:
    client.login(tenants["admin"])
    page = client.get("/settings/integrations").text
    assert "外部ツールの連携" in page
    for name in ("Slack", "Chatwork", "Microsoft Teams"):
        assert f">{name}</a></h2>" in page
    assert page.count("未連携") == 3


def test_integrations_page_shows_error_state(client: Any, tenants: dict[str, Any]) -> None:
    db.session.add(
        Integration(
            organization_id=tenants["own"].id,
            provider="slack",
            state=IntegrationState.NEEDS_RECONNECT,
        )
    )
    db.session.commit()
    client.login(tenants["admin"])
    page = client.get("/settings/integrations").text
    assert "エラー" in page and "再連携が必要" in page


def test_members_search_paging_and_partial(
    client: Any, tenants: dict[str, Any], make_user: Any
) -> None:
    for n in range(60):
        make_user(tenants["own"], Role.MEMBER, f"bulk{n:02d}@demo.example", f"山田 {n:02d}")
    make_user(tenants["other"], Role.MEMBER, "yamada@sample.example", "山田 よそ")
    client.login(tenants["admin"])
    first = client.get("/settings/members?q=山田")
    assert "メンバー 60 人" in first.text
    assert "山田 よそ" not in first.text
    assert "2 / 2 ページ" not in first.text and "1 / 2 ページ" in first.text
    partial = client.get("/settings/members?q=山田&page=2", headers={"HX-Request": "true"})
    assert partial.text.lstrip().startswith('<section id="members-table">')
    assert "<html" not in partial.text
    by_mail = client.get("/settings/members?q=bulk07@").text
    assert "山田 07" in by_mail and "山田 08" not in by_mail
    # Case is ignored (lower() LIKE on PostgreSQL, LIKE on SQLite), kanji match as typed.
    upper = client.get("/settings/members?q=BULK07@DEMO").text
    assert "山田 07" in upper and "山田 08" not in upper
    # LIKE wildcards are matched literally.
    assert "メンバー 0 人" in client.get("/settings/members?q=%25").text


def test_pt34_names_are_escaped(client: Any, tenants: dict[str, Any], make_user: Any) -> None:
    make_user(
        tenants["own"], Role.MEMBER, "xss@demo.example", '<img src=x onerror=alert(1) hx-get="/x">'
    )
    client.login(tenants["admin"])
    page = client.get("/settings/members").text
    assert "<img src=x" not in page and "&lt;img src=x" in page


def test_me_accounts_empty_state(client: Any, tenants: dict[str, Any]) -> None:
    client.login(tenants["member"])
    page = client.get("/me/accounts").text
    assert "まだチャットアカウントが紐付けられていません" in page


def test_healthz_reports_database_and_queue(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["queue"]["ok"] is True


def test_pt30_pt32_pt33_security_headers(client: Any, tenants: dict[str, Any]) -> None:
    client.login(tenants["admin"])
    response = client.get("/settings/integrations")
    csp = response.headers["Content-Security-Policy"]
    for directive in (
        "script-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "max-age=31536000" in response.headers["Strict-Transport-Security"]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Request-Id"]
    assert "<script>" not in response.text  # no inline script anywhere


def test_language_switch_and_accept_language(client: Any, tenants: dict[str, Any]) -> None:
    assert "ログイン" in client.get("/login").text
    assert "Sign in" in client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).text
    client.login(tenants["admin"])
    client.post_form("/language", {"locale": "en", "next": "/settings/integrations"})
    page = client.get("/settings/integrations", headers={"Accept-Language": "ja"}).text
    assert "External tool integration" in page and "Not connected" in page
    db.session.refresh(tenants["admin"])
    assert tenants["admin"].locale == "en"


def test_404_and_403_pages_are_pages(client: Any, tenants: dict[str, Any]) -> None:
    client.login(tenants["member"])
    assert client.get("/nope").status_code == 404
    forbidden = client.get("/settings/members")
    assert forbidden.status_code == 403 and "権限がありません" in forbidden.text
    partial = client.get("/settings/members", headers={"HX-Request": "true"})
    assert partial.status_code == 403 and "<html" not in partial.text


def test_support_without_organization_is_sent_to_the_chooser(
    client: Any, tenants: dict[str, Any]
) -> None:
    client.login(tenants["support"])
    response = client.get("/settings/members")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/support/organizations")
    chooser = client.get("/support/organizations?q=サンプル").text
    assert "サンプル商事" in chooser and "デモ株式会社" not in chooser


def test_translations_follow_force_locale_within_a_request(app: Flask) -> None:
    # The catalog is cached per request and locale (portal/i18n.py): an e-mail rendered in the
    # recipient's language must not leak into the page, nor the page's into the e-mail.
    with app.test_request_context("/", headers={"Accept-Language": "ja"}):
        page = app.jinja_env.from_string("{{ _('Members') }}")
        assert gettext("Members") == page.render() == "メンバー"
        with force_locale("en"):
            assert gettext("Members") == page.render() == "Members"
        assert gettext("Members") == page.render() == "メンバー"


def test_i18n_catalog_is_complete() -> None:
    from scripts.i18n import missing

    assert missing("ja") == []
