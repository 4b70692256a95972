"""CSV export and import of member ↔ chat account links, per integration.

Export: UTF-8 with a BOM (Excel opens it correctly), one row per member, cells that a
spreadsheet would run as a formula prefixed with ``'``.

Import: the file is decoded (UTF-8, or Shift_JIS/CP932 as Excel saves it in Japan), every line
is validated against the organization's members and the integration's directory, and a plan is
shown (added, changed, removed, errors by line). Nothing changes until the admin applies the
plan; a file with any error cannot be applied. Applying re-reads the same file, recomputes the
plan against the current links and writes it in one transaction, each change audited
(method "csv"). A row with an e-mail and an empty account id removes that member's link;
members not in the file keep their link.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import select

from ..accounts.models import Organization, User
from ..audit import service as audit
from ..extensions import db
from ..me import notices
from ..support import events  # noqa: F401  (registers the links.* audit actions)
from .link_audit import link_data, record_link_created, record_link_removed
from .models import AccountLink, ChatAccount, Integration, LinkMethod

#: Largest accepted upload; larger files are refused before parsing (MAX_CONTENT_LENGTH is 60 MB).
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
#: Column names accepted in the header (English as exported, and Japanese).
HEADERS = {
    "email": "email",
    "e-mail": "email",
    "メールアドレス": "email",
    "account_id": "account_id",
    "アカウントid": "account_id",
    "account_name": "account_name",
    "アカウント名": "account_name",
    "member_name": "member_name",
    "氏名": "member_name",
}
EXPORT_HEADER = ("email", "member_name", "account_id", "account_name", "method", "linked_at")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def export_lines(integration: Integration) -> Iterator[str]:
    """The export, line by line (streamed): every active member, linked or not."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> str:
        value = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return value

    writer.writerow(EXPORT_HEADER)
    yield "\ufeff" + flush()
    rows = db.session.execute(
        select(
            User.email,
            User.name,
            ChatAccount.external_id,
            ChatAccount.name,
            AccountLink.method,
            AccountLink.created_at,
        )
        .outerjoin(
            AccountLink,
            (AccountLink.user_id == User.id) & (AccountLink.integration_id == integration.id),
        )
        .outerjoin(ChatAccount, ChatAccount.id == AccountLink.chat_account_id)
        .where(User.organization_id == integration.organization_id)
        .order_by(User.email)
        .execution_options(yield_per=1000)
    )
    for n, (email, name, external_id, account_name, method, created_at) in enumerate(rows, 1):
        writer.writerow(
            [
                safe_cell(email),
                safe_cell(name),
                safe_cell(external_id),
                safe_cell(account_name),
                method.value if method else "",
                created_at.isoformat() if created_at else "",
            ]
        )
        if n % 500 == 0:
            yield flush()
    yield flush()


def record_export(integration: Integration, organization: Organization) -> None:
    """Exports carry personal data: who exported which provider's links is audited."""
    audit.record(
        "links.exported",
        organization=organization,
        target=("integration", integration.id, integration.provider),
        data={"provider": integration.provider},
    )
    db.session.commit()


@dataclass(frozen=True)
class LineError:
    line: int
    message: str


@dataclass(frozen=True)
class Change:
    line: int
    user_id: int
    member: str
    email: str
    before: str | None  # account "name (id)" before
    after: str | None  # account "name (id)" after
    account_id: int | None  # the new ChatAccount id; None = unlink


