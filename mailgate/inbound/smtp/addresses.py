"""The plain form of a MAIL or RCPT address, read without the stdlib's header parser.

aiosmtpd reads every address with ``email._header_value_parser`` (and defines a
``typing.Protocol`` class on each call): a fifth of the receiver's event loop at 16
clients, two addresses a message (benchmarks/smtp_accept.py). The plain form,
``<dot-atom@dot-atom>`` in ASCII followed by the end or a space and parameters, is read
here with one regular expression; every other form (quoted local parts, comments,
address literals, UTF-8, ``<>``) is left to the parser. tests/test_smtp_addresses.py
holds the two readings equal.
"""

from __future__ import annotations

import re

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"<({_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*)>(?:[ \t]+|$)")


def plain_address(arg: str, local_part_limit: int) -> tuple[str | None, str | None] | None:
    """(address, the rest: its parameters) of ``arg`` in the plain form, as aiosmtpd's
    ``_getaddr`` answers: (None, None) for a local part over ``local_part_limit`` (0: no
    limit); None when ``arg`` is in another form, for the parser to read."""
    plain = _PLAIN_ADDRESS.match(arg)
    if plain is None or arg.startswith("(", plain.end()):  # a comment: the parser's
        return None
    address = plain.group(1)
    if local_part_limit and len(address.rpartition("@")[0]) > local_part_limit:
        return None, None
    return address, arg[plain.end() :]
