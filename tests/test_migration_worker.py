"""Migration 0004_worker on a database that already holds tickets, notices and their index."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from mailgate.db.store import Store


def _migrate(store: Store, revision: str, *, down: bool = False) -> None:
    (store.downgrade if down else store.upgrade)(revision)


def test_upgrade_keeps_data_and_matches_the_models(db_url: str) -> None:
    """Upgrading a populated 0001 database keeps every row and adds the worker columns."""
    store = Store(db_url)
    try:
        _migrate(store, "0001")
        at = {"at": datetime(2026, 1, 5, tzinfo=UTC)}
        with store.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO tickets (id, number, requester, requester_name, subject, type, "
                    "priority, status, language, tags, created_at, updated_at) VALUES "
                    "(1, 1, 'a@x.test', '', 's', 'General', 'Normal', 'New', 'en', '[]', :at, :at)"
                ),
                at,
            )
            conn.execute(
                sa.text(
                    "INSERT INTO notices (id, ticket_id, kind, recipient, language, state, cause, "
                    "message_id, in_reply_to, created_at, attempts, last_error) VALUES "
                    "(1, 1, 'ack', 'a@x.test', 'en', 'sent', 'c', 'm@x', '', :at, 1, '')"
                ),
                at,
            )
            conn.execute(
                sa.text(
                    "INSERT INTO message_ids (message_id, ticket_id, notice_id, direction) "
                    "VALUES ('m@x', 1, 1, 'outbound')"
                )
            )
        _migrate(store, "0004_worker")
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM notices")).scalar() == 1
            assert conn.execute(sa.text("SELECT notice_id FROM message_ids")).scalar() == 1
            inspector = sa.inspect(conn)
            notices = {c["name"]: c for c in inspector.get_columns("notices")}
            inbound = {c["name"] for c in inspector.get_columns("inbound_messages")}
            assert notices["ticket_id"]["nullable"] and "inbound_id" in notices
            assert {"next_attempt_at", "accepted_by"} <= inbound
            assert [
                fk["referred_table"]
                for fk in inspector.get_foreign_keys("notices")
                if fk["constrained_columns"] == ["inbound_id"]
            ] == ["inbound_messages"]
            if store.is_sqlite:  # foreign keys are back on after the table rebuild
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        _migrate(store, "0001", down=True)
    finally:
        store.engine.dispose()
