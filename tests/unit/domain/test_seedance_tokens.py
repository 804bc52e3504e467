"""Seedance's token rule and what a task's hold and capture are priced on (pure)."""

from __future__ import annotations

from dreamrelay.domain.catalog import SEEDANCE_SIZES, seedance_most_tokens, seedance_tokens, token_charge
from dreamrelay.domain.states import settled


def test_tokens_follow_arks_formula() -> None:
    assert SEEDANCE_SIZES["720p"]["16:9"] == (1248, 704)
    assert seedance_tokens(1248, 704, 24, 5) == 102_960  # the reference's 720p 16:9 five-second clip
    assert seedance_tokens(864, 480, 16, 2) == 12_960


def test_the_hold_covers_every_ratio_and_the_charge_never_exceeds_it() -> None:
    most = seedance_most_tokens("720p", 5, 24)
    assert most == max(seedance_tokens(w, h, 24, 5) for w, h in SEEDANCE_SIZES["720p"].values())
    hold = token_charge(most, 7_700_000)
    for width, height in SEEDANCE_SIZES["720p"].values():
        charge = token_charge(seedance_tokens(width, height, 24, 5), 7_700_000)
        captured, released = settled(hold, charge)
        assert (captured, released) == (charge, hold - charge)


def test_token_charge_rounds_up_and_stays_non_negative() -> None:
    assert token_charge(0, 10) == 0
    assert token_charge(1, 10) == 1
    assert token_charge(1_000_000, 10) == 10
    assert token_charge(1_000_001, 10) == 11
    assert token_charge(-5, 10) == 0
