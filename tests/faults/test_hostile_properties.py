"""Hostile input, property-based (issue 10): the parser, the screening and the thread
resolver over arbitrary and broken mail never fail but in the documented way."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailgate.core.message import ParsedMessage, ParseRefused, parse
from mailgate.core.screening import ScreenContext, screen
from mailgate.core.settings import LimitsSettings
from mailgate.threading.resolver import ThreadClues, TicketRef, resolve
from mailgate.threading.tokens import (
    mint_message_id,
    read_message_id,
    read_reply_token,
    reply_token,
)
from tests.conftest import SECRET

pytestmark = pytest.mark.faults

LIMITS = LimitsSettings()
# Per example: generous for CI machines, tight enough to catch anything super-linear.
BOUND_SECONDS = 5.0
PROPERTY = settings(
    max_examples=150,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
)

HEADER_NAMES = st.sampled_from(
    [
        "From",
        "To",
        "Cc",
        "Subject",
        "Message-ID",
        "In-Reply-To",
        "References",
        "Date",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Content-Disposition",
        "MIME-Version",
        "Auto-Submitted",
        "Precedence",
        "List-Id",
        "Return-Path",
        "Authentication-Results",
        "X-Autoreply",
        "Delivered-To",
    ]
)
NASTY_TEXT = st.lists(
    st.sampled_from(
        [
            *"ab<>@\"'()[];:,.=?%+-_/\\ \t\r\n\x00\x7f",
            "é",
            "\u202e",
            "=?utf-8?B?",
            "=?x-bogus?Q?",
            "?=",
            "../",
            "\udcff",
        ]
    ),
    max_size=60,
).map("".join)
CONTENT_TYPES = st.sampled_from(
    [
        "multipart/mixed",
        "multipart/alternative; boundary=",
        'multipart/mixed; boundary="b"',
        "text/plain; charset=x-unknown-charset",
        "text/plain; charset=utf-7",
        "text/html; charset=",
        "message/rfc822",
        "message/delivery-status",
        "application/ms-tnef",
        "application/octet-stream; name*=utf-8''%2e%2e%2fetc",
        ";;;",
    ]
)


@st.composite
def broken_mime(draw: st.DrawFn) -> bytes:
    """Structured but broken MIME: real header names with hostile values, boundaries
    that lie, truncated parts, bad encodings and charsets."""
    lines = [f"{draw(HEADER_NAMES)}:{draw(NASTY_TEXT)}" for _ in range(draw(st.integers(0, 12)))]
    boundary = draw(st.sampled_from(["b", "", "--", "b" * 80, "x y"]))
    lines.append(f'Content-Type: {draw(CONTENT_TYPES)}; boundary="{boundary}"')
    text = "\r\n".join(lines) + "\r\n\r\n"
    for _ in range(draw(st.integers(0, 6))):
        text += f"--{draw(st.sampled_from([boundary, 'b', 'other']))}\r\n"
        text += f"Content-Type: {draw(CONTENT_TYPES)}\r\n"
        enc = draw(st.sampled_from(["base64", "quoted-printable", "x-uuencode", "7bit", "bogus"]))
        text += f"Content-Transfer-Encoding: {enc}\r\n"
        name = draw(NASTY_TEXT)
        text += f'Content-Disposition: attachment; filename="{name}"\r\n\r\n'
        text += draw(NASTY_TEXT) + "\r\n"
    if draw(st.booleans()):
        text += f"--{boundary}--\r\n"
    raw = text.encode("utf-8", "surrogateescape")
    return raw + draw(st.binary(max_size=64))


def _parse_bounded(raw: bytes) -> ParsedMessage | None:
    started = time.monotonic()
    try:
        parsed: ParsedMessage | None = parse(raw, LIMITS)
    except ParseRefused:
        parsed = None
    assert time.monotonic() - started < BOUND_SECONDS
    return parsed


def _screen_and_resolve(parsed: ParsedMessage, raw: bytes) -> None:
    screening = screen(parsed, ScreenContext(loop_marker="support@example.com"), raw=raw)
    assert isinstance(screening.category, str)
    resolution = resolve(
        parsed,
        AnyTicket(),
        tag_prefix="Ticket#",
        secrets=(SECRET,),
        clues=ThreadClues(envelope_to=("support@example.com",)),
    )
    # Nothing in random mail carries a token signed with SECRET, and the index is
    # empty: the only ways in are a subject tag (sender takes part: nobody does).
    assert resolution.ticket_id is None, resolution


class AnyTicket:
    """A lookup in which every ticket number exists and nobody takes part: whatever
    a forged token or tag names would be found, so only the signature stands between."""

    def ticket_for_message_ids(self, message_ids: tuple[str, ...]) -> int | None:
        return None

    def ticket_by_number(self, number: int) -> TicketRef | None:
        return TicketRef(id=number + 1, number=number, participants=frozenset())

    def ticket_by_id(self, ticket_id: int) -> TicketRef | None:
        return TicketRef(id=ticket_id, number=ticket_id - 1, participants=frozenset())


@PROPERTY
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_parse_or_are_refused(raw: bytes) -> None:
    parsed = _parse_bounded(raw)
    if parsed is not None:
        _screen_and_resolve(parsed, raw)


@PROPERTY
@given(broken_mime())
def test_broken_mime_parses_or_is_refused_then_screens_and_resolves(raw: bytes) -> None:
    parsed = _parse_bounded(raw)
    if parsed is not None:
        _screen_and_resolve(parsed, raw)


@PROPERTY
@given(
    number=st.integers(1, 10**12 - 1),
    nonce=st.from_regex(r"[a-z0-9]{1,32}", fullmatch=True),
    signature=st.from_regex(r"[a-z2-7]{16}", fullmatch=True),
    other_secret=st.text(min_size=1, max_size=40),
)
def test_forged_tokens_never_resolve(
    number: int, nonce: str, signature: str, other_secret: str
) -> None:
    """Well-formed tokens with a guessed signature, or signed with another secret, name
    no ticket: in a Message-ID, a plus-address, or through the resolver."""
    forged_mid = f"mg.{number}.{nonce}.{signature}@example.com"
    genuine_mid = mint_message_id(number, SECRET, "example.com", nonce)
    if forged_mid != genuine_mid:
        assert read_message_id(forged_mid, (SECRET,)) is None
    forged_token = f"{number}-{signature}"
    if forged_token != reply_token(number, SECRET):
        assert read_reply_token(forged_token, (SECRET,)) is None
    if other_secret != SECRET:
        assert read_message_id(mint_message_id(number, other_secret, "x.test"), (SECRET,)) is None
        assert read_reply_token(reply_token(number, other_secret), (SECRET,)) is None
    # Off by one: a genuine signature for another ticket does not carry over.
    moved = reply_token(number, SECRET).replace(f"{number}-", f"{number + 1}-", 1)
    assert read_reply_token(moved, (SECRET,)) is None
    raw = (
        f"From: mallory@evil.test\r\nTo: support+{forged_token}@example.com\r\n"
        f"Subject: hi\r\nIn-Reply-To: <{forged_mid}>\r\n"
        f"Message-ID: <x{number}@evil.test>\r\n\r\nlet me in\r\n"
    ).encode()
    parsed = parse(raw, LIMITS)
    forged_all = forged_mid != genuine_mid and forged_token != reply_token(number, SECRET)
    if forged_all:
        found = resolve(parsed, AnyTicket(), tag_prefix="Ticket#", secrets=(SECRET,))
        assert found.ticket_id is None, found


def test_a_genuine_token_does_resolve() -> None:
    """The control for the property above: the lookup would find a real token."""
    raw = (
        f"From: jo@acme.test\r\nTo: support+{reply_token(42, SECRET)}@example.com\r\n"
        "Subject: hi\r\nMessage-ID: <a@acme.test>\r\n\r\nhello\r\n"
    ).encode()
    found = resolve(parse(raw, LIMITS), AnyTicket(), tag_prefix="Ticket#", secrets=(SECRET,))
    assert found.ticket_id == 43 and found.method == "token"
