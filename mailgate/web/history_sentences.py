"""The sentence of each action people take on a ticket (``history.SENTENCES``), by the
action's name; what mailgate does by itself is in ``history_automatic``.

Each function gets the event (``history.Event``) and returns its sentence. The msgids
are marked with ``N_`` so that pybabel finds them; ``Event.say`` translates them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mailgate.core.statuses import is_closed
from mailgate.web.i18n import N_

if TYPE_CHECKING:
    from mailgate.web.history import Event

Sentence = Callable[["Event"], str]
SENTENCES: dict[str, Sentence] = {}


def registry(table: dict[str, Sentence]) -> Callable[..., Callable[[Sentence], Sentence]]:
    """A decorator factory: ``@says("a", "b")`` makes the function the sentence of those
    actions in ``table``."""

    def says(*actions: str) -> Callable[[Sentence], Sentence]:
        def register(function: Sentence) -> Sentence:
            for action in actions:
                table[action] = function
            return function

        return register

    return says


says = registry(SENTENCES)


# --- messages ---


@says("created")
def _created(e: Event) -> str:
    via = e.text("via")
    if via == "portal":
        return e.say(N_("%(actor)s opened the ticket in the portal"))
    if via == "api":
        return e.say(N_("%(actor)s opened the ticket through the API"))
    if via == "cli":
        return e.say(N_("%(actor)s opened the ticket from the command line"))
    if via:
        return e.say(N_("%(actor)s opened the ticket by mail"))
    return e.say(N_("%(actor)s opened the ticket"))


@says("customer_reply")
def _customer_reply(e: Event) -> str:
    via = e.text("via")
    if via == "portal":
        return e.say(N_("%(actor)s replied in the portal"))
    if via == "api":
        return e.say(N_("%(actor)s replied through the API"))
    if via == "cli":
        return e.say(N_("A reply from %(actor)s was added from the command line"))
    if via:
        return e.say(N_("%(actor)s replied by mail"))
    return e.say(N_("%(actor)s replied"))


@says("agent_reply")
def _agent_reply(e: Event) -> str:
    if e.text("response"):
        return e.say(
            N_("%(actor)s replied with the canned response “%(response)s”"),
            response=e.text("response"),
        )
    return e.say(N_("%(actor)s replied to the requester"))


@says("note")
def _note(e: Event) -> str:
    return e.say(N_("%(actor)s added an internal note"))


@says("received_after_close")
def _after_close(e: Event) -> str:
    return e.say(N_("%(actor)s wrote after the ticket was closed"))


@says("automatic_received")
def _automatic(e: Event) -> str:
    return e.say(N_("Automatic mail from %(actor)s was filed without changing the ticket"))


@says("accepted")
def _accepted(e: Event) -> str:
    return e.say(N_("%(actor)s let this mail in despite the intake policy"))


@says("supplier_message")
def _supplier_message(e: Event) -> str:
    return e.say(N_("%(actor)s of supplier “%(supplier)s” wrote"), supplier=e.text("supplier"))


@says("message_to_supplier")
def _to_supplier(e: Event) -> str:
    return e.say(N_("%(actor)s wrote to supplier “%(supplier)s”"), supplier=e.text("supplier"))


# --- fields ---


@says("status")
def _status(e: Event) -> str:
    old, new = e.status(e.old), e.status(e.new)
    tickets = e.reader.tickets
    if is_closed(e.new, tickets):
        closing = [s.name for s in tickets.statuses if s.category == "closed"]
        if e.new == closing[-1]:  # the status "close" means (changes.close_status)
            return e.say(N_("Closed by %(actor)s"))
        return e.say(N_("%(actor)s closed the ticket as %(status)s"), status=new)
    if not e.old:
        return e.say(N_("%(actor)s set the status to %(new)s"), new=new)
    if e.is_customer():
        # A customer never sets a status: her reply to a waiting ticket moved it.
        return e.say(
            N_("%(actor)s replied, so the status went from %(old)s to %(new)s"), old=old, new=new
        )
    return e.say(N_("%(actor)s changed the status from %(old)s to %(new)s"), old=old, new=new)


@says("priority")
def _priority(e: Event) -> str:
    if not e.old:
        return e.say(N_("%(actor)s set the priority to %(new)s"), new=e.label(e.new))
    return e.say(
        N_("%(actor)s changed the priority from %(old)s to %(new)s"),
        old=e.label(e.old),
        new=e.label(e.new),
    )


@says("type")
def _type(e: Event) -> str:
    if not e.old:
        return e.say(N_("%(actor)s set the type to %(new)s"), new=e.label(e.new))
    return e.say(
        N_("%(actor)s changed the type from %(old)s to %(new)s"),
        old=e.label(e.old),
        new=e.label(e.new),
    )


@says("team")
def _team(e: Event) -> str:
    if e.old and e.new:
        return e.say(
            N_("%(actor)s moved the ticket from team %(old)s to team %(new)s"), old=e.old, new=e.new
        )
    if e.new:
        return e.say(N_("%(actor)s moved the ticket to team %(new)s"), new=e.new)
    return e.say(N_("%(actor)s took the ticket out of team %(old)s"), old=e.old or "-")


def listed_items(value: str) -> list[str]:
    """A list field as the history stores it (``"a,b"``), as a list."""
    return [part for part in value.split(",") if part]


def _added_removed(
    e: Event, added_msgid: str, removed_msgid: str, show: Callable[[str], str] = str
) -> str:
    """A list field's change (tags, helpers, …): what was added, what was removed."""
    before, after = listed_items(e.old), listed_items(e.new)
    added = [show(x) for x in after if x not in before]
    removed = [show(x) for x in before if x not in after]
    said = []
    if added:
        said.append(e.say(added_msgid, names=e.listed(added)))
    if removed:
        said.append(e.say(removed_msgid, names=e.listed(removed)))
    return ". ".join(said) or e.neutral()


