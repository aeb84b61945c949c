"""Full-text search over tickets: those that contain every term of a query, best first.

The index is the database's own (``search_index``). A term is a word, or a "quoted
phrase" whose words must stand together; a word with punctuation (an address, a file
name) is such a phrase of its parts. A ticket matches when each term is found in its
subject or requester, a participant's address, an attachment's name or a message;
the terms may be found in different places. The user's text never reaches FTS5 or
tsquery syntax: each term is bound as a value and quoted as one phrase.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    Subquery,
    bindparam,
    column,
    func,
    literal,
    literal_column,
    select,
    table,
    text,
    union_all,
)
from sqlalchemy.orm import QueryableAttribute, Session

from mailgate.core.errors import InvalidValue
from mailgate.core.states import INTERNAL_DIRECTIONS
from mailgate.db import search_index
from mailgate.db.models import (
    Participant,
    StoredAttachment,
    Ticket,
    TicketMessage,
)
from mailgate.db.ticket_scope import TicketScope

MAX_TERMS = 8
MAX_TERM_CHARS = 200
# A term is common in a source where it is in more rows than this (``_probe``).
PROBE_ROWS = 4000
# Up to this many tickets a customer may see, their rows are looked up without a probe.
LOOKED_UP_DIRECTLY = 100
# Scoring some tickets on SQLite reads the index's rows numbered up to this many per
# ticket after their first row as one range (``_found``): at most 64 rows read for
# each row wanted, which costs less than the lookup of one row alone.
RANGE_ROWS = 64
# A search whose every term is in many tickets scores the newest tickets first, in
# batches growing from the page's end (at least SCAN_FIRST) to SCAN_BATCH_MOST tickets:
# looking a ticket's rows up in the index costs about 0.25 ms at 100,000 tickets, so a
# word in every ticket is best served by scoring no more tickets than the page shows.
# Past SCAN_MOST tickets scored it scores them all instead (the terms are in too few).
SCAN_FIRST = 32
SCAN_BATCH_MOST = 4096
SCAN_MOST = 16384
# A ticket's score for a term is where it was found at best; the scores of the terms
# add up, and equal scores list the newest ticket first.
# Best first, as ``_sources`` lists them too: ``_newest_first`` relies on the order.
WEIGHTS = {"tickets": 4, "ticket_participants": 3, "attachments": 2, "ticket_messages": 1}
_TERM = re.compile(r'"([^"]*)"|(\S+)')


def terms(query: str) -> list[str]:
    """The terms of ``query``: each "quoted phrase" and each other run of non-blank
    characters that has a letter or a digit (punctuation alone finds nothing)."""
    found = (quoted or bare for quoted, bare in _TERM.findall(query))
    usable = [t.strip()[:MAX_TERM_CHARS] for t in found if any(ch.isalnum() for ch in t)]
    return usable[:MAX_TERMS]


def _sqlite_match(source: str, term: str) -> ColumnElement[bool]:
    # One FTS5 phrase: inside double quotes (doubled within) FTS5 reads no operator,
    # column filter or prefix, only words, split by the table's own tokenizer.
    phrase = '"' + term.replace('"', '""') + '"'
    return literal_column(search_index.fts_table(source)).op("MATCH")(literal(phrase))


def _pg_match(source: str, term: str, *, phrase: bool = True) -> ColumnElement[bool]:
    """``term`` in a row of ``source``: its words together, or only each of them
    (``phrase`` False), which the GIN index answers alone, without reading each row
    that has them again to compare the words' positions."""
    # The vector spelt exactly as the GIN index's expression, so the index serves it.
    vector: ColumnElement[Any] = literal_column(
        search_index.pg_vector(search_index.SOURCES[source])
    )
    words = func.translate(literal(term), search_index.PUNCTUATION, search_index.SPACES)
    to_query = func.phraseto_tsquery if phrase else func.plainto_tsquery
    return vector.op("@@")(to_query(literal_column("'simple'"), words))


