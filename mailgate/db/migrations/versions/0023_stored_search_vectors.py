"""search: PostgreSQL keeps each row's vector in a generated column, indexed by GIN

Revision ID: 0023_stored_search_vectors
Revises: 0022_tickets_search_account
Create Date: 2026-12-06 23:00:00.000000

"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0023_stored_search_vectors'
down_revision: Union[str, Sequence[str], None] = '0022_tickets_search_account'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The vectors as mailgate.db.search_index describes them, spelt out here as 0016 spells
# out the expressions it indexed (tests/test_migrations.py checks a new database gets the
# same). Per source table, the columns whose words are indexed.
SOURCES = {
    'tickets': ('subject', 'requester', 'requester_name'),
    'ticket_messages': ('body_text',),
    'ticket_participants': ('email',),
    'attachments': ('filename',),
}
PUNCTUATION = '!"#$&\'()*+,-./:;<=>?@[\\]^_`{|}~'
VECTOR = 'search_vector'


def _vector(columns) -> str:
    joined = " || ' ' || ".join(columns)
    characters = "'" + PUNCTUATION.replace("'", "''") + "'"
    spaces = "'" + ' ' * len(PUNCTUATION) + "'"
    return (
        f"to_tsvector('simple', translate(substr({joined}, 1, 100000), {characters}, {spaces}))"
    )


def _stored(source: str) -> str:
    """The generated column's expression: a ticket's vector also holds its account, as a
    lexeme no search term can be (a term loses its punctuation)."""
    vector = _vector(SOURCES[source])
    if source != 'tickets':
        return vector
    return (
        f"{vector} || CASE WHEN customer_id IS NULL THEN ''::tsvector "
        f"ELSE array_to_tsvector(ARRAY['@account' || customer_id]) END"
    )


def _execute(statement: str) -> None:
    # Straight to the driver: no placeholder or bind syntax is read into the text.
    op.get_bind().exec_driver_sql(statement)


def upgrade() -> None:
    """Upgrade schema."""
    # A search checks the vector of each row it reads by a path other than the GIN
    # index (a customer's newest tickets' messages, by ticket): computed again from the
    # text, each cost about 50 us for a 3 KB body. Kept, it is read. This rewrites the
    # four tables once (mailgate.db.search_index.POSTGRESQL_CREATE for a new database).
    # A ticket's vector holds its account too, as SQLite's index does since 0022.
    # SQLite's FTS5 tables have no such cost.
    if op.get_bind().dialect.name == 'sqlite':
        return
    for source in SOURCES:
        _execute(f'DROP INDEX ix_{source}_search')
        _execute(
            f'ALTER TABLE {source} ADD COLUMN {VECTOR} tsvector '
            f'GENERATED ALWAYS AS ({_stored(source)}) STORED'
        )
        _execute(f'CREATE INDEX ix_{source}_search ON {source} USING gin ({VECTOR})')


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == 'sqlite':
        return
    for source, columns in SOURCES.items():
        _execute(f'DROP INDEX ix_{source}_search')
        _execute(f'ALTER TABLE {source} DROP COLUMN {VECTOR}')
        _execute(f'CREATE INDEX ix_{source}_search ON {source} USING gin ({_vector(columns)})')
