"""Checks of ``[[rules]]`` and ``[[triggers]]``: each condition and action is one the
code knows, names a status, type, priority, team or agent that exists, and each problem
names its file and key (``rules[0] ('name').set.team``)."""

from __future__ import annotations

import re
from collections.abc import Callable

from mailgate.core import triggers
from mailgate.core.settings import RuleSetting, Settings, TriggerSetting

Bad = Callable[[str, str], None]

RULE_CONDITIONS = {
    "from": "regex",
    "from_domain": "list",
    "to": "regex",
    "subject": "regex",
    "body": "regex",
    "header": "table",
    "customer": "list",
    "language": "list",
    "has_attachment": "bool",
}
RULE_ACTIONS = ("type", "priority", "team", "assignee", "tags", "status")


def check_rules(s: Settings, bad: Bad) -> None:
    """``[[rules]]``: known conditions, valid patterns, actions naming what exists."""
    names: set[str] = set()
    for i, rule in enumerate(s.rules):
        _check_rule(s, i, rule, bad)
        if rule.name in names:
            # History records matched rules by name, so names must tell them apart.
            bad(f"rules[{i}].name", f"duplicate rule name {rule.name!r}")
        names.add(rule.name)


def _check_rule(s: Settings, i: int, rule: RuleSetting, bad: Bad) -> None:
    at = f"rules[{i}] ({rule.name!r})"
    if not rule.when:
        bad(f"{at}.when", "expected at least one condition")
    for key, value in rule.when.items():
        kind = RULE_CONDITIONS.get(key)
        if kind is None:
            bad(f"{at}.when.{key}", f"unknown condition (known: {', '.join(RULE_CONDITIONS)})")
        elif kind == "regex":
            _check_regex(f"{at}.when.{key}", value, bad)
        elif kind == "table":
            if not isinstance(value, dict):
                bad(f"{at}.when.{key}", 'expected a table such as { "X-Priority" = "^1" }')
            else:
                for name, pattern in value.items():
                    _check_regex(f"{at}.when.{key}.{name}", pattern, bad)
        elif kind == "bool" and not isinstance(value, bool):
            bad(f"{at}.when.{key}", "expected true or false")
        elif kind == "list" and not (
            isinstance(value, str)
            or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        ):
            bad(f"{at}.when.{key}", "expected a string or an array of strings")
    if not rule.set:
        bad(f"{at}.set", "expected at least one action")
    known = _choices(s)
    # A rule sets the status a ticket opens in: any but a closed one.
    known["status"] = tuple(x.name for x in s.tickets.statuses if x.category != "closed")
    for key, value in rule.set.items():
        if key not in RULE_ACTIONS:
            bad(f"{at}.set.{key}", f"unknown action (known: {', '.join(RULE_ACTIONS)})")
        elif key == "tags" and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            bad(f"{at}.set.tags", "expected an array of strings")
        if key in known and (not isinstance(value, str) or _norm(key, value) not in known[key]):
            bad(
                f"{at}.set.{key}",
                f"unknown {key} {value!r} (known: {', '.join(known[key]) or 'none'})",
            )


def _norm(key: str, value: str) -> str:
    return value.lower() if key == "assignee" else value


def _check_regex(key: str, pattern: object, bad: Bad) -> None:
    if not isinstance(pattern, str):
        bad(key, "expected a regular expression string")
        return
    try:
        re.compile(pattern)
    except re.error as exc:
        bad(key, f"not a valid regular expression: {exc}")


def _choices(s: Settings) -> dict[str, tuple[str, ...]]:
    """The values each settable field may take under ``s``."""
    return {
        "type": s.tickets.types,
        "priority": s.tickets.priorities,
        "team": tuple(t.name for t in s.teams),
        "assignee": tuple(a.email.lower() for a in s.agents),
        "status": tuple(x.name for x in s.tickets.statuses),
    }


def check_triggers(s: Settings, bad: Bad) -> None:
    """``[[triggers]]``: a known event, conditions and actions naming what exists."""
    names: set[str] = set()
    for i, trigger in enumerate(s.triggers):
        at = f"triggers[{i}] ({trigger.name!r})"
        if not trigger.name.strip():
            bad(f"triggers[{i}].name", "expected a name (the history names the trigger)")
        elif trigger.name in names:
            bad(f"{at}.name", f"duplicate trigger name {trigger.name!r}")
        names.add(trigger.name)
        if trigger.event not in triggers.EVENTS:
            bad(
                f"{at}.event",
                f"unknown event {trigger.event!r} (known: {', '.join(triggers.EVENTS)})",
            )
        _check_trigger_conditions(s, at, trigger, bad)
        _check_trigger_actions(s, at, trigger, bad)


def _check_trigger_conditions(s: Settings, at: str, trigger: TriggerSetting, bad: Bad) -> None:
    known = _choices(s)
    known["from_status"] = known["status"]
    known["customer"] = tuple(c.name for c in s.customers)
    for key in ("team", "assignee"):
        known[key] = (*known[key], triggers.NONE)
    for key, value in trigger.when.items():
        where = f"{at}.when.{key}"
        if key not in triggers.CONDITIONS:
            bad(where, f"unknown condition (known: {', '.join(triggers.CONDITIONS)})")
        elif not _strings(value):
            bad(where, "expected a string or an array of strings")
        elif key != "tags":
            for item in triggers.values(value):
                if _norm(key, item) not in known[key]:
                    choices = ", ".join(known[key]) or "none"
                    bad(where, f"unknown {key.replace('_', ' ')} {item!r} (known: {choices})")


def _check_trigger_actions(s: Settings, at: str, trigger: TriggerSetting, bad: Bad) -> None:
    if not trigger.set:
        bad(f"{at}.set", f"expected at least one of {', '.join(triggers.ACTIONS)}")
    known = _choices(s)
    for key in ("team", "assignee"):
        known[key] = (*known[key], triggers.NONE)
    for key, value in trigger.set.items():
        where = f"{at}.set.{key}"
        if key not in triggers.ACTIONS:
            bad(where, f"unknown field (known: {', '.join(triggers.ACTIONS)})")
        elif key == "tags":
            if not (isinstance(value, list) and _strings(value)):
                bad(where, 'expected an array of tags, such as ["vip", "-new"]')
        elif not isinstance(value, str) or _norm(key, value) not in known[key]:
            choices = ", ".join(known[key]) or "none"
            bad(where, f"unknown {key} {value!r} (known: {choices})")


def _strings(value: object) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
    )
