"""Standard Webhooks signing (issue 17 item 3): the spec's published test vector, verified by
the library; rotation sends both signatures and a receiver with either secret accepts; any
change to the body, id or timestamp is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from portal.webhooks import signing

# The example in the Standard Webhooks specification (spec/standard-webhooks.md).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MESSAGE_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = datetime.fromtimestamp(1614265330, tz=UTC)
BODY = '{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_specs_test_vector() -> None:
    headers = signing.headers([SECRET], MESSAGE_ID, TIMESTAMP, BODY)
    assert headers == {
        "webhook-id": MESSAGE_ID,
        "webhook-timestamp": "1614265330",
        "webhook-signature": SIGNATURE,
    }


def test_new_secrets_have_the_specs_form() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_") and len(secret) == len("whsec_") + 32
    assert secret != signing.new_secret()


def test_during_a_rotation_either_secret_verifies() -> None:
    new, old = signing.new_secret(), signing.new_secret()
    now = datetime.now(UTC)
    headers = signing.headers([new, old], "msg_1", now, BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        assert Webhook(secret).verify(BODY, headers) == {"test": 2432232314}
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(BODY, headers)
    with pytest.raises(ValueError, match="secret"):
        signing.headers([], "msg_1", now, BODY)


@given(
    body=st.text(max_size=200),
    field=st.sampled_from(["body", "webhook-id", "webhook-timestamp"]),
    change=st.text(min_size=1, max_size=5),
)
def test_no_change_to_a_signed_message_verifies(body: str, field: str, change: str) -> None:
    secret = signing.new_secret()
    headers = signing.headers([secret], "msg_2", datetime.now(UTC), body)
    if field == "body":
        body = body + change
    elif field == "webhook-id":
        headers = {**headers, "webhook-id": headers["webhook-id"] + change}
    else:
        headers = {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) - 1)}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers, json_parse=False)
