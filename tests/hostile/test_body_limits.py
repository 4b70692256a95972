"""One size guard for every route, counting the bytes actually read (issue 12, class 5): a
chunked body without Content-Length stops at the limit just like a declared one. Over real
HTTP (Werkzeug's server de-chunks like gunicorn does), since the test client never chunks."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from portal.inbound import DEFAULT_BODY_LIMIT

MIB = 1024 * 1024


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def chunked_post(address: str, path: str, size: int, headers: dict[str, str]) -> tuple[int, Any]:
    """POST ``size`` bytes of a JSON array in 64 KiB chunks, with no Content-Length."""
    host, port = address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    piece = b"[" + b"1," * (32 * 1024 - 1) + b"1]"

    def chunks() -> Iterator[bytes]:
        sent = 0
        while sent < size:
            yield piece
            sent += len(piece)

    try:
        connection.request(
            "POST",
            path,
            body=chunks(),
            headers={"Content-Type": "application/json", **headers},
            encode_chunked=True,
        )
        response = connection.getresponse()
        body = response.read()
    except (BrokenPipeError, ConnectionResetError):
        # The server may close the connection once it has answered: that is the guard working,
        # but we want its answer, so this counts as a failure to read it.
        raise AssertionError("the server hung up without answering") from None
    finally:
        connection.close()
    return response.status, json.loads(body) if body.startswith(b"{") else body


def test_chunked_api_body_over_the_limit_is_413(served: str, api_key: str) -> None:
    status, body = chunked_post(
        served, "/api/v1/notifications", 2 * MIB, {"Authorization": f"Bearer {api_key}"}
    )
    assert status == 413 and body["error"] == "body_too_large", (status, body)


def test_chunked_slack_body_over_the_limit_is_413_as_json(served: str) -> None:
    status, body = chunked_post(served, "/slack/events", 2 * MIB, {})
    assert status == 413 and body["error"] == "http_413"


def test_chunked_teams_body_is_never_read_without_a_token(served: str) -> None:
    status, body = chunked_post(served, "/teams/messages", 2 * MIB, {})
    assert status == 401 and body["error"] == "unauthorized"


def test_chunked_form_post_over_the_default_limit_is_413(served: str) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _body = chunked_post(served, "/login", DEFAULT_BODY_LIMIT + MIB, form)
    assert status == 413


def test_declared_length_over_the_limit_is_413_before_reading(client: Any, api_key: str) -> None:
    response = client.post(
        "/api/v1/notifications",
        data=b"[" + b"1," * (40 * 1024) + b"1]",
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413 and response.get_json()["error"] == "body_too_large"


def test_small_chunked_body_is_read_normally(served: str, api_key: str, tenants: Any) -> None:
    host, port = served.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    payload = json.dumps(
        {"recipient_email": tenants["member"].email, "title": "チャンク", "body": "本文"}
    ).encode()
    connection.request(
        "POST",
        "/api/v1/notifications",
        body=iter([payload[:10], payload[10:]]),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"},
        encode_chunked=True,
    )
    response = connection.getresponse()
    assert response.status == 202, response.read()[:300]
    connection.close()
