"""The new text of a reply, apart from quotes and signatures, as a table."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mailparser_reply import EmailReplyParser

from mailgate.core import quote_patterns, quotes
from mailgate.core.message import parse
from mailgate.core.quotes import new_text
from mailgate.core.settings import LimitsSettings
from tests.conftest import CORPUS

CASES = [
    (
        "Thanks, works now.\n\nOn Mon, Jan 5, 2026 at 10:00 Support <s@x.test> wrote:\n> old",
        "Thanks, works now.",
    ),
    (
        "Danke!\n\nVon: Support <s@x.test>\nGesendet: Montag\nAn: h@x.test\nBetreff: x\n\nalt",
        "Danke!",
    ),
    ("Merci.\n\nLe lun. 5 janv. 2026 à 10:00, Support <s@x.test> a écrit :\n> ancien", "Merci."),
    (
        "Gracias.\n\nEl lun, 5 ene 2026 a las 10:00, Support (<s@x.test>) escribió:\n> hola",
        "Gracias.",
    ),
    ("Hi,\nmy printer is broken.\n\n-- \nBob\nACME Inc.", "Hi,\nmy printer is broken."),
    ("Yes.\n\nSent from my iPhone", "Yes."),
    ("A new question without any quote.", "A new question without any quote."),
    ("", ""),
    ("> only a quote\n> nothing new", "> only a quote\n> nothing new"),
]


@pytest.mark.parametrize(("body", "expected"), CASES)
def test_new_text(body: str, expected: str) -> None:
    """Quotes, reply headers (EN/DE/FR/ES) and signatures are cut; plain text stays whole."""
    assert new_text(body) == expected


# Lines that make or break reply headers, for the comparison below.
_PIECES = [
    "Thanks, works now.",
    "On Mon, Jan 5, 2026 at 10:00 Support <s@x.test> wrote:",
    "On Mon, Jan 5, 2026 at 10:00",
    "Support <s@x.test> wrote:",
    "> old text",
    "> > older: text",
    "From: Support <s@x.test>",
    "Sent: Monday, January 5, 2026 10:00",
    "To: carol@customer.test",
    "Subject: RE: VPN",
    "*From:* Support",
    "Von: Support",
    "Gesendet: Montag",
    "De : Support",
    "Objet : VPN",
    "Le lun. 5 janv. 2026 à 10:00, Support <s@x.test> a écrit :",
    "-----Original Message-----",
    "2026-01-05 10:30:01 ERROR vpn: tunnel down:",
    "Data: 12345",
    "-- ",
    "Best regards,",
    "Sent from my iPhone",
    "",
    "   ",
    # Where the signature pattern may start, or nearly: dashes, separators, phrases.
    "- an item",
    "---",
    "__",
    "_" * 40,
    " " + "-" * 32,
    "> Thanks,",
    "Kind Regards",
    "Gesendet von meinem Telefon",
    "CAUTION: external mail",
    "\u00a0",
    "x -----Oprindelig meddelelse-----",
    "Fra: Support",
    "Emne: VPN",
]


@given(st.lists(st.sampled_from(_PIECES), max_size=40))
@settings(max_examples=400, deadline=None)
def test_windowed_search_finds_what_the_library_finds(lines: list[str]) -> None:
    """Searching only around candidate lines gives the library's own first reply."""
    body = "\n".join(lines)
    ours = quotes._parser.read(body).replies[0]
    theirs = EmailReplyParser(languages=list(quotes.LANGUAGES)).read(body).replies[0]
    assert (ours.content, ours.body) == (theirs.content, theirs.body)


def test_windowed_search_agrees_on_the_corpus() -> None:
    """The same on every text body of the Zammad corpus (real mail from many clients)."""
    compared = 0
    for box in sorted(CORPUS.glob("*.box")):
        body = parse(box.read_bytes(), LimitsSettings()).text
        if not body.strip():
            continue
        ours = quotes._parser.read(body).replies[0]
        theirs = EmailReplyParser(languages=list(quotes.LANGUAGES)).read(body).replies[0]
        assert (ours.content, ours.body) == (theirs.content, theirs.body), box.name
        compared += 1
    assert compared > 100


def _library_signature(text: str) -> str:
    found = quote_patterns.patterns(tuple(quotes._parser.languages)).signature.search(text)
    return found.group() if found else ""


def test_the_library_patterns_have_the_known_shape() -> None:
    """mail-parser-reply's patterns are the ones the cheaper searches were made for;
    another version falls back to the library's whole-text searches (slower)."""
    found = quote_patterns.patterns(tuple(quotes._parser.languages))
    assert found.signature_line is not None
    assert found.header_start is not None


@given(st.lists(st.sampled_from(_PIECES), max_size=30), st.integers(0, 2000), st.integers(0, 2000))
@settings(max_examples=300, deadline=None)
def test_header_search_finds_what_finditer_finds(lines: list[str], start: int, size: int) -> None:
    """Trying the header pattern only where a match can start finds what ``finditer``
    finds, in any part of the text."""
    found = quote_patterns.patterns(tuple(quotes._parser.languages))
    body = "\n".join(lines)
    start = min(start, len(body))
    end = min(len(body), start + size)
    ours = quote_patterns.matches(found.header, found.header_start, body, start, end)
    theirs = found.header.finditer(body, start, end)
    assert [(m.span(), m.groups()) for m in ours] == [(m.span(), m.groups()) for m in theirs]


@given(st.lists(st.sampled_from(_PIECES), max_size=40), st.sampled_from(["\n", "\n\n", " \n"]))
@settings(max_examples=400, deadline=None)
def test_signature_search_finds_what_the_library_finds(lines: list[str], joint: str) -> None:
    """Trying the signature pattern only around the lines where it can start finds the
    match the library's search over every character finds."""
    found = quote_patterns.patterns(tuple(quotes._parser.languages))
    body = joint.join(lines)
    assert quote_patterns.signature(found, body) == _library_signature(body)


def test_signature_search_agrees_on_the_corpus() -> None:
    found = quote_patterns.patterns(tuple(quotes._parser.languages))
    for box in sorted(CORPUS.glob("*.box")):
        body = parse(box.read_bytes(), LimitsSettings()).text
        assert quote_patterns.signature(found, body) == _library_signature(body), box.name
