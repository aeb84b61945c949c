"""A ticket's history in words: each recorded event (``queries.show_ticket``'s
``history``) as one sentence in the reader's language, for the agent's ticket page.
The JSON API and the CLI keep the raw events: they are read by programs.

Every action the write side records has a sentence here (``SENTENCES``;
tests/test_history_words.py finds every action the package records and fails on one
without). An action this version does not know, or an older row whose details have
another shape, gets a neutral sentence rather than an error: a history page must
always show.

Each sentence is one whole msgid with named placeholders, so a translator can reorder
it. Who acted is a person's name (``db.people``) or, for mailgate's own actors, a short
phrase ("trigger “x”", "the rules") that is capitalised when a sentence begins with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from babel.lists import format_list

from mailgate.core.settings import TicketSettings
from mailgate.db.people import Names
from mailgate.web import history_automatic, history_sentences
from mailgate.web.i18n import N_, locale


@dataclass(frozen=True)
class Reader:
    """What the sentences need besides the events: the reader's words and dates, who is
    who on the ticket, and the configured statuses."""

    gettext: Callable[[str], str]
    language: str
    names: Names
    tickets: TicketSettings
    when: Callable[[Any], str]  # pages' ``when`` filter in the reader's language


@dataclass(frozen=True)
class Line:
    at: str  # the event's time, ISO 8601 (the page formats it with ``when``)
    text: str


class Phrase(str):
    """Words standing for an actor that is not a person (``trigger “x”``): capitalised
    when a sentence begins with them, unlike a name, which is shown as it is written."""

    __slots__ = ()


class Event:
    """One history event as the sentences read it, with the reader's means to say it."""

    def __init__(self, raw: Mapping[str, Any], reader: Reader) -> None:
        self.reader = reader
        self.who = str(raw.get("actor") or "")  # the actor as recorded
        self.action = str(raw.get("action") or "")
        self.field = str(raw.get("field") or "")
        self.old = str(raw.get("old") or "")
        self.new = str(raw.get("new") or "")
        detail = raw.get("detail")
        self.detail: Mapping[str, Any] = detail if isinstance(detail, Mapping) else {}

    def say(self, msgid: str, **values: Any) -> str:
        """``msgid`` in the reader's language, filled in; ``actor`` is who acted unless
        given. A sentence beginning with a ``Phrase`` begins with a capital."""
        values.setdefault("actor", self.actor)
        try:
            text = self.reader.gettext(msgid) % values
        except (KeyError, TypeError, ValueError):
            # A translation whose placeholders do not match its msgid: the English words
            # rather than a broken page.
            text = msgid % values
        for value in values.values():
            if isinstance(value, Phrase) and value and text.startswith(value):
                return text[:1].upper() + text[1:]
        return text

    @property
    def actor(self) -> str:
        return actor_words(self.who, self.reader)

    def text(self, key: str) -> str:
        value = self.detail.get(key)
        return str(value) if value is not None else ""

    def person(self, address: str) -> str:
        """Anyone named in the event (an assignee, a helper) as ``actor`` is shown."""
        return actor_words(address, self.reader)

    def rule(self, name: str) -> Phrase:
        """A configured rule, as the actor of what it set."""
        _ = self.reader.gettext
        return Phrase(_("rule “%(rule)s”") % {"rule": name})

    def label(self, value: str) -> str:
        """A configured name (a type, a priority, a link kind) as pages' ``label`` filter
        shows it: translated when it is a built-in one (``i18n.BUILT_IN_NAMES``)."""
        return self.reader.gettext(value) if value else value  # gettext("") is the header

    def status(self, value: str) -> str:
        return self.label(status_label(value, self.reader.tickets))

    def when(self, value: str) -> str:
        return self.reader.when(value) if value else ""

    def listed(self, items: Sequence[str]) -> str:
        """``items`` as a list the reader's language writes ("a, b and c")."""
        return format_list(list(items), locale=locale(self.reader.language))

    def is_customer(self) -> bool:
        """Whether the actor is a person writing from outside (a customer's address)."""
        return "@" in self.who and not self.reader.names.is_agent(self.who)

    def neutral(self) -> str:
        """Any action, said without knowing it: what changed, or its name."""
        if self.field:
            return self.say(
                N_("%(actor)s changed %(field)s from %(old)s to %(new)s"),
                field=self.field,
                old=self.old or "-",
                new=self.new or "-",
            )
        return self.say(N_("%(actor)s made a change (%(action)s)"), action=self.action or "-")


def actor_words(label: str, reader: Reader) -> str:
    """Who acted, as the history records it (an agent's or a customer's address,
    ``api:<name>``, ``trigger:<name>``, ``rules``, ``assignment``, ``sla``, ``system``,
    ``cli`` or an operator's name), in words."""
    _ = reader.gettext
    kind, _sep, name = label.partition(":")
    if kind == "trigger" and name:
        return Phrase(_("trigger “%(name)s”") % {"name": name})
    if kind == "api" and name:
        return Phrase(_("integration “%(name)s”") % {"name": name})
    fixed = {
        "": _("someone"),
        "unknown": _("someone"),
        "rules": _("the rules"),
        "assignment": _("the automatic assignment"),
        "sla": _("the SLA check"),
        "system": _("mailgate"),
        "cli": _("an operator"),
    }
    if label in fixed:
        return Phrase(fixed[label])
    return reader.names.of(label)


def status_label(value: str, tickets: TicketSettings) -> str:
    """A status as people read it: as configured (``[tickets] statuses``: a status's
    name is its label, there is no other), else (one no longer configured, an older
    lower-case value) with a capital."""
    if any(status.name == value for status in tickets.statuses):
        return value
    return value[:1].upper() + value[1:]


# Every action's sentence, by the action's name.
SENTENCES: dict[str, Callable[[Event], str]] = {
    **history_sentences.SENTENCES,
    **history_automatic.SENTENCES,
}


def sentence(raw: Mapping[str, Any], reader: Reader) -> str:
    """One event in words; a neutral sentence for an action without one."""
    event = Event(raw, reader)
    say = SENTENCES.get(event.action)
    if say is not None:
        try:
            return say(event)
        except (KeyError, TypeError, ValueError, AttributeError):
            # A row written by an older version, its details in another shape: the
            # neutral sentence rather than a broken page.
            pass
    return event.neutral()


def lines(events: Sequence[Mapping[str, Any]], reader: Reader) -> list[Line]:
    """The history of one ticket, oldest first, one line an event."""
    return [Line(str(raw.get("at") or ""), sentence(raw, reader)) for raw in events]
