"""intake.policy: who may open a ticket by email; refused mail is kept, answered once
without content, never answered when automatic, and can be accepted by an agent."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from sqlalchemy import select

from mailgate.core.directory import CustomerView
from mailgate.core.intake_policy import Verdict, admits
from mailgate.core.settings import CustomerSetting, IntakeSettings, Settings
from mailgate.db.models import HistoryEvent, InboundMessage, Notice
from mailgate.db.requeue import accept as accept_refused
from mailgate.db.store import Store
from mailgate.inbound.intake import Envelope, accept
from mailgate.tickets.mail import ProcessResult, process
from tests.conftest import make_settings
from tests.worker_support import mail, ready_store

ACME = CustomerView(1, "Acme", ("acme.test",), ("solo@else.test",), ("boss@acme.test",), None, "fr")


@pytest.mark.parametrize(
    ("policy", "sender", "customer", "allowed"),
    [
        ("anyone", "x@nowhere.test", None, True),
        ("known", "x@nowhere.test", None, False),
        ("known", "jo@acme.test", ACME, True),
        ("admins", "jo@acme.test", ACME, False),
        ("admins", "boss@acme.test", ACME, True),
        ("admins", "x@nowhere.test", None, False),
    ],
)
def test_policy_table(
    policy: str, sender: str, customer: CustomerView | None, allowed: bool
) -> None:
    """Each policy admits exactly the senders it names."""
    verdict = admits(policy, sender, customer)
    assert isinstance(verdict, Verdict) and verdict.allowed is allowed and verdict.reason


@pytest.fixture
def psettings(db_url: str) -> Settings:
    return make_settings(
        db_url,
        intake=IntakeSettings(policy="admins"),
        customers=(CustomerSetting("Acme", domains=("acme.test",), admins=("boss@acme.test",)),),
    )


@pytest.fixture
def pstore(psettings: Settings) -> Iterator[Store]:
    store = ready_store(psettings)
    yield store
    store.engine.dispose()


@pytest.fixture
def deliver(
    pstore: Store, psettings: Settings, now: Callable[[], datetime]
) -> Callable[..., ProcessResult]:
    def run(settings: Settings | None = None, **kwargs: object) -> ProcessResult:
        inbound_id = accept(
            pstore,
            mail(**kwargs),
            source="test",
            envelope=Envelope(),
            max_bytes=10**6,
            now=now,  # type: ignore[arg-type]
        ).inbound_id
        return process(pstore, inbound_id, settings=settings or psettings, now=now)

    return run


def _notices(store: Store) -> list[tuple[str, str, str, int | None, int | None, str]]:
    with store.transaction() as session:
        return [
            (n.kind, n.recipient, n.state, n.ticket_id, n.inbound_id, n.last_error)
            for n in session.scalars(select(Notice).order_by(Notice.id))
        ]


def test_refused_sender_is_kept_and_answered_once(
    deliver: Callable[..., ProcessResult], pstore: Store
) -> None:
    """A refused message is kept with its reason and answered once; the next answer is suppressed."""
    first = deliver(sender="jo@acme.test", subject="please")
    assert (first.state, first.outcome, first.ticket_number) == (
        "processed",
        "refused_policy",
        None,
    )
    assert first.error == "jo@acme.test is not an admin of customer account Acme"
    second = deliver(sender="jo@acme.test", subject="again")
    assert second.outcome == "refused_policy"
    assert _notices(pstore) == [
        ("intake_refused", "jo@acme.test", "pending", None, first.inbound_id, ""),
        (
            "intake_refused",
            "jo@acme.test",
            "suppressed",
            None,
            second.inbound_id,
            "sender was already told in the last 24 hours",
        ),
    ]
    with pstore.transaction() as session:
        row = session.get(InboundMessage, first.inbound_id)
        assert row is not None and row.raw  # kept for the agents


def test_automatic_mail_from_refused_sender_gets_no_answer(
    deliver: Callable[..., ProcessResult], pstore: Store
) -> None:
    """An auto-reply from a refused sender is kept; its notice is suppressed with the reason."""
    result = deliver(sender="x@nowhere.test", headers=["Auto-Submitted: auto-replied"])
    assert result.outcome == "refused_policy"
    (notice,) = _notices(pstore)
    assert notice[2] == "suppressed" and "Auto-Submitted: auto-replied" in notice[5]


def test_hourly_cap_applies_to_refusal_answers(
    deliver: Callable[..., ProcessResult], pstore: Store, psettings: Settings
) -> None:
    """The hourly cap on automatic mail to one address holds for refusal answers too."""
    capped = dataclasses.replace(
        psettings, outbound=dataclasses.replace(psettings.outbound, max_per_hour_per_address=0)
    )
    deliver(settings=capped, sender="x@nowhere.test")
    (notice,) = _notices(pstore)
    assert notice[2] == "suppressed" and notice[5].startswith(
        "rate limit: 0 notices to this address"
    )


def test_admin_opens_and_participants_reply(
    deliver: Callable[..., ProcessResult], pstore: Store
) -> None:
    """An admin opens a ticket; a Cc'd colleague (a participant) may reply to it."""
    opened = deliver(
        sender="boss@acme.test", message_id="open@acme.test", to="support@example.com, jo@acme.test"
    )
    assert opened.outcome == "new_ticket"
    reply = deliver(
        sender="jo@acme.test",
        subject="Re: Help please",
        headers=["In-Reply-To: <open@acme.test>"],
    )
    assert (reply.outcome, reply.ticket_number) == ("reply", opened.ticket_number)
    # Nobody was refused: the only notice is the admin's acknowledgement.
    assert [(n[0], n[1]) for n in _notices(pstore)] == [("acknowledgement", "boss@acme.test")]


def test_agent_accepts_refused_message(
    deliver: Callable[..., ProcessResult],
    pstore: Store,
    psettings: Settings,
    now: Callable[[], datetime],
) -> None:
    """`inbound accept` turns a refused message into a ticket; the history says who let it in."""
    refused = deliver(sender="x@nowhere.test")
    with pstore.transaction() as session:
        accept_refused(session, refused.inbound_id, by="ann@example.com")
    opened = process(pstore, refused.inbound_id, settings=psettings, now=now)
    assert opened.outcome == "new_ticket" and opened.ticket_number is not None
    with pstore.transaction() as session:
        events = [
            (e.actor, e.action)
            for e in session.scalars(select(HistoryEvent).order_by(HistoryEvent.id))
        ]
    assert ("ann@example.com", "accepted") in events
