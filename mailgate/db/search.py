"""Full-text search over tickets: those that contain every term of a query, best first.

The index is the database's own (``search_index``). A term is a word, or a "quoted
phrase" whose words must stand together; a word with punctuation (an address, a file
name) is such a phrase of its parts. A ticket matches when each term is found in its
subject or requester, a participant's address, an attachment's name or a message;
the terms may be found in different places. The statements are in
``search_statements``, the probing of the terms in ``search_probe``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    TextClause,
    bindparam,
    column,
    func,
    select,
    table,
    text,
)
from sqlalchemy.orm import Session

from mailgate.core.errors import InvalidValue
from mailgate.db import search_index, search_probe
from mailgate.db.models import Ticket
from mailgate.db.search_probe import Probed, probe, rare_words
from mailgate.db.search_statements import pg_match, ranked, sqlite_match
from mailgate.db.ticket_scope import TicketScope

MAX_TERMS = 8
MAX_TERM_CHARS = 200
# Up to this many tickets a customer may see, their rows are looked up without a probe.
LOOKED_UP_DIRECTLY = 100
# A search whose every term is in many tickets scores the newest tickets first, in
# batches growing from the page's end (at least SCAN_FIRST) to SCAN_BATCH_MOST tickets:
# looking a ticket's rows up in the index costs about 0.25 ms at 100,000 tickets, so a
# word in every ticket is best served by scoring no more tickets than the page shows.
# Past SCAN_MOST tickets scored it scores them all instead (the terms are in too few):
# at up to 0.5 ms a ticket at a million tickets, 16,384 scored first took an account
# admin's "Invoice", in no ticket of theirs, 9.3 s before the 0.8 s of scoring them all.
SCAN_FIRST = 32
SCAN_BATCH_MOST = 4096
SCAN_MOST = 1024
# The newest tickets with every term in their subject or requester are the page when
# enough of them meet the search's conditions among this many index rows a ticket wanted.
SUBJECT_ROWS_READ = 4
_TERM = re.compile(r'"([^"]*)"|(\S+)')


def terms(query: str) -> list[str]:
    """The terms of ``query``: each "quoted phrase" and each other run of non-blank
    characters that has a letter or a digit (punctuation alone finds nothing)."""
    found = (quoted or bare for quoted, bare in _TERM.findall(query))
    usable = [t.strip()[:MAX_TERM_CHARS] for t in found if any(ch.isalnum() for ch in t)]
    return usable[:MAX_TERMS]


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
    given = where  # the caller's conditions, without the scope's
    seen: list[int] = []  # the newest tickets ``within`` holds
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
        # A customer's search probes its terms first: where one is rare in the scope's own
        # rows, the probe knows every ticket that can have it in its subject. An account
        # admin's "invoice", in 250,000 others' subjects and none of the account's, then
        # costs no statement here, where reading the newest tickets with the word to find
        # none of the account's took 13 ms on PostgreSQL at a million tickets. (Not an
        # agent's: an address in 2,500 tickets is the page at once, and probing it first
        # would read them all.)
        probed = None
        if within is not None:
            probed = probe(session, sqlite, wanted, internal=internal, scope=within)
        among = None if probed is None else probed.in_own_rows(wanted)
        newest = _all_in_subjects(session, sqlite, wanted, where=where, k=k, among=among)
        read: dict[int, Ticket] = {}  # the tickets the scan read whole, by id
        if newest is None:
            newest = _newest_first(
                session,
                sqlite,
                wanted,
                internal=internal,
                where=where,
                scope=within,
                k=k,
                probed=probed,
                given=given,
                seen=seen,
                read=read,
            )
        if newest is not None:
            chosen = newest[offset : offset + limit] if limit else newest[offset:]
            return _tickets(session, chosen, read)
    # Written into the statement as numbers (no limit on parameters): PostgreSQL then
    # plans for exactly these tickets; it guessed half the table for ``within`` itself.
    scope = None if within is None or visible is not None else within.ids()
    best = ranked(
        sqlite, wanted, internal=internal, within=visible, where=where, scope=scope
    ).offset(offset)
    # The page is chosen from the ids and scores alone; only its tickets are read.
    page = (best.limit(limit) if limit else best).subquery("page")
    rows = select(Ticket).join(page, page.c.ticket_id == Ticket.id)
    return list(session.scalars(rows.order_by(page.c.score.desc(), Ticket.id.desc())))


def _scored(
    session: Session, query: Select[Any], read: dict[int, Ticket] | None
) -> list[tuple[int, int]]:
    """(score, ticket id) of each row of ``query`` (``ranked``'s); with ``read``, each
    ticket is read whole in the same statement and put there."""
    if read is None:
        return [(score, ticket_id) for ticket_id, score in session.execute(query)]
    hits = query.subquery()
    rows = session.execute(select(Ticket, hits.c.score).join(hits, hits.c.ticket_id == Ticket.id))
    scored = [(score, found) for found, score in rows]
    read.update((found.id, found) for _, found in scored)
    return [(score, found.id) for score, found in scored]


def _tickets(session: Session, ids: list[int], read: Mapping[int, Ticket]) -> list[Ticket]:
    """The tickets ``ids``, in that order: those in ``read`` (the scan's first batch
    reads its tickets with their scores) as they are, the others in one statement. At a
    million tickets on PostgreSQL, a customer's page of 50 read again cost a round trip
    of 0.8 ms."""
    by_id = {ticket_id: read[ticket_id] for ticket_id in ids if ticket_id in read}
    missing = [i for i in ids if i not in by_id]
    if missing:
        by_id |= {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(missing)))}
    return [by_id[i] for i in ids if i in by_id]


def _all_in_subjects(
    session: Session,
    sqlite: bool,
    wanted: list[str],
    *,
    where: Collection[ColumnElement[bool]],
    k: int | None,
    among: set[int] | None = None,
) -> list[int] | None:
    """The ids of the newest ``k`` tickets with every term in their subject or
    requester, when there are that many, else None: no ticket can score more than they
    do, so they are the best ``k``. A customer's address in 2,500 tickets costs the 50
    newest of them, read newest first from the index. ``among``: the only tickets that
    can have them (``Probed.in_own_rows``), when known."""
    if k is None or (among is not None and len(among) < k):
        return None
    # At most SUBJECT_ROWS_READ rows a ticket wanted are read when the search has
    # conditions, so that one few tickets meet (a status, a customer's) costs a few rows,
    # not every row with the words: 208 ms on PostgreSQL for a customer's "printer".
    read = max(k, SCAN_FIRST) * (SUBJECT_ROWS_READ if where else 1)
    together: list[TextClause] = []
    if sqlite:
        # In the index's own order, FTS5 reads rowids (ticket ids) newest first.
        fts = table(search_index.fts_table("tickets"), column("rowid"))
        matched = select(fts.c.rowid.label("id")).where(sqlite_match("tickets", *wanted))
        rows = matched.order_by(fts.c.rowid.desc()).limit(read).subquery()
    else:
        # Each word, which the index answers without reading the rows again for the
        # words' positions (29 ms for an address in 2,500 tickets); whether they stand
        # together is asked of the rows read alone, in the same statement: a ticket with
        # the words apart is not one with the term, and those with it newer than the
        # k-th found are among the rows read, which come newest first.
        each: list[ColumnElement[bool] | TextClause]
        if among is None:
            rare = _pg_rare_rows(session, wanted, where=where, k=k, read=read)
            if rare is not None:
                return rare or None
            each = [
                pg_match("tickets", term, phrase=False, bound_as=f"words{i}")
                for i, term in enumerate(wanted)
            ]
        else:
            # The newest of those the probe found: PostgreSQL reads a word's tickets
            # from its index unordered, all of them, to give the newest.
            newest_known = sorted(among, reverse=True)[:read]
            known: BindParameter[int] = bindparam(
                "known", newest_known, expanding=True, literal_execute=True
            )
            each = [Ticket.id.in_(known)]
        rows = select(Ticket.id).where(*each).order_by(Ticket.id.desc()).limit(read).subquery()
        together = [pg_match("tickets", t, bound_as=f"term{i}") for i, t in enumerate(wanted)]
    query = select(Ticket.id).join(rows, rows.c.id == Ticket.id).where(*where, *together)
    newest = list(session.scalars(query.order_by(Ticket.id.desc()).limit(k)))
    return newest if len(newest) == k else None


def _pg_rare_rows(
    session: Session,
    wanted: list[str],
    *,
    where: Collection[ColumnElement[bool]],
    k: int,
    read: int,
) -> list[int] | None:
    """PostgreSQL: ``_all_in_subjects``'s answer (an empty list for None) from the
    tickets the index lists for the terms' rare words (``rare_words``), read unordered
    and then the newest ``read`` of them; None when no term has a rare word, or they
    are in ``PROBE_ROWS`` tickets or more (the newest must then be read in order).

    Asked for the newest tickets with all of an address's words, the GIN index also
    intersected "mail" and "test", in nearly every ticket, with "user343" (13 ms at a
    million tickets); asked for the newest with "user343" alone, the planner walked
    the tickets from the newest back computing each one's words (150 ms). Unordered,
    the index gives its 2,500 tickets in 4 ms."""
    rare = [rare_words(session, term, "tickets") for term in wanted]
    if all(words is None for words in rare):
        return None
    matches = [
        pg_match("tickets", words, phrase=False, bound_as=f"words{i}")
        for i, words in enumerate(rare)
        if words is not None
    ]
    # A LIMIT without an order: the planner reads the index's list, not the table.
    most = search_probe.PROBE_ROWS
    listed = select(Ticket.id).where(*matches).limit(most).subquery()
    counted = select(listed.c.id, func.count().over().label("listed")).subquery()
    rows = select(counted).order_by(counted.c.id.desc()).limit(read).subquery()
    together = [pg_match("tickets", t, bound_as=f"term{i}") for i, t in enumerate(wanted)]
    query = select(Ticket.id, rows.c.listed).join(rows, rows.c.id == Ticket.id)
    found = session.execute(query.where(*where, *together).order_by(Ticket.id.desc()).limit(k))
    newest = found.all()
    if any(listed >= most for _, listed in newest):
        return None  # more than the limit read: the newest may be past it
    return [ticket_id for ticket_id, _ in newest] if len(newest) == k else []


def _newest_first(
    session: Session,
    sqlite: bool,
    wanted: list[str],
    *,
    internal: bool,
    where: Collection[ColumnElement[bool]],
    scope: TicketScope | None,
    k: int | None,
    probed: Probed | None = None,
    given: Collection[ColumnElement[bool]] = (),
    seen: Sequence[int] = (),
    read: dict[int, Ticket] | None = None,
) -> list[int] | None:
    """The ids of the best ``k`` tickets (None: all), ranked as ``ranked`` ranks them,
    without scoring every ticket that has the terms; None when that would take longer
    than scoring them all (the terms are in many tickets, but too few of them).

    Each term's sources are probed best first, up to the first where the term is common
    (``search_probe``). The tickets the probes found are scored from the newest back
    until the ``k``-th best so far beats what any older one could score (each term's
    best weight among the sources it was found in). Where a term is common nowhere, no
    other ticket can match. Otherwise any other ticket scores at most the sum of each
    term's weight where it is common, and, unless the page already beats that, all
    tickets are scored from the newest back until it does: a word in every ticket costs
    a page. ``probed``: the probes' findings, when the caller has probed already;
    ``given``: those of ``where`` that are not ``scope``'s own; ``seen``: the scope's
    newest tickets, newest first, when the caller has read them already; ``read``:
    where the tickets of the first batch scored, no larger than the page, are put."""
    if probed is None:
        probed = probe(session, sqlite, wanted, internal=internal, scope=scope)
    want = k if k is not None else sys.maxsize
    pool: list[tuple[int, int]] = []  # (score, ticket id) of the best so far, best first

    def score(
        ids: Collection[int],
        looked_in: Mapping[str, Sequence[str]] | None = None,
        unmet: Collection[ColumnElement[bool]] = (),
    ) -> None:
        """Score ``ids`` into the pool; ``unmet``: the conditions they may not meet yet
        (the ids of tickets that meet ``where`` already make a statement ``ranked``
        keeps built)."""
        nonlocal pool
        if ids:
            query = ranked(
                sqlite,
                wanted,
                internal=internal,
                within=sorted(ids),
                where=unmet,
                looked_in=looked_in,
            )
            # The first batch, no larger than the page: its tickets are read with their
            # scores, and a page it settles costs no statement more to show.
            first = read is not None and not pool and len(ids) <= want
            found = _scored(session, query, read if first else None)
            pool = sorted(pool + found, reverse=True)[:want]

    def settled(ceiling: int, below: int) -> bool:
        """Whether no ticket older than ``below`` scoring at most ``ceiling`` can make
        the page: equal scores list the newest first."""
        return len(pool) == want and pool[-1] > (ceiling, below - 1)

    def meeting(ids: list[int]) -> list[int]:
        """Those of ``ids`` that meet ``where``, by the tickets' own rows: scoring looks
        each ticket's rows up in the index (an address in 2,500 tickets with a status
        none has: 710 ms scored, 10 ms asked first)."""
        if not where:
            return ids
        given: BindParameter[int] = bindparam("given", ids, expanding=True, literal_execute=True)
        return list(session.scalars(select(Ticket.id).where(Ticket.id.in_(given), *where)))

    # Where a term is common nowhere, only the tickets it was found in can match.
    found = sorted(probed.known if probed.only is None else probed.only, reverse=True)
    first_batch = batch = min(max(want, SCAN_FIRST), SCAN_BATCH_MOST)
    while found:
        ids, found = found[:batch], found[batch:]
        score(meeting(ids))
        if settled(probed.most, ids[-1]):
            break  # the older tickets the probes found cannot make the page
        batch = min(batch * 2, SCAN_BATCH_MOST)
    if probed.only is not None or settled(probed.ceiling, sys.maxsize):
        return [ticket_id for _, ticket_id in pool]  # no ticket the probes missed can

    batch, scanned, below = first_batch, 0, None
    while True:
        if scope is not None and below is None and len(seen) >= batch:
            ids = list(seen[:batch])  # read already: a statement less
        elif scope is not None:  # the customer's tickets, not every ticket, newest first
            ids = scope.newest(session, batch, below=below)
        else:
            query = select(Ticket.id).where(*where).order_by(Ticket.id.desc()).limit(batch)
            if below is not None:
                query = query.where(Ticket.id < below)
            ids = list(session.scalars(query))
        if not ids:
            break
        below, scanned = ids[-1], scanned + len(ids)
        # Only where the probes did not look: a term in the tickets they did not find is
        # nowhere they found it rare (an account admin's "Invoice", rare in the
        # account's subjects, is looked for in the attachments and messages alone).
        # The scope's tickets may not meet the conditions given besides it (a status).
        unmet = given if scope is not None else ()
        score([i for i in ids if i not in probed.known], probed.unprobed, unmet)
        if settled(probed.ceiling, below):
            break  # no ticket older than ``below`` can score enough to make the page
        if scanned >= SCAN_MOST:
            return None  # the terms are in too few of the tickets: score them all instead
        batch = min(batch * 2, SCAN_BATCH_MOST)
    return [ticket_id for _, ticket_id in pool]
