"""Alembic migrations; run with ``mailgate db upgrade``."""