def _sources(
    internal: bool,
) -> dict[str, tuple[Select[Any], QueryableAttribute[int], QueryableAttribute[int]]]:
    """Per source table: the ticket ids of its rows (leaving out the rows of notes and
    the supplier side unless ``internal``), the column the index knows each row by, and
    its ticket's id."""
    public = () if internal else (TicketMessage.direction.not_in(INTERNAL_DIRECTIONS),)
    of_message = TicketMessage.ticket_id
    return {
        "tickets": (select(Ticket.id.label("ticket_id")), Ticket.id, Ticket.id),
        "ticket_participants": (
            select(Participant.ticket_id),
            Participant.id,
            Participant.ticket_id,
        ),
        "attachments": (
            select(of_message).join_from(StoredAttachment, TicketMessage).where(*public),
            StoredAttachment.id,
            of_message,
        ),
        "ticket_messages": (select(of_message).where(*public), TicketMessage.id, of_message),
    }


def _hits(
    sqlite: bool,
    term: str,
    *,
    internal: bool,
    within: BindParameter[Any] | None,
    span: int = 0,
    name: str,
) -> Subquery:
    """Each ticket where ``term`` was found, with the best weight of where it was; only
    in the rows of the tickets whose ids ``within`` lists, when given."""
    pieces = _found(sqlite, term, internal=internal, within=within, span=span)
    hits = union_all(*pieces).subquery()
    best = func.max(hits.c.weight).label("weight")
    return select(hits.c.ticket_id, best).group_by(hits.c.ticket_id).subquery(name)


def _found(
    sqlite: bool,
    term: str,
    *,
    internal: bool,
    within: BindParameter[Any] | None,
    span: int = 0,
) -> list[Select[Any]]:
    """Per source, its rows where ``term`` is found: (ticket id, weight); only those of
    the tickets ``within`` lists, when given, SQLite reading the ``span`` rows after
    their first as a range."""
    pieces = []
    for source, (rows, key, ticket_id) in _sources(internal).items():
        weight = literal(WEIGHTS[source]).label("weight")
        if sqlite:
            fts = table(search_index.fts_table(source), column("rowid"))
            found = rows.join(fts, fts.c.rowid == key).where(_sqlite_match(source, term))
            if within is not None:
                # Those tickets' rows by id, not every row that has the word. FTS5 pays
                # about 40 us to set up each lookup (a million tickets), and reads a
                # word's rows in a range for about 0.1 us each: the rows numbered close
                # after their first (the newest page's) are read as one range, those
                # further on (a reply long after) are looked up one by one.
                own = rows.with_only_columns(key).where(ticket_id.in_(within))
                # (0 when they have no row: FTS5 reads a NULL bound as no bound at all.)
                first = own.with_only_columns(func.coalesce(func.min(key), 0))
                end = first.scalar_subquery() + span
                near = found.where(fts.c.rowid.between(end - span, end), ticket_id.in_(within))
                pieces.append(near.add_columns(weight))
                found = found.where(fts.c.rowid.in_(own.where(key > end)))
        else:
            found = rows.where(_pg_match(source, term))
            if within is not None:
                # PostgreSQL then picks: those tickets' rows by their ticket_id index,
                # each checked for the word, or the word's rows from the GIN index.
                found = found.where(ticket_id.in_(within))
        pieces.append(found.add_columns(weight))
    return pieces


