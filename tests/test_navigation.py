"""Finding one's way as the seed describes it: the header's 「システム」 menu and the gear at the
top right, the provider names on 外部ツールの連携, the Teams card's テナント, Chatwork's single
numbered sequence, and the links CSV's Content-Type."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from flask import Flask
from flask_babel import force_locale, gettext

from tests.access_teams import connected_teams
from tests.people.people_helpers import slack

# In the order the menu lists them.
SYSTEM_ENTRIES = [
    ("外部ツールの連携", "/settings/integrations"),
    ("APIキー", "/settings/api-keys"),
    ("Webhook", "/settings/webhooks"),
    ("通知のポリシー", "/settings/notification-policy"),
    ("通知カテゴリ", "/settings/notification-categories"),
    ("監査ログ", "/audit"),
    ("配信ログ", "/deliveries"),
]
VOID = {"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
NUMBERED = re.compile(r"(\d+)\. (.+)")


@dataclass
class Node:
    """An element of the rendered page: enough of a DOM to ask what the header holds."""

    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        parts = (c if isinstance(c, str) else c.text() for c in self.children)
        return " ".join("".join(parts).split())

    def all(self, tag: str | None = None) -> list[Node]:
        """Every descendant element (named ``tag``, if given), in document order."""
        found: list[Node] = []
        for child in self.children:
            if isinstance(child, Node):
                if tag is None or child.tag == tag:
                    found.append(child)
                found += child.all(tag)
        return found

    def by_id(self, element_id: str) -> Node | None:
        return next((n for n in self.all() if n.attrs.get("id") == element_id), None)

    def links(self) -> list[tuple[str, str]]:
        return [(a.text(), a.attrs.get("href", "")) for a in self.all("a")]


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack = [Node("#document", {})]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if any(node.tag == tag for node in self.stack[1:]):
            while self.stack.pop().tag != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(html)
    return builder.stack[0]


def _menus(client: Any, url: str) -> tuple[Node | None, Node | None, Node]:
    page = parse(client.get(url).text)
    return page.by_id("system-menu"), page.by_id("gear-menu"), page


def test_admin_header_has_the_system_menu_with_the_six_settings(
    client: Any, tenants: dict[str, Any]
) -> None:
    client.login(tenants["admin"])
    system, _, page = _menus(client, "/settings/members")
    assert system is not None and system.tag == "details"
    assert system in page.all("nav")[0].all("details")
    assert system.all("summary")[0].text() == "システム"
    assert system.links() == SYSTEM_ENTRIES
    # The settings live in the menu only; the top level keeps what is not a system setting.
    top_level = [a.text() for a in page.all("nav")[0].all("a") if a not in system.all("a")]
    assert "メンバー" in top_level and "外部ツールの連携" not in top_level


def test_the_gear_at_the_top_right_opens_the_same_menu(
    app: Flask, client: Any, tenants: dict[str, Any]
) -> None:
    client.login(tenants["admin"])
    system, gear, page = _menus(client, "/settings/members")
    assert gear is not None and gear.tag == "details" and system is not None
    userbox = next(n for n in page.all("div") if n.attrs.get("class") == "userbox")
    assert gear in userbox.all("details")
    summary = gear.all("summary")[0]
    assert summary.all("svg")[0].attrs["aria-hidden"] == "true"
    assert gear.links() == system.links() == SYSTEM_ENTRIES
    with app.test_request_context(), force_locale("ja"):
        japanese = gettext("System settings")
    assert summary.attrs["aria-label"] == japanese != ""
    client.post_form("/language", {"locale": "en", "next": "/settings/members"})
    _, gear_en, _ = _menus(client, "/settings/members")
    assert gear_en is not None
    assert gear_en.all("summary")[0].attrs["aria-label"] == "System settings"


def test_member_sees_neither_the_system_menu_nor_the_gear(
    client: Any, tenants: dict[str, Any]
) -> None:
    client.login(tenants["member"])
    system, gear, page = _menus(client, "/me/accounts")
    assert system is None and gear is None
    hrefs = {href for _, href in page.links()}
    assert not hrefs & {href for _, href in SYSTEM_ENTRIES}
    assert "/me/accounts" in hrefs  # the member's own page is still there


def test_support_sees_only_the_settings_support_may_open(
    client: Any, tenants: dict[str, Any]
) -> None:
    client.login(tenants["support"])
    system, gear, _ = _menus(client, "/deliveries?org=demo")
    assert system is not None and gear is not None
    assert (
        system.links()
        == gear.links()
        == [
            ("外部ツールの連携", "/settings/integrations?org=demo"),
            ("監査ログ", "/audit?org=demo"),
            ("配信ログ", "/deliveries?org=demo"),
        ]
    )
    for _, href in system.links():
        assert client.get(href).status_code == 200
    assert client.get("/settings/api-keys").status_code == 403


def test_provider_names_on_the_overview_open_their_pages(
    client: Any, tenants: dict[str, Any]
) -> None:
    client.login(tenants["admin"])
    page = parse(client.get("/settings/integrations").text)
    for key, name in (
        ("slack", "Slack"),
        ("chatwork", "Chatwork"),
        ("teams", "Microsoft Teams"),
    ):
        card = page.by_id(f"provider-{key}")
        assert card is not None
        assert card.all("h2")[0].links() == [(name, f"/settings/integrations/{key}")]
        assert client.get(f"/settings/integrations/{key}").status_code == 200


def test_teams_connection_card_says_tenant(client: Any, tenants: dict[str, Any]) -> None:
    connected_teams(tenants, "own")
    client.login(tenants["admin"])
    page = parse(client.get("/settings/integrations/teams").text)
    card = page.by_id("integrations-connection")
    assert card is not None
    labels = [dt.text() for dt in card.all("dt")]
    assert "テナント" in labels and "ワークスペース" not in labels


def test_slack_connection_card_still_says_workspace(client: Any, tenants: dict[str, Any]) -> None:
    slack(tenants["own"])
    client.login(tenants["admin"])
    card = parse(client.get("/settings/integrations/slack").text).by_id("integrations-connection")
    assert card is not None
    assert "ワークスペース" in [dt.text() for dt in card.all("dt")]


def test_chatwork_progress_list_and_numbered_cards_agree(
    client: Any, tenants: dict[str, Any]
) -> None:
    client.login(tenants["admin"])
    wizard = parse(client.get("/settings/integrations/chatwork").text).by_id("setup-wizard")
    assert wizard is not None
    progress = [li.text() for li in wizard.all("ol")[0].all("li")]
    cards = {}
    for heading in wizard.all("h2"):
        match = NUMBERED.fullmatch(heading.text())
        assert match, f"unnumbered card {heading.text()!r}"
        cards[int(match.group(1))] = match.group(2)
    assert sorted(cards) == [1, 2, 3]
    for number, title in cards.items():
        assert progress[number - 1] == title
    # The card with the form is the step the progress list marks as current.
    current = [li.text() for li in wizard.all("li") if li.attrs.get("aria-current") == "step"]
    assert current == [cards[3]]
    assert len(progress) == 5  # then 「許可する」 on Chatwork, and back to finish


def test_links_csv_content_type_names_the_charset_once(
    client: Any, tenants: dict[str, Any]
) -> None:
    slack(tenants["own"])
    client.login(tenants["admin"])
    response = client.get("/settings/integrations/slack/links.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
