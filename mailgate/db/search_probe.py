"""Probing a search's terms (``search.py``): in which sources each term is common, and
the tickets where it is not, read from the index without scoring anything."""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Select,
    String,
    Subquery,
    cast,
    column,
    func,
    literal,
    select,
    table,
    text,
    union,
    union_all,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import QueryableAttribute, Session

from mailgate.db import search_index
from mailgate.db.models import Ticket
from mailgate.db.search_statements import (
    WEIGHTS,
    fts_query,
    pg_account_match,
    pg_match,
    sources,
    sqlite_match,
)
from mailgate.db.ticket_scope import TicketScope

# A term is common in a source where it is in more rows than this.
PROBE_ROWS = 4000
# How long PostgreSQL's statistics of the search indexes are kept (``_statistics``).
STATISTICS_SECONDS = 60.0


@dataclass
class Probed:
    """What probing each term's sources found (``_newest_first``)."""

    ceiling: int = 0  # the most a ticket the probes did not find can score
    most: int = 0  # the most any ticket can score
    # Found where a term is rare (on PostgreSQL perhaps more: those with its words).
    known: set[int] = field(default_factory=set)
    # With a term common nowhere: the only tickets that can match.
    only: set[int] | None = None
    # Per term common somewhere, the sources it was not found rare in: from the first
    # where it is common on. A ticket the probes did not find can have it only there.
    unprobed: dict[str, Sequence[str]] = field(default_factory=dict)
    # Per term rare in the tickets' own rows (subject, requester; within the scope, if
    # any): the tickets whose own row may have it. More, not fewer: PostgreSQL reads a
    # term's words, not the phrase, and a scope's tickets taken part in come unread.
    own_rows: dict[str, set[int]] = field(default_factory=dict)

    def in_own_rows(self, wanted: Sequence[str]) -> set[int] | None:
        """The tickets whose own row may have every term of ``wanted``; None where no
        term was found rare there (any ticket may)."""
        known = [self.own_rows[term] for term in wanted if term in self.own_rows]
        return set.intersection(*known) if known else None


def probe(
    session: Session,
    sqlite: bool,
    wanted: list[str],
    *,
    internal: bool,
    scope: TicketScope | None = None,
) -> Probed:
    """Each term's sources, best first, up to the first where it is common. Terms
    likely in few tickets go first (with a digit, then the longest): once one is common
    nowhere, the tickets it was found in are the only ones that can match, and the other
    terms are not probed ("Invoice" in a quarter of all subjects, with its number).

    With a ``scope``, the tickets' own rows (subject, requester) are probed within it,
    which the index answers (``_scoped_tickets``): "Invoice", in a quarter of all
    subjects and in none of an account's, is then rare there, and no ticket of the
    account can score for it as by subject."""
    probed = Probed()
    each = sources(internal)
    for term in sorted(wanted, key=_likely_rare):
        if probed.only is not None:
            probed.most += WEIGHTS["tickets"]  # the most it can add: the best source's
            continue
        common, best, found_in = 0, 0, set()
        pg_found = {} if sqlite else _pg_probe(session, term, internal, scoped=scope is not None)
        for at, (source, (rows, key, _)) in enumerate(each.items()):
            tickets: list[int] | None
            if sqlite:
                tickets = _sqlite_probe(session, source, term, rows, key)
            else:
                tickets = pg_found.get(source)
            common_to_all = tickets is None or len(tickets) >= PROBE_ROWS
            if common_to_all and scope is not None and source == "tickets":
                # Common among all tickets, perhaps rare among the customer's. (Asked
                # second: a term rare among all, as a number, costs one look-up, not
                # the customer's three, 1.2 ms on PostgreSQL at a million tickets.)
                tickets = _scoped_tickets(session, sqlite, term, scope)
            if tickets is None or len(tickets) >= PROBE_ROWS:
                common = WEIGHTS[source]  # its tickets are not all known: none is kept
            else:
                found_in.update(tickets)
                if source == "tickets":
                    probed.own_rows[term] = set(tickets)
            if found_in or common:
                best = max(best, WEIGHTS[source])
            if common:
                probed.unprobed[term] = list(WEIGHTS)[at:]
                break  # the sources come best first: the rest can add no more than this one
        probed.known |= found_in
        probed.ceiling, probed.most = probed.ceiling + common, probed.most + best
        if not common:
            probed.only = found_in if probed.only is None else probed.only & found_in
    return probed


def _likely_rare(term: str) -> tuple[bool, int]:
    """A sort key putting the terms likely in the fewest tickets first: with a digit,
    then the longest."""
    return (not any(ch.isdigit() for ch in term), -len(term))


