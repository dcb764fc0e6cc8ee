"""Read-only SQL on the store without SQLAlchemy where it can: quick commands start fast.

``status`` and ``flows validate`` read a few rows. Importing SQLAlchemy alone costs about 0.2 s on
the development machine, most of those commands' start-up, so on a SQLite home whose schema is at
``SCHEMA_HEAD`` they read through the standard library's ``sqlite3`` (read-only). Any other
database, or a schema that needs migrating, goes through ``Store.open`` and its engine, with the
same SQL: plain statements with ``:name`` parameters, which both ``sqlite3`` and SQLAlchemy's
``text()`` take.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from .revision import SCHEMA_HEAD

if TYPE_CHECKING:
    from sqlalchemy import Connection

SQLITE_BUSY_TIMEOUT_S = 30.0


class Reader:
    """Runs a SELECT with ``:name`` parameters and returns its rows as tuples."""

    sqlite: bool

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def when(self, value: datetime) -> Any:
        """A timestamp parameter as the backend stores it (SQLite: naive UTC ISO text)."""
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") if self.sqlite else value


class SqliteReader(Reader):
    """A standard-library ``sqlite3`` connection (no SQLAlchemy)."""

    sqlite = True

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._path = path

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            return [tuple(r) for r in self._conn.execute(sql, dict(params or {})).fetchall()]
        except sqlite3.Error as exc:  # e.g. locked for longer than the busy timeout
            raise StoreError(f"cannot read database {self._path}: {exc}") from None

    def close(self) -> None:
        self._conn.close()


class EngineReader(Reader):
    """A connection of the store's SQLAlchemy engine (any backend), held for the reader's queries."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.sqlite = conn.dialect.name == "sqlite"

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        from sqlalchemy import text

        return [tuple(r) for r in self._conn.execute(text(sql), dict(params or {}))]


def sqlite_file(database_url: str) -> Path | None:
    """The file of a plain ``sqlite:///PATH`` URL (None for any other URL, or one with options)."""
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if database_url.startswith(prefix):
            rest = database_url[len(prefix) :]
            if not rest or rest == ":memory:" or "?" in rest:
                return None
            return Path(rest)
    return None


def open_sqlite_reader(database_url: str) -> SqliteReader | None:
    """A read-only ``sqlite3`` reader on a SQLite home at ``SCHEMA_HEAD``; None when the Store must open it.

    None for another backend, a missing file, an older or newer schema, or any sqlite3 error: the
    Store's open then migrates, or reports the problem with its usual message.
    """
    path = sqlite_file(database_url)
    if path is None or not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=SQLITE_BUSY_TIMEOUT_S)
    except sqlite3.Error:
        return None
    try:
        versions = [r[0] for r in conn.execute("SELECT version_num FROM alembic_version").fetchall()]
    except sqlite3.Error:
        versions = []
    if versions != [SCHEMA_HEAD]:
        conn.close()
        return None
    return SqliteReader(conn, path)


@contextmanager
def store_reader(database_url: str) -> Iterator[Reader]:
    """A reader on the store: ``sqlite3`` when it can (see ``open_sqlite_reader``), else the Store."""
    quick = open_sqlite_reader(database_url)
    if quick is not None:
        try:
            yield quick
        finally:
            quick.close()
        return
    from .store import Store

    with Store.open(database_url) as store, store.engine.connect() as conn:
        yield EngineReader(conn)
