"""The search tests' site and the searches they run, as staff and as a customer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mailgate.db import search
from mailgate.web import access
from tests.web_support import Site, make_site


def search_site(db_url: str) -> Iterator[Site]:
    """Carol's "Printer on fire" (with report ü.pdf and Ann's note) and Dave's "VPN is
    down", of account Acme (admin boss@acme.test); Eve's "Invoice wrong", of Globex."""
    s = make_site(db_url)
    yield s
    s.store.engine.dispose()


def found(site: Site, query: str, *, offset: int = 0, limit: int = 50) -> list[int]:
    """Ticket numbers of a staff search, in order."""
    with site.store.transaction() as session:
        rows = search.search(session, query, offset=offset, limit=limit)
        return [t.number or 0 for t in rows]


def customer_finds(site: Site, email: str, query: str) -> list[int]:
    """What customer ``email`` finds: their search, as the portal runs it."""
    with site.store.transaction() as session:
        visible = access.customer_scope(session, email)
        found = search.search(session, query, within=visible, internal=False)
        return [t.number or 0 for t in found]


def returns_of(
    monkeypatch: pytest.MonkeyPatch, module: Any, name: str, original: Any = None
) -> list[Any]:
    """What each call of ``module.name`` returns from now on, in order: it is replaced by
    ``original`` (itself, unless given), wrapped to record its results."""
    returned: list[Any] = []
    called = original or getattr(module, name)

    def recording(*args: Any, **kwargs: Any) -> Any:
        returned.append(called(*args, **kwargs))
        return returned[-1]

    monkeypatch.setattr(module, name, recording)
    return returned
