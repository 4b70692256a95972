"""Control API, benchmark data, SMTP catcher, inspector pages."""

from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage

import pytest
import requests

from sandbox.testing import ControlError, RunningSandbox


def test_smtp_catcher_decodes_japanese_multipart(sandbox: RunningSandbox) -> None:
    message = EmailMessage()
    message["From"] = "noreply@chat-connect.example"
    message["To"] = "member01@demo.example"
    message["Subject"] = "1on1のリマインド"
    message.set_content("明日は1on1です。")
    message.add_alternative("<p>明日は<b>1on1</b>です。</p>", subtype="html")
    with smtplib.SMTP("127.0.0.1", sandbox.smtp_port, timeout=10) as smtp:
        smtp.send_message(message)
    caught = sandbox.control("GET", "/_control/mail?to=member01@demo.example")
    assert caught[0]["subject"] == "1on1のリマインド"
    assert caught[0]["text"].strip() == "明日は1on1です。"
    assert "<b>1on1</b>" in caught[0]["html"]
    assert sandbox.control("GET", "/_control/mail/count") == {"received": 1}
    page = requests.get(sandbox.http_url + "/?tab=mail", timeout=10).text
    assert "1on1のリマインド" in page and "member01@demo.example" in page


def test_generated_directories_up_to_ten_thousand(sandbox: RunningSandbox) -> None:
    started = time.monotonic()
    slack = sandbox.control("POST", "/_control/data/slack", {"count": 10000, "match_ratio": 0.9})
    tenant = sandbox.control(
        "POST", "/_control/data/microsoft", {"count": 10000, "domain": "big.example"}
    )
    contacts = sandbox.control(
        "POST", "/_control/data/chatwork", {"count": 2000, "match_ratio": 0.5}
    )
    assert time.monotonic() - started < 20
    assert slack["users"] == 10003  # members + Slackbot, the app's bot and the admin
    assert tenant["users"] == 10001
    assert contacts["contacts"] == 1000
    ws = sandbox.state.slack.workspaces[slack["team_id"]]
    matching = sum(
        1 for u in ws.users if u.email and u.email.endswith("@bench.example") and u.name != "admin"
    )
    assert matching == 9000
    with pytest.raises(ControlError, match="400"):
        sandbox.control("POST", "/_control/data/slack", {"count": 10001})


def test_config_latency_and_unknown_setting(sandbox: RunningSandbox) -> None:
    sandbox.configure(latency_overrides={"microsoft:GET /botframework": 300})
    started = time.monotonic()
    requests.get(
        f"{sandbox.https_url}/microsoft/botframework/v1/.well-known/keys",
        verify=sandbox.ca_bundle,
        timeout=10,
    )
    assert time.monotonic() - started >= 0.3
    answer = requests.post(sandbox.http_url + "/_control/config", json={"nope": 1}, timeout=10)
    assert answer.status_code == 400 and "nope" in answer.json()["error"]


def test_fault_by_path_prefix_and_request_log(sandbox: RunningSandbox) -> None:
    sandbox.control(
        "POST", "/_control/faults/fail", {"match": "/microsoft/graph/", "status": 502, "count": 2}
    )
    url = f"{sandbox.https_url}/microsoft/graph/v1.0/users"
    statuses = [
        requests.get(url, verify=sandbox.ca_bundle, timeout=10).status_code for _ in range(3)
    ]
    assert statuses == [502, 502, 401]
    log = sandbox.control("GET", "/_control/requests")
    assert log["counts"]["microsoft:GET /graph/v1.0/users"] == 3
    assert all("?" not in r["path"] for r in log["recent"])


def test_inspector_actions_and_pages(sandbox: RunningSandbox) -> None:
    answer = requests.post(
        sandbox.http_url + "/inspector/deactivate-user",
        data={"provider": "slack", "user": "member02@demo.example"},
        timeout=10,
    )
    assert answer.status_code == 200  # followed the 303 back to the inspector
    users = sandbox.control("GET", "/_control/directory/slack")["T0DEMO0001"]["users"]
    assert next(u for u in users if u["profile"].get("email") == "member02@demo.example")["deleted"]
    for tab in ("slack", "chatwork", "microsoft", "mail", "tokens", "log", "faults"):
        page = requests.get(sandbox.http_url + f"/?tab={tab}", timeout=10)
        assert page.status_code == 200 and "インスペクター" in page.text
    registration = requests.get(
        sandbox.http_url
        + "/chatwork/www/service/packages/chatwork/subpackages/oauth/client_create.php",
        timeout=10,
    )
    assert "クライアント名" in registration.text and "リダイレクト先URI" in registration.text
