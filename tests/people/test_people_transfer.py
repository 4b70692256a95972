"""CSV export and import of links: formats, validation by line, preview, one transaction."""

from __future__ import annotations

import gc
import io
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.integrations import transfer
from portal.integrations.models import AccountLink, LinkMethod
from tests.people.people_helpers import link, slack

URL = "/settings/integrations/slack/links"


def _upload(client: Any, data: bytes) -> Any:
    return client.post(
        f"{URL}/import",
        data={"csrf_token": client.csrf_token(), "file": (io.BytesIO(data), "links.csv")},
        content_type="multipart/form-data",
    )


def _links() -> int:
    return db.session.scalar(select(func.count()).select_from(AccountLink)) or 0


def test_export_has_bom_and_is_formula_safe(client: Any, tenants: Any, make_user: Any) -> None:
    integration, accounts = slack(tenants["own"])
    accounts[0].name = '=HYPERLINK("http://evil")'
    evil = make_user(tenants["own"], email="evil@demo.example", name="+cmd|' /C calc'!A0")
    link(integration, evil, accounts[0], LinkMethod.MANUAL)
    client.login(tenants["admin"])
    response = client.get(f"{URL}.csv")
    assert response.status_code == 200
    assert response.data.startswith(b"\xef\xbb\xbf")
    text = response.data.decode("utf-8-sig")
    assert "'=HYPERLINK" in text and "'+cmd" in text
    assert "U00000001" in text
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "links.exported"))


def test_import_preview_then_apply_in_one_transaction(
    client: Any, tenants: Any, make_user: Any
) -> None:
    integration, accounts = slack(tenants["own"])
    member, admin = tenants["member"], tenants["admin"]
    third = make_user(tenants["own"], email="third@demo.example")
    link(integration, admin, accounts[0], LinkMethod.MANUAL)
    link(integration, third, accounts[2], LinkMethod.MANUAL)
    csv_text = (
        "email,account_id\r\n"
        f"{member.email},U00000001\r\n"  # takes admin's account (admin changes too)
        f"{admin.email},U00000002\r\n"
        f"{third.email},\r\n"  # removed
    )
    client.login(admin)
    preview = _upload(client, csv_text.encode())
    assert preview.status_code == 200, preview.text
    assert 'id="transfer-added"' in preview.text
    assert 'id="transfer-changed"' in preview.text
    assert 'id="transfer-removed"' in preview.text
    assert _links() == 2  # nothing changed yet
    token = re.search(r'name="token" value="([^"]+)"', preview.text)
    assert token
    applied = client.post_form(f"{URL}/apply", {"token": token.group(1)})
    assert applied.status_code == 302
    rows = {r.user_id: r for r in db.session.scalars(select(AccountLink))}
    assert set(rows) == {member.id, admin.id}
    assert all(r.method is LinkMethod.CSV for r in rows.values())
    actions = db.session.scalars(select(AuditEvent.action)).all()
    assert "links.imported" in actions
    # The token is single use: the stored file is gone.
    again = client.post_form(f"{URL}/apply", {"token": token.group(1)})
    assert again.status_code == 302 and _links() == 2


def test_shift_jis_from_excel_is_decoded(client: Any, tenants: Any) -> None:
    integration, _accounts = slack(tenants["own"])
    data = f"メールアドレス,アカウントID,氏名\r\n{tenants['member'].email},U00000003,山田 花子\r\n"
    plan = transfer.plan_import(integration, data.encode("cp932"))
    assert plan.ok, plan.errors
    assert plan.encoding == "Shift_JIS" and len(plan.added) == 1


# Werkzeug's test client spools the 50 MB request body to a temporary file it never closes.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_bad_files_get_line_errors_and_change_nothing(client: Any, tenants: Any) -> None:
    integration, _accounts = slack(tenants["own"])
    email = tenants["member"].email
    cases = {
        b"name,id\r\nx,y\r\n": "email",
        b"email,account_id\r\nnobody@x.example,U00000001\r\n": "nobody@x.example",
        f"email,account_id\r\n{email},UNKNOWN\r\n".encode(): "UNKNOWN",
        f"email,account_id\r\n{email},U00000001\r\n{email},U00000002\r\n".encode(): "line 2",
        b"email,account_id\r\n\xff\xfe\xfa,U1\r\n": "UTF-8",
    }
    for data, needle in cases.items():
        plan = transfer.plan_import(integration, data)
        assert not plan.ok
        messages = " ".join(f"{e.line}: {e.message}" for e in plan.errors)
        assert needle.replace("line ", "") in messages, messages
    duplicate = transfer.plan_import(
        integration, f"email,account_id\r\n{email},U00000001\r\n{email},U00000002\r\n".encode()
    )
    assert duplicate.errors[0].line == 3
    client.login(tenants["admin"])
    big = b"email,account_id\r\n" + b"a" * (50 * 1024 * 1024)
    response = _upload(client, big)
    assert response.status_code == 422
    assert "50.0 MB" in response.text
    assert 'name="token"' not in response.text
    assert _links() == 0
    del response
    gc.collect()
