"""The id rule (domain/ids.py) and what a customer may read of a failure (domain/failures.py)."""

from __future__ import annotations

import pytest

from dreamrelay.domain.failures import UPSTREAM_FAILED, public_reason
from dreamrelay.domain.ids import ID_MAX_CHARS, has_control, is_id, shown


@pytest.mark.parametrize(
    "value",
    ["a", "0", "-", "_", "3f2c9a40-8a4e-4d55-9d8b-1f0a2b3c4d5e", "Zx_9-token", "a" * ID_MAX_CHARS],
)
def test_ids_are_1_to_64_url_safe_characters(value: str) -> None:
    assert is_id(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "a" * (ID_MAX_CHARS + 1),
        "a b",
        "a/b",
        "a.b",
        "a\x00",
        "é",
        "задача",
        "a\n",
        "%2F",
        7,
        None,
        b"abc",
    ],
)
def test_anything_else_is_no_id(value: object) -> None:
    assert not is_id(value)


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("abc", "abc"),
        ("a\x00b", "a?b"),
        ("line\nbreak", "line?break"),
        ("x" * 70, "x" * 64 + "…"),
        ("ok-" + "\x7f", "ok-?"),
    ],
)
def test_an_id_is_quoted_printable_and_short(value: str, quoted: str) -> None:
    assert shown(value) == quoted


@pytest.mark.parametrize(
    ("text", "control"),
    [
        ("/luma/generations/abc", False),
        ("/luma/generations/ab\x00c", True),
        ("tab\there", True),
        ("del\x7f", True),
        ("c1\x85", True),
        ("nbsp\xa0", False),
        ("中文", False),
    ],
)
def test_control_characters_anywhere(text: str, control: bool) -> None:
    assert has_control(text) is control


@pytest.mark.parametrize(
    "reason",
    [
        "deleted by the customer",
        "refunded by the operator",
        "upstream stopped answering for this task",
        "the submission to upstream was interrupted",
        "timed out: no result within 3600 s",
        "upstream's output link had expired before it could be copied",
        "upstream reported a failure without a reason",
    ],
)
def test_our_own_reasons_are_shown_as_they_are(reason: str) -> None:
    assert public_reason(reason) == reason


@pytest.mark.parametrize(
    ("reason", "public"),
    [
        (
            "no channel can take this task: luma-eu (10.0.0.5:8443) refused",
            "no upstream channel could take this task",
        ),
        ("upstream refused the request: prompt flagged by moderation", "the upstream refused this request"),
        (
            "upstream did not confirm the submission (timeout to api.example)",
            "the upstream did not confirm the submission",
        ),
    ],
)
def test_our_words_then_an_upstreams_show_only_ours(reason: str, public: str) -> None:
    assert public_reason(reason) == public


@pytest.mark.parametrize(
    "reason",
    ["", "Internal Server Error at 10.1.2.3:9000", "NSFW content", "timed out", "Deleted by the customer"],
)
def test_anything_else_is_the_generic_sentence(reason: str) -> None:
    assert public_reason(reason) == UPSTREAM_FAILED


def test_no_reason_stays_none() -> None:
    assert public_reason(None) is None
