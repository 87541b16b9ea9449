"""SQL engines for the index and the accounts: SQLite (WAL, immediate write transactions) or
PostgreSQL, and table creation that tolerates another process creating the same tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError


def make_engine(url: str) -> Engine:
    """An engine; SQLite gets WAL and `BEGIN IMMEDIATE` for sessions that ask for it."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            immediate = conn.get_execution_options().get("sqlite_immediate")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=10,
        connect_args={"connect_timeout": 5} if url.startswith("postgresql") else {},
    )


def create_all(engine: Engine, metadata: MetaData) -> None:
    """Create what is missing; another process creating the same tables at once is fine."""
    try:
        metadata.create_all(engine)
    except (OperationalError, ProgrammingError, IntegrityError) as exc:
        if "already exists" not in str(exc) and "duplicate" not in str(exc).lower():
            raise
        metadata.create_all(engine)
