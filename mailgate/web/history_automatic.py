"""The sentences of what mailgate does by itself (``history.SENTENCES``): the automatic
assignment, the rules, triggers, the SLA check and to-do reminders. People's actions are
in ``history_sentences``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mailgate.core import sla
from mailgate.web.history_sentences import listed_items, registry
from mailgate.web.i18n import N_

if TYPE_CHECKING:
    from mailgate.web.history import Event

SENTENCES: dict[str, Callable[[Event], str]] = {}
says = registry(SENTENCES)


# --- assignment ---


@says("assigned")
def _assigned(e: Event) -> str:
    if e.who == "assignment":
        return _assigned_automatically(e)
    if e.new and e.old:
        return e.say(
            N_("%(actor)s reassigned the ticket from %(old)s to %(new)s"),
            old=e.person(e.old),
            new=e.person(e.new),
        )
    if e.new and e.new == e.who:
        return e.say(N_("%(actor)s took the ticket"))
    if e.new:
        return e.say(N_("%(actor)s assigned the ticket to %(agent)s"), agent=e.person(e.new))
    if e.old:
        return e.say(N_("%(actor)s unassigned the ticket from %(old)s"), old=e.person(e.old))
    return e.say(N_("%(actor)s unassigned the ticket"))


def _reason(e: Event) -> str:
    # "rule x named bob@…, who is not available; round robin in …": the last part says
    # how the agent was found in the end.
    return e.text("reason").rsplit("; ", 1)[-1]


# ``core.assignment``'s and ``tickets.triage``'s reasons (English, kept as they are for
# the JSON history), read back: (pattern, msgid); the named groups fill the msgid.
ASSIGNED: tuple[tuple[str, str], ...] = (
    (r"rule (?P<rule>.+)", N_("Assigned to %(agent)s by rule “%(rule)s”")),
    (
        r"round robin in team (?P<team>.+?): .*",
        N_("Assigned to %(agent)s automatically: round robin in team %(team)s"),
    ),
    (
        r"least open in team (?P<team>.+?): .*",
        N_("Assigned to %(agent)s automatically: fewest open tickets in team %(team)s"),
    ),
    (r"account owner .*", N_("Assigned to %(agent)s automatically: the customer's account owner")),
)
UNASSIGNED: tuple[tuple[str, str], ...] = (
    (r"ticket has no team", N_("Left unassigned: the ticket has no team")),
    (
        r"team (?P<team>.+) assigns nobody automatically",
        N_("Left unassigned: team %(team)s assigns nobody automatically"),
    ),
    (
        r"no available agent in team (?P<team>.+)",
        N_("Left unassigned: no agent of team %(team)s is available"),
    ),
    (
        r"every agent in team (?P<team>.+) is at the cap of (?P<cap>\d+) open tickets",
        N_("Left unassigned: every agent of team %(team)s has reached the cap (%(cap)s open)"),
    ),
    (
        r"no account owner for this customer",
        N_("Left unassigned: the customer has no account owner"),
    ),
    (
        r"account owner (?P<agent>\S+) is away",
        N_("Left unassigned: the account owner %(agent)s is away"),
    ),
    (
        r"account owner (?P<agent>\S+) is inactive",
        N_("Left unassigned: the account owner %(agent)s is inactive"),
    ),
)


def _read_reason(
    e: Event, table: tuple[tuple[str, str], ...], **values: Any
) -> tuple[str, Mapping[str, Any]] | None:
    reason = _reason(e)
    for pattern, msgid in table:
        found = re.fullmatch(pattern, reason)
        if found:
            groups = {k: e.person(v) if k == "agent" else v for k, v in found.groupdict().items()}
            return msgid, {**values, **groups}
    return None


def _assigned_automatically(e: Event) -> str:
    agent = e.person(e.new)
    reason = _reason(e)
    if reason.startswith("chosen by "):  # staff picked the assignee opening the ticket
        chooser = reason.removeprefix("chosen by ")
        return e.say(
            N_("%(actor)s assigned the ticket to %(agent)s"), actor=e.person(chooser), agent=agent
        )
    read = _read_reason(e, ASSIGNED, agent=agent)
    if read is not None:
        return e.say(read[0], **read[1])
    return e.say(N_("Assigned to %(agent)s automatically"), agent=agent)


@says("unassigned")
def _unassigned(e: Event) -> str:
    read = _read_reason(e, UNASSIGNED)
    if read is not None:
        return e.say(read[0], **read[1])
    return e.say(N_("Left unassigned"))


# --- rules and triggers ---


# What the rules may set (``tickets.triage``), in the order they are applied.
RULE_FIELDS = {
    "type": N_("%(actor)s set the type to %(new)s"),
    "priority": N_("%(actor)s set the priority to %(new)s"),
    "team": N_("%(actor)s moved the ticket to team %(new)s"),
    "status": N_("%(actor)s set the status to %(new)s"),
}


@says("rules_applied")
def _rules_applied(e: Event) -> str:
    changed = e.detail.get("set")
    said = []
    for field, change in (changed if isinstance(changed, Mapping) else {}).items():
        rule = e.rule(str(change.get("rule", "")))
        new = str(change.get("new") or "")
        if field == "tags":
            old = listed_items(str(change.get("old") or ""))
            added = [t for t in listed_items(new) if t not in old]
            if added:
                msgid = N_("Tags added by %(actor)s: %(names)s")
                said.append(e.say(msgid, actor=rule, names=e.listed(added)))
        elif field in RULE_FIELDS:
            if field == "status":
                shown = e.status(new)
            elif field == "team":
                shown = new  # a team's name is the operator's own, never translated
            else:
                shown = e.label(new)
            said.append(e.say(RULE_FIELDS[field], actor=rule, new=shown))
    if said:
        return ". ".join(said)
    matched = [f"“{name}”" for name in e.detail.get("matched") or ()]
    # Matched, setting only the assignee (the assignment's own event says so) or nothing.
    return e.say(N_("Rules matched: %(rules)s"), rules=e.listed(matched))


@says("trigger")
def _trigger(e: Event) -> str:
    return e.say(N_("%(actor)s ran on “%(event)s”"), event=e.text("event"))


@says("trigger_failed")
def _trigger_failed(e: Event) -> str:
    return e.say(N_("%(actor)s could not make its changes: %(reason)s"), reason=e.text("reason"))


# --- the SLA check and to-do reminders ---


@says("sla_breached")
def _sla_breached(e: Event) -> str:
    late = e.text("summary").endswith("(met late)")  # tickets.sla_check.record_met_late
    due = e.when(e.new)
    if e.field == sla.FIRST_RESPONSE and late:
        return e.say(N_("The first response came after its target (due %(due)s)"), due=due)
    if e.field == sla.FIRST_RESPONSE:
        return e.say(N_("The first-response target was missed (due %(due)s)"), due=due)
    if e.field == sla.RESOLUTION and late:
        return e.say(N_("The ticket was closed after its resolution target (due %(due)s)"), due=due)
    if e.field == sla.RESOLUTION:
        return e.say(N_("The resolution target was missed (due %(due)s)"), due=due)
    return e.say(N_("A service-level target was missed (due %(due)s)"), due=due)


@says("date_reached")
def _date_reached(e: Event) -> str:
    due = e.when(e.new)
    if e.field == sla.FOLLOW_UP:
        return e.say(N_("The follow-up date was reached (%(due)s)"), due=due)
    if e.field == sla.ACTION_REQUIRED:
        return e.say(N_("The action-required date was reached (%(due)s)"), due=due)
    return e.say(N_("A date was reached (%(due)s)"), due=due)


@says("todo_due")
def _todo_due(e: Event) -> str:
    return e.say(N_("A to-do fell due (%(due)s)"), due=e.when(e.text("due_at")))
