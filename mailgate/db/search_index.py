"""The full-text index of tickets: its tables, triggers and indexes on each database, and
the text expressions that the search (``db/search.py``) must repeat exactly.

The database keeps the index current by itself, in the transaction of every write,
whichever path writes (the ORM, the bulk import's Core inserts, a migration): SQLite
through triggers on the four source tables, each filling a contentless FTS5 table;
PostgreSQL through GIN indexes on ``to_tsvector`` of the same columns (a message's kept in
a stored generated column, ``PG_STORED``). No write path sends an extra statement.

What is indexed, per source row, and whose rows a customer may find:

- a ticket: its subject, requester address and requester name; and its customer
  account (on SQLite in a column of its own, ``ACCOUNT``; on PostgreSQL in a second
  index, each word qualified by the account, ``ACCOUNT_WORDS_FUNCTION``), so that a
  customer's search asks the index for a word in their account's tickets
  (``search_probe``): "invoice" in none of 250,000 tickets of an account, among 250,000
  others that have it, is then one intersection of two lists in the index on SQLite
  (about 20 ms at a million tickets), one empty list on PostgreSQL, instead of every
  ticket with the word read and checked;
- a ticket message: its whole body (``body_text``; the new text, ``body_reply``, is a
  part of it by construction, ``core.quotes.new_text``). Not its subject: that of a
  reply is the ticket's with "Re:", and indexing it again would make every word of a
  subject a hit once per message, which a search then has to read. An internal note is
  a message too: the search leaves it out for customers;
- a participant: the address;
- an attachment: its file name (a note's attachments are as internal as the note).

Both databases see the same words: ASCII punctuation becomes a space before splitting
(so ``ann@example.com`` is the words ann, example and com, on SQLite as unicode61 splits
it), and only the first ``MAX_INDEXED_CHARS`` characters of each row's text count:
PostgreSQL refuses a tsvector over 1 MB, and a pasted log of megabytes is no text
anyone searches.

Alembic's batch mode (a SQLite table rebuilt to change a column) drops a table's
triggers with the old copy: a migration that rebuilds one of the four source tables
must create ``sqlite_triggers(source)`` again. tests/test_migrations.py compares every
trigger of a migrated database with a new one's, so a forgotten one fails there.
"""

# ruff: noqa: S608 - every statement here is made of this file's constants, no input.
from __future__ import annotations

import string
from collections.abc import Sequence

from sqlalchemy import Connection

MAX_INDEXED_CHARS = 100_000
# Each ASCII punctuation character becomes a space before the text is split into words.
# Not ``%``, which both split at anyway: a driver may read it as a placeholder.
PUNCTUATION = string.punctuation.replace("%", "")
SPACES = " " * len(PUNCTUATION)
# ... as a bracket expression of PostgreSQL's regular expressions, as SQL: "]" first,
# "[" before the escaped backslash (never before ".", ":" or "=", which would open a
# class), "-" last, "'" doubled.
_OTHERS = "".join(c for c in PUNCTUATION if c not in "][\\-")
PUNCTUATION_PATTERN_SQL = "'[][\\\\" + _OTHERS.replace("'", "''") + "-]'"


def _text(columns: Sequence[str], prefix: str = "") -> str:
    """The row's indexed text: its columns joined by spaces, cut to the limit."""
    joined = " || ' ' || ".join(f"{prefix}{column}" for column in columns)
    return f"substr({joined}, 1, {MAX_INDEXED_CHARS})"


def pg_words(text_sql: str) -> str:
    """SQL for ``text_sql`` with each character of ``PUNCTUATION`` a space, as one
    ``regexp_replace`` of a bracket expression of them all. PostgreSQL's ``translate()``
    gives the same text but compares each character of it with the 31 in turn (each
    through the encoding's character-length function): 6.5 ms for a 31 KB body, 1.6 ms
    here, where ``to_tsvector`` takes 4.3. One ``replace()`` per character took 0.5 ms,
    but 31 calls nested in each of a search statement's several vectors cost about 1.5
    ms more of PostgreSQL's parsing per statement. Paid on every write of a row and for
    every row a search checks again: 12 of the 16 ms that scoring a requester's 50
    tickets' messages took at a million tickets (migration ``0025``)."""
    return f"regexp_replace({text_sql}, {PUNCTUATION_PATTERN_SQL}, ' ', 'g')"