@says("tags")
def _tags(e: Event) -> str:
    return _added_removed(
        e, N_("Tags added by %(actor)s: %(names)s"), N_("Tags removed by %(actor)s: %(names)s")
    )


@says("helpers")
def _helpers(e: Event) -> str:
    return _added_removed(
        e,
        N_("Helpers added by %(actor)s: %(names)s"),
        N_("Helpers removed by %(actor)s: %(names)s"),
        e.person,
    )


@says("departments")
def _departments(e: Event) -> str:
    return _added_removed(
        e,
        N_("Departments involved by %(actor)s: %(names)s"),
        N_("Departments removed by %(actor)s: %(names)s"),
    )


@says("suppliers")
def _suppliers(e: Event) -> str:
    return _added_removed(
        e,
        N_("Suppliers attached by %(actor)s: %(names)s"),
        N_("Suppliers detached by %(actor)s: %(names)s"),
    )


@says("date")
def _date(e: Event) -> str:
    follow_up = e.field == "follow_up"
    if e.field not in ("follow_up", "action_required"):
        return e.neutral()  # a date this version does not know (changes.DATE_FIELDS)
    if e.new and follow_up:
        return e.say(N_("%(actor)s set the follow-up date to %(date)s"), date=e.when(e.new))
    if e.new:
        return e.say(N_("%(actor)s set the action-required date to %(date)s"), date=e.when(e.new))
    if follow_up:
        return e.say(N_("%(actor)s cleared the follow-up date"))
    return e.say(N_("%(actor)s cleared the action-required date"))


@says("activity")
def _activity(e: Event) -> str:
    return e.say(
        N_("%(actor)s logged time: %(type)s, %(minutes)s min"),
        type=e.label(e.text("type")),
        minutes=e.text("minutes"),
    )


# --- links and merges ---


@says("linked")
def _linked(e: Event) -> str:
    reason, kind = e.text("reason"), e.text("kind")
    if reason and "forged" in reason:  # found by the threading (tickets.opening)
        return e.say(
            N_("Linked to #%(number)s: this mail named it, but its sender is forged"),
            number=e.new,
        )
    if reason:
        return e.say(
            N_("Linked to #%(number)s: this mail named it, but its sender takes no part in it"),
            number=e.new,
        )
    if kind:
        return e.say(
            N_("%(actor)s linked this ticket to #%(number)s (%(kind)s)"),
            number=e.new,
            kind=e.label(kind),
        )
    return e.say(N_("%(actor)s linked this ticket to #%(number)s"), number=e.new)


@says("merged_into")
def _merged_into(e: Event) -> str:
    return e.say(N_("%(actor)s merged this ticket into #%(number)s"), number=e.new)


@says("merged_from")
def _merged_from(e: Event) -> str:
    return e.say(N_("%(actor)s merged ticket #%(number)s into this one"), number=e.new)


# --- to-dos ---


@says("todo_added")
def _todo_added(e: Event) -> str:
    title, assignee, due = e.text("title"), e.text("assignee"), e.text("due_at")
    if assignee and due:
        return e.say(
            N_("%(actor)s added the to-do “%(title)s” for %(agent)s, due %(due)s"),
            title=title,
            agent=e.person(assignee),
            due=e.when(due),
        )
    if assignee:
        return e.say(
            N_("%(actor)s added the to-do “%(title)s” for %(agent)s"),
            title=title,
            agent=e.person(assignee),
        )
    if due:
        return e.say(
            N_("%(actor)s added the to-do “%(title)s”, due %(due)s"), title=title, due=e.when(due)
        )
    return e.say(N_("%(actor)s added the to-do “%(title)s”"), title=title)


@says("todo_done")
def _todo_done(e: Event) -> str:
    return e.say(N_("%(actor)s marked the to-do “%(title)s” done"), title=e.text("title"))
