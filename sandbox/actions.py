"""Operations shared by the inspector's buttons and the JSON control API."""

from __future__ import annotations

from typing import Any

from sandbox.chatwork.clients import register_client
from sandbox.chatwork.models import ContactRequest
from sandbox.chatwork.seed import generate_contacts
from sandbox.ids import guid, number, short_id
from sandbox.microsoft import teams
from sandbox.microsoft.models import Tenant, TenantUser
from sandbox.microsoft.seed import generate_tenant
from sandbox.slack import events, interactivity
from sandbox.slack.models import SlackUser
from sandbox.slack.seed import generate_workspace
from sandbox.state import FaultRule, IssuedToken, SandboxState
from sandbox.zones import check_zone

PROVIDERS = ("slack", "chatwork", "microsoft")
MAX_GENERATED = 10_000


class NotFound(LookupError):
    """The named workspace, tenant, user, token or request does not exist."""


def add_fault(state: SandboxState, match: str, status: int = 500, count: int = 1) -> FaultRule:
    """Fail the next `count` requests matching `match` with `status`."""
    if not match or not 100 <= status <= 599 or count < 1:
        raise ValueError("match, a status between 100 and 599 and count >= 1 are required")
    rule = FaultRule(match=match, status=status, remaining=count)
    with state.lock:
        state.faults.append(rule)
    return rule


def find_token(
    state: SandboxState, value: str | None = None, token_id: int | None = None
) -> IssuedToken:
    """A token by full value or by id."""
    with state.lock:
        for token in state.tokens.values():
            if token.value == value or token.id == token_id:
                return token
    raise NotFound("token not found")


def revoke(
    state: SandboxState, value: str | None = None, token_id: int | None = None
) -> IssuedToken:
    """Revoke a token as if the user or admin revoked the app's access."""
    token = find_token(state, value, token_id)
    state.revoke_token(token)
    return token


def find_tenant_user(
    state: SandboxState, key: str, tenant_id: str | None = None
) -> tuple[Tenant, TenantUser]:
    """A Microsoft user by object id, 29: id, e-mail or UPN (optionally in one tenant)."""
    with state.lock:
        tenants = state.microsoft.tenants.values()
        for tenant in tenants:
            if tenant_id and tenant.tenant_id != tenant_id:
                continue
            user = tenant.find_user(key)
            if user is not None:
                return tenant, user
    raise NotFound(f"no Microsoft user {key!r}")


def deactivate_user(state: SandboxState, provider: str, key: str) -> dict[str, Any]:
    """Deactivate a user by id or e-mail: Slack deleted, Chatwork account gone, Entra disabled."""
    lowered = key.lower()
    with state.lock:
        if provider == "slack":
            for workspace in state.slack.workspaces.values():
                user = workspace.by_id.get(key) or workspace.by_email.get(lowered)
                if user is not None:
                    user.deleted = True
                    return {"provider": provider, "id": user.id, "team_id": workspace.team_id}
        elif provider == "chatwork":
            for account in state.chatwork.accounts.values():
                if str(account.account_id) == key or account.mail.lower() == lowered:
                    account.active = False
                    return {"provider": provider, "id": account.account_id}
        elif provider == "microsoft":
            tenant, member = find_tenant_user(state, key)
            member.account_enabled = False
            return {"provider": provider, "id": member.id, "tenant_id": tenant.tenant_id}
    raise NotFound(f"no {provider} user {key!r}")


def slack_person(
    state: SandboxState, team_id: str, action: str, email: str, name: str = "", tz: str = ""
) -> dict[str, Any]:
    """Someone joins the workspace (``join``), changes their profile (``change``: the time
    zone ``tz``, the ``name``) or is deactivated (``leave``); Slack sends the portal
    ``team_join`` / ``user_change``. Returns the user and the portal's answer."""
    zone = check_zone(tz) if tz else None
    with state.lock:
        workspace = state.slack.workspaces.get(team_id)
        if workspace is None:
            raise NotFound(f"no workspace {team_id!r}")
        user = workspace.by_email.get(email.lower())
        if action == "join":
            if user is None:
                handle = email.split("@")[0]
                user = SlackUser(
                    id=short_id("U", team_id, email.lower()),
                    team_id=team_id,
                    name=handle,
                    real_name=name or handle,
                    display_name="",
                    email=email.lower(),
                )
                workspace.users.append(user)
                workspace.reindex()
            user.deleted = False
            user.tz = zone or user.tz
            kind = "team_join"
        elif action == "change" and user is not None:
            user.tz = zone or user.tz
            user.real_name = name or user.real_name
            kind = "user_change"
        elif action == "leave" and user is not None:
            user.deleted = True
            kind = "user_change"
        else:
            raise NotFound(f"no user {email!r} to {action}")
        event = events.user_event(kind, user)
    return {"id": user.id, "portal": events.deliver(state, team_id, event)}


