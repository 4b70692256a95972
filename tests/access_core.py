"""Access rules of the core routes: sign-in, home, members, audit, the member's own page."""

from __future__ import annotations

from tests.access import LOGIN, ORG_CHANGE, ORG_PAGE, Case, same

ROUTES: dict[str, list[Case]] = {
    "main.home": [Case("GET", "/", same(anonymous=302, member=302, admin=302, support=302))],
    "main.healthz": [
        Case("GET", "/healthz", same(anonymous=200, member=200, admin=200, support=200))
    ],
    "main.set_language": [
        Case(
            "POST",
            "/language",
            same(anonymous=302, member=302, admin=302, support=302),
            {"locale": "en"},
        )
    ],
    "main.organizations": [
        Case(
            "GET",
            "/support/organizations",
            same(anonymous=LOGIN, member=403, admin=403, support=200),
        )
    ],
    "auth.login": [Case("GET", "/login", same(anonymous=200, member=302, admin=302, support=302))],
    "auth.logout": [
        Case("POST", "/logout", same(anonymous=302, member=302, admin=302, support=302))
    ],
    "integrations.index": [Case("GET", "/settings/integrations{org}", ORG_PAGE)],
    "accounts.members": [Case("GET", "/settings/members{org}", ORG_PAGE)],
    "accounts.deactivate": [Case("POST", "/settings/members/{user}/deactivate{org}", ORG_CHANGE)],
    "audit.index": [
        Case("GET", "/audit{org}", ORG_PAGE),
        Case("GET", "/audit?format=csv{org_amp}", ORG_PAGE),
    ],
    "me.accounts": [
        Case("GET", "/me/accounts", same(anonymous=LOGIN, member=200, admin=200, support=403))
    ],
    # "Connect my account": members' own; support staff have no chat account to link.
    # Without a connected Slack the start goes back to /me/accounts, as does a bare callback.
    "me.connect": [
        Case(
            "POST",
            "/me/accounts/slack/connect",
            same(anonymous=LOGIN, member=302, admin=302, support=403),
        )
    ],
    "me.connect_callback": [
        Case(
            "GET",
            "/me/accounts/slack/callback",
            same(anonymous=LOGIN, member=302, admin=302, support=403),
        )
    ],
    "me.connect_resume": [  # nothing waiting: back to the page
        Case(
            "POST",
            "/me/accounts/chatwork/resume",
            same(anonymous=LOGIN, member=302, admin=302, support=403),
        )
    ],
    # An invitation is its invitee's: an unknown token is 404 for anyone signed in.
    "me.invitation": [
        Case(
            "GET",
            "/me/invitations/unknown-token",
            same(anonymous=LOGIN, member=404, admin=404, support=403),
        ),
        Case(
            "POST",
            "/me/invitations/unknown-token",
            same(anonymous=LOGIN, member=404, admin=404, support=403),
        ),
    ],
    # Two-step verification is each user's own, support staff included (they need it most).
    "auth.login_code": [  # without a correct password first: back to the sign-in page
        Case("GET", "/login/code", same(anonymous=302, member=302, admin=302, support=302))
    ],
    "me.security": [
        Case("GET", "/me/security", same(anonymous=LOGIN, member=200, admin=200, support=200))
    ],
    "me.security_start": [
        Case("POST", "/me/security/mfa", same(anonymous=LOGIN, member=200, admin=200, support=200))
    ],
    "me.security_confirm": [  # nothing being set up: back to the page
        Case(
            "POST",
            "/me/security/mfa/confirm",
            same(anonymous=LOGIN, member=302, admin=302, support=302),
            {"code": "000000"},
        )
    ],
    "me.security_disable": [  # not turned on: back to the page
        Case(
            "POST",
            "/me/security/mfa/disable",
            same(anonymous=LOGIN, member=302, admin=302, support=302),
            {"code": "000000"},
        )
    ],
}
