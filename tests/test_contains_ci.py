"""``contains_ci`` — the member, link and audit searches — gives the rows a plain "contains,
ignoring case" gives, on whichever database runs the suite, whichever of its forms it picks
(SQLite's ``instr()`` for text without cased letters, LIKE with its wildcards escaped, or
``lower() LIKE lower()``): ``%``, ``_`` and ``\\`` are literal, kanji and digits match as
typed, and ASCII letters match in either case."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from portal.accounts.models import User
from portal.extensions import db
from portal.paging import contains_ci

#: Letters SQLite's LIKE folds (ASCII) and what a search over Japanese names and addresses
#: holds: the reference below is exact for them on both databases.
ALPHABET = "aAbBzZ09%_\\.@ -佐藤太郎ー"
NAMES = ["佐藤 太郎", "SATO taro", "sato_100%", "a\\b", "佐藤_太郎", "x%y", "ＡＢ", "0312-45"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(alphabet=ALPHABET, min_size=1, max_size=6) | st.sampled_from(NAMES))
def test_contains_ci_matches_a_plain_case_blind_contains(
    tenants: dict[str, Any], make_user: Any, text: str
) -> None:
    own = tenants["own"]
    if not db.session.scalar(select(User.id).where(User.name == NAMES[0])):
        for n, name in enumerate(NAMES):
            make_user(own, email=f"search{n}@demo.example", name=name)
    rows = db.session.scalars(
        select(User.name)
        .where(User.organization_id == own.id, User.email.like("search%"))
        .where(contains_ci(User.name, text))
    ).all()
    assert sorted(rows) == sorted(name for name in NAMES if text.lower() in name.lower())
