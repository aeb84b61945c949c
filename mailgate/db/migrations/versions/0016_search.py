"""search: the full-text index of tickets (FTS5 tables and triggers; GIN indexes)

Revision ID: 0016_search
Revises: 0015_todos
Create Date: 2026-12-07 12:00:00.000000

"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0016_search'
down_revision: Union[str, Sequence[str], None] = '0015_todos'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The index as mailgate.db.search_index describes it, spelt out here so that this step
# stays what it was whatever that module becomes (tests/test_migrations.py checks a new
# database gets the same). Per source table, the columns whose words are indexed.
SOURCES = {
    'tickets': ('subject', 'requester', 'requester_name'),
    'ticket_messages': ('body_text',),
    'ticket_participants': ('email',),
    'attachments': ('filename',),
}
MAX_INDEXED_CHARS = 100_000
PUNCTUATION = '!"#$&\'()*+,-./:;<=>?@[\\]^_`{|}~'


def _text(columns, prefix=''):
    joined = " || ' ' || ".join(f'{prefix}{column}' for column in columns)
    return f'substr({joined}, 1, {MAX_INDEXED_CHARS})'


def _execute(statement: str) -> None:
    # Straight to the driver: no placeholder or bind syntax is read into the text.
    op.get_bind().exec_driver_sql(statement)


def _sqlite_upgrade() -> None:
    for source, columns in SOURCES.items():
        fts = f'{source}_search'
        _execute(f"CREATE VIRTUAL TABLE {fts} USING fts5(text, content='', columnsize=0)")
        # The rows already there; from now on the triggers keep it current.
        _execute(f'INSERT INTO {fts} (rowid, text) SELECT id, {_text(columns)} FROM {source}')
        old = f'old.id, {_text(columns, "old.")}'
        new = f'new.id, {_text(columns, "new.")}'
        remove = f"INSERT INTO {fts} ({fts}, rowid, text) VALUES ('delete', {old})"
        add = f'INSERT INTO {fts} (rowid, text) VALUES ({new})'
        _execute(f'CREATE TRIGGER {fts}_insert AFTER INSERT ON {source} BEGIN {add}; END')
        _execute(f'CREATE TRIGGER {fts}_delete AFTER DELETE ON {source} BEGIN {remove}; END')
        _execute(
            f'CREATE TRIGGER {fts}_update AFTER UPDATE OF {", ".join(columns)} ON {source} '
            f'BEGIN {remove}; {add}; END'
        )


def _postgresql_upgrade() -> None:
    characters = "'" + PUNCTUATION.replace("'", "''") + "'"
    spaces = "'" + ' ' * len(PUNCTUATION) + "'"
    for source, columns in SOURCES.items():
        vector = f"to_tsvector('simple', translate({_text(columns)}, {characters}, {spaces}))"
        # Built from the rows already there; PostgreSQL keeps it current from then on.
        _execute(f'CREATE INDEX ix_{source}_search ON {source} USING gin ({vector})')


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name == 'sqlite':
        _sqlite_upgrade()
    else:
        _postgresql_upgrade()


def downgrade() -> None:
    """Downgrade schema."""
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for source in SOURCES:
        if sqlite:
            for event in ('insert', 'delete', 'update'):
                # A later step's downgrade may have rebuilt the table (batch mode), and
                # its triggers went with the old copy.
                _execute(f'DROP TRIGGER IF EXISTS {source}_search_{event}')
            _execute(f'DROP TABLE {source}_search')
        else:
            _execute(f'DROP INDEX ix_{source}_search')
