"""Standard Webhooks signatures (domain/signing.py): the spec's own example, rotation, secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from dreamrelay.domain.signing import SECRET_PREFIX, headers, new_secret, signature

# The example of the Standard Webhooks specification (standardwebhooks.com).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_specification_example() -> None:
    assert signature(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_a_receiver_checks_it_with_the_standard_library() -> None:
    secret = new_secret()
    body = b'{"id":"t1","state":"completed"}'
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, b"m1.1700000000." + body, hashlib.sha256).digest()).decode()
    assert signature(secret, "m1", 1700000000, body) == f"v1,{expected}"


@pytest.mark.parametrize(
    ("message_id", "timestamp", "body"),
    [
        ("msg_other", SPEC_TIMESTAMP, SPEC_BODY),
        (SPEC_ID, SPEC_TIMESTAMP + 1, SPEC_BODY),
        (SPEC_ID, SPEC_TIMESTAMP, b'{"test": 2432232315}'),
        (SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY + b" "),
    ],
)
def test_any_change_to_what_is_signed_changes_the_signature(
    message_id: str, timestamp: int, body: bytes
) -> None:
    assert signature(SPEC_SECRET, message_id, timestamp, body) != SPEC_SIGNATURE


def test_new_secrets_are_32_random_bytes_with_the_prefix() -> None:
    made = {new_secret() for _ in range(20)}
    assert len(made) == 20
    for secret in made:
        assert secret.startswith(SECRET_PREFIX)
        assert len(base64.b64decode(secret.removeprefix(SECRET_PREFIX))) == 32


def test_the_three_headers() -> None:
    assert headers([SPEC_SECRET], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": "1614265330",
        "webhook-signature": SPEC_SIGNATURE,
    }


def test_during_a_rotation_both_signatures_are_sent_space_separated() -> None:
    other = new_secret()
    sent = headers([other, SPEC_SECRET], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)["webhook-signature"]
    first, second = sent.split(" ")
    assert first == signature(other, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    assert second == SPEC_SIGNATURE
