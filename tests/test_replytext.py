"""The new text of a reply, apart from quotes and signatures, as a table."""

from __future__ import annotations

import pytest

from mailgate.core.quotes import new_text

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
