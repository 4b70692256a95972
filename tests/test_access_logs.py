"""OA-14: no OAuth code, state, token or secret in any access-log line."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests

from portal.security import RedactSecrets, redact_query


def test_oa14_dev_server_access_log_redacts_the_callback(
    live_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="werkzeug")
    requests.get(
        f"{live_server}/slack/oauth/callback?code=SECRET-CODE-1&state=SECRET-STATE-2",
        allow_redirects=False,
        timeout=10,
    )
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("/slack/oauth/callback?code=[redacted]&state=[redacted]" in line for line in lines)
    assert "SECRET-CODE-1" not in caplog.text and "SECRET-STATE-2" not in caplog.text


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (  # gunicorn's access-log atoms: the bare query string and the request line
            {"q": "code=abc&state=def", "r": "GET /x?token=t1&page=2 HTTP/1.1", "s": 302},
            {
                "q": "code=[redacted]&state=[redacted]",
                "r": "GET /x?token=[redacted]&page=2 HTTP/1.1",
                "s": 302,
            },
        ),
        (
            ("GET /y?Client_Secret=s3&q=code HTTP/1.1", 200),
            ("GET /y?Client_Secret=[redacted]&q=code HTTP/1.1", 200),
        ),
    ],
)
def test_oa14_filter_covers_gunicorn_and_werkzeug_records(args: Any, expected: Any) -> None:
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%s", None, None)
    record.args = args
    assert RedactSecrets().filter(record) is True
    assert record.args == expected


def test_search_terms_that_merely_mention_a_name_are_kept() -> None:
    assert redact_query("/settings/members?q=state&page=3") == "/settings/members?q=state&page=3"
