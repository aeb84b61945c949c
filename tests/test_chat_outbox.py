"""Chat and webhook rows through the real write side (issue 24): mail in, agents' changes,
the outbox rows they write, on a SQLite file and (CI) PostgreSQL.

An account (Acme) with a Slack channel, its team (support) with a Mattermost channel, a
webhook for every event and one for ticket.closed only.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from mailgate.core import notices
from mailgate.core.channel_settings import ChatChannelSetting, WebhookSetting
from mailgate.core.settings import Settings, SlaSettings
from mailgate.core.states import PENDING_NOTICES
from mailgate.db.models import Agent, MessageIdEntry, Notice
from mailgate.inbound.intake import Envelope, accept
from mailgate.tickets import changes, messages
from mailgate.tickets.actors import Actor, agent_actor
from mailgate.tickets.mail import ProcessResult, process
from mailgate.tickets.notify import notify, ticket_event
from mailgate.tickets.records import lock_ticket
from tests.mail import build
from tests.web_support import Site, make_site

MARK = "QZSECRETMARK42"
ACME_SLACK = "acme-slack"
SUPPORT_MM = "support-mattermost"


def _channels(settings: Settings) -> Settings:
    acme = dataclasses.replace(
        settings.customers[0], language="fr", chat=(ChatChannelSetting("slack", "ACME_SLACK"),)
    )
    support = dataclasses.replace(
        settings.teams[0], chat=(ChatChannelSetting("mattermost", "SUPPORT_MM"),)
    )
    return dataclasses.replace(
        settings,
        customers=(acme, *settings.customers[1:]),
        teams=(support, *settings.teams[1:]),
        webhooks=(
            WebhookSetting("crm", ("*",), "CRM_URL", "CRM_SECRET"),
            WebhookSetting("closer", ("ticket.closed",), "CLOSER_URL", "CLOSER_SECRET"),
        ),
        outbound=dataclasses.replace(settings.outbound, chat_max_per_hour=3),
        sla=SlaSettings(first_response_minutes={"Normal": 10}),
    )


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    s = make_site(db_url, seed=False, adjust=_channels)
    yield s
    s.store.engine.dispose()


def _mail(site: Site, raw: bytes) -> ProcessResult:
    accepted = accept(
        site.store, raw, source="ingest", envelope=Envelope(), max_bytes=10**7, now=site.clock
    )
    return process(site.store, accepted.inbound_id, settings=site.settings, now=site.clock)


def _open(site: Site, **fields: Any) -> int:
    values = {"sender": "Carol <carol@acme.test>", "subject": "Printer", "body": "Broken.\n"}
    result = _mail(site, build(**{**values, **fields}))
    assert result.ticket_number is not None
    return result.ticket_number


def _acknowledgement(site: Site, number: int) -> Notice:
    """The mail acknowledgement of ticket ``number`` (its id is its number)."""
    with site.store.transaction() as session:
        query = select(Notice).where(
            Notice.ticket_id == number, Notice.kind == "acknowledgement", Notice.channel == ""
        )
        found = session.scalar(query)
        assert found is not None
        return found


def _agent(site: Site, email: str) -> Actor:
    with site.store.transaction() as session:
        agent = session.scalar(select(Agent).where(Agent.email == email))
        assert agent is not None
        return agent_actor(agent)


def _rows(site: Site, after: int = 0) -> list[Notice]:
    """The chat and webhook rows, oldest first (``after``: only those past that id)."""
    with site.store.transaction() as session:
        query = select(Notice).where(Notice.channel != "", Notice.id > after)
        return list(session.scalars(query.order_by(Notice.id)))


def _last_id(site: Site) -> int:
    with site.store.transaction() as session:
        return session.scalar(select(func.max(Notice.id))) or 0


def _shape(row: Notice) -> tuple[Any, ...]:
    return (row.kind, row.channel, row.recipient, row.rate_key, row.language, row.state)


def _events(rows: list[Notice], hook: str = "crm") -> list[tuple[str, str]]:
    return [(r.detail["event"], r.detail["status"]) for r in rows if r.channel == hook]


def test_a_new_ticket_and_its_assignment_tell_the_channels_and_the_webhooks(site: Site) -> None:
    """Mail opens a ticket: the account's channel gets the acknowledgement (in the
    account's language, the mail row's system words), the webhook ticket.created with
    system fields; assigning it tells the team's channel and the webhook. Every row is
    handed to the after-commit hook, none is indexed as a Message-ID of the ticket."""
    woken: list[int] = []
    site.store.after_commit.append(lambda info: woken.extend(info.get(PENDING_NOTICES, ())))
    number = _open(site)
    first = _rows(site)
    assert [_shape(r) for r in first] == [
        ("acknowledgement", ACME_SLACK, "chat:acme-slack", "chat:acme-slack", "fr", "pending"),
        ("webhook", "crm", "webhook:crm", "webhook:crm", "en", "pending"),
    ]
    ack, mail = first[0], _acknowledgement(site, number)
    assert mail.recipient == "carol@acme.test" and mail.cause.startswith("inbound:")
    # Mail's cause with the channel appended; the same system words as mail's row.
    assert ack.cause == f"{mail.cause}:chat:acme-slack"
    assert ack.detail == mail.detail == {"status": "New"}
    with site.store.transaction() as session:
        indexed = set(session.scalars(select(MessageIdEntry.notice_id)))
    cause = mail.cause.removesuffix(":acknowledgement")
    assert first[1].cause == f"{cause}:webhook:crm:ticket.created"
    assert first[1].detail == {
        "event": "ticket.created",
        "ticket": number,
        "status": "New",
        "priority": "Normal",
        "type": "General",
        "team": "support",
        "assignee_id": None,
    }
    assert mail.id in indexed and not indexed & {r.id for r in first}

    bob, ann = _agent(site, "bob@example.com"), _agent(site, "ann@example.com")
    before = _last_id(site)
    with site.store.transaction() as session:
        changes.assign(
            session, settings=site.settings, number=number, actor=bob, assignee=ann.email,
            at=site.clock(),
        )  # fmt: skip
    assigned = _rows(site, before)
    assert [_shape(r) for r in assigned] == [
        ("assigned", SUPPORT_MM, "chat:support-mattermost", "chat:support-mattermost", "en", "pending"),
        ("webhook", "crm", "webhook:crm", "webhook:crm", "en", "pending"),
    ]  # fmt: skip
    assert assigned[1].detail["event"] == "ticket.assigned"
    assert assigned[1].detail["assignee_id"] == ann.agent_id
    with site.store.transaction() as session:
        told = session.scalars(select(Notice.recipient).where(Notice.id > before))
        assert sorted(told) == ["ann@example.com", "chat:support-mattermost", "webhook:crm"]
    assert {r.id for r in first + assigned} <= set(woken)


def test_an_agent_taking_a_ticket_is_not_mailed_but_the_team_channel_is_told(site: Site) -> None:
    number = _open(site)
    ann = _agent(site, "ann@example.com")
    before = _last_id(site)
    with site.store.transaction() as session:
        changes.assign(
            session, settings=site.settings, number=number, actor=ann, assignee=ann.email,
            at=site.clock(),
        )  # fmt: skip
    with site.store.transaction() as session:
        told = sorted(session.scalars(select(Notice.recipient).where(Notice.id > before)))
    assert told == ["chat:support-mattermost", "webhook:crm"]


def test_automatic_mail_tells_no_channel_but_every_webhook(site: Site) -> None:
    """An out-of-office opens a ticket and answers one: no chat row at all (mail's are
    suppressed), while the webhook still gets ticket.created and ticket.replied, marked
    automatic."""
    robot = {"sender": "robot@acme.test", "headers": {"Auto-Submitted": "auto-replied"}}
    number = _open(site, subject="Out of office", **robot)
    rows = _rows(site)
    assert [(r.kind, r.channel, r.detail["event"]) for r in rows] == [
        ("webhook", "crm", "ticket.created")
    ]
    assert _acknowledgement(site, number).state == "suppressed"
    carol = _open(site)
    with site.store.transaction() as session:
        # Assigned, so that mail has someone to tell (and suppresses it).
        lock_ticket(session, number=carol).assignee_id = _agent(site, "ann@example.com").agent_id
    ack = _acknowledgement(site, carol).message_id
    before = _last_id(site)
    result = _mail(site, build(in_reply_to=f"<{ack}>", subject="Automatic reply", **robot))
    assert result.outcome == "automatic" and result.ticket_number == carol
    with site.store.transaction() as session:
        written = session.execute(select(Notice.recipient, Notice.state).where(Notice.id > before))
        assert sorted(tuple(row) for row in written) == [
            ("ann@example.com", "suppressed"),
            ("webhook:crm", "pending"),
        ]
    rows = _rows(site, before)
    assert [(r.channel, r.detail["event"], r.detail["automatic"]) for r in rows] == [
        ("crm", "ticket.replied", True)
    ]


def test_the_same_event_again_writes_nothing_twice(site: Site) -> None:
    """Processing the same stored mail again, or notifying its event again, adds no row:
    every chat and webhook row's cause is unique."""
    result = _mail(site, build(sender="carol@acme.test"))
    assert result.ticket_number is not None
    before = _rows(site)
    again = process(site.store, result.inbound_id, settings=site.settings, now=site.clock)
    assert again.ticket_number == result.ticket_number
    with site.store.transaction() as session:
        ticket = lock_ticket(session, number=result.ticket_number)
        cause = f"inbound:{result.inbound_id}"
        event = ticket_event(session, ticket, notices.NEW_TICKET, cause, sender=ticket.requester)
        written = notify(session, event, ticket=ticket, settings=site.settings, now=site.clock())
    assert written == []
    assert [r.id for r in _rows(site)] == [r.id for r in before]