def search(
    session: Session,
    query: str,
    *,
    where: Collection[ColumnElement[bool]] = (),
    within: TicketScope | None = None,
    internal: bool = True,
    offset: int = 0,
    limit: int = 50,
) -> list[Ticket]:
    """The tickets that match every term of ``query`` and every condition in ``where``
    (on ``Ticket``: a status, a type), best first: rows ``offset`` to ``offset + limit``
    (``limit`` 0: all). ``within`` is what a customer may see: only those tickets are
    looked in. ``internal`` False (a customer's search) does not look in notes or their
    attachments.

    Raises ``InvalidValue`` when ``query`` has no term to look for."""
    wanted = terms(query)
    if not wanted:
        raise InvalidValue("nothing to search for: give a word, an address or a file name")
    sqlite = session.get_bind().dialect.name == "sqlite"
    if not sqlite:
        # A plan for these words and these tickets, never one for any: psycopg prepares a
        # statement run five times, and PostgreSQL then plans it for unknown values, which
        # took a customer's search from 30 to 140 ms from its eleventh run on.
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    visible: list[int] | None = None  # the tickets ``within`` holds, when few
    if within is not None:
        seen = within.newest(session, LOOKED_UP_DIRECTLY + 1)
        if not seen:
            return []
        if len(seen) <= LOOKED_UP_DIRECTLY:
            visible = seen
        else:
            where = [*where, within.row]
    if visible is None:
        # Rank from the newest tickets back (of those the customer may see), and stop
        # once no older ticket can make the page: "error" in every ticket costs a page,
        # not every ticket; "invoice 4711" costs the tickets "4711" is found in.
        k = offset + limit if limit else None
        newest = _all_in_subjects(session, sqlite, wanted, where=where, k=k)
        if newest is None:
            newest = _newest_first(
                session, sqlite, wanted, internal=internal, where=where, scope=within, k=k
            )
        if newest is not None:
            chosen = newest[offset : offset + limit] if limit else newest[offset:]
            read = session.scalars(select(Ticket).where(Ticket.id.in_(chosen)))
            by_id = {ticket.id: ticket for ticket in read}
            return [by_id[i] for i in chosen if i in by_id]
    # Written into the statement as numbers (no limit on parameters): PostgreSQL then
    # plans for exactly these tickets; it guessed half the table for ``within`` itself.
    best = _ranked(sqlite, wanted, internal=internal, within=visible, where=where).offset(offset)
    # The page is chosen from the ids and scores alone; only its tickets are read.
    page = (best.limit(limit) if limit else best).subquery("page")
    rows = select(Ticket).join(page, page.c.ticket_id == Ticket.id)
    return list(session.scalars(rows.order_by(page.c.score.desc(), Ticket.id.desc())))


def _ranked(
    sqlite: bool,
    wanted: list[str],
    *,
    internal: bool,
    within: list[int] | None,
    where: Collection[ColumnElement[bool]],
) -> Select[Any]:
    """(ticket id, score) of each ticket that has every term (only among ``within``,
    when given) and meets ``where``, best first."""
    own: BindParameter[Any] | None = None
    if within is not None:
        own = bindparam("own", within, expanding=True, literal_execute=True)
    span = RANGE_ROWS * len(within or ())
    found = [
        _hits(sqlite, term, internal=internal, within=own, span=span, name=f"term{i}")
        for i, term in enumerate(wanted)
    ]
    first = found[0]
    score = sum((hits.c.weight for hits in found[1:]), first.c.weight).label("score")
    best = select(first.c.ticket_id, score)
    for hits in found[1:]:
        best = best.join(hits, hits.c.ticket_id == first.c.ticket_id)
    if where:
        best = best.join(Ticket, Ticket.id == first.c.ticket_id).where(*where)
    return best.order_by(score.desc(), first.c.ticket_id.desc())


def _all_in_subjects(
    session: Session,
    sqlite: bool,
    wanted: list[str],
    *,
    where: Collection[ColumnElement[bool]],
    k: int | None,
) -> list[int] | None:
    """The ids of the newest ``k`` tickets with every term in their subject or
    requester, when there are that many, else None: no ticket can score more than they
    do, so they are the best ``k``. A customer's address in 2,500 tickets costs the 50
    newest of them, read newest first from the index."""
    if k is None:
        return None
    if sqlite:
        # One FTS5 query of the terms, each quoted as a phrase (as ``_sqlite_match``),
        # read in the index's own order: FTS5 reads rowids (ticket ids) newest first.
        fts = table(search_index.fts_table("tickets"), column("rowid"))
        phrases = " AND ".join('"' + term.replace('"', '""') + '"' for term in wanted)
        matched = literal_column(fts.name).op("MATCH")(literal(phrases))
        query = select(Ticket.id).join(fts, fts.c.rowid == Ticket.id).where(matched)
        query = query.order_by(fts.c.rowid.desc())
        ids = list(session.scalars(query.where(*where).limit(k)))
    else:
        # The newest k with each word, then whether the words stand together in each:
        # the index finds a phrase's rows without their positions, and reading them
        # again for the positions cost 29 ms for an address in 2,500 tickets.
        each = select(Ticket.id).where(*(_pg_match("tickets", t, phrase=False) for t in wanted))
        newest = list(session.scalars(each.where(*where).order_by(Ticket.id.desc()).limit(k)))
        if len(newest) < k:
            return None
        together = (_pg_match("tickets", term) for term in wanted)
        query = select(Ticket.id).where(Ticket.id.in_(newest), *together)
        ids = list(session.scalars(query.order_by(Ticket.id.desc())))
    return ids if len(ids) == k else None


