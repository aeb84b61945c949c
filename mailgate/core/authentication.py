"""Sender authentication as the receiving MTA recorded it (RFC 8601 Authentication-Results).

Only headers from an authserv-id the operator trusts count: anyone can write an
Authentication-Results header into a message, and RFC 8601 §5 has the border MTA
remove forged ones carrying its own id, so a trusted id is the only honest one.
"""

from __future__ import annotations

from collections.abc import Iterable

import authres


def dmarc_results(headers: Iterable[str], trusted_ids: Iterable[str]) -> tuple[str, ...]:
    """The ``dmarc=`` results (``pass``, ``fail``, ...) of every trusted header, lower-cased;
    ``unparsable`` for a trusted header that does not follow RFC 8601."""
    trusted = {t.lower() for t in trusted_ids}
    if not trusted:
        return ()
    out: list[str] = []
    for value in headers:
        authserv_id = value.split(";", 1)[0].strip().split()[0].lower() if value.strip() else ""
        if authserv_id not in trusted:
            continue
        try:
            parsed = authres.AuthenticationResultsHeader.parse_value(value)
        except authres.AuthResError:
            out.append("unparsable")
            continue
        out.extend(
            str(r.result).lower() for r in parsed.results if str(r.method).lower() == "dmarc"
        )
    return tuple(out)