def pg_vector_expression(source: str) -> str:
    """The tsvector of a row of ``source``, computed from its columns. The 'simple'
    configuration: no stemming and no stop words, so names, addresses and words of any
    language are found as written.

    A ticket's also holds its account (``customer_id``, 0 for none) as the lexeme
    ``@<id>``, which no term can be (its punctuation becomes spaces; migration 0023).
    No query reads it since the account's words have an index of their own
    (``pg_account_words``, 0027); it stays, as taking it out means building the
    tickets' index again, and a query must spell the index's expression to the letter."""
    vector = _pg_text_vector(source)
    if source in ACCOUNT_COLUMNS:
        account = f"coalesce({ACCOUNT_COLUMNS[source]}, 0)::text"
        vector = f"({vector} || array_to_tsvector(ARRAY['{ACCOUNT_MARK}' || {account}]))"
    return vector


def pg_account_words() -> str:
    """The expression of the tickets' second GIN index (PostgreSQL): each word of a
    ticket's vector, qualified by its account (``ACCOUNT_WORDS_FUNCTION``), so that a word
    in an account's tickets is one look-up of one list (``pg_account_match``)."""
    return f"{ACCOUNT_WORDS_FUNCTION}({_pg_text_vector('tickets')}, {ACCOUNT_COLUMNS['tickets']})"


def _pg_text_vector(source: str) -> str:
    """The tsvector of a row's indexed text (``SOURCES``)."""
    return f"to_tsvector('simple', {pg_words(_text(SOURCES[source]))})"


def pg_vector(source: str) -> str:
    """The tsvector ``source``'s GIN index holds, as a query must spell it for
    PostgreSQL to use the index: the stored column where ``source`` has one
    (``PG_STORED``), else ``pg_vector_expression``, repeated exactly."""
    return PG_STORED.get(source) or pg_vector_expression(source)


# Per source table: its indexed columns, and the name of its FTS5 table (SQLite) and of
# its GIN index (PostgreSQL).
SOURCES: dict[str, tuple[str, ...]] = {
    "tickets": ("subject", "requester", "requester_name"),
    "ticket_messages": ("body_text",),
    "ticket_participants": ("email",),
    "attachments": ("filename",),
}


# The FTS5 column with the indexed text; the search's phrases are filtered to it.
TEXT = "text"
# The tickets' FTS5 table only: the ticket's customer account (its id, one token).
ACCOUNT = "account"
# Per source table, the column put into its FTS5 table's ACCOUNT column as it is (and,
# on PostgreSQL, into its vector after ACCOUNT_MARK).
ACCOUNT_COLUMNS = {"tickets": "customer_id"}
ACCOUNT_MARK = "@"
# PostgreSQL: a ticket's words, each as the lexeme "@<account> <word>", in an index of
# their own (``ACCOUNT_WORDS_INDEX``, migration 0027). An account admin's "invoice", in
# a quarter of all subjects and none of the account's, was the intersection of two lists
# of 250,000 tickets in the tickets' index (the word's and the account's lexeme's): 14
# of the 31 ms of that search at a million tickets, where its list here is empty. A
# lexeme holds no space (the parser splits at it), so no word can be one of these; a word
# is cut to 500 characters so that its lexeme stays under PostgreSQL's 2,047 bytes. A
# ticket of no account has none. A function: the index's expression needs a subquery
# (per lexeme), which an index expression may not hold; immutable, as it reads only
# its arguments. Not in the tickets' own index: a search checks a ticket's row again
# against that index's expression (a phrase), which would then call this too.
ACCOUNT_WORDS_FUNCTION = "tickets_account_words"
ACCOUNT_WORDS_INDEX = "ix_tickets_account_words"
ACCOUNT_WORDS_MOST_CHARS = 500
# PostgreSQL: the sources whose vector is a stored generated column, which their GIN
# index is on (migration 0026). A message's body is the long text, and a search checks
# a ticket's messages again for what the index alone cannot answer (a word in too many
# rows to read its list, a phrase): computed again from the body, that took 66 us a
# message, 3.7 of the 10.4 ms of a requester's word in every ticket at a million
# tickets. Kept, it costs the vector's size on disk; it is computed once per write, as
# the index's expression was.
PG_STORED = {"ticket_messages": "message_words"}


def fts_table(source: str) -> str:
    return f"{source}_search"


def _fts_columns(source: str) -> list[str]:
    """The columns of ``source``'s FTS5 table."""
    return [TEXT, ACCOUNT] if source in ACCOUNT_COLUMNS else [TEXT]


def pg_index(source: str) -> str:
    return f"ix_{source}_search"


