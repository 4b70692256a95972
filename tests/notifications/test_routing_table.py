"""``routing.decide`` as a table (issue 16 item 3): category rule × member choice × may the
member choose × links (none, one, several, only broken ones) × tool order → the route.

``urgent`` is not an input of the route: it changes *when* (quiet hours, digests), never
*where*, so a category turned off stays off for urgent notifications too.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.notifications.routing import Choice, Reachable, Route, Rule, Situation, decide

SLACK = Reachable("slack", 1, 11)
TEAMS = Reachable("teams", 3, 33)
CHATWORK_UNCONFIRMED = Reachable("chatwork", 2, 22, unconfirmed=True)
ORDER = ("slack", "chatwork", "teams")

DEFAULT = Rule()  # chat on, e-mail off, nothing locked
BOTH = Rule(email_on=True)
EMAIL_ONLY = Rule(chat_on=False, email_on=True)
OFF = Rule(chat_on=False)
CHAT_LOCKED = Rule(chat_locked=True)
ALL_LOCKED_BOTH = Rule(email_on=True, chat_locked=True, email_locked=True)
OFF_LOCKED = Rule(chat_on=False, chat_locked=True, email_locked=True)

MEMBER_DEFAULT = Choice()
MEMBER_EMAIL = Choice(chat=False, email=True)
MEMBER_BOTH = Choice(chat=True, email=True)
MEMBER_OFF = Choice(chat=False, email=False)
MEMBER_CHAT = Choice(chat=True, email=False)

slack_dm = Route("slack", "linked", 1, 11)
slack_and_company_email = Route(
    "slack", "linked", 1, 11, also_email=True, also_email_reason="category_email"
)
slack_and_member_email = Route(
    "slack", "linked", 1, 11, also_email=True, also_email_reason="member_preference"
)
email_member = Route("email", "member_preference")
email_company = Route("email", "category_email")
email_not_linked = Route("email", "not_linked")
email_broken = Route("email", "integration_unavailable")
off_member = Route("email", "member_off", off=True)
off_company = Route("email", "category_off", off=True)

# (rule, choice, may_choose, reachable, linked elsewhere, order, expected)
TABLE = [
    # The company's defaults, no member choice.
    (DEFAULT, MEMBER_DEFAULT, True, (SLACK,), False, ORDER, slack_dm),
    (BOTH, MEMBER_DEFAULT, True, (SLACK,), False, ORDER, slack_and_company_email),
    (EMAIL_ONLY, MEMBER_DEFAULT, True, (SLACK,), False, ORDER, email_company),
    (OFF, MEMBER_DEFAULT, True, (SLACK,), False, ORDER, off_company),
    # Chat wanted but no chat account: e-mail, whatever e-mail's own setting (nothing lost).
    (DEFAULT, MEMBER_DEFAULT, True, (), False, ORDER, email_not_linked),
    (DEFAULT, MEMBER_CHAT, True, (), True, ORDER, email_broken),
    # The member's choices where nothing is locked.
    (DEFAULT, MEMBER_EMAIL, True, (SLACK,), False, ORDER, email_member),
    (DEFAULT, MEMBER_BOTH, True, (SLACK,), False, ORDER, slack_and_member_email),
    (DEFAULT, MEMBER_OFF, True, (SLACK,), False, ORDER, off_member),
    (EMAIL_ONLY, MEMBER_CHAT, True, (SLACK,), False, ORDER, slack_dm),
    (OFF, MEMBER_EMAIL, True, (), False, ORDER, email_member),
    # A lock keeps the company's value for that kind only.
    (CHAT_LOCKED, MEMBER_EMAIL, True, (SLACK,), False, ORDER, slack_and_member_email),
    (CHAT_LOCKED, MEMBER_OFF, True, (SLACK,), False, ORDER, slack_dm),
    (ALL_LOCKED_BOTH, MEMBER_OFF, True, (SLACK,), False, ORDER, slack_and_company_email),
    (OFF_LOCKED, MEMBER_BOTH, True, (SLACK,), False, ORDER, off_company),
    # The organization does not let members choose: their choice is ignored.
    (DEFAULT, MEMBER_OFF, False, (SLACK,), False, ORDER, slack_dm),
    (DEFAULT, MEMBER_EMAIL, False, (), False, ORDER, email_not_linked),
    # Several tools: the order decides (the member's preferred tool is put first upstream).
    (DEFAULT, MEMBER_DEFAULT, True, (TEAMS, SLACK), False, ORDER, slack_dm),
    (
        DEFAULT,
        MEMBER_DEFAULT,
        True,
        (TEAMS, SLACK),
        False,
        ("teams", "slack", "chatwork"),
        Route("teams", "linked", 3, 33),
    ),
    (
        DEFAULT,
        MEMBER_DEFAULT,
        True,
        (TEAMS, CHATWORK_UNCONFIRMED),
        False,
        ORDER,
        Route("chatwork", "linked", 2, 22, unconfirmed=True),
    ),
    # A tool missing from the order comes last, after every listed one.
    (
        DEFAULT,
        MEMBER_DEFAULT,
        True,
        (TEAMS, SLACK),
        False,
        ("teams",),
        Route("teams", "linked", 3, 33),
    ),
    (
        DEFAULT,
        MEMBER_DEFAULT,
        True,
        (TEAMS, SLACK),
        False,
        ("chatwork",),
        Route("teams", "linked", 3, 33),
    ),
]


@pytest.mark.parametrize(
    ("rule", "choice", "may_choose", "reachable", "elsewhere", "order", "expected"), TABLE
)
def test_route_table(
    rule: Rule,
    choice: Choice,
    may_choose: bool,
    reachable: tuple[Reachable, ...],
    elsewhere: bool,
    order: tuple[str, ...],
    expected: Route,
) -> None:
    situation = Situation(rule, choice, may_choose, reachable, elsewhere, order)
    assert decide(situation) == expected


maybe = st.one_of(st.none(), st.booleans())
reachables = st.lists(
    st.sampled_from([SLACK, TEAMS, CHATWORK_UNCONFIRMED]), unique=True, max_size=3
).map(tuple)


@given(
    rule=st.builds(Rule, st.booleans(), st.booleans(), st.booleans(), st.booleans()),
    choice=st.builds(Choice, maybe, maybe),
    may_choose=st.booleans(),
    reachable=reachables,
    elsewhere=st.booleans(),
    order=st.permutations(list(ORDER)).map(tuple),
)
def test_every_situation_routes_by_the_rules(
    rule: Rule,
    choice: Choice,
    may_choose: bool,
    reachable: tuple[Reachable, ...],
    elsewhere: bool,
    order: tuple[str, ...],
) -> None:
    route = decide(Situation(rule, choice, may_choose, reachable, elsewhere, order))
    free = may_choose and not rule.chat_locked and choice.chat is not None
    chat = choice.chat if free else rule.chat_on
    email_free = may_choose and not rule.email_locked and choice.email is not None
    email = choice.email if email_free else rule.email_on
    # Off exactly when both kinds are off; otherwise something always goes out.
    assert route.off == (not chat and not email)
    if chat and reachable:
        first = min(reachable, key=lambda r: order.index(r.provider))
        assert (route.channel, route.chat_account_id) == (first.provider, first.chat_account_id)
        assert route.also_email == bool(email)
    else:
        assert route.channel == "email" and route.chat_account_id is None
