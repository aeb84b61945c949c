"""Chat channels and webhooks in the pure decision (issue 24): which rows an event makes
for them, screened and limited as mail is (chat) or not at all (webhooks)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mailgate.core import chat, webhook_events
from mailgate.core import notices as n
from mailgate.core.channel_settings import ChatChannelSetting, WebhookSetting
from mailgate.core.notices import Event, NoticeContext, NoticeSpec, decide
from mailgate.core.settings import CustomerSetting, DefaultsSettings, Settings, TeamSetting

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
ALICE, ANN = "alice@acme.test", "ann@example.com"
ACME = chat.ChatChannel("acme-slack", "slack", "ACME_URL", "customer", "Acme", "fr")
DESK = chat.ChatChannel("support-mattermost", "mattermost", "MM_URL", "team", "support", "en")
ALL_HOOK = WebhookSetting("crm", ("*",), "CRM_URL", "CRM_SECRET")
CLOSING_HOOK = WebhookSetting("audit", (webhook_events.CLOSED,), "AUDIT_URL", "AUDIT_SECRET")
FACTS = {"status": "Open", "priority": "High", "type": "General", "team": "support"}
# The keys a webhook row's detail may have: system fields only.
WEBHOOK_KEYS = {
    "event", "ticket", "status", "priority", "type", "team", "assignee_id", "old_status",
    "by", "automatic", "due", "due_at",
}  # fmt: skip


def _event(kind: str, **kw: Any) -> Event:
    return Event(kind=kind, cause="e:1", ticket_number=7, requester=ALICE, **kw)


def _ctx(**kw: Any) -> NoticeContext:
    values: dict[str, Any] = {
        "now": NOW,
        "chat": (ACME, DESK),
        "webhooks": (ALL_HOOK,),
        "ticket_facts": {**FACTS, "assignee_id": 3},
    }
    return NoticeContext(**{**values, **kw})


def _chat(specs: tuple[NoticeSpec, ...]) -> list[tuple[str, str, bool]]:
    return [(s.kind, s.channel, bool(s.suppressed)) for s in specs if s.recipient[:5] == "chat:"]


def _hooks(specs: tuple[NoticeSpec, ...]) -> list[tuple[str, str]]:
    return [(s.channel, s.detail["event"]) for s in specs if s.kind == n.WEBHOOK]


def test_channels_are_named_and_speak_their_owners_language() -> None:
    """A channel without a name is "<owner>-<kind>", lower case, spaces as "-"; an
    account's speaks its language (else the default), a team's the default."""
    settings = Settings(
        defaults=DefaultsSettings(language="de"),
        teams=(
            TeamSetting("First Line", chat=(ChatChannelSetting("teams", "FL_URL"),)),
            TeamSetting("support"),
        ),
        customers=(
            CustomerSetting("Acme  Corp", domains=("acme.test",), language="fr",
                            chat=(ChatChannelSetting("slack", "ACME_URL"),)),
            CustomerSetting("Globex", domains=("globex.test",),
                            chat=(ChatChannelSetting("webhook", "G_URL", name="globex-feed"),)),
        ),
    )  # fmt: skip
    found = chat.channels(settings)
    assert list(found) == ["acme-corp-slack", "globex-feed", "first-line-teams"]
    assert [(c.owner_kind, c.owner, c.language) for c in found.values()] == [
        ("customer", "Acme  Corp", "fr"),
        ("customer", "Globex", "de"),
        ("team", "First Line", "de"),
    ]


CASES = [
    # (event, context overrides, [(kind, channel, suppressed?)])
    (_event(n.NEW_TICKET, sender=ALICE), {}, [("acknowledgement", "acme-slack", False)]),
    (
        _event(n.NEW_TICKET, sender=ALICE, assignee=ANN),
        {},
        [("acknowledgement", "acme-slack", False), ("assigned", "support-mattermost", False)],
    ),
    # Screening as for mail: automatic mail causes nothing; an unanswerable sender gets
    # no acknowledgement (nor does their account's channel), the team still hears.
    (_event(n.NEW_TICKET, sender=ALICE, assignee=ANN), {"automatic": True, "answerable": False}, []),
    (
        _event(n.NEW_TICKET, sender=ALICE, assignee=ANN),
        {"answerable": False},
        [("assigned", "support-mattermost", False)],
    ),
    (_event(n.CUSTOMER_REPLY, sender=ALICE), {"automatic": True}, []),
    # Unlike mail, a team's channel hears of a reply to an unassigned ticket.
    (_event(n.CUSTOMER_REPLY, sender=ALICE), {}, [("customer_replied", "support-mattermost", False)]),
    (_event(n.SUPPLIER_REPLY, sender="x@parts.test"), {}, [("supplier_replied", "support-mattermost", False)]),
    (_event(n.AGENT_REPLY), {"answerable": False}, [("agent_replied", "acme-slack", False)]),
    (_event(n.STATUS_CHANGE, status="Waiting"), {}, [("status_changed", "acme-slack", False)]),
    (_event(n.MESSAGE_TO_CLOSED, sender=ALICE), {}, [("closed_ticket", "acme-slack", False)]),
    (_event(n.MESSAGE_TO_CLOSED, sender=ALICE), {"answerable": False}, []),
    (_event(n.ASSIGNMENT, assignee=ANN), {}, [("assigned", "support-mattermost", False)]),
    # An agent who took it is not mailed about it; the team's channel is told.
    (_event(n.ASSIGNMENT, assignee=ANN, sender=ANN), {}, [("assigned", "support-mattermost", False)]),
    (_event(n.ASSIGNMENT), {}, []),
    (_event(n.SLA_DUE, due="resolution"), {}, [("reminder", "support-mattermost", False)]),
    (
        _event(n.STATUS_CHANGE, status="Waiting"),
        {"suppress": "told already"},
        [("status_changed", "acme-slack", True)],
    ),
    # Never about no ticket's notices or a supplier's own.
    (_event(n.MESSAGE_TO_SUPPLIER, supplier_addresses=("x@parts.test",)), {}, []),
    (_event(n.STATUS_CHANGE, status="Open", old_status="New", webhooks_only=True), {}, []),
]  # fmt: skip


@pytest.mark.parametrize(("event", "overrides", "expected"), CASES)
def test_chat_notices(event: Event, overrides: dict[str, Any], expected: list[Any]) -> None:
    assert _chat(decide(event, _ctx(**overrides))) == expected


def test_a_chat_row_names_its_channel_and_is_caused_once_per_channel() -> None:
    """recipient and rate key chat:<name>, the channel's language, mail's cause with the
    channel appended, the same system words as the mail row."""
    specs = decide(_event(n.STATUS_CHANGE, status="Waiting"), _ctx())
    mail, row = specs[0], specs[1]
    assert (mail.kind, mail.recipient, mail.cause) == (
        "status_changed",
        ALICE,
        "e:1:status_changed",
    )
    assert row == NoticeSpec(
        kind="status_changed",
        recipient="chat:acme-slack",
        language="fr",
        cause="e:1:status_changed:chat:acme-slack",
        status="Waiting",
        channel="acme-slack",
        rate_key="chat:acme-slack",
    )
    assert len({s.cause for s in specs}) == len(specs)


def test_the_channel_limit_counts_what_it_was_sent_within_the_hour() -> None:
    """chat_max_per_hour per channel: at the limit the row is kept, suppressed, with the
    reason; older notices and other channels do not count; webhooks are never limited."""
    full = [NOW - timedelta(minutes=m) for m in range(3)]

    def rows(recent: dict[str, list[datetime]]) -> list[str]:
        specs = decide(_event(n.AGENT_REPLY), _ctx(chat_max_per_hour=3, recent=recent))
        return [s.suppressed for s in specs if s.channel]

    assert rows({"chat:acme-slack": full, "webhook:crm": full * 9}) == [
        "rate limit: 3 notices to this channel in the last hour",
        "",  # the webhook's
    ]
    assert rows({"chat:acme-slack": [*full[:2], NOW - timedelta(minutes=61)]}) == ["", ""]
    assert rows({"chat:support-mattermost": full}) == ["", ""]


WEBHOOK_CASES = [
    (_event(n.NEW_TICKET, sender=ALICE), {}, ["ticket.created"]),
    (_event(n.NEW_TICKET, sender=ALICE, assignee=ANN), {}, ["ticket.created", "ticket.assigned"]),
    # Integrations want every event: automatic mail holds none back.
    (_event(n.NEW_TICKET, sender=ALICE), {"automatic": True, "answerable": False}, ["ticket.created"]),
    (_event(n.CUSTOMER_REPLY, sender=ALICE), {"automatic": True}, ["ticket.replied"]),
    (_event(n.AGENT_REPLY), {}, ["ticket.replied"]),
    (_event(n.ASSIGNMENT, assignee=ANN, sender=ANN), {}, ["ticket.assigned"]),
    (_event(n.ASSIGNMENT), {}, []),
    # A status change is the change itself (with the status it left); the requester's
    # status notice is not one (a merge sends it with nothing changed).
    (_event(n.STATUS_CHANGE, status="Waiting", old_status="Open", webhooks_only=True), {}, ["ticket.status_changed"]),
    (
        _event(n.STATUS_CHANGE, status="Closed", old_status="Open", webhooks_only=True),
        {"status_closed": True},
        ["ticket.status_changed", "ticket.closed"],
    ),
    (_event(n.STATUS_CHANGE, status="Waiting"), {}, []),
    (_event(n.SLA_DUE, due="first_response", assignee=ANN), {}, ["ticket.sla_breached"]),
    (_event(n.SLA_DUE, due="follow_up", assignee=ANN), {}, []),
    (_event(n.MESSAGE_TO_CLOSED, sender=ALICE), {}, []),
    (_event(n.SUPPLIER_REPLY, sender="x@parts.test"), {}, []),
]  # fmt: skip


@pytest.mark.parametrize(("event", "overrides", "names"), WEBHOOK_CASES)
def test_webhook_events(event: Event, overrides: dict[str, Any], names: list[str]) -> None:
    specs = decide(event, _ctx(**overrides))
    assert _hooks(specs) == [("crm", name) for name in names]
    for spec in specs:
        if spec.kind == n.WEBHOOK:
            assert spec.suppressed == "" and set(spec.detail) <= WEBHOOK_KEYS


def test_a_webhook_row_carries_system_fields_under_its_cause() -> None:
    """recipient and rate key webhook:<name>, cause "<event cause>:webhook:<name>:<event>",
    and the detail: the event, the ticket's number and system fields."""
    event = _event(n.STATUS_CHANGE, status="Closed", old_status="Open", webhooks_only=True)
    specs = decide(event, _ctx(status_closed=True))
    assert [(s.recipient, s.rate_key, s.cause) for s in specs] == [
        ("webhook:crm", "webhook:crm", "e:1:webhook:crm:ticket.status_changed"),
        ("webhook:crm", "webhook:crm", "e:1:webhook:crm:ticket.closed"),
    ]
    assert dict(specs[1].detail) == {
        "event": "ticket.closed",
        "ticket": 7,
        "status": "Closed",
        "old_status": "Open",
        "priority": "High",
        "type": "General",
        "team": "support",
        "assignee_id": 3,
    }
    replied = decide(_event(n.CUSTOMER_REPLY, sender=ALICE), _ctx(automatic=True))
    assert {k: replied[-1].detail[k] for k in ("by", "automatic")} == {
        "by": "customer",
        "automatic": True,
    }


