"""The store's engine and sessions: SQLite in WAL mode by default, PostgreSQL by URL.

The schema is Alembic's (``node/store/migrations``); :func:`migrate` brings a database to
the latest revision and is run by the node at start.
"""

from __future__ import annotations

import copy
import fcntl
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Table, bindparam, create_engine, event, insert, text, update
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 10_000


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Transactions are begun by the "begin" hook below, not by the driver, so that a
            # writing transaction can take the write lock at its start (BEGIN IMMEDIATE):
            # a read-then-write transaction in WAL mode would otherwise fail when another
            # writer committed in between.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            # WAL lets readers run beside the one writer; FULL makes every commit durable
            # before it returns, so a transfer acknowledged with 202 survives a power cut.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            immediate = connection.get_execution_options().get("sqlite_immediate", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def insert_rows(session: Session, model: type[DeclarativeBase], rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` into ``model``'s table with one statement (executemany), past the ORM's unit
    of work: a batch writes hundreds of history, audit and event rows that need no per-object
    bookkeeping."""
    if rows:
        session.execute(insert(table_of(model)), rows)


def update_rows(session: Session, model: type[DeclarativeBase], rows: Sequence[Mapping[str, Any]]) -> None:
    """``UPDATE`` rows of ``model``'s table by ``id``, each to its own values: one executemany per
    set of columns, past the unit of work (see :func:`insert_rows`)."""
    table = table_of(model)
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        # "id" names the row; its bound value is renamed, as a column's own name may not be bound twice.
        by_columns[tuple(c for c in row if c != "id")].append({**row, "_id": row["id"]})
    for columns, group in by_columns.items():
        statement = update(table).where(table.c.id == bindparam("_id")).values({c: bindparam(c) for c in columns})
        session.execute(statement, group)


def table_of(model: type[DeclarativeBase]) -> Table:
    """A mapped class's table, for Core statements."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    """Bring the database to the latest schema (idempotent)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writers = sessionmaker(self.engine.execution_options(sqlite_immediate=True), expire_on_commit=False)
        # SQLite has one writer. Threads of this process queue for it here, in order, rather
        # than in SQLite's busy handler, which sleeps in growing steps (up to 100 ms) and
        # turned 16 concurrent submits into a trickle. Other processes still meet the busy
        # handler; PostgreSQL needs no such lock.
        self._write_lock = threading.Lock() if url.startswith("sqlite") else None
        # Processes sharing the file (the API and the pipeline run as two) queue on a lock file
        # beside it, which the kernel hands on as soon as it is released (and releases if its
        # holder dies). Without it the pipeline's process, sleeping in the busy handler, lost
        # every race to the API's back-to-back commits and stood still while banks submitted.
        path = url.split("///", 1)[1] if url.startswith("sqlite") and "///" in url else ""
        self._lock_path = f"{path}.writer-lock" if path and path != ":memory:" else None
        self._lock_fd: int | None = None
        self._fence: Callable[[Session], None] | None = None

    def fenced(self, fence: Callable[[Session], None]) -> Store:
        """This store (same engine, same writer queue) with ``fence`` run first in every writing
        transaction: the pipeline's writes, refused once its leader's term has ended."""
        view = copy.copy(self)
        view._fence = fence
        return view

    def migrate(self) -> None:
        migrate(self.engine)

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Session]:
        """A session whose work commits at the end of the block, or rolls back on any error.

        A writing transaction on SQLite holds the write lock from its first statement, so
        that what it read is still true when it writes; PostgreSQL relies on constraints.
        """
        maker = self._writers if write else self._sessions
        queue = self._write_lock if write and self._write_lock is not None else nullcontext()
        with queue, self._file_lock(write), maker() as session, session.begin():
            if write and self._fence is not None:
                self._fence(session)
            yield session

    @contextmanager
    def _file_lock(self, write: bool) -> Iterator[None]:
        """The cross-process writer queue (SQLite files only); taken under the thread lock."""
        if not write or self._lock_path is None:
            yield
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def session(self) -> Session:
        return self._sessions()

    def writable(self) -> bool:
        """True when a write round-trips (for /readyz)."""
        try:
            with self.transaction() as session:
                session.execute(text("UPDATE network_state SET id = id WHERE id = 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
