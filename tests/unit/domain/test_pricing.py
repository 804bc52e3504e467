"""Price precedence: the most specific matching rule prices a task (domain/pricing.py)."""

from __future__ import annotations

import pytest

from dreamrelay.domain.pricing import Price, Priced, PriceRule, matches, most_specific, price_of, specificity

ANY = "*"
RAY2_720_5 = Priced(model="ray-2", resolution="720p", duration="5s", action="generate")


def rule(credits: int = 1, /, **fields: str) -> PriceRule:
    """A rule: the fields named exact, the others '*'."""
    return PriceRule(
        model=fields.get("model", ANY),
        resolution=fields.get("resolution", ANY),
        duration=fields.get("duration", ANY),
        action=fields.get("action", ANY),
        credits=credits,
    )


FULL = {"model": "ray-2", "resolution": "720p", "duration": "5s", "action": "generate"}


@pytest.mark.parametrize(
    ("fields", "score"),
    [
        ({}, 0),
        ({"duration": "5s"}, 1),
        ({"resolution": "720p"}, 2),
        ({"model": "ray-2"}, 4),
        ({"action": "upscale"}, 8),
        ({"model": "ray-2", "resolution": "720p", "duration": "5s"}, 7),
        (FULL, 15),
    ],
)
def test_specificity_ranks_action_model_resolution_duration(fields: dict[str, str], score: int) -> None:
    assert specificity(rule(**fields)) == score


def test_every_combination_of_exact_fields_has_its_own_specificity() -> None:
    fields = ("model", "resolution", "duration", "action")
    scores = {
        specificity(rule(**{name: "x" for i, name in enumerate(fields) if mask >> i & 1}))
        for mask in range(16)
    }
    assert scores == set(range(16))  # no two different matching rules can tie


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        (rule(), True),
        (rule(model="ray-2"), True),
        (rule(model="ray-flash-2"), False),
        (rule(resolution="1080p"), False),
        (rule(duration="9s"), False),
        (rule(action="upscale"), False),
        (rule(**FULL), True),
        (rule(**{**FULL, "duration": "9s"}), False),
    ],
)
def test_a_rule_matches_when_each_field_is_the_same_or_any(candidate: PriceRule, expected: bool) -> None:
    assert matches(candidate, RAY2_720_5) is expected


def test_no_rule_no_price() -> None:
    assert most_specific([]) is None
    assert price_of([rule(model="ray-flash-2")], RAY2_720_5) is None


@pytest.mark.parametrize(
    ("rules", "credits"),
    [
        ([rule(10)], 10),
        ([rule(10), rule(20, model="ray-2")], 20),
        ([rule(20, model="ray-2"), rule(30, action="generate")], 30),
        (
            [
                rule(40, model="ray-2", resolution="720p", duration="5s"),
                rule(30, action="generate"),
            ],
            30,
        ),
        ([rule(5, resolution="720p"), rule(6, duration="5s")], 5),
        (
            [
                rule(7, model="ray-2", duration="5s"),
                rule(8, model="ray-2", resolution="720p"),
            ],
            8,
        ),
        ([rule(99, **FULL), rule(1)], 99),
        ([rule(50, model="ray-flash-2"), rule(1)], 1),  # a rule for another model is no match
    ],
)
def test_the_most_specific_matching_rule_wins(rules: list[PriceRule], credits: int) -> None:
    assert price_of(rules, RAY2_720_5) == Price(credits)
    assert price_of(list(reversed(rules)), RAY2_720_5) == Price(credits)  # whatever order the store gives


def test_an_action_rule_beats_the_model_rule_for_an_upscale() -> None:
    rules = [rule(100, model="ray-2"), rule(15, action="upscale")]
    upscale = Priced(model="ray-2", resolution="1080p", duration="5s", action="upscale")
    assert price_of(rules, upscale) == Price(15)
    assert price_of(rules, RAY2_720_5) == Price(100)


def test_a_request_without_a_field_is_priced_as_any() -> None:
    images = Priced(model="kling-image", resolution=ANY, duration=ANY, action="image")
    rules = [rule(3, model="kling-image"), rule(9, model="kling-image", resolution="1k")]
    assert price_of(rules, images) == Price(3)


def test_a_zero_price_is_a_price() -> None:
    assert price_of([rule(5), rule(0, model="ray-2")], RAY2_720_5) == Price(0)
