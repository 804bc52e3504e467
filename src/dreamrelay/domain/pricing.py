"""Which price rule prices a task: the pure choice among the rules that match (the store finds them).

A rule names a model, resolution, duration and action, each exact or '*' (`WILDCARD`). Among the rules
that match, the most specific wins: exact beats '*' field by field, and the fields rank
action > model > resolution > duration — a rule for this action (an upscale of any model) beats a rule
for any action of this model (what generating a video of it costs). The ranks are powers of two, so two
different matching rules never tie.

A rule's `unit` says what its credits buy: a whole task (`task`, times the pictures it makes) or a million
of the tokens the upstream reports it used (`1m_tokens`: Seedance's `usage.completion_tokens`). A task
priced by tokens holds what its most costly output could use and captures what it did use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dreamrelay.domain.catalog import token_charge
from dreamrelay.domain.requests import WILDCARD, PriceKey

# Each field's weight in a rule's specificity, in rank order.
_WEIGHTS = {"action": 8, "model": 4, "resolution": 2, "duration": 1}
PER_TASK = "task"
PER_MILLION_TOKENS = "1m_tokens"
UNITS = (PER_TASK, PER_MILLION_TOKENS)


@dataclass(frozen=True)
class PriceRule:
    model: str
    resolution: str
    duration: str
    action: str
    credits: int
    unit: str = PER_TASK


@dataclass(frozen=True)
class Price:
    """What a matching rule says a task costs: its credits, per task or per million tokens."""

    credits: int
    unit: str = PER_TASK

    def hold(self, key: PriceKey) -> int:
        """The credits held at submit: the task's price, or what its most tokens would cost."""
        if self.unit == PER_MILLION_TOKENS:
            return token_charge(key.tokens, self.credits)
        return self.credits * key.n

    @property
    def token_rate(self) -> int | None:
        """Credits per million tokens when priced by use (what its capture is computed with), else None."""
        return self.credits if self.unit == PER_MILLION_TOKENS else None


@dataclass(frozen=True)
class Priced:
    """What is being priced: the four fields a rule matches on."""

    model: str
    resolution: str
    duration: str
    action: str


def specificity(rule: PriceRule) -> int:
    """The sum of the weights of the rule's exact (non-'*') fields: 0 (all '*') to 15 (all exact)."""
    return sum(weight for name, weight in _WEIGHTS.items() if getattr(rule, name) != WILDCARD)


def matches(rule: PriceRule, priced: Priced) -> bool:
    """Every field of the rule is '*' or the priced one's."""
    return all(getattr(rule, name) in (WILDCARD, getattr(priced, name)) for name in _WEIGHTS)


def most_specific(rules: Iterable[PriceRule]) -> Price | None:
    """The price of the most specific rule (the rules are the ones that match), or None if there is none."""
    best = max(rules, key=specificity, default=None)
    return Price(best.credits, best.unit) if best is not None else None


def price_of(rules: Iterable[PriceRule], priced: Priced) -> Price | None:
    """The price of the most specific rule among `rules` that matches `priced`, or None."""
    return most_specific(rule for rule in rules if matches(rule, priced))


def used_charge(hold: int, rate: int | None, tokens: int | None) -> int:
    """What a completed task is charged: by the tokens it used at its rate, never more than its hold; a
    task priced per task (or whose use is unknown) costs its hold."""
    if rate is None or tokens is None:
        return hold
    return min(token_charge(tokens, rate), hold)