def _sqlite_probe(
    session: Session, source: str, term: str, rows: Select[Any], key: QueryableAttribute[int]
) -> list[int] | None:
    """The tickets of ``rows`` (of ``source``, known to the index by ``key``) where
    ``term`` is found, or None when they are ``PROBE_ROWS`` or more. Read from the index
    alone first: a word in every message is then 4,000 index rows read, not 4,000
    messages as well (2.7 ms). As one row (``_joined``); a separate count first cost
    every rare term a statement more."""
    joined = session.scalar(_sqlite_probe_shape(source, PROBE_ROWS), {"term": fts_query([term])})
    keys = _ids(joined)
    if keys is None:
        return None
    if not keys or source == "tickets":  # a ticket's own row is numbered as the ticket
        return keys
    return list(session.scalars(rows.where(key.in_(keys))))


@functools.lru_cache(maxsize=16)
def _sqlite_probe_shape(source: str, most: int) -> Select[Any]:
    """``_sqlite_probe``'s statement for ``source``, built once: the keys of up to
    ``most`` index rows with the FTS5 query bound as ``term``, joined into one row."""
    fts = table(search_index.fts_table(source), column("rowid"))
    match = sqlite_match(source, "", bound_as="term")
    index_rows = select(fts.c.rowid.label("key")).where(match).limit(most).subquery()
    return select(func.group_concat(index_rows.c.key))


def _pg_probe(
    session: Session, term: str, internal: bool, *, scoped: bool
) -> dict[str, list[int] | None]:
    """PostgreSQL: per source (``sources(internal)``) up to the first where the
    statistics call ``term`` common, the tickets of its rows with the term's words,
    ``PROBE_ROWS`` rows at most; in one statement, each source's as one row
    (``_joined``). One statement each cost a customer's number 1.2 ms more at a million
    tickets, in round trips and SQLAlchemy.

    The rows with the term's words are those the index gives without reading each row
    again for their positions (30 ms for an address in 2,500 tickets): more tickets than
    have the phrase, which scoring then leaves out. A source past one where the term
    turns out common, which the statistics did not say, is read for nothing: at most
    ``PROBE_ROWS`` rows, for a word in thousands of rows that ANALYZE's sample missed.
    So is one past the tickets when ``scoped`` and the term is common in the scope's
    tickets too: the scoped probe comes after this statement.

    A source left out, or given as None (``PROBE_ROWS`` rows or more), is one where the
    term is common, or one after it."""
    known_common = _common_by_statistics(session, term)
    probed: list[str] = []
    for source in WEIGHTS:
        if source in known_common:
            if source == "tickets" and scoped:
                continue  # probed within the scope instead, and perhaps rare there
            break
        probed.append(source)
    if not probed:
        return {}
    statement = _pg_probe_shape(tuple(probed), internal, PROBE_ROWS)
    found = session.execute(statement, {"term": term}).all()
    return {source: _ids(joined) for source, joined in found}


@functools.lru_cache(maxsize=64)
def _pg_probe_shape(probed: tuple[str, ...], internal: bool, most: int) -> CompoundSelect[str, str]:
    """``_pg_probe``'s statement for the sources ``probed``, built once, the term bound as
    ``term``: per source, up to ``most`` of its rows' tickets joined into one row."""
    each = sources(internal)
    parts = []
    for source in probed:
        rows = each[source][0]
        with_words = rows.where(pg_match(source, "", phrase=False)).limit(most)
        ids = with_words.subquery()
        joined = func.string_agg(cast(ids.c[0], String), ",")
        parts.append(select(literal(source, String), joined).select_from(ids))
    return union_all(*parts)


def _scoped_tickets(
    session: Session, sqlite: bool, term: str, scope: TicketScope
) -> list[int] | None:
    """The tickets of ``scope`` with ``term`` in their own row (subject, requester), and
    perhaps others of the scope, or None when they are ``PROBE_ROWS`` or more; in one
    statement. Those of its accounts, from the index's account column on SQLite and
    the account's lexeme on PostgreSQL (one intersection of two of the index's lists);
    those the address asked, as the rows with the term and the address's words (which
    its requester column holds); those it takes part in and did not ask, all of them,
    as the index has no participants in a ticket's row (scoring leaves out those
    without the term)."""
    parts: list[Select[Any] | CompoundSelect[Any]] = [scope.taking_part_in_others()]
    if sqlite:
        fts = table(search_index.fts_table("tickets"), column("rowid"))
        matches = [sqlite_match("tickets", term, scope.address)]
        if scope.accounts:
            matches.append(sqlite_match("tickets", term, accounts=scope.accounts))
        parts += [select(fts.c.rowid).where(match) for match in matches]
    else:
        with_words = pg_match("tickets", term, phrase=False)
        parts.append(select(Ticket.id).where(with_words, Ticket.requester == scope.address))
        if scope.accounts:
            parts.append(select(Ticket.id).where(pg_account_match(term, scope.accounts)))
    # Each part limited on its own (as a subquery: SQLite takes no LIMIT in a UNION's
    # parts): one reaching the limit makes the whole reach it.
    every = union(*(select(part.limit(PROBE_ROWS).subquery()) for part in parts)).subquery()
    return _ids(_joined(session, sqlite, select(every.c[0]).limit(PROBE_ROWS).subquery()))