def test_only_subscribed_webhooks_get_rows() -> None:
    """A webhook subscribed to no event of this one gets no row; "*" gets every one."""
    hooks = {"webhooks": (ALL_HOOK, CLOSING_HOOK)}
    assert _hooks(decide(_event(n.AGENT_REPLY), _ctx(**hooks))) == [("crm", "ticket.replied")]
    closing = _event(n.STATUS_CHANGE, status="Closed", old_status="Open", webhooks_only=True)
    assert _hooks(decide(closing, _ctx(status_closed=True, **hooks))) == [
        ("crm", "ticket.status_changed"),
        ("crm", "ticket.closed"),
        ("audit", "ticket.closed"),
    ]


def test_webhooks_only_writes_no_mail_and_nothing_without_a_ticket() -> None:
    """A fact for webhooks tells no person; an event about no ticket has no webhook row."""
    quiet = _event(n.STATUS_CHANGE, status="Open", old_status="New", webhooks_only=True)
    assert [s.kind for s in decide(quiet, _ctx())] == [n.WEBHOOK]
    refused = Event(kind=n.INTAKE_REFUSAL, cause="r:1", ticket_number=0, requester="", sender=ALICE)
    assert [s.kind for s in decide(refused, _ctx())] == [n.INTAKE_REFUSED]


def test_no_channels_and_no_webhooks_decide_as_before() -> None:
    """Without chat or webhooks, decide is mail's alone (the table of test_notices)."""
    event = _event(n.NEW_TICKET, sender=ALICE, assignee=ANN)
    plain = dataclasses.replace(_ctx(), chat=(), webhooks=())
    assert [(s.kind, s.recipient) for s in decide(event, plain)] == [
        ("acknowledgement", ALICE),
        ("assigned", ANN),
    ]