def _newest_first(
    session: Session,
    sqlite: bool,
    wanted: list[str],
    *,
    internal: bool,
    where: Collection[ColumnElement[bool]],
    scope: TicketScope | None,
    k: int | None,
) -> list[int] | None:
    """The ids of the best ``k`` tickets (None: all), ranked as ``_ranked`` ranks them,
    without scoring every ticket that has the terms; None when that would take longer
    than scoring them all (the terms are in many tickets, but too few of them).

    Each term's sources are probed best first, up to the first where the term is common
    (more than ``PROBE_ROWS`` rows). The tickets the probes found are scored from the
    newest back until the ``k``-th best so far beats what any older one could score (each
    term's best weight among the sources it was found in). Where a term is common
    nowhere, no other ticket can match. Otherwise any other ticket scores at most the sum
    of each term's weight where it is common, and, unless the page already beats that,
    all tickets are scored from the newest back until it does: a word in every ticket
    costs a page."""
    probed = _probe(session, sqlite, wanted, internal=internal)
    want = k if k is not None else sys.maxsize
    pool: list[tuple[int, int]] = []  # (score, ticket id) of the best so far, best first

    def score(ids: Collection[int]) -> None:
        nonlocal pool
        if ids:
            query = _ranked(sqlite, wanted, internal=internal, within=sorted(ids), where=where)
            found = [(score, ticket_id) for ticket_id, score in session.execute(query)]
            pool = sorted(pool + found, reverse=True)[:want]

    def settled(ceiling: int, below: int) -> bool:
        """Whether no ticket older than ``below`` scoring at most ``ceiling`` can make
        the page: equal scores list the newest first."""
        return len(pool) == want and pool[-1] > (ceiling, below - 1)

    # Where a term is common nowhere, only the tickets it was found in can match.
    found = sorted(probed.known if probed.only is None else probed.only, reverse=True)
    batch = min(max(want, SCAN_FIRST), SCAN_BATCH_MOST)
    while found:
        ids, found = found[:batch], found[batch:]
        score(ids)
        if settled(probed.most, ids[-1]):
            break  # the older tickets the probes found cannot make the page
        batch = min(batch * 2, SCAN_BATCH_MOST)
    if probed.only is not None or settled(probed.ceiling, sys.maxsize):
        return [ticket_id for _, ticket_id in pool]  # no ticket the probes missed can

    batch, scanned, below = min(max(want, SCAN_FIRST), SCAN_BATCH_MOST), 0, None
    while True:
        if scope is not None:  # the customer's tickets, not every ticket, newest first
            ids = scope.newest(session, batch, below=below)
        else:
            query = select(Ticket.id).where(*where).order_by(Ticket.id.desc()).limit(batch)
            if below is not None:
                query = query.where(Ticket.id < below)
            ids = list(session.scalars(query))
        if not ids:
            break
        below, scanned = ids[-1], scanned + len(ids)
        score([i for i in ids if i not in probed.known])
        if settled(probed.ceiling, below):
            break  # no ticket older than ``below`` can score enough to make the page
        if scanned >= SCAN_MOST:
            return None  # the terms are in too few of the tickets: score them all instead
        batch = min(batch * 2, SCAN_BATCH_MOST)
    return [ticket_id for _, ticket_id in pool]


@dataclass
class _Probed:
    """What probing each term's sources found (``_newest_first``)."""

    ceiling: int = 0  # the most a ticket the probes did not find can score
    most: int = 0  # the most any ticket can score
    known: set[int] = field(default_factory=set)  # found where a term is rare
    only: set[int] | None = None  # with a term common nowhere: the only tickets that can match