def _ids(joined: str | None) -> list[int] | None:
    """The ticket ids of a row ``_joined``, or None when they are ``PROBE_ROWS`` or more:
    counted, not converted, as 4,000 ints took 0.3 ms of every search for a common word."""
    if not joined:
        return []
    if joined.count(",") + 1 >= PROBE_ROWS:
        return None
    return [int(k) for k in joined.split(",")]


def _joined(session: Session, sqlite: bool, ids: Subquery) -> str | None:
    """The ids ``ids`` selects as one string, joined by the database: fetched row
    by row through SQLAlchemy, 4,000 ids took 2.1 ms, joined 0.3 ms (SQLite, a million
    tickets)."""
    key = ids.c[0]
    if sqlite:
        return session.scalar(select(func.group_concat(key)))
    return session.scalar(select(func.string_agg(cast(key, String), ",")))


_WORDS = str.maketrans(search_index.PUNCTUATION, search_index.SPACES)
_kept_statistics: weakref.WeakKeyDictionary[Engine, tuple[float, dict[str, dict[str, float]]]] = (
    weakref.WeakKeyDictionary()
)


def _common_by_statistics(session: Session, term: str) -> set[str]:
    """PostgreSQL: the sources where ANALYZE's sample found every word of ``term`` in at
    least ``PROBE_ROWS`` rows (their search indexes' most common elements).

    Probing such a word reads rows until ``PROBE_ROWS`` have it, and the planner rightly
    reads them from the table, computing each row's vector: 320 ms for a word in every
    message at 100,000 tickets. This only ever says common: a word the statistics do not
    list is probed, and a phrase of common words called common when it is rare only
    makes the ranking score more tickets (its tickets are not known ahead)."""
    if not _words(term):
        return set()
    by_source = _statistics(session)
    return {source for source, estimates in by_source.items() if not _rare(term, estimates)}


def rare_words(session: Session, term: str, source: str) -> str | None:
    """PostgreSQL: those of ``term``'s words that ANALYZE's sample does not list as in
    ``PROBE_ROWS`` rows of ``source`` or more, as one string; None when it lists every
    one. Rows with these words are a superset of those with the term, which the GIN
    index gives by these words' lists alone: an address's "user343", without "mail" and
    "test", which are in nearly every ticket."""
    rare = _rare(term, _statistics(session)[source])
    return " ".join(rare) if rare else None


def _words(term: str) -> list[str]:
    """``term``'s words as the index splits them (its punctuation made spaces)."""
    return term.translate(_WORDS).lower().split()


def _rare(term: str, estimates: dict[str, float]) -> list[str]:
    """Those of ``term``'s words that ``estimates`` (one source's ``_statistics``) do not
    put in ``PROBE_ROWS`` rows or more."""
    return [word for word in _words(term) if estimates.get(word, 0.0) < PROBE_ROWS]


def _statistics(session: Session) -> dict[str, dict[str, float]]:
    """Per source, the rows ANALYZE estimates to hold each of its vector's most common
    words, kept ``STATISTICS_SECONDS`` per engine: read on every search, they cost 1.5
    ms of a customer's 12 at a million tickets, and they change only when the tables
    are analysed again. A stale answer costs time, never a result (see above)."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    now = time.monotonic()
    kept = _kept_statistics.get(engine)
    if kept is not None and now - kept[0] < STATISTICS_SECONDS:
        return kept[1]
    # An expression's statistics are the index's (any column of it); a stored vector's
    # are its table's column's (search_index.PG_STORED).
    by_relation: dict[tuple[str, str | None], str] = {
        (search_index.pg_index(source), None): source
        for source in WEIGHTS
        if source not in search_index.PG_STORED
    }
    by_relation |= {(source, column): source for source, column in search_index.PG_STORED.items()}
    found = session.execute(
        text(
            "SELECT s.tablename, s.attname, u.word, u.freq * c.reltuples FROM pg_stats s"
            " JOIN pg_namespace n ON n.nspname = s.schemaname"
            " JOIN pg_class c ON c.relname = s.tablename AND c.relnamespace = n.oid"
            " CROSS JOIN LATERAL unnest(s.most_common_elems::text::text[],"
            " s.most_common_elem_freqs) AS u(word, freq)"
            " WHERE s.schemaname = current_schema() AND s.tablename = ANY(:relations)"
            " AND u.word IS NOT NULL AND u.freq IS NOT NULL"
        ),
        {"relations": sorted({relation for relation, _ in by_relation})},
    ).all()
    estimates: dict[str, dict[str, float]] = {source: {} for source in WEIGHTS}
    for relation, attribute, word, estimate in found:
        source = by_relation.get((relation, None)) or by_relation.get((relation, attribute))
        if source is not None:
            estimates[source][word] = float(estimate)
    _kept_statistics[engine] = (now, estimates)
    return estimates


def forget_statistics() -> None:
    """Read the statistics again at the next search (after an ``ANALYZE``)."""
    _kept_statistics.clear()
