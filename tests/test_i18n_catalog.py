"""The Japanese catalog says one thing per message (issue 13).

Completeness (``scripts/i18n.py check``) only proves every entry has *a* translation: a swapped
pair or a column header reused as a filter option passes it. Two different messages sharing one
Japanese text is how such mistakes show, so it is refused unless the pair is listed below.
"""

from __future__ import annotations

import re
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po
from flask import Flask

from scripts.i18n import TRANSLATIONS, texts

#: A message is its context and msgid (``pgettext`` gives one English word two entries).
Key = tuple[str | None, str]

#: Pairs that really mean the same thing in Japanese. Keep it small: a new pair needs a reason.
SAME_MEANING: dict[frozenset[Key], str] = {
    frozenset({(None, "Actor"), (None, "By")}): (
        "who did it: the audit log's column and the link history's column"
    ),
    frozenset({(None, "After"), (None, "after")}): (
        "the value after a change: a CSV preview column and an inline label in the audit log"
    ),
    frozenset({(None, "Before"), (None, "before")}): (
        "the value before a change: a CSV preview column and an inline label in the audit log"
    ),
    frozenset({(None, "Member"), (None, "Members")}): "Japanese has no plural: メンバー",
}

PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%%")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    with open(Path(TRANSLATIONS) / "ja" / "LC_MESSAGES" / "messages.po", "rb") as handle:
        return read_po(handle)


def _key(message: Message) -> Key:
    return (message.context, texts(message.id)[0])


def _translated(catalog: Catalog) -> list[Message]:
    """Entries with a translation; untranslated ones are the completeness check's business."""
    return [m for m in catalog if m.id and any(texts(m.string))]


def _sharing(catalog: Catalog) -> list[tuple[str, frozenset[Key]]]:
    """Every pair of different messages translated by one Japanese text, with that text."""
    by_text: dict[str, list[Key]] = defaultdict(list)
    for message in _translated(catalog):
        for text in dict.fromkeys(texts(message.string)):
            by_text[text].append(_key(message))
    return [
        (text, frozenset(pair)) for text, keys in by_text.items() for pair in combinations(keys, 2)
    ]


def test_two_messages_never_share_a_japanese_text(catalog: Catalog) -> None:
    shared = [
        (text, sorted(pair, key=str))
        for text, pair in _sharing(catalog)
        if pair not in SAME_MEANING
    ]
    assert shared == [], (
        "different messages with one Japanese text: give one a better translation, split the "
        "msgid (pgettext) if one English word means two things, or list the pair in "
        "SAME_MEANING with the reason they mean the same"
    )


def test_every_allowed_pair_still_shares_its_text(catalog: Catalog) -> None:
    # An allowed pair whose translations have since diverged is a stale excuse: drop it.
    sharing = {pair for _text, pair in _sharing(catalog)}
    assert [sorted(pair, key=str) for pair in SAME_MEANING if pair not in sharing] == []


def test_translations_keep_the_placeholders_of_their_msgid(catalog: Catalog) -> None:
    changed = [
        (_key(message), text)
        for message in _translated(catalog)
        for text in texts(message.string)
        if set(PLACEHOLDER.findall(text)) != set(PLACEHOLDER.findall(texts(message.id)[-1]))
    ]
    assert changed == []


def test_one_english_word_with_two_meanings_has_two_messages(catalog: Catalog) -> None:
    # The member filter's "Linked" read 「紐付け日時」, the link date column's header.
    assert catalog.get("Linked") is None, "a bare 'Linked' would serve both meanings again"


def test_member_filter_offers_linked_members_and_the_column_dates_the_link(
    app: Flask, client: Any, tenants: dict[str, Any]
) -> None:
    client.login(tenants["admin"])
    filters = client.get("/settings/integrations/slack/members").text
    assert re.search(r'<option value="linked"[^>]*>紐付け済み</option>', filters)
    with app.test_request_context("/", headers={"Accept-Language": "ja"}):
        column = app.jinja_env.from_string(
            "{{ pgettext('column: when the account was linked', 'Linked') }}"
        )
        assert column.render() == "紐付け日時"


def test_support_console_search_box_asks_for_a_member(client: Any, tenants: dict[str, Any]) -> None:
    # Its label and the "member said a chat account is not theirs" event were swapped.
    client.login(tenants["support"])
    page = client.get("/support").text
    assert '<label for="support-q">メンバーのメールアドレスまたは名前</label>' in page
