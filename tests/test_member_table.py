"""The member list's rows are built from values worked out once per page (the action URLs with
a placeholder id, the labels translated once): every row must still say exactly what building
it alone would — the same URLs, the same confirmation with the member's own name escaped, the
same role and tool names — in both languages, and for a search text holding the placeholder's
digits."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask, url_for
from flask_babel import force_locale, gettext

from portal.accounts.permissions import Role
from portal.integrations.models import LinkMethod
from portal.templating import ROLE_LABELS, ROW_ID, url_for_each
from tests.people.people_helpers import link, slack

HOSTILE = "<script>alert('x')</script> \"&amp; 田中"


class Rows(HTMLParser):
    """Each member row's cells, forms' actions and confirmations, by row id."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, Any]] = {}
        self._row: dict[str, Any] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "tr" and values.get("id", "").startswith("member-"):
            self._row = self.rows[values["id"]] = {"cells": [], "actions": [], "confirm": None}
        elif self._row is not None and tag == "td":
            self._cell = []
        elif self._row is not None and tag == "form":
            self._row["actions"].append(values["action"])
            self._row["confirm"] = values.get("hx-confirm", self._row["confirm"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row["cells"].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _rows(client: Any, path: str) -> dict[str, dict[str, Any]]:
    answer = client.get(path)
    assert answer.status_code == 200
    parser = Rows()
    parser.feed(answer.get_data(as_text=True))
    return parser.rows


@pytest.mark.parametrize("locale", ["ja", "en"])
@pytest.mark.parametrize("query", ["", "example", str(ROW_ID)[:9], str(ROW_ID)])
def test_every_row_says_what_building_it_alone_would(
    app: Flask, client: Any, tenants: dict[str, Any], make_user: Any, locale: str, query: str
) -> None:
    own = tenants["own"]
    # The e-mail holds the placeholder's digits, so a search for them puts them in the URL.
    hostile = make_user(own, Role.MEMBER, f"m{ROW_ID}@demo.example", name=HOSTILE)
    integration, accounts = slack(own, accounts=1)
    link(integration, hostile, accounts[0], LinkMethod.MANUAL)
    client.login(tenants["admin"])
    client.post_form("/language", {"locale": locale, "next": "/settings/members"})
    rows = _rows(client, f"/settings/members?q={query}")
    members = [tenants["admin"], tenants["member"], hostile]
    expected = [user for user in members if query in user.email or query in user.name]
    assert expected and sorted(rows) == sorted(f"member-{user.id}" for user in expected)
    with app.test_request_context(), force_locale(locale):
        for user in expected:
            row = rows[f"member-{user.id}"]
            role = str(ROLE_LABELS[user.role.value])
            tools = "Slack" if user is hostile else gettext("Not linked (e-mail only)")
            assert row["cells"][:4] == [user.name, user.email, role, tools]
            actions = [url_for("notifications.test_message", user_id=user.id)]
            if user is not tenants["admin"]:
                actions.append(url_for("accounts.deactivate", user_id=user.id, q=query))
                assert row["confirm"] == gettext(
                    "Deactivate %(name)s? They are signed out at once.", name=user.name
                )
            assert row["actions"] == actions


def test_a_url_for_each_row_is_url_for_with_that_id(app: Flask) -> None:
    with app.test_request_context():
        queries: list[dict[str, Any]] = [{}, {"q": "佐藤 & co"}, {"q": str(ROW_ID)}]
        for values in [*queries, {"q": f"x{ROW_ID}y{ROW_ID}"}]:
            each = url_for_each("accounts.deactivate", "user_id", **values)
            for row_id in (1, 42, 2**63 - 1, ROW_ID):
                assert each(row_id) == url_for("accounts.deactivate", user_id=row_id, **values)
        each = url_for_each("accounts.deactivate", "user_id")
        with pytest.raises(ValueError, match="invalid literal for int"):
            each("1/../../admin")  # type: ignore[arg-type]
