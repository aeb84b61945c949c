"""Rules as pure table tests: each condition, each action, first rule wins per field."""

from __future__ import annotations

from typing import Any

import pytest

from mailgate.core import config, rules
from mailgate.core.errors import ConfigError
from mailgate.core.rule_checks import RULE_ACTIONS, RULE_CONDITIONS
from mailgate.core.rules import Facts, evaluate
from mailgate.core.settings import RuleSetting

FACTS = Facts(
    sender="jane@mail.acme.test",
    recipients=("support@example.com", "billing+vip@example.com"),
    subject="Outage in production",
    body="Everything is down since 9:00.\nRegards",
    headers=(
        ("x-priority", "1 (Highest)"),
        ("x-spam-flag", "NO"),
        ("received", "a"),
        ("received", "b"),
    ),
    customer="Acme",
    language="fr-CA",
    has_attachment=True,
)


def _rule(when: dict[str, Any], set_: dict[str, Any] | None = None, name: str = "r") -> RuleSetting:
    return RuleSetting(name=name, when=when, set=set_ or {"priority": "High"})


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ({"from": r"@mail\.acme\.test$"}, True),
        ({"from": "^bob@"}, False),
        ({"from_domain": ["acme.test"]}, True),  # subdomain of a listed domain
        ({"from_domain": "mail.acme.test"}, True),  # a single string works too
        ({"from_domain": ["cme.test", "other.test"]}, False),  # no partial label match
        ({"to": r"^billing\+"}, True),  # any recipient may match
        ({"to": "^sales@"}, False),
        ({"subject": "(?i)outage"}, True),
        ({"subject": "outage"}, False),  # case-sensitive unless (?i)
        ({"body": r"down since \d+:\d+"}, True),
        ({"body": "refund"}, False),
        ({"header": {"X-Priority": "^1"}}, True),  # header names are case-insensitive
        ({"header": {"X-Priority": "^1", "X-Spam-Flag": "YES"}}, False),  # all must match
        ({"header": {"Received": "^b$"}}, True),  # any occurrence of a repeated header
        ({"header": {"X-Missing": ".*"}}, False),  # absent header never matches
        ({"customer": ["acme"]}, True),
        ({"customer": "Globex"}, False),
        ({"language": ["fr"]}, True),  # primary subtag of fr-CA
        ({"language": ["de", "es"]}, False),
        ({"has_attachment": True}, True),
        ({"has_attachment": False}, False),
        ({"subject": "(?i)outage", "from_domain": "globex.test"}, False),  # every condition
    ],
)
def test_each_condition(when: dict[str, Any], expected: bool) -> None:
    """Each condition matches exactly the messages it describes."""
    assert rules.matches(_rule(when), FACTS) is expected


def test_conditions_without_customer_or_language() -> None:
    """A message with no customer account or language matches no list of them."""
    bare = Facts(sender="x@y.test")
    assert not rules.matches(_rule({"customer": ["Acme"]}), bare)
    assert not rules.matches(_rule({"language": ["en"]}), bare)


def test_body_is_searched_only_up_to_the_limit() -> None:
    """Patterns see at most BODY_LIMIT characters of a body (bounded work per rule)."""
    facts = Facts(sender="x@y.test", body="a" * rules.BODY_LIMIT + "needle")
    assert not rules.matches(_rule({"body": "needle"}), facts)


@pytest.mark.parametrize(
    ("action", "value"),
    [
        ("type", "Technical"),
        ("priority", "Urgent"),
        ("team", "billing"),
        ("assignee", "ann@example.com"),
        ("tags", ["vip", "outage"]),
    ],
)
def test_each_action_is_set_and_attributed(action: str, value: Any) -> None:
    """Each action lands in the outcome with the rule that set it."""
    outcome = evaluate([_rule({"subject": "Outage"}, {action: value}, name="one")], FACTS)
    expected = tuple(value) if isinstance(value, list) else value
    assert outcome.get(action) == expected
    assert dict(outcome.set_by) == {action: "one"}
    assert outcome.matched == ("one",)


def test_first_rule_that_sets_a_field_wins_that_field() -> None:
    """Later rules fill only fields earlier matching rules left unset; all matches are listed."""
    ordered = [
        _rule({"subject": "nothing-like-this"}, {"priority": "Low"}, name="miss"),
        _rule({"from_domain": "acme.test"}, {"priority": "Urgent", "tags": ["acme"]}, name="acme"),
        _rule(
            {"subject": "(?i)outage"},
            {"priority": "High", "type": "Technical", "tags": ["x"]},
            name="outage",
        ),
    ]
    outcome = evaluate(ordered, FACTS)
    assert outcome.get("priority") == "Urgent"
    assert outcome.get("type") == "Technical"
    assert outcome.get("tags") == ("acme",)
    assert dict(outcome.set_by) == {"type": "outage", "priority": "acme", "tags": "acme"}
    assert outcome.matched == ("acme", "outage")


def test_no_rule_matches_sets_nothing() -> None:
    """Without a match the outcome is empty and says so."""
    outcome = evaluate([_rule({"subject": "^refund"})], FACTS)
    assert outcome.values == () and outcome.matched == ()


def test_engine_and_validation_know_the_same_keys() -> None:
    """Every condition and action the validator accepts is one the engine implements."""
    assert set(rules.CONDITIONS) == set(RULE_CONDITIONS)
    assert set(rules.FIELDS) == set(RULE_ACTIONS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[[rules]]\nname = "a"\nwhen = { subject = "x" }\nset = { type = "General" }\n'
            '[[rules]]\nname = "a"\nwhen = { subject = "y" }\nset = { type = "General" }\n',
            "rules[1].name: duplicate rule name 'a'",
        ),
        (
            '[[rules]]\nname = "r"\nwhen = { header = { "X-A" = "(" } }\nset = { type = "General" }\n',
            "rules[0] ('r').when.header.X-A: not a valid regular expression",
        ),
        (
            '[[rules]]\nname = "r"\nwhen = { subject = "x" }\nset = { assignee = "who@x.test" }\n',
            "rules[0] ('r').set.assignee: unknown assignee 'who@x.test'",
        ),
        (
            '[[rules]]\nname = "r"\nwhen = { subject = "x" }\nset = { team = "nope" }\n',
            "rules[0] ('r').set.team: unknown team 'nope'",
        ),
        ('[queue]\nname = "9 lives"\n', "queue.name: expected a letter or '_'"),
        ("[queue]\nretry_base_seconds = 60\nretry_max_seconds = 5\n", "queue.retry_max_seconds"),
    ],
)
def test_rule_and_queue_mistakes_name_file_rule_and_key(tmp_path, text: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    """A bad rule or queue key fails at start-up with the file, the rule and the key."""
    path = tmp_path / "m.toml"
    path.write_text('[security]\nsecret = "0123456789abcdef0123"\n' + text)
    with pytest.raises(ConfigError) as info:
        config.load(path, {})
    assert any(p.startswith(f"{path}: {expected}") for p in info.value.problems), (
        info.value.problems
    )
