"""Seeded Entra tenants matching the portal's demo organizations.

The demo tenant has the 40 demo members (member05, 15 and 25 have no mailbox: `mail` is null
and only `userPrincipalName` carries their address), the admin, a service account without mail
and an external guest. Mailbox time zones follow ``sandbox.zones`` (Windows names: mostly
"Tokyo Standard Time").
"""

from __future__ import annotations

import random

import demodata
from demodata import Person
from sandbox.config import DEMO_TENANT_ID, SAMPLE_TENANT_ID
from sandbox.ids import guid
from sandbox.microsoft.models import MicrosoftData, Tenant, TenantUser, user_guid
from sandbox.zones import home_zone, windows_name

NO_MAILBOX = (5, 15, 25)
TITLES = ("メンバー", "リーダー", "マネージャー", None)


def build_microsoft() -> MicrosoftData:
    """The demo and sample tenants; nobody has consented yet."""
    demo = build_tenant(
        DEMO_TENANT_ID,
        "デモ株式会社",
        "demo.example",
        demodata.members(demodata.DEMO_MEMBER_COUNT, "demo.example"),
        no_mailbox=NO_MAILBOX,
    )
    demo.users += [
        _extra(demo, "svc-backup@demo.example", "バックアップ サービス", mail=None),
        TenantUser(
            id=user_guid(demo.tenant_id, "guest@partner.example"),
            tenant_id=demo.tenant_id,
            display_name="Partner Guest",
            given_name=None,
            surname=None,
            mail="guest@partner.example",
            user_principal_name="guest_partner.example#EXT#@democorp.onmicrosoft.com",
            user_type="Guest",
        ),
    ]
    demo.reindex()
    sample = build_tenant(
        SAMPLE_TENANT_ID,
        "サンプル商事",
        "sample.example",
        demodata.members(demodata.SAMPLE_MEMBER_COUNT, "sample.example"),
        no_mailbox=(),
    )
    return MicrosoftData(tenants={demo.tenant_id: demo, sample.tenant_id: sample})


def generate_tenant(
    tenant_id: str, name: str, count: int, domain: str, match_ratio: float, seed: int = 1
) -> Tenant:
    """A benchmark tenant: `match_ratio` of `count` members carry the portal e-mail."""
    people = demodata.members(count, domain)
    rng = random.Random(seed)
    misses = set(rng.sample(range(1, count + 1), count - round(count * match_ratio)))
    tenant = build_tenant(tenant_id, name, domain, people, no_mailbox=())
    for user, person in zip(tenant.users[1:], people, strict=True):
        if person.number in misses:
            user.mail = user.user_principal_name = f"u{person.number}@alt.{domain}"
    tenant.reindex()
    return tenant


def build_tenant(
    tenant_id: str, name: str, domain: str, people: list[Person], *, no_mailbox: tuple[int, ...]
) -> Tenant:
    """A tenant with its admin and one user per person."""
    tenant = Tenant(
        tenant_id=tenant_id,
        name=name,
        domain=domain,
        users=[],
        # The admin uploaded the app to the org catalog: its catalog id differs from the
        # manifest id.
        app_catalog_id=guid("teams-app", tenant_id, 1),
    )
    users = [_extra(tenant, f"admin@{domain}", "システム管理者", mail=f"admin@{domain}")]
    for person in people:
        users.append(
            TenantUser(
                id=user_guid(tenant_id, person.email),
                tenant_id=tenant_id,
                display_name=person.name,
                given_name=person.given,
                surname=person.family,
                mail=None if person.number in no_mailbox else person.email,
                user_principal_name=person.email,
                job_title=TITLES[person.number % len(TITLES)],
                time_zone=windows_name(home_zone(person.number)),
            )
        )
    tenant.users = users
    tenant.reindex()
    return tenant


def _extra(tenant: Tenant, upn: str, display: str, mail: str | None) -> TenantUser:
    return TenantUser(
        id=user_guid(tenant.tenant_id, upn),
        tenant_id=tenant.tenant_id,
        display_name=display,
        given_name=None,
        surname=None,
        mail=mail,
        user_principal_name=upn,
    )
