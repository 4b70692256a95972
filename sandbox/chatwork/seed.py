"""Seeded Chatwork accounts matching the portal's demo organizations.

デモ株式会社 has a dedicated notification account "Wistant通知用" (the seed's recommended set-up)
and the admin's personal account. The notification account's contacts are member01-36, with
names written the way people really type them (spaces half- or full-width, no space, romaji,
given name first); member37-38 have a pending contact request (no direct chat until accepted);
member39-40 are not contacts at all. An outside partner is a contact too.
"""

from __future__ import annotations

import random

import demodata
from demodata import Person
from sandbox.chatwork.models import ChatworkAccount, ChatworkData, ChatworkRoom, ContactRequest
from sandbox.ids import number

DEPARTMENTS = ("営業部", "開発部", "人事部", "経理部", "マーケティング部", "カスタマーサクセス部")


def display_name(person: Person) -> str:
    """The name a member typed into Chatwork: one of six common forms."""
    forms = (
        f"{person.family} {person.given}",
        f"{person.family}{person.given}",
        f"{person.family}\u3000{person.given}",
        person.roman_name,
        f"{person.given} {person.family}",
        f"{person.family_roman.upper()} {person.given_roman}",
    )
    return forms[person.number % len(forms)]


def build_chatwork() -> ChatworkData:
    """Accounts and contacts for the demo and sample organizations."""
    data = ChatworkData()
    demo = demodata.members(demodata.DEMO_MEMBER_COUNT, "demo.example")
    notify = add_organization(
        data,
        "デモ株式会社",
        "demo",
        demo,
        admin_name="デモ 管理者",
        contacts=range(1, 37),
        pending=(37, 38),
    )
    partner = _account(
        data, "partner", "外部 パートナー", "株式会社パートナー", "営業部", "partner"
    )
    data.add_contact(notify, partner.account_id, number("cw-room", notify, partner.account_id))
    sample = demodata.members(demodata.SAMPLE_MEMBER_COUNT, "sample.example")
    add_organization(
        data,
        "サンプル商事",
        "sample",
        sample,
        admin_name="サンプル 管理者",
        contacts=range(1, 6),
        pending=(),
    )
    return data


def generate_contacts(
    data: ChatworkData, count: int, domain: str, match_ratio: float, seed: int = 1
) -> int:
    """A benchmark organization: a notification account with `match_ratio` of `count` members
    as contacts. Returns the notification account's id."""
    people = demodata.members(count, domain)
    rng = random.Random(seed)
    chosen = rng.sample(range(1, count + 1), round(count * match_ratio))
    return add_organization(
        data,
        f"{domain} 株式会社",
        domain.split(".")[0],
        people,
        admin_name=f"{domain} 管理者",
        contacts=chosen,
        pending=(),
    )


def add_organization(
    data: ChatworkData,
    org_name: str,
    slug: str,
    people: list[Person],
    *,
    admin_name: str,
    contacts: range | list[int],
    pending: tuple[int, ...],
) -> int:
    """Create an organization's accounts; return the notification account's id."""
    domain = people[0].email.split("@")[1] if people else f"{slug}.example"
    notify = _account(
        data,
        f"{slug}-notify",
        "Wistant通知用",
        org_name,
        "人事部",
        slug,
        mail=f"wistant-notify@{domain}",
    )
    notify.can_login, notify.label = True, "通知用アカウント"
    admin = _account(
        data, f"{slug}-admin", admin_name, org_name, "人事部", slug, mail=f"admin@{domain}"
    )
    admin.can_login, admin.label = True, "個人アカウント(管理者本人)"
    members = {
        p.number: _account(
            data,
            p.email,
            display_name(p),
            org_name,
            DEPARTMENTS[p.number % len(DEPARTMENTS)],
            slug,
            mail=p.email,
        )
        for p in people
    }
    for n in contacts:
        member = members[n].account_id
        data.add_contact(notify.account_id, member, number("cw-room", notify.account_id, member))
    # The admin's personal account knows half of the members, as real colleagues do.
    for n in list(members)[: len(members) // 2]:
        member = members[n].account_id
        data.add_contact(admin.account_id, member, number("cw-room", admin.account_id, member))
    for n in pending:
        request_id = number("cw-request", notify.account_id, n)
        data.requests[request_id] = ContactRequest(
            request_id, notify.account_id, members[n].account_id
        )
    return notify.account_id


def _account(
    data: ChatworkData,
    key: str,
    name: str,
    org: str,
    department: str,
    slug: str,
    mail: str = "",
) -> ChatworkAccount:
    account_id = number("cw-account", key)
    account = ChatworkAccount(
        account_id=account_id,
        name=name,
        chatwork_id=f"{slug}_{account_id % 100000}",
        organization_id=number("cw-org", org, digits=6),
        organization_name=org,
        department=department,
        mail=mail or f"{key}@{slug}.example",
        my_room_id=number("cw-room", "my", account_id),
    )
    data.accounts[account_id] = account
    data.rooms[account.my_room_id] = ChatworkRoom(account.my_room_id, {account_id}, "my")
    return account
