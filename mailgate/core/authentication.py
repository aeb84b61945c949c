"""Sender authentication as the receiving MTA recorded it (RFC 8601 Authentication-Results).

Only headers from an authserv-id the operator trusts count: anyone can write an
Authentication-Results header into a message, and RFC 8601 §5 has the border MTA
remove forged ones carrying its own id, so a trusted id is the only honest one.
"""

from __future__ import annotations

from collections.abc import Iterable

import authres


def dmarc_results(
    headers: Iterable[str], trusted_ids: Iterable[str]
) -> tuple[tuple[str, str], ...]:
    """Every trusted header's ``dmarc=`` results as (result, ``header.from`` domain),
    lower-cased: the domain is the From the verifier judged (``""`` when not given);
    ``("unparsable", "")`` for a trusted header that does not follow RFC 8601."""
    trusted = {t.lower() for t in trusted_ids}
    if not trusted:
        return ()
    out: list[tuple[str, str]] = []
    for value in headers:
        authserv_id = value.split(";", 1)[0].strip().split()[0].lower() if value.strip() else ""
        if authserv_id not in trusted:
            continue
        try:
            parsed = authres.AuthenticationResultsHeader.parse_value(value)
        except authres.AuthResError:
            out.append(("unparsable", ""))
            continue
        for result in parsed.results:
            if str(result.method).lower() != "dmarc":
                continue
            domain = next(
                (
                    str(p.value).lower()
                    for p in result.properties
                    if str(p.type).lower() == "header" and str(p.name).lower() == "from"
                ),
                "",
            )
            out.append((str(result.result).lower(), domain))
    return tuple(out)