def slack_uninstall(state: SandboxState, team_id: str) -> list[int | None]:
    """The admin removes the app in Slack: tokens die, signed events go to the portal."""
    if team_id not in state.slack.workspaces:
        raise NotFound(f"no workspace {team_id!r}")
    return events.uninstall(state, team_id)


def slack_press(state: SandboxState, team_id: str, ts: str, action_id: str) -> dict[str, Any]:
    """The DM's recipient presses a button; the portal's status (it updates the DM itself)."""
    try:
        return {"portal": interactivity.press(state, team_id, ts, action_id)}
    except LookupError as error:
        raise NotFound(str(error)) from None


def teams_press(state: SandboxState, activity_id: str, verb: str) -> dict[str, Any]:
    """The member presses an ``Action.Execute`` of a card; the portal's status (the card it
    answers replaces the one shown)."""
    try:
        return {"portal": teams.press(state, activity_id, verb)}
    except LookupError as error:
        raise NotFound(str(error)) from None


def teams_add_bot(state: SandboxState, key: str, tenant_id: str | None = None) -> dict[str, Any]:
    """A member adds the bot in Teams; returns the portal's answers."""
    tenant, user = find_tenant_user(state, key, tenant_id)
    statuses = teams.add_bot(state, tenant, user)
    return {"conversation_id": user.conversation_id, "user_id": user.teams_id, "portal": statuses}


def teams_remove_bot(state: SandboxState, key: str, tenant_id: str | None = None) -> dict[str, Any]:
    """A member removes the bot in Teams."""
    tenant, user = find_tenant_user(state, key, tenant_id)
    return {
        "conversation_id": user.conversation_id,
        "portal": teams.remove_bot(state, tenant, user),
    }


def consent(state: SandboxState, tenant_id: str) -> None:
    """Record admin consent for a tenant without the browser page."""
    with state.lock:
        tenant = state.microsoft.tenant_for(tenant_id)
        if tenant is None:
            raise NotFound(f"no tenant {tenant_id!r}")
        tenant.consented = True


def accept_contact_request(
    state: SandboxState, request_id: int | None = None, account: str | None = None
) -> dict[str, Any]:
    """Accept a pending Chatwork contact request (by request id or the invitee's id/e-mail)."""
    with state.lock:
        data = state.chatwork
        for pending in list(data.requests.values()):
            invitee = data.accounts[pending.to_id]
            if pending.request_id == request_id or account in (
                str(invitee.account_id),
                invitee.mail,
            ):
                room = data.accept_request(pending.request_id)
                return {
                    "request_id": pending.request_id,
                    "room_id": room.room_id,
                    "account_id": invitee.account_id,
                }
    raise NotFound("no such pending contact request")


def teams_app(
    state: SandboxState,
    tenant_id: str,
    *,
    reupload: bool = False,
    remove: bool = False,
    block: list[str] | None = None,
    unblock: list[str] | None = None,
) -> dict[str, Any]:
    """Change a tenant's copy of the Teams app (catalog id, policies); see control.teams_app."""
    with state.lock:
        tenant = state.microsoft.tenant_for(tenant_id) if tenant_id else None
        tenant = tenant or next(iter(state.microsoft.tenants.values()))
        if reupload:
            tenant.app_catalog_id = guid("teams-app", tenant.tenant_id, state.next_id())
        if remove:
            tenant.app_catalog_id = ""
        for key in block or []:
            user = tenant.find_user(key)
            if user is None:
                raise NotFound(f"no such user: {key}")
            tenant.install_blocked.add(user.id)
        for key in unblock or []:
            user = tenant.find_user(key)
            if user is not None:
                tenant.install_blocked.discard(user.id)
        return {
            "tenant_id": tenant.tenant_id,
            "app_catalog_id": tenant.app_catalog_id,
            "blocked": sorted(tenant.install_blocked),
        }


def send_contact_request(
    state: SandboxState, sender: str, to: int | None = None, message: str = ""
) -> dict[str, Any]:
    """``sender`` (account id or e-mail) sends a contact request to account ``to`` (default:
    the first notification account), as a member does from Chatwork's contact search."""
    with state.lock:
        data = state.chatwork
        source = next(
            (a for a in data.accounts.values() if sender in (str(a.account_id), a.mail)), None
        )
        target = data.accounts.get(to) if to else None
        if target is None and to is None:
            target = next(
                (a for a in data.accounts.values() if a.label == "通知用アカウント"), None
            )
        if source is None or target is None:
            raise NotFound("no such Chatwork account")
        request_id = number("cw-request", source.account_id, target.account_id)
        data.requests[request_id] = ContactRequest(
            request_id, source.account_id, target.account_id, message or "よろしくお願いします。"
        )
        return {"request_id": request_id, "from": source.account_id, "to": target.account_id}