def test_a_channel_over_its_hourly_limit_keeps_the_row_suppressed(site: Site) -> None:
    """chat_max_per_hour (3 here) counts what a channel was sent in the last hour: the
    acknowledgement and two replies go, the third reply's row is kept suppressed with
    the reason (its mail is not limited); an hour later the channel is told again."""
    number = _open(site)
    ann = _agent(site, "ann@example.com")

    def answer() -> None:
        with site.store.transaction() as session:
            messages.reply(
                session, settings=site.settings, number=number, actor=ann, body="Done.",
                at=site.clock(),
            )  # fmt: skip

    for _ in range(3):
        answer()
    slack = [r for r in _rows(site) if r.channel == ACME_SLACK]
    assert [(r.kind, r.state) for r in slack] == [
        ("acknowledgement", "pending"),
        ("agent_replied", "pending"),
        ("agent_replied", "pending"),
        ("agent_replied", "suppressed"),
    ]
    assert slack[-1].last_error == "rate limit: 3 notices to this channel in the last hour"
    assert slack[-1].next_attempt_at is None
    with site.store.transaction() as session:
        mails = session.scalars(select(Notice.state).where(Notice.kind == "agent_replied",
                                                           Notice.channel == ""))  # fmt: skip
        assert list(mails) == ["pending"] * 3
    site.clock.advance(minutes=61)
    answer()
    assert [r.state for r in _rows(site) if r.channel == ACME_SLACK][-1] == "pending"


