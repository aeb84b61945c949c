"""Ticket rules (DESIGN.md §5): ordered conditions over a new message, actions on its
ticket. Pure: facts in, an ``Outcome`` out; the caller applies and records it.

Every condition of a rule must match. The first matching rule that sets a field
wins for that field (``tags`` included: later rules do not add to it), so a
specific rule placed above a general one overrides it field by field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mailgate.core.settings import RuleSetting

# ``status``: the status the ticket opens in (any but a closed one), for a flow whose
# first step depends on the mail (an outage starts "In Progress").
FIELDS = ("type", "priority", "team", "assignee", "tags", "status")
# Patterns run over at most this much body text, so one huge message cannot make a
# rule scan unbounded (invariant 7).
BODY_LIMIT = 200_000


@dataclass(frozen=True)
class Facts:
    """What rules may look at, read from the message and its customer account."""

    sender: str
    recipients: tuple[str, ...] = ()
    subject: str = ""
    body: str = ""
    # Every header of the message as (lower-case name, value).
    headers: tuple[tuple[str, str], ...] = ()
    customer: str = ""
    language: str = ""
    has_attachment: bool = False

    def header_values(self, name: str) -> tuple[str, ...]:
        lowered = name.lower()
        return tuple(value for key, value in self.headers if key == lowered)


@dataclass(frozen=True)
class Outcome:
    """The fields the rules set, which rule set each, and every rule that matched."""

    values: tuple[tuple[str, Any], ...] = ()
    set_by: tuple[tuple[str, str], ...] = ()
    matched: tuple[str, ...] = ()

    def get(self, field: str) -> Any:
        return dict(self.values).get(field)


def _strings(value: str | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _search(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None


def _from(pattern: str, facts: Facts) -> bool:
    return _search(pattern, facts.sender)


def _from_domain(domains: str | list[str], facts: Facts) -> bool:
    domain = facts.sender.rpartition("@")[2].lower()
    # A listed domain covers its subdomains: acme.test matches mail.acme.test.
    listed = {d.lower().lstrip(".") for d in _strings(domains)}
    return any(domain == d or domain.endswith("." + d) for d in listed)


def _to(pattern: str, facts: Facts) -> bool:
    return any(_search(pattern, r) for r in facts.recipients)


def _subject(pattern: str, facts: Facts) -> bool:
    return _search(pattern, facts.subject)


def _body(pattern: str, facts: Facts) -> bool:
    return _search(pattern, facts.body[:BODY_LIMIT])


def _header(table: Mapping[str, str], facts: Facts) -> bool:
    # Each named header must be present with a value matching its pattern.
    return all(
        any(_search(pattern, v) for v in facts.header_values(name))
        for name, pattern in table.items()
    )


def _customer(names: str | list[str], facts: Facts) -> bool:
    return bool(facts.customer) and facts.customer.lower() in {n.lower() for n in _strings(names)}


def _language(languages: str | list[str], facts: Facts) -> bool:
    # Compare primary subtags (RFC 5646): "fr" matches a message in fr-CA.
    mine = facts.language.lower().split("-")[0]
    return bool(mine) and mine in {lang.lower().split("-")[0] for lang in _strings(languages)}


def _has_attachment(expected: bool, facts: Facts) -> bool:
    return facts.has_attachment == expected


CONDITIONS: dict[str, Callable[[Any, Facts], bool]] = {
    "from": _from,
    "from_domain": _from_domain,
    "to": _to,
    "subject": _subject,
    "body": _body,
    "header": _header,
    "customer": _customer,
    "language": _language,
    "has_attachment": _has_attachment,
}


def matches(rule: RuleSetting, facts: Facts) -> bool:
    """True when every condition of ``rule`` holds for ``facts`` (validated at start-up)."""
    return all(CONDITIONS[key](expected, facts) for key, expected in rule.when.items())


def evaluate(rules: Iterable[RuleSetting], facts: Facts) -> Outcome:
    """Run ``rules`` in order; the first matching rule that sets a field wins it."""
    values: dict[str, Any] = {}
    set_by: dict[str, str] = {}
    matched: list[str] = []
    for rule in rules:
        if not matches(rule, facts):
            continue
        matched.append(rule.name)
        for field in FIELDS:
            if field in rule.set and field not in values:
                value = rule.set[field]
                values[field] = tuple(value) if field == "tags" else value
                set_by[field] = rule.name
    return Outcome(
        values=tuple((f, values[f]) for f in FIELDS if f in values),
        set_by=tuple((f, set_by[f]) for f in FIELDS if f in set_by),
        matched=tuple(matched),
    )
