"""The Zammad corpus: every real-world message goes through ingest, and agrees with
Zammad's expected answers at least as often as measured (README "Corpus")."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailgate.core.settings import Settings
from mailgate.db.models import InboundMessage, TicketMessage
from mailgate.db.store import Store
from mailgate.inbound.intake import Envelope, accept
from mailgate.tickets.mail import process
from tests.conftest import CORPUS
from tests.corpus import report

BOXES = sorted(CORPUS.glob("*.box"))
# Measured with `python -m tests.corpus`; a change that lowers one fails here.
FLOORS = {"from": 110, "to": 109, "subject": 114, "body": 105, "attachments": 107}


def test_corpus_is_present() -> None:
    """The corpus is in the repository (tests/data/zammad), 116 messages."""
    assert len(BOXES) == 116


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_corpus_message_ingests_to_one_outcome(store: Store, settings: Settings, now) -> None:  # type: ignore[no-untyped-def]
    """All 116 messages are stored and processed without a crash, each to exactly one outcome."""
    for box in BOXES:
        accepted = accept(
            store, box.read_bytes(), source="ingest", envelope=Envelope(), max_bytes=10**8, now=now
        )
        result = process(store, accepted.inbound_id, settings=settings, now=now)
        assert result.state == "processed", (box.name, result)
    with store.transaction() as session:
        states = dict(
            session.execute(
                select(InboundMessage.state, func.count()).group_by(InboundMessage.state)
            ).all()
        )
        messages = session.scalar(select(func.count()).select_from(TicketMessage))
    # Some corpus mails reuse another's Message-ID with other content (test variants);
    # none is the same message twice, so each is its own ticket message.
    assert states == {"processed": len(BOXES)}
    assert messages == len(BOXES)


def test_agreement_with_zammad_does_not_regress() -> None:
    """From, To, Subject, body and attachments agree with Zammad's answers at least as often as measured."""
    table = report()
    for field, floor in FLOORS.items():
        ok, total, bad = table[field]
        assert ok >= floor, f"{field}: {ok}/{total} agree, floor {floor}; differ: {bad}"


def test_corpus_is_the_unchanged_copy_its_source_names() -> None:
    """tests/data/zammad is inside the repository, and every file is byte for byte the copy
    SOURCE.md describes (the checksums in SHA256SUMS were taken when it was copied)."""
    assert Path(__file__).resolve().parent in CORPUS.parents
    sums = (CORPUS / "SHA256SUMS").read_text().split("\n")
    listed = dict(reversed(line.split("  ", 1)) for line in sums if line)
    assert len(listed) == 233  # 116 messages, 116 expected results, SOURCE.md
    for name, digest in listed.items():
        assert hashlib.sha256((CORPUS / name).read_bytes()).hexdigest() == digest, name