def _probe(session: Session, sqlite: bool, wanted: list[str], *, internal: bool) -> _Probed:
    """Each term's sources, best first, up to the first where it is common. Terms
    likely in few tickets go first (with a digit, then the longest): once one is common
    nowhere, the tickets it was found in are the only ones that can match, and the other
    terms are not probed ("Invoice" in a quarter of all subjects, with its number)."""
    probed = _Probed()
    for term in sorted(wanted, key=lambda t: (not any(ch.isdigit() for ch in t), -len(t))):
        if probed.only is not None:
            probed.most += WEIGHTS["tickets"]  # the most it can add: the best source's
            continue
        common, best, found_in = 0, 0, set()
        pieces = [] if sqlite else _found(sqlite, term, internal=internal, within=None)
        for i, source in enumerate(_sources(internal)):
            if sqlite:
                found = _sqlite_probe(session, source, term, internal=internal)
            elif _common_by_statistics(session, source, term):
                found = None
            else:
                rows = pieces[i].subquery()
                found = list(session.scalars(select(rows.c.ticket_id).limit(PROBE_ROWS)))
            if found is None or len(found) >= PROBE_ROWS:
                common = WEIGHTS[source]  # its tickets are not all known: none is kept
            else:
                found_in.update(found)
            if found_in or common:
                best = max(best, WEIGHTS[source])
            if common:
                break  # the sources come best first: the rest can add no more than this one
        probed.known |= found_in
        probed.ceiling, probed.most = probed.ceiling + common, probed.most + best
        if not common:
            probed.only = found_in if probed.only is None else probed.only & found_in
    return probed


def _sqlite_probe(session: Session, source: str, term: str, *, internal: bool) -> list[int] | None:
    """The tickets of the rows of ``source`` where ``term`` is found, or None when they
    are ``PROBE_ROWS`` or more. Counted in the index alone first: a word in every
    message is then 4,000 index rows read, not 4,000 messages as well (2.7 ms)."""
    fts = table(search_index.fts_table(source), column("rowid"))
    index_rows = select(fts.c.rowid).where(_sqlite_match(source, term)).limit(PROBE_ROWS)
    keys = list(session.execute(index_rows).scalars())
    if len(keys) >= PROBE_ROWS:
        return None
    if not keys or source == "tickets":  # a ticket's own row is numbered as the ticket
        return keys
    rows, key, _ = _sources(internal)[source]
    return list(session.scalars(rows.where(key.in_(keys))))


_WORDS = str.maketrans(search_index.PUNCTUATION, search_index.SPACES)


def _common_by_statistics(session: Session, source: str, term: str) -> bool:
    """PostgreSQL: whether ANALYZE's sample found every word of ``term`` in at least
    ``PROBE_ROWS`` rows of ``source`` (its search index's most common elements).

    Probing such a word reads rows until ``PROBE_ROWS`` have it, and the planner rightly
    reads them from the table, computing each row's vector: 320 ms for a word in every
    message at 100,000 tickets. This only ever says common: a word the statistics do not
    list is probed, and a phrase of common words called common when it is rare only
    makes the ranking score more tickets (its tickets are not known ahead)."""
    words = set(term.translate(_WORDS).lower().split())
    if not words:
        return False
    found = session.execute(
        text(
            "SELECT u.word, u.freq * c.reltuples FROM pg_stats s"
            " JOIN pg_namespace n ON n.nspname = s.schemaname"
            " JOIN pg_class c ON c.relname = s.tablename AND c.relnamespace = n.oid"
            " CROSS JOIN LATERAL unnest(s.most_common_elems::text::text[],"
            " s.most_common_elem_freqs) AS u(word, freq)"
            " WHERE s.schemaname = current_schema() AND s.tablename = :index"
            " AND u.word = ANY(:words)"
        ),
        {"index": search_index.pg_index(source), "words": sorted(words)},
    ).all()
    rows = {word: estimate for word, estimate in found if estimate is not None}
    return words <= rows.keys() and min(rows[w] for w in words) >= PROBE_ROWS
