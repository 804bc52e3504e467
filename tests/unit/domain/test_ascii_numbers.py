"""Issue 26 item 12: the one parser of numbers from paths, queries, headers and signatures reads ASCII
digits only; `str.isdigit` and `int` accept other scripts ("٣" is 3 to `int`, "²" passes `isdigit`
and then breaks `int`)."""

from __future__ import annotations

import pytest

from dreamrelay.domain.ids import ascii_int, is_ascii_token


@pytest.mark.parametrize(("text", "expected"), [("0", 0), ("3", 3), ("0042", 42), ("123456789", 123456789)])
def test_ascii_digits_are_numbers(text: str, expected: int) -> None:
    assert ascii_int(text) == expected


@pytest.mark.parametrize(
    "text", ["", "٣", "²", "①", "１", "3٣", "-1", "+1", " 1", "1 ", "1_000", "1.0", "0x10", "१", "\u0663"]
)
def test_anything_else_is_no_number(text: str) -> None:
    assert ascii_int(text) is None


def test_the_digit_count_is_bounded() -> None:
    assert ascii_int("9" * 9, max_digits=9) == 999_999_999
    assert ascii_int("1" + "0" * 9, max_digits=9) is None
    assert ascii_int("1" * 5000) is None  # never handed to int() (its own digit limit raises)


def test_tokens_are_printable_ascii() -> None:
    assert is_ascii_token("abc-DEF_123")
    assert not is_ascii_token("é")
    assert not is_ascii_token("a\x00b")
    assert not is_ascii_token("a" * 257)