def test_webhooks_hear_every_status_change_reply_and_close_and_nothing_of_content(
    site: Site,
) -> None:
    """An agent's reply that sets Waiting, the customer's answer that ends the wait and
    the close: ticket.status_changed for each step (with the status left), ticket.replied
    for both replies, ticket.closed to both webhooks; the "closer" webhook gets that one
    only. What the customer wrote (name, subject, body) is in no chat or webhook row."""
    number = _open(site, sender=f'"Carol {MARK}" <carol@acme.test>', subject=f"Help {MARK}",
                   body=f"The printer {MARK} is on fire.\n")  # fmt: skip
    ann = _agent(site, "ann@example.com")
    with site.store.transaction() as session:
        messages.reply(
            session, settings=site.settings, number=number, actor=ann,
            body=f"Agent text {MARK}", at=site.clock(), status="Waiting",
        )  # fmt: skip
        messages.customer_reply(
            session, settings=site.settings, number=number, author="carol@acme.test",
            body=f"Still broken {MARK}", at=site.clock(),
        )  # fmt: skip
        changes.close(session, settings=site.settings, number=number, actor=ann, at=site.clock())
    rows = _rows(site)
    assert _events(rows) == [
        ("ticket.created", "New"),
        ("ticket.status_changed", "Open"),
        ("ticket.status_changed", "Waiting"),
        ("ticket.replied", "Waiting"),
        ("ticket.status_changed", "Open"),
        ("ticket.replied", "Open"),
        ("ticket.status_changed", "Closed"),
        ("ticket.closed", "Closed"),
    ]
    olds = [r.detail.get("old_status") for r in rows if r.channel == "crm"]
    assert olds == [None, "New", "Open", None, "Waiting", None, "Open", "Open"]
    assert [r.detail.get("by") for r in rows if r.detail.get("event") == "ticket.replied"] == [
        "agent",
        "customer",
    ]
    assert _events(rows, "closer") == [("ticket.closed", "Closed")]
    # The account's channel: acknowledgement, the reply, the close's status notice.
    slack = [(r.kind, r.detail.get("status")) for r in rows if r.channel == ACME_SLACK]
    assert slack == [
        ("acknowledgement", "New"),
        ("agent_replied", "Waiting"),
        ("status_changed", "Closed"),
    ]
    # The team's channel: the customer's reply to the unassigned ticket.
    assert [r.kind for r in rows if r.channel == SUPPORT_MM] == ["customer_replied"]
    for row in rows:
        fields = [row.kind, row.recipient, row.channel, row.cause, row.language, row.rate_key,
                  row.in_reply_to, row.last_error, json.dumps(row.detail)]  # fmt: skip
        assert not any(MARK in f for f in fields), row.cause


def test_a_target_met_late_is_a_breach_for_the_webhooks(site: Site) -> None:
    """The first response after its target (10 minutes) records the breach with no
    reminder; the webhook hears ticket.sla_breached all the same."""
    number = _open(site)
    site.clock.advance(minutes=11)
    ann = _agent(site, "ann@example.com")
    with site.store.transaction() as session:
        messages.reply(
            session, settings=site.settings, number=number, actor=ann, body="Sorry.",
            at=site.clock(),
        )  # fmt: skip
    breached = [r for r in _rows(site) if r.detail.get("event") == "ticket.sla_breached"]
    assert [(r.channel, r.detail["due"]) for r in breached] == [("crm", "first_response")]
    assert breached[0].detail["due_at"].startswith("2026-01-05T09:40")