@dataclass
class ImportPlan:
    encoding: str = "UTF-8"
    rows: int = 0
    added: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)
    unchanged: int = 0
    errors: list[LineError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def changes(self) -> list[Change]:
        return [*self.added, *self.changed, *self.removed]


def fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _decode(data: bytes, plan: ImportPlan) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp932")
    except UnicodeDecodeError:
        for number, raw in enumerate(data.split(b"\n"), 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                try:
                    raw.decode("cp932")
                except UnicodeDecodeError:
                    plan.errors.append(
                        LineError(
                            number,
                            _(
                                "This line is neither UTF-8 nor Shift_JIS text. Save the file"
                                " as “CSV UTF-8” and upload it again."
                            ),
                        )
                    )
                    return None
        plan.errors.append(
            LineError(0, _("The file mixes UTF-8 and Shift_JIS text. Save it as “CSV UTF-8”."))
        )
        return None
    plan.encoding = "Shift_JIS"
    return text


def _label(account: ChatAccount | None) -> str | None:
    return f"{account.name} ({account.external_id})" if account else None


def plan_import(integration: Integration, data: bytes) -> ImportPlan:
    """Validate ``data`` line by line and work out what applying it would change."""
    plan = ImportPlan()
    if len(data) > MAX_BYTES:
        plan.errors.append(
            LineError(
                0,
                _(
                    "The file is %(size)s MB; at most %(max)s MB can be imported. Split it into"
                    " smaller files.",
                    size=round(len(data) / 1024 / 1024, 1),
                    max=MAX_BYTES // 1024 // 1024,
                ),
            )
        )
        return plan
    if b"\x00" in data[:4096]:
        plan.errors.append(LineError(0, _("This is not a CSV text file.")))
        return plan
    text = _decode(data, plan)
    if text is None:
        return plan
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        plan.errors.append(LineError(1, _("The file is empty.")))
        return plan
    columns = {HEADERS.get(h.strip().lower().lstrip("'")): i for i, h in enumerate(header)}
    columns.pop(None, None)
    missing = [c for c in ("email", "account_id") if c not in columns]
    if missing:
        plan.errors.append(
            LineError(
                1,
                _(
                    "Missing column(s): %(columns)s. The first line must name the columns"
                    " email and account_id (export a CSV to see the format).",
                    columns=", ".join(missing),
                ),
            )
        )
        return plan
    members = {
        u.email.strip().lower(): u
        for u in db.session.scalars(
            select(User).where(User.organization_id == integration.organization_id)
        )
    }
    accounts = {
        a.external_id: a
        for a in db.session.scalars(
            select(ChatAccount).where(ChatAccount.integration_id == integration.id)
        )
    }
    accounts_by_id = {a.id: a for a in accounts.values()}
    current = {
        link.user_id: link
        for link in db.session.scalars(
            select(AccountLink).where(AccountLink.integration_id == integration.id)
        )
    }
    final: dict[int, int | None] = {}  # user id → account id after the import
    seen_emails: dict[str, int] = {}
    seen_accounts: dict[int, int] = {}
    wanted: list[tuple[int, User, ChatAccount | None]] = []
    width = max(columns.values()) + 1
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            plan.rows += 1
            if plan.rows > MAX_ROWS:
                plan.errors.append(
                    LineError(line, _("More than %(max)s rows: split the file.", max=MAX_ROWS))
                )
                break
            if len(row) < width:
                plan.errors.append(LineError(line, _("Too few columns on this line.")))
                continue
            email = row[columns["email"]].strip().lower().lstrip("'")
            external_id = row[columns["account_id"]].strip().lstrip("'")
            user = members.get(email)
            if not email:
                plan.errors.append(LineError(line, _("The e-mail address is empty.")))
                continue
            if user is None:
                plan.errors.append(
                    LineError(
                        line,
                        _(
                            "No member of this organization has the e-mail address %(email)s.",
                            email=email,
                        ),
                    )
                )
                continue
            if email in seen_emails:
                plan.errors.append(
                    LineError(
                        line,
                        _(
                            "%(email)s already appears on line %(first)s.",
                            email=email,
                            first=seen_emails[email],
                        ),
                    )
                )
                continue
            seen_emails[email] = line
            account = None
            if external_id:
                account = accounts.get(external_id)
                if account is None:
                    plan.errors.append(
                        LineError(
                            line,
                            _(
                                "No account with the id %(id)s in this workspace"
                                " (re-sync the directory if it is new).",
                                id=external_id,
                            ),
                        )
                    )
                    continue
                if not account.is_active:
                    plan.errors.append(
                        LineError(
                            line,
                            _(
                                "The account %(id)s is deactivated in the chat tool.",
                                id=external_id,
                            ),
                        )
                    )
                    continue
                if account.id in seen_accounts:
                    plan.errors.append(
                        LineError(
                            line,
                            _(
                                "The account %(id)s is already used on line %(first)s.",
                                id=external_id,
                                first=seen_accounts[account.id],
                            ),
                        )
                    )
                    continue
                seen_accounts[account.id] = line
            final[user.id] = account.id if account else None
            wanted.append((line, user, account))
    except csv.Error as exc:
        plan.errors.append(
            LineError(reader.line_num, _("Unreadable CSV: %(error)s", error=str(exc)))
        )
    # An account may only end up with one member: members not in the file keep theirs.
    holders = {
        link.chat_account_id: user_id for user_id, link in current.items() if user_id not in final
    }
    for line, user, account in wanted:
        link = current.get(user.id)
        before = accounts_by_id.get(link.chat_account_id) if link else None
        if account is not None and account.id in holders:
            other = next((u for u in members.values() if u.id == holders[account.id]), None)
            plan.errors.append(
                LineError(
                    line,
                    _(
                        "The account %(id)s is linked to %(member)s, who is not in this file.",
                        id=account.external_id,
                        member=other.email if other else "?",
                    ),
                )
            )
            continue
        change = Change(
            line,
            user.id,
            user.name,
            user.email,
            _label(before),
            _label(account),
            account.id if account else None,
        )
        if account is None:
            if link is None:
                plan.unchanged += 1
            else:
                plan.removed.append(change)
        elif link is None:
            plan.added.append(change)
        elif link.chat_account_id == account.id:
            plan.unchanged += 1
        else:
            plan.changed.append(change)
    plan.errors.sort(key=lambda e: e.line)
    return plan


def apply_import(integration: Integration, data: bytes, *, actor: User) -> ImportPlan:
    """Recompute the plan from ``data`` and, when it has no error, write it in one transaction."""
    plan = plan_import(integration, data)
    if not plan.ok or not plan.changes:
        return plan
    organization = db.session.get(Organization, integration.organization_id)
    accounts = {
        a.id: a
        for a in db.session.scalars(
            select(ChatAccount).where(ChatAccount.integration_id == integration.id)
        )
    }
    changing = {c.user_id for c in plan.changed + plan.removed}
    old = (
        {
            link.user_id: link
            for link in db.session.scalars(
                select(AccountLink).where(
                    AccountLink.integration_id == integration.id, AccountLink.user_id.in_(changing)
                )
            )
        }
        if changing
        else {}
    )
    for link in old.values():
        db.session.delete(link)
    db.session.flush()
    for change in plan.changes:
        previous = old.get(change.user_id)
        before = (
            link_data(integration, accounts.get(previous.chat_account_id), previous.method)
            if previous is not None
            else None
        )
        if change.account_id is None:
            if previous is not None:
                record_link_removed(
                    integration,
                    organization,
                    actor=actor,
                    member=(change.user_id, change.member),
                    account=accounts.get(previous.chat_account_id),
                    method=previous.method,
                    data={"via": "csv", "line": change.line},
                )
            continue
        new = accounts[change.account_id]
        db.session.add(
            AccountLink(
                organization_id=integration.organization_id,
                integration_id=integration.id,
                user_id=change.user_id,
                chat_account_id=new.id,
                method=LinkMethod.CSV,
                linked_by_id=actor.id,
            )
        )
        record_link_created(
            integration,
            organization,
            actor=actor,
            member=(change.user_id, change.member),
            account=new,
            method=LinkMethod.CSV,
            before=before,
            data={"line": change.line},
        )
    audit.record(
        "links.imported",
        organization=organization,
        actor=actor,
        target=("integration", integration.id, integration.provider),
        data={
            "added": len(plan.added),
            "changed": len(plan.changed),
            "removed": len(plan.removed),
            "unchanged": plan.unchanged,
            "encoding": plan.encoding,
            "sha256": fingerprint(data),
        },
    )
    db.session.commit()
    notices.links_created(
        integration, [c.user_id for c in plan.added + plan.changed], committed=True
    )
    for change in plan.removed:
        user = db.session.get(User, change.user_id)
        previous = old.get(change.user_id)
        if user is not None:
            notices.link_removed(
                integration, user, accounts.get(previous.chat_account_id) if previous else None
            )
    return plan