def pg_indexes(source: str) -> list[str]:
    """Every GIN index a search reads on ``source``: its own, and on tickets the
    account's words' (``ACCOUNT_WORDS_INDEX``)."""
    return [pg_index(source), *([ACCOUNT_WORDS_INDEX] if source in ACCOUNT_COLUMNS else [])]


def _fts_row(source: str, row: str) -> str:
    """The values an FTS5 row is inserted (or deleted) with, from trigger row ``row``:
    its rowid, then one per column of ``_fts_columns``."""
    values = [f"{row}.id", _text(SOURCES[source], prefix=f"{row}.")]
    if source in ACCOUNT_COLUMNS:
        values.append(f"{row}.{ACCOUNT_COLUMNS[source]}")
    return ", ".join(values)


def sqlite_triggers(source: str) -> list[str]:
    """The triggers that keep ``source``'s FTS5 table current (for a migration that
    rebuilt ``source`` and so lost them)."""
    fts, fts_columns = fts_table(source), ", ".join(_fts_columns(source))
    indexed = [*SOURCES[source]]
    if source in ACCOUNT_COLUMNS:
        indexed.append(ACCOUNT_COLUMNS[source])
    columns = ", ".join(indexed)
    # A contentless FTS5 table forgets its rows' text: the 'delete' command names the
    # words to take out, which must be exactly the ones put in.
    old, new = _fts_row(source, "old"), _fts_row(source, "new")
    remove = f"INSERT INTO {fts} ({fts}, rowid, {fts_columns}) VALUES ('delete', {old})"
    add = f"INSERT INTO {fts} (rowid, {fts_columns}) VALUES ({new})"
    return [
        f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {source} BEGIN {add}; END",
        f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {source} BEGIN {remove}; END",
        # Only a change of an indexed column (or the account): the write lock's no-op
        # update of a ticket (records.lock_ticket) and every status change leave the
        # index alone.
        f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {columns} ON {source} "
        f"BEGIN {remove}; {add}; END",
    ]


def sqlite_table(source: str) -> str:
    """The statement that creates ``source``'s FTS5 table: contentless (content=''), so
    no copy of the bodies is kept, only the index, and read back only by rowid (the
    source row's id); columnsize=0, as the search ranks by where a word was found, not
    by BM25, which would need the sizes."""
    columns = ", ".join(_fts_columns(source))
    return (
        f"CREATE VIRTUAL TABLE {fts_table(source)} USING fts5({columns}, content='', columnsize=0)"
    )


SQLITE_CREATE: list[str] = [
    statement
    for source in SOURCES
    for statement in (sqlite_table(source), *sqlite_triggers(source))
]
PG_ACCOUNT_WORDS_FUNCTION = (
    f"CREATE FUNCTION {ACCOUNT_WORDS_FUNCTION}(words tsvector, account bigint) "
    "RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ "
    "SELECT array_to_tsvector(coalesce(array_agg(DISTINCT "
    f"'{ACCOUNT_MARK}' || account || ' ' || left(word, {ACCOUNT_WORDS_MOST_CHARS})), '{{}}')) "
    "FROM unnest(tsvector_to_array(words)) AS word WHERE account IS NOT NULL $$"
)
POSTGRESQL_CREATE: list[str] = [
    PG_ACCOUNT_WORDS_FUNCTION,
    *(
        f"ALTER TABLE {source} ADD COLUMN {column} tsvector "
        f"GENERATED ALWAYS AS ({pg_vector_expression(source)}) STORED"
        for source, column in PG_STORED.items()
    ),
    *(
        f"CREATE INDEX {pg_index(source)} ON {source} USING gin ({pg_vector(source)})"
        for source in SOURCES
    ),
    f"CREATE INDEX {ACCOUNT_WORDS_INDEX} ON tickets USING gin ({pg_account_words()})",
]

# What a comparison of the models with the database must not count as missing from
# the models: the FTS5 tables with their shadow tables, the GIN indexes and the stored
# vectors (never read into a model: a message loaded would carry its vector).
SEARCH_TABLES = frozenset(
    f"{fts_table(source)}{suffix}"
    for source in SOURCES
    for suffix in ("", "_data", "_idx", "_config")
)
SEARCH_INDEXES = frozenset(index for source in SOURCES for index in pg_indexes(source))
SEARCH_COLUMNS = frozenset(PG_STORED.values())


def create(connection: Connection) -> None:
    """Create the index on ``connection``'s database, whose source tables are there and
    empty: ``store.create_schema`` builds a new database so, exactly as the migrations do."""
    statements = SQLITE_CREATE if connection.dialect.name == "sqlite" else POSTGRESQL_CREATE
    for statement in statements:
        connection.exec_driver_sql(statement)
