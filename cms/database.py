"""SQL engines for the index and the accounts: SQLite (WAL, immediate write transactions) or
PostgreSQL, and table creation that tolerates another process creating the same tables."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.exc import DisconnectionError, IntegrityError, OperationalError, ProgrammingError


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
    engine = create_engine(
        url,
        pool_size=5,
        max_overflow=5,
        pool_timeout=10,
        connect_args={"connect_timeout": 5} if url.startswith("postgresql") else {},
    )
    _ping_when_idle(engine)
    return engine


PING_IDLE_AFTER = 1.0  # seconds a pooled connection may rest before it is pinged on checkout


def _ping_when_idle(engine: Engine) -> None:
    """pool_pre_ping, but only for a connection that rested in the pool: one that served a
    request a moment ago is alive, and a ping per checkout costs a round trip each (three per
    edit). A dead one is replaced (DisconnectionError, SQLAlchemy's documented way); one that
    died while busy fails its request with 503, and SQLAlchemy then drops the whole pool."""

    @event.listens_for(engine, "checkin")
    def _rested_since(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_rested(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_IDLE_AFTER:
            return  # a new connection, or one in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError("the pooled connection is dead") from exc


def create_all(engine: Engine, metadata: MetaData) -> None:
    """Create what is missing; another process creating the same tables at once is fine."""
    try:
        metadata.create_all(engine)
    except (OperationalError, ProgrammingError, IntegrityError) as exc:
        if "already exists" not in str(exc) and "duplicate" not in str(exc).lower():
            raise
        metadata.create_all(engine)
