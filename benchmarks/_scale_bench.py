"""benchmarks/scale.py's databases (and benchmarks/search.py's): the configuration, a
fresh database migrated by the real migrations, and its growth to each size with
``_scale_fill.py``'s rows and ``_search_kinds.extra_rows``, merged or analyzed after as an
operator would."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _scale_fill as filler
import sqlalchemy as sa
from _search_kinds import ACCOUNT_ADMIN, extra_rows

from mailgate.core import config
from mailgate.db.maintenance import optimize
from mailgate.db.models import Agent, Base, Customer, Team
from mailgate.db.store import Store, open_store

PG = "postgresql+psycopg://postgres@127.0.0.1:5432"
PG_DATABASE = "mailgate_scale"
# One customer account more per this many tickets (``_accounts``).
TICKETS_PER_ACCOUNT = 200
SECRET = "benchmark-secret-0123456789abcdef"  # noqa: S105 - a throwaway HMAC key
AGENTS = "".join(
    f'[[agents]]\nemail = "a{i}@example.com"\nname = "Agent {i}"\nteams = ["support", "billing"]\n'
    for i in range(filler.AGENTS)
)
CONFIG = f"""
[security]
secret = "{SECRET}"
[web]
trusted_proxy_header = "X-Remote-User"
trusted_proxies = ["testclient"]
[sla]
first_response_minutes = {{ Urgent = 60, High = 240, Normal = 480, Low = 1440 }}
resolution_minutes = {{ Urgent = 480, High = 1440, Normal = 4320, Low = 10080 }}
[[teams]]
name = "support"
assignment = "round_robin"
[[teams]]
name = "billing"
assignment = "round_robin"
{AGENTS}
[[customers]]
name = "Acme"
domains = ["acme.test"]
[[customers]]
name = "Globex"
domains = ["globex.test"]
[[customers]]
name = "Initech"
domains = ["initech.test"]
admins = ["{ACCOUNT_ADMIN}"]
"""


@dataclass
class Bench:
    """One backend's database, its settings and store, and the times measured so far."""

    backend: str
    url: str
    config_path: Path
    base: int  # the largest size: tickets are numbered down from it
    now: datetime
    settings: Any = None
    store: Any = None
    ids: dict[str, int] = field(default_factory=dict)
    times: dict[str, dict[int, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  [{self.backend}] {text}", file=sys.stderr, flush=True)


@contextmanager
def engine_of(url: str, **options: Any) -> Iterator[sa.Engine]:
    """An engine of its own, disposed of after: a pooled connection left open would keep
    the benchmark's PostgreSQL database from being dropped."""
    engine = sa.create_engine(url, **options)
    try:
        yield engine
    finally:
        engine.dispose()


def pg_admin(statement: str) -> None:
    with engine_of(f"{PG}/test", isolation_level="AUTOCOMMIT") as engine, engine.connect() as conn:
        conn.exec_driver_sql(statement)


def open_bench(backend: str, base: int, workdir: Path, *, pg_database: str = PG_DATABASE) -> Bench:
    """A fresh database migrated by the real migrations, and mailgate's store over it
    (PostgreSQL: database ``pg_database``, made again)."""
    workdir.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        path = workdir / "scale.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        pg_admin(f'DROP DATABASE IF EXISTS "{pg_database}" WITH (FORCE)')
        pg_admin(f'CREATE DATABASE "{pg_database}"')
        url = f"{PG}/{pg_database}"
    config_path = workdir / f"{backend}.toml"
    config_path.write_text(f'[database]\nurl = "{url}"\n' + CONFIG)
    now = datetime.now(UTC).replace(microsecond=0)
    bench = Bench(backend, url, config_path, base, now)
    migrate = Store(url)
    migrate.upgrade()
    migrate.engine.dispose()
    bench.settings = config.load(config_path, {})
    bench.store = open_store(bench.settings)  # adds the agents, teams and customers
    with bench.store.transaction() as session:
        bench.ids = {a.email.split("@")[0]: a.id for a in session.scalars(sa.select(Agent))}
        bench.ids |= {t.name: t.id for t in session.scalars(sa.select(Team))}
        for customer in session.scalars(sa.select(Customer)):
            bench.ids |= dict.fromkeys(customer.domains, customer.id)
    agent_ids = [bench.ids[f"a{i}"] for i in range(filler.AGENTS)]
    assert agent_ids == list(range(agent_ids[0], agent_ids[0] + filler.AGENTS)), agent_ids
    return bench


def _accounts(conn: sa.Connection, d: filler.Dialect, lo: int, hi: int) -> None:
    """Customer accounts ``lo`` .. ``hi`` besides the config's three, each with a domain
    and an admin: the accounts grow with the tickets (5 at 1 k, 5,000 at 1 M), and
    every message and customer's page looks an account up among them."""
    if hi < lo:
        return

    def listed(prefix: str) -> str:  # ["<prefix><t>.test"]
        return d.json("'[\"" + prefix + "' || t || '.test\"]'")

    none = d.json("'[]'")
    values = f"'Account ' || t, {listed('acct')}, {none}, {listed('admin@acct')}, ''"
    columns = "name, domains, addresses, admins, language"
    insert = f"INSERT INTO customers ({columns}) SELECT {values} FROM s"  # noqa: S608 - constants
    if not d.sqlite:  # the fill's replica role would skip the triggers that key them
        filler._run(conn, "SET session_replication_role = DEFAULT")
    filler._run(conn, f"WITH RECURSIVE {d.series(lo, hi)} {insert}")
    if not d.sqlite:
        filler._run(conn, "SET session_replication_role = replica")
    conn.connection.commit()


def grow(bench: Bench, size: int, filled: int) -> None:
    """Add tickets numbered base-size+1 .. base-filled: older than those there."""
    started = time.perf_counter()
    dialect = filler.Dialect("sqlite" if bench.backend == "sqlite" else "postgresql",
                             int(bench.now.timestamp()))  # fmt: skip
    with engine_of(bench.url) as engine, engine.connect() as conn:
        if dialect.sqlite:
            # A benchmark's fill may be lost in a crash: no fsync, a big page cache.
            for pragma in ("synchronous=OFF", "cache_size=-1000000", "temp_store=MEMORY"):
                conn.exec_driver_sql(f"PRAGMA {pragma}")
        else:
            # Foreign keys are not checked row by row (the rows are made consistent).
            conn.exec_driver_sql("SET session_replication_role = replica")
            conn.exec_driver_sql("SET synchronous_commit = off")
        filler.fill(
            conn, dialect, base=bench.base, lo=bench.base - size + 1, hi=bench.base - filled,
            ids=bench.ids,
            progress=lambda what: print(f"    {what}", file=sys.stderr, flush=True),
        )  # fmt: skip
        extra_rows(conn, dialect.sqlite, bench.base - size + 1, bench.base - filled)
        _accounts(conn, dialect, filled // TICKETS_PER_ACCOUNT + 1, size // TICKETS_PER_ACCOUNT)
        if not dialect.sqlite:
            # The rows came with their ids: each sequence goes on after the largest.
            for table in Base.metadata.sorted_tables:
                if "id" in table.c and table.c.id.primary_key:
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608
                        f"(SELECT coalesce(max(id), 0) + 1 FROM {table.name}), false)"
                    )
            conn.commit()
    filled_s = time.perf_counter() - started
    extra = ""
    if bench.backend == "postgres":
        # What autovacuum would do after a bulk load: statistics for the planner.
        started = time.perf_counter()
        with engine_of(bench.url, isolation_level="AUTOCOMMIT") as engine, engine.connect() as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
            db_bytes = conn.exec_driver_sql("SELECT pg_database_size(current_database())")
            extra = f", VACUUM ANALYZE {time.perf_counter() - started:.0f} s"
            megabytes = db_bytes.scalar_one() / 2**20
    else:
        # What the docs say to run after a bulk import: `mailgate db optimize`.
        started = time.perf_counter()
        optimize(bench.store)
        extra = f", db optimize {time.perf_counter() - started:.0f} s"
        path = Path(bench.url.removeprefix("sqlite:///"))
        megabytes = sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20
    bench.note(
        f"{size:,} tickets: filled {size - filled:,} in {filled_s:.0f} s{extra}; "
        f"{megabytes:,.0f} MB"
    )