def create_chatwork_client(state: SandboxState, spec: dict[str, Any]) -> dict[str, Any]:
    """Register a Chatwork OAuth client (defaults: the values the portal asks admins to enter)."""
    with state.lock:
        client = register_client(
            state.chatwork,
            str(spec.get("name", "Wistant")),
            str(spec.get("client_type", "confidential")),
            list(
                spec.get("redirect_uris")
                or [
                    f"{state.settings.portal_url}/chatwork/oauth/callback",
                    f"{state.settings.portal_url}/me/accounts/chatwork/callback",
                ]
            ),
            list(
                spec.get("scopes")
                or [
                    "offline_access",
                    "users.profile.me:read",
                    "rooms.messages:write",
                    "contacts.all:read_write",
                ]
            ),
        )
    return {
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "redirect_uris": client.redirect_uris,
        "scopes": client.scopes,
    }


def _size(spec: dict[str, Any]) -> tuple[int, str, float, int]:
    count = int(spec.get("count", 100))
    if not 1 <= count <= MAX_GENERATED:
        raise ValueError(f"count must be between 1 and {MAX_GENERATED}")
    ratio = float(spec.get("match_ratio", 1.0))
    if not 0 <= ratio <= 1:
        raise ValueError("match_ratio must be between 0 and 1")
    return count, str(spec.get("domain", "bench.example")), ratio, int(spec.get("seed", 1))


def generate(state: SandboxState, provider: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Generate a benchmark directory of `count` users from demodata."""
    count, domain, ratio, seed = _size(spec)
    with state.lock:
        if provider == "slack":
            team_id = str(spec.get("team_id", "T0BENCH001"))
            workspace = generate_workspace(
                team_id, str(spec.get("name", "ベンチ株式会社")), count, domain, ratio, seed
            )
            state.slack.workspaces[team_id] = workspace
            return {"team_id": team_id, "users": len(workspace.users)}
        if provider == "microsoft":
            tenant_id = str(spec.get("tenant_id") or guid("tenant", domain))
            tenant = generate_tenant(
                tenant_id, str(spec.get("name", "ベンチ株式会社")), count, domain, ratio, seed
            )
            tenant.consented = bool(spec.get("consented", True))
            state.microsoft.tenants[tenant_id] = tenant
            return {"tenant_id": tenant_id, "users": len(tenant.users)}
        if provider == "chatwork":
            account_id = generate_contacts(state.chatwork, count, domain, ratio, seed)
            return {
                "account_id": account_id,
                "contacts": len(state.chatwork.contacts_of(account_id)),
            }
    raise NotFound(f"unknown provider {provider!r}")


def messages(
    state: SandboxState, provider: str | None = None, user: str | None = None
) -> list[dict[str, Any]]:
    """Messages received by sandbox users, oldest first; `user` is an id or e-mail."""
    found: list[dict[str, Any]] = []
    with state.lock:
        if provider in (None, "slack"):
            for ws in state.slack.workspaces.values():
                for m in ws.messages:
                    target = ws.by_id[m.user_id]
                    if user in (None, m.user_id, target.email):
                        found.append({"provider": "slack", "email": target.email, **m.public()})
        if provider in (None, "chatwork"):
            for room in state.chatwork.rooms.values():
                for cm in room.messages:
                    readers = [
                        state.chatwork.accounts[a] for a in room.members if a != cm.account_id
                    ]
                    for reader in readers or [state.chatwork.accounts[cm.account_id]]:
                        if user in (None, str(reader.account_id), reader.mail):
                            found.append(
                                {
                                    "provider": "chatwork",
                                    "to_account_id": reader.account_id,
                                    "email": reader.mail,
                                    **cm.public(),
                                }
                            )
        if provider in (None, "microsoft"):
            for activity in state.microsoft.activities:
                tenant = state.microsoft.tenants[activity.tenant_id]
                member = tenant.by_id[activity.user_id]
                if user in (
                    None,
                    member.id,
                    member.teams_id,
                    member.mail,
                    member.user_principal_name,
                ):
                    found.append(
                        {
                            "provider": "microsoft",
                            "email": member.mail or member.user_principal_name,
                            **activity.public(),
                        }
                    )
    return found
