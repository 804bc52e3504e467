"""The range of every number a client sends (domain/ranges.py) and a key's model list (domain/keys.py)."""

from __future__ import annotations

import math

import pytest

from dreamrelay.domain.errors import Forbidden, InvalidRequest
from dreamrelay.domain.keys import Caller
from dreamrelay.domain.ranges import (
    MAX_CREDITS,
    MAX_TIMESTAMP,
    STORE_MAX_CREDITS,
    integer,
    timestamp,
    window,
)


@pytest.mark.parametrize(
    ("value", "low", "high"), [(0, 0, 10), (10, 0, 10), (-5, -5, 5), (MAX_CREDITS, 1, MAX_CREDITS)]
)
def test_an_integer_in_its_range_is_itself(value: int, low: int, high: int) -> None:
    assert integer("amount", value, low, high) == value


@pytest.mark.parametrize("value", [-1, 11, True, False, 1.0, "5", None, 10**30])
def test_anything_else_names_the_field_and_the_range(value: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        integer("amount", value, 0, 10)  # type: ignore[arg-type]
    assert caught.value.message == "amount must be an integer from 0 to 10"


@pytest.mark.parametrize("value", [0, 0.0, 1_700_000_000, 1_700_000_000.25, MAX_TIMESTAMP])
def test_unix_times_from_zero_to_the_year_9999(value: float) -> None:
    assert timestamp("since", value) == float(value)


@pytest.mark.parametrize(
    "value", [-1, -0.001, MAX_TIMESTAMP + 1, math.inf, -math.inf, math.nan, 10**400, True, "1"]
)
def test_other_times_are_refused(value: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        timestamp("since", value)  # type: ignore[arg-type]
    assert caught.value.message == "since must be a Unix time from 0 to 253402300799"


def test_a_window_checks_whichever_end_is_given() -> None:
    window(None, None)
    window(0, MAX_TIMESTAMP)
    with pytest.raises(InvalidRequest, match=r"^until "):
        window(5, -1)
    with pytest.raises(InvalidRequest, match=r"^since "):
        window(-1, None)


def test_the_store_bound_is_wider_than_any_single_amount_and_json_safe() -> None:
    assert MAX_CREDITS < STORE_MAX_CREDITS <= 2**53


def test_a_key_without_a_model_list_may_use_any_model() -> None:
    Caller(key_id=1, account_id=1).check_model("ray-2")


def test_a_key_with_a_model_list_may_use_only_those() -> None:
    caller = Caller(key_id=1, account_id=1, allowed_models=("ray-2", "uni-1"))
    caller.check_model("uni-1")
    with pytest.raises(Forbidden) as caught:
        caller.check_model("ray-3.2")
    assert caught.value.message == "this API key may not use model ray-3.2"
    with pytest.raises(Forbidden):
        Caller(key_id=1, account_id=1, allowed_models=()).check_model("ray-2")
