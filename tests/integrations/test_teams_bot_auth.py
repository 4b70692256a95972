"""The Teams bot endpoint's authentication: reliability.md WH-11…WH-18 and WH-20's property.

As Sentry's msteams tests do: a throwaway RSA key, the OpenID metadata mocked with
``responses``, the JWKS served by a stand-in for PyJWKClient's fetch (it reads with urllib,
which ``responses`` does not see), and the clock moved with time-machine. Every rejection is a
401 or 400 with nothing stored (no InboundEvent row).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import responses
import time_machine
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.extensions import db
from portal.integrations.models import InboundEvent
from portal.integrations.providers.teams.botframework import reset_key_cache

APP_ID = "11111111-2222-4333-8444-555555555555"
OPENID = "https://login.botframework.test/v1/.well-known/openidconfiguration"
JWKS = "https://login.botframework.test/v1/.well-known/keys"
SERVICE_URL = "https://smba.trafficmanager.net/amer/"
ISSUER = "https://api.botframework.com"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(key: Any, kid: str, endorsements: list[str]) -> dict[str, Any]:
    data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**data, "kid": kid, "use": "sig", "endorsements": endorsements}


class KeyServer:
    """The JWKS endpoint: which keys it publishes and how often it was read."""

    def __init__(self) -> None:
        self.keys = [jwk(KEY, "k1", ["msteams", "emulator"]), jwk(OTHER_KEY, "k2", ["skype"])]
        self.fetches = 0


@pytest.fixture
def keys(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[KeyServer]:
    server = KeyServer()

    def fetch_data(self: jwt.PyJWKClient) -> Any:
        assert self.uri == JWKS
        server.fetches += 1
        data = {"keys": list(server.keys)}
        if self.jwk_set_cache is not None:
            self.jwk_set_cache.put(data)
        return data

    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", fetch_data)
    app.config.update(
        MS_APP_ID=APP_ID,
        BOTFRAMEWORK_OPENID_URL=OPENID,
        TEAMS_SERVICE_URL_HOSTS="smba.trafficmanager.net",
    )
    reset_key_cache()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(OPENID, json={"issuer": ISSUER, "jwks_uri": JWKS})
        yield server
    reset_key_cache()


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    values = {
        "iss": ISSUER,
        "aud": APP_ID,
        "serviceurl": SERVICE_URL,
        "nbf": now - 10,
        "exp": now + 300,
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def token(key: Any = KEY, kid: str = "k1", algorithm: str = "RS256", **changes: Any) -> str:
    return jwt.encode(claims(**changes), key, algorithm=algorithm, headers={"kid": kid})


def activity(**changes: Any) -> dict[str, Any]:
    value = {
        "type": "message",
        "id": "f:1",
        "channelId": "msteams",
        "serviceUrl": SERVICE_URL,
        "from": {"id": "29:abc", "aadObjectId": "0000"},
        "conversation": {"id": "a:1", "conversationType": "personal"},
        "recipient": {"id": f"28:{APP_ID}"},
        "channelData": {"tenant": {"id": "00000000-0000-0000-0000-000000000000"}},
    }
    value.update(changes)
    return value


def post(client: Any, bearer: str | None, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    data = body if isinstance(body, (bytes, str)) else json.dumps(body or activity())
    return client.post(
        "/teams/messages", data=data, headers=headers, content_type="application/json"
    )


def stored() -> int:
    return db.session.scalar(select(func.count()).select_from(InboundEvent)) or 0


def test_valid_token_is_accepted(client: Any, keys: KeyServer) -> None:
    assert post(client, token()).status_code == 200
    assert keys.fetches == 1
    assert post(client, token()).status_code == 200
    assert keys.fetches == 1  # cached


def test_wh11_no_authorization_header(client: Any, keys: KeyServer) -> None:
    assert post(client, None).status_code == 401
    response = client.post(
        "/teams/messages",
        data="{}",
        headers={"Authorization": "Basic abc"},
        content_type="application/json",
    )
    assert response.status_code == 401
    assert stored() == 0


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-jwt",
        "a.b.c",
        "",
        "e30.e30.",
        # alg "none"
        jwt.encode(claims(), None, algorithm="none", headers={"kid": "k1"}),
    ],
)
def test_wh12_undecodable_or_unsigned(client: Any, keys: KeyServer, bad: str) -> None:
    assert post(client, bad or " ").status_code == 401
    assert stored() == 0


def test_wh12_bad_signature(client: Any, keys: KeyServer) -> None:
    forged = token(key=OTHER_KEY, kid="k1")  # signed by another key under k1's id
    assert post(client, forged).status_code == 401


def test_wh12_hs256_signed_with_the_public_key(client: Any, keys: KeyServer) -> None:
    """Algorithm confusion: an HMAC over the published key must never verify."""
    public = json.dumps(keys.keys[0]).encode()
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","kid":"k1","typ":"JWT"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=")
    import hashlib
    import hmac

    signature = base64.urlsafe_b64encode(
        hmac.new(public, header + b"." + body, hashlib.sha256).digest()
    ).rstrip(b"=")
    assert post(client, (header + b"." + body + b"." + signature).decode()).status_code == 401


def test_wh13_wrong_issuer(client: Any, keys: KeyServer) -> None:
    assert post(client, token(iss="https://sts.windows.net/evil/")).status_code == 401
    assert post(client, token(iss=None)).status_code == 401


def test_wh14_another_bots_audience(client: Any, keys: KeyServer) -> None:
    other = "99999999-2222-4333-8444-555555555555"
    assert post(client, token(aud=other)).status_code == 401


def test_wh15_expired_beyond_skew_and_not_yet_valid(client: Any, keys: KeyServer) -> None:
    valid = token()
    with time_machine.travel(time.time() + 300 + 4 * 60, tick=False):  # inside the 5-min skew
        assert post(client, valid).status_code == 200
    with time_machine.travel(time.time() + 300 + 6 * 60, tick=False):  # 6 min past exp
        assert post(client, valid).status_code == 401
    future = int(time.time()) + 6 * 60
    assert post(client, token(nbf=future, exp=future + 300)).status_code == 401
    assert post(client, token(exp=None)).status_code == 401


def test_wh16_serviceurl_claim_differs(client: Any, keys: KeyServer) -> None:
    assert (
        post(client, token(serviceurl="https://smba.trafficmanager.net/emea/")).status_code == 401
    )
    assert post(client, token(serviceurl=None)).status_code == 401


def test_wh16_service_url_off_the_allow_list(client: Any, keys: KeyServer) -> None:
    evil = "https://evil.example/amer/"
    body = activity(serviceUrl=evil)
    assert post(client, token(serviceurl=evil), body).status_code == 401
    http = "http://smba.trafficmanager.net/amer/"
    assert post(client, token(serviceurl=http), activity(serviceUrl=http)).status_code == 401


def test_wh17_unknown_kid_one_refetch_then_401(client: Any, keys: KeyServer) -> None:
    assert post(client, token()).status_code == 200
    assert keys.fetches == 1
    assert post(client, token(kid="rotated")).status_code == 401
    assert keys.fetches == 2  # one refetch…
    assert post(client, token(kid="rotated-again")).status_code == 401
    assert keys.fetches == 2  # …and no more within the hour
    keys.keys = []
    reset_key_cache()
    assert post(client, token()).status_code == 401  # an empty key set: 401, never 500


def test_wh17_new_key_found_by_the_refetch(client: Any, keys: KeyServer) -> None:
    assert post(client, token()).status_code == 200
    keys.keys.append(jwk(OTHER_KEY, "k3", ["msteams"]))
    assert post(client, token(key=OTHER_KEY, kid="k3")).status_code == 200


def test_wh18_key_not_endorsed_for_msteams(client: Any, keys: KeyServer) -> None:
    assert post(client, token(key=OTHER_KEY, kid="k2")).status_code == 401
    assert post(client, token(), activity(channelId="skype")).status_code == 401
    # A channelId of the wrong type is a malformed activity, refused before the key is asked.
    assert post(client, token(), activity(channelId=None)).status_code == 400


@pytest.mark.parametrize("algorithm", ["RS384", "RS512"])
def test_other_rsa_algorithms_are_allowed(client: Any, keys: KeyServer, algorithm: str) -> None:
    assert post(client, token(algorithm=algorithm)).status_code == 200


def test_malformed_bodies_are_400_never_500(client: Any, keys: KeyServer) -> None:
    for body in (b"not json", b"[1,2]", b"\xff\xfe", b"null", b'"text"'):
        assert post(client, token(), body).status_code == 400
    assert stored() == 0


def _segments(value: str) -> list[bytes] | None:
    try:
        return [base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in value.split(".")]
    except (ValueError, TypeError):
        return None


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_wh20_any_mutation_of_a_valid_token_is_rejected(
    client: Any, keys: KeyServer, data: st.DataObject
) -> None:
    valid = token(exp=int(time.time()) + 3600)
    kind = data.draw(st.sampled_from(["replace", "delete", "insert", "truncate"]))
    index = data.draw(st.integers(0, len(valid) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    if kind == "replace":
        char = data.draw(st.sampled_from(alphabet).filter(lambda c: c != valid[index]))
        mutated = valid[:index] + char + valid[index + 1 :]
    elif kind == "delete":
        mutated = valid[:index] + valid[index + 1 :]
    elif kind == "insert":
        mutated = valid[:index] + data.draw(st.sampled_from(alphabet)) + valid[index:]
    else:
        mutated = valid[:index]
    # base64url's last character carries spare bits: a change there may decode to the very same
    # bytes, which is the same token, not a mutation.
    assume(_segments(mutated) != _segments(valid))
    response = post(client, mutated)
    assert response.status_code in (400, 401), response.status_code
    assert stored() == 0
