"""MAIL and RCPT addresses: the receiver reads the plain <local@domain> form itself
(inbound/smtp/addresses.py) and must answer exactly as aiosmtpd's stdlib-parser reading
would (protocol._getaddr)."""

from __future__ import annotations

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate.inbound.smtp.addresses import plain_address
from mailgate.inbound.smtp.protocol import SMTPProtocol

ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
PIECES = st.text(st.sampled_from(list(ATEXT + ".")), max_size=8)
TAILS = st.text(st.sampled_from(list(' \t()=ABZ<>@"é')), max_size=10)


def _protocol(local_part_limit: int = 0) -> SMTPProtocol:
    protocol = SMTPProtocol.__new__(SMTPProtocol)  # only the address reading is asked
    protocol.local_part_limit = local_part_limit
    return protocol


def _parsed(arg: str, local_part_limit: int = 0) -> tuple[str | None, str | None]:
    """aiosmtpd's own reading, through the stdlib header parser."""
    return SMTP._getaddr(_protocol(local_part_limit), arg)


@settings(max_examples=600, deadline=None)
@given(local=PIECES, domain=PIECES, tail=TAILS, limit=st.sampled_from([0, 3, 64]))
def test_every_address_is_read_as_the_stdlib_parser_reads_it(
    local: str, domain: str, tail: str, limit: int
) -> None:
    arg = f"<{local}@{domain}>{tail}"
    try:
        expected = _parsed(arg, limit)
    except (IndexError, ValueError):
        expected = (None, None)  # what the receiver answers 553 for, as before
    assert _protocol(limit)._getaddr(arg) == expected


@pytest.mark.parametrize(
    "arg",
    [
        "<alice@customer.test>",
        "<alice.smith+tag@mail.customer.test> SIZE=1234 BODY=8BITMIME",
        "<a@b>\tSMTPUTF8",
    ],
)
def test_the_plain_form_is_read_without_the_parser(arg: str) -> None:
    assert plain_address(arg, 0) is not None
    assert _protocol()._getaddr(arg) == _parsed(arg)


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ('<"quoted local"@customer.test>', ('"quoted local"@customer.test', "")),
        ("<alice@[192.0.2.1]>", ("alice@[192.0.2.1]", "")),
        ("<alice@customer.test> (a comment)", ("alice@customer.test", "")),
        ("<jörg@customer.test>", ("jörg@customer.test", "")),
        ("<a..b@customer.test>", ("a..b@customer.test", "")),
        ("<bad@", (None, None)),
        ("<>", ("<>", "")),
    ],
)
def test_every_other_form_still_goes_to_the_parser(
    arg: str, expected: tuple[str | None, str | None]
) -> None:
    assert plain_address(arg, 0) is None
    assert _protocol()._getaddr(arg) == expected
