"""The statements a search is made of (``search.py``): per source, the rows where a term
is found, and each ticket's score for the terms.

A ticket's score for a term is where it was found at best; the scores of the terms add
up, and equal scores list the newest ticket first. The user's text never reaches FTS5
or tsquery syntax: each term is bound as a value and quoted as one phrase.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Label,
    Select,
    String,
    Subquery,
    TextClause,
    bindparam,
    column,
    exists,
    func,
    literal,
    literal_column,
    select,
    table,
    text,
    union_all,
)
from sqlalchemy.orm import QueryableAttribute

from mailgate.core.states import INTERNAL_DIRECTIONS
from mailgate.db import search_index
from mailgate.db.models import Participant, StoredAttachment, Ticket, TicketMessage

# Best first, as ``sources`` lists them too: the ranking from the newest back
# (``search._newest_first``) and the probes (``search_probe``) rely on the order.
WEIGHTS = {"tickets": 4, "ticket_participants": 3, "attachments": 2, "ticket_messages": 1}
# Scoring some tickets on SQLite reads the index's rows numbered up to this many per
# ticket after their first row as one range (``found``): at most 64 rows read for
# each row wanted, which costs less than the lookup of one row alone.
RANGE_ROWS = 64


def sqlite_match(
    source: str, *terms: str, accounts: Collection[int] = (), bound_as: str | None = None
) -> ColumnElement[bool]:
    """Every one of ``terms`` in the text of a row of ``source``'s FTS5 table; and, when
    ``accounts`` are given, the row of a ticket of one of them (the tickets' table). The
    FTS5 query is bound as ``bound_as``, when given."""
    query = fts_query(terms, accounts)
    value = literal(query) if bound_as is None else bindparam(bound_as, query, type_=String)
    return literal_column(search_index.fts_table(source)).op("MATCH")(value)


def fts_query(terms: Sequence[str], accounts: Collection[int] = ()) -> str:
    """The FTS5 query ``sqlite_match`` binds: every one of ``terms`` in a row's text,
    and, with ``accounts``, the row of a ticket of one of them."""
    # One FTS5 phrase each: inside double quotes (doubled within) FTS5 reads no operator,
    # column filter or prefix, only words, split by the table's own tokenizer. Filtered
    # to the text: a customer's "7" must not find the tickets of account 7.
    phrases = " AND ".join('"' + term.replace('"', '""') + '"' for term in terms)
    query = f"{search_index.TEXT} : ({phrases})"
    if accounts:
        ids = " OR ".join(f'"{int(account)}"' for account in sorted(accounts))
        query += f" AND {search_index.ACCOUNT} : ({ids})"
    return query


def pg_match(source: str, term: str, *, phrase: bool = True, bound_as: str = "term") -> TextClause:
    """``term`` in a row of ``source``: its words together, or only each of them
    (``phrase`` False), which the GIN index answers alone, without reading each row
    that has them again to compare the words' positions. ``term`` is bound as ``bound_as``:
    a statement with several terms gives each its own."""
    shape = _pg_match_shape(source, phrase, bound_as)
    return shape.bindparams(bindparam(bound_as, term, type_=String))


@functools.cache
def _pg_match_shape(source: str, phrase: bool, bound_as: str) -> TextClause:
    """``pg_match``'s SQL, written once: built from SQLAlchemy's functions and
    operators, it cost 53 us of Python each time, 14 times in a customer's search."""
    # The vector spelt exactly as the GIN index's expression, so the index serves it.
    vector = search_index.pg_vector(source)
    to_query = "phraseto_tsquery" if phrase else "plainto_tsquery"
    return text(f"{vector} @@ {to_query}('simple', {_pg_words(bound_as)})")


def _pg_words(bound_as: str) -> str:
    return search_index.pg_words(f":{bound_as}")


def pg_account_match(term: str, accounts: Collection[int]) -> TextClause:
    """``term``'s words in a ticket of one of ``accounts``: one look-up of the index of
    the tickets' words qualified by their account (``search_index.pg_account_words``),
    each of the term's words as "@<account> <word>". A term's words are never cut as the
    index cuts them: a term is far shorter (``search.MAX_TERM_CHARS``)."""
    shape = _pg_account_match_shape(tuple(sorted(int(a) for a in accounts)))
    return shape.bindparams(bindparam("term", term, type_=String))


@functools.lru_cache(maxsize=64)
def _pg_account_match_shape(accounts: tuple[int, ...]) -> TextClause:
    """``pg_account_match``'s SQL for ``accounts``, the term bound as ``term``: per
    account, a tsquery of every word qualified by it, as quoted lexemes (a word holds no
    quote or backslash: ``pg_words`` made them spaces); any account's, joined by ``||``."""
    words = f"tsvector_to_array(to_tsvector('simple', {_pg_words('term')}))"
    quote, mark = "'''", search_index.ACCOUNT_MARK
    each = " || ".join(
        f"CAST({quote}{mark}{a} ' || array_to_string({words}, {quote} & ''{mark}{a} ') "
        f"|| '''' AS tsquery)"
        for a in accounts
    )
    return text(f"{search_index.pg_account_words()} @@ ({each})")


# A source's rows' ticket ids, the column the index knows each row by, its ticket's id.
Source = tuple[Select[Any], QueryableAttribute[int], QueryableAttribute[int]]


def sources(internal: bool) -> dict[str, Source]:
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


def _best_per_ticket(pieces: list[Select[Any]], name: str) -> Subquery:
    """Each ticket of ``pieces`` (``found``'s), with the best weight it was found with."""
    hits = union_all(*pieces).subquery()
    best = func.max(hits.c.weight).label("weight")
    return select(hits.c.ticket_id, best).group_by(hits.c.ticket_id).subquery(name)


def found(
    sqlite: bool,
    term: str,
    *,
    internal: bool,
    within: BindParameter[Any] | None,
    span: ColumnElement[int] | int = 0,
    scope: Select[Any] | None = None,
    looked_in: Collection[str] | None = None,
    bound_as: str = "term",
) -> list[Select[Any]]:
    """Per source (of ``looked_in``, when given), its rows where ``term`` is found:
    (ticket id, weight); only those of the tickets ``within`` lists, when given, SQLite
    reading the ``span`` rows after their first as a range; only those of the tickets
    ``scope`` selects, when given. ``bound_as``: the term's name in the statement."""
    pieces = []
    for source, (all_rows, key, ticket_id) in sources(internal).items():
        if looked_in is not None and source not in looked_in:
            continue
        weight = literal(WEIGHTS[source]).label("weight")
        rows = all_rows if scope is None else all_rows.where(ticket_id.in_(scope))
        # A ticket's own row is one: the others, many to a ticket, may be asked until the
        # first with the term (``_has_row``).
        many = source != "tickets"
        if sqlite:
            fts = table(search_index.fts_table(source), column("rowid"))
            match = sqlite_match(source, term, bound_as=bound_as)
            found = rows.join(fts, fts.c.rowid == key).where(match)
            if within is not None:
                # Those tickets' rows by id, not every row that has the word. FTS5 pays
                # about 40 us to set up each lookup (a million tickets), and reads a
                # word's rows in a range for about 0.1 us each: the rows numbered close
                # after their first (the newest page's) are read as one range, those
                # further on (a reply long after) are looked up one by one, each ticket's
                # until its first with the term.
                own = rows.with_only_columns(key).where(ticket_id.in_(within))
                # (0 when they have no row: FTS5 reads a NULL bound as no bound at all.)
                first = own.with_only_columns(func.coalesce(func.min(key), 0))
                end = first.scalar_subquery() + span
                near = found.where(fts.c.rowid.between(end - span, end), ticket_id.in_(within))
                pieces.append(near.add_columns(weight))
                if many:
                    further = (rows.where(key > end), key, ticket_id)
                    has = _has_row(True, source, term, further, bound_as=bound_as)
                    pieces.append(_tickets_where(within, has, weight))
                    continue
                found = found.where(fts.c.rowid.in_(own.where(key > end)))
        elif within is not None and many and list(looked_in or ())[:1] == [source]:
            # The source the probes found the term common in (``looked_in``'s first; the
            # others they did not look in): each row would be checked again by
            # computing its vector, and the first with it will do. Not the others: "invoice",
            # common in the attachments' names and rare in the messages, is best found
            # in those from the GIN index (an account admin's scan at a million tickets:
            # 53 ms of SQL asking each message, 5 ms letting PostgreSQL choose).
            has = _has_row(False, source, term, (rows, key, ticket_id), bound_as=bound_as)
            pieces.append(_tickets_where(within, has, weight))
            continue
        else:
            found = rows.where(pg_match(source, term, bound_as=bound_as))
            if within is not None:
                # PostgreSQL then picks: those tickets' rows by their ticket_id index,
                # each checked for the word, or the word's rows from the GIN index.
                found = found.where(ticket_id.in_(within))
        pieces.append(found.add_columns(weight))
    return pieces


def _tickets_where(
    within: BindParameter[Any], has: ColumnElement[bool], weight: Label[int]
) -> Select[int, int]:
    """(ticket id, weight) of each ticket ``within`` lists for which ``has`` holds."""
    return select(Ticket.id.label("ticket_id"), weight).where(Ticket.id.in_(within), has)


def _has_row(
    sqlite: bool, source: str, term: str, rows: Source, *, bound_as: str
) -> ColumnElement[bool]:
    """Whether the ticket (``Ticket``, of the enclosing statement) has a row of
    ``rows`` (``source``'s, as ``sources`` gives them) with ``term``, asked row by row,
    oldest first, until the first that has it.

    A row with the term scores no more than the first, and the first message is where
    a word usually is. A requester's 50 tickets, "certificate" in the first of each
    one's three messages, at a million tickets: SQLite 7.2 -> 2.3 ms (one FTS5 look-up a
    ticket, not one a message), PostgreSQL 6.8 -> 4.1 ms (EXPLAIN ANALYZE; one vector
    computed again a ticket). A thread of 30 long messages with the word in its first
    costs one."""
    selected, key, ticket_id = rows
    own = selected.with_only_columns(literal(1), maintain_column_froms=True)
    own = own.where(ticket_id == Ticket.id).correlate(Ticket)
    if sqlite:
        # The index's row for that one row: FTS5 is asked by rowid, a seek in the word's
        # list. As a nested EXISTS, which SQLite runs for each row in turn.
        fts = table(search_index.fts_table(source), column("rowid"))
        indexed = select(literal(1)).select_from(fts)
        match = indexed.where(fts.c.rowid == key, sqlite_match(source, term, bound_as=bound_as))
        return exists(own.where(exists(match)))
    # LIMIT 1 in a subquery of its own, which PostgreSQL runs for each ticket in turn: a
    # plain EXISTS it may turn into a semi-join, hashing every row with the word from the
    # GIN index.
    first = own.where(pg_match(source, term, bound_as=bound_as)).limit(1).subquery()
    return exists(select(literal(1)).select_from(first))


def ranked(
    sqlite: bool,
    wanted: list[str],
    *,
    internal: bool,
    within: list[int] | None,
    where: Collection[ColumnElement[bool]],
    scope: Select[Any] | None = None,
    looked_in: Mapping[str, Collection[str]] | None = None,
) -> Select[Any]:
    """(ticket id, score) of each ticket that has every term (only among ``within``,
    or the tickets ``scope`` selects, when given) and meets ``where``, best first; a
    term that ``looked_in`` names looked for in the sources it gives alone.

    ``scope`` filters each source's rows before they are grouped by ticket: an account
    admin's "Invoice", in a quarter of all subjects and none of theirs, grouped 350,000
    tickets to keep none of them. At a million tickets on SQLite that took 0.81 s, 0.62
    s filtered first; PostgreSQL took about 1.7 s either way, as it builds the scope's
    ids once for each source."""
    span = RANGE_ROWS * len(within or ())
    values: dict[str, Any] = {"span": span}
    for i, term in enumerate(wanted):
        values[f"term{i}"] = fts_query([term]) if sqlite else term
    if within is not None:
        values["own"] = within
    terms_looked_in = None
    if looked_in is not None:
        given = (looked_in.get(term) for term in wanted)
        terms_looked_in = tuple(None if g is None else tuple(g) for g in given)
    shape = (sqlite, len(wanted), internal, within is not None, terms_looked_in)
    if not where and scope is None:
        # Built once per shape and given this search's values: built each time, the
        # statement for two terms cost 8.3 ms of Python on SQLite, its SQL 1.7 ms.
        return _ranked_shape(*shape).params(values)
    return _ranked(*shape, where=where, scope=scope).params(values)


@functools.lru_cache(maxsize=256)
def _ranked_shape(
    sqlite: bool,
    terms: int,
    internal: bool,
    within: bool,
    looked_in: tuple[tuple[str, ...] | None, ...] | None,
) -> Select[Any]:
    """``_ranked``'s statement without conditions, kept per shape."""
    return _ranked(sqlite, terms, internal, within, looked_in, where=(), scope=None)


def _ranked(
    sqlite: bool,
    terms: int,
    internal: bool,
    within: bool,
    looked_in: tuple[tuple[str, ...] | None, ...] | None,
    *,
    where: Collection[ColumnElement[bool]],
    scope: Select[Any] | None,
) -> Select[Any]:
    """``ranked``'s statement for ``terms`` terms (each looked for in the sources
    ``looked_in`` gives it, or in all), its values bound by name (``term0``, ...,
    ``own``, ``span``) for ``ranked`` to give."""
    own: BindParameter[Any] | None = None
    if within:
        own = bindparam("own", [0], expanding=True, literal_execute=True)
    span = bindparam("span", 0, type_=Integer)
    found_per_term = [
        _best_per_ticket(
            found(
                sqlite,
                term,
                internal=internal,
                within=own,
                span=span,
                scope=scope,
                looked_in=None if looked_in is None else looked_in[i],
                bound_as=f"term{i}",
            ),
            name=f"term{i}",
        )
        for i, term in enumerate(f"term{i}" for i in range(terms))
    ]
    first, others = found_per_term[0], found_per_term[1:]
    score = sum((hits.c.weight for hits in others), first.c.weight).label("score")
    best = select(first.c.ticket_id, score)
    for hits in others:
        best = best.join(hits, hits.c.ticket_id == first.c.ticket_id)
    if where:
        best = best.join(Ticket, Ticket.id == first.c.ticket_id).where(*where)
    return best.order_by(score.desc(), first.c.ticket_id.desc())
