"""The addresses, admin addresses and domains the customer accounts list, as rows of
``customer_keys`` with an index, kept by the database's own triggers on ``customers``.

An account is found by the address of a message's sender or a portal user: on every
message and every customer's page. Read from ``customers`` and compared in Python,
that cost every account read, 140 ms with 5,000 accounts; ``customer_keys`` answers
with the few accounts that list the address or its domain. The triggers fill it in
the transaction of every write of an account, whichever path writes (the directory's
commands, the config's sync, a migration), as ``search_index``'s do for the search.

The accounts' lists are JSON arrays of strings: anything else in them (a number, a
JSON null, a list that is not an array) lists nothing.
"""

# ruff: noqa: S608 - every statement here is made of this file's constants, no input.
from __future__ import annotations

from sqlalchemy import Connection

TABLE = "customer_keys"
# Per kind of key, the column of ``customers`` that lists them.
KINDS = {"address": "addresses", "admin": "admins", "domain": "domains"}
_WATCHED = ", ".join(KINDS.values())


def _sqlite_fill(row: str) -> str:
    listed = " UNION ALL ".join(
        f"SELECT value, '{kind}' AS kind FROM json_each({row}.{column}) "
        f"WHERE json_type({row}.{column}) = 'array' AND type = 'text'"
        for kind, column in KINDS.items()
    )
    return (
        f"INSERT INTO {TABLE} (value, kind, customer_id) "
        f"SELECT DISTINCT value, kind, {row}.id FROM ({listed})"
    )


def _postgresql_function() -> str:
    def strings(kind: str, column: str) -> str:
        # Only an array has elements: a JSON null or scalar lists nothing.
        array = f"CASE json_typeof(NEW.{column}) WHEN 'array' THEN NEW.{column} ELSE '[]' END"
        return (
            f"SELECT e #>> '{{}}' AS value, '{kind}' AS kind "
            f"FROM json_array_elements({array}) AS e WHERE json_typeof(e) = 'string'"
        )

    listed = " UNION ALL ".join(strings(kind, column) for kind, column in KINDS.items())
    return (
        f"CREATE FUNCTION {TABLE}_sync() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP <> 'INSERT' THEN DELETE FROM {TABLE} WHERE customer_id = OLD.id; END IF; "
        f"IF TG_OP <> 'DELETE' THEN INSERT INTO {TABLE} (value, kind, customer_id) "
        f"SELECT DISTINCT k.value, k.kind, NEW.id FROM ({listed}) AS k; END IF; "
        "RETURN NULL; END $$"
    )


SQLITE_CREATE: list[str] = [
    f"CREATE TRIGGER {TABLE}_insert AFTER INSERT ON customers BEGIN {_sqlite_fill('new')}; END",
    # Only a change of a list: an account's new owner or language leaves its keys alone.
    f"CREATE TRIGGER {TABLE}_update AFTER UPDATE OF {_WATCHED} ON customers BEGIN "
    f"DELETE FROM {TABLE} WHERE customer_id = old.id; {_sqlite_fill('new')}; END",
    f"CREATE TRIGGER {TABLE}_delete AFTER DELETE ON customers BEGIN "
    f"DELETE FROM {TABLE} WHERE customer_id = old.id; END",
]
POSTGRESQL_CREATE: list[str] = [
    _postgresql_function(),
    f"CREATE TRIGGER {TABLE}_sync AFTER INSERT OR DELETE OR UPDATE OF {_WATCHED} ON customers "
    f"FOR EACH ROW EXECUTE FUNCTION {TABLE}_sync()",
]


def create(connection: Connection) -> None:
    """Create the triggers on ``connection``'s database, whose tables are there and
    empty: ``store.create_schema`` builds a new database so, as the migration does."""
    sqlite = connection.dialect.name == "sqlite"
    for statement in SQLITE_CREATE if sqlite else POSTGRESQL_CREATE:
        connection.exec_driver_sql(statement)
