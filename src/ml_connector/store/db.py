"""Engine creation and automatic Alembic migrations, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import NullPool

from ..errors import StoreError
from .readers import SQLITE_BUSY_TIMEOUT_S
from .revision import SCHEMA_HEAD

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def describe_url(url: str) -> str:
    """The database URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def make_engine(url: str) -> Engine:
    """An engine with the pragmas and timeouts ml-connector relies on."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"database URL {describe_url(url)!s} is not a valid SQLAlchemy URL") from None
    kwargs: dict[str, Any] = {"future": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # A connection per checkout: several processes share the file through SQLite's locks.
        kwargs["poolclass"] = NullPool
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {"connect_timeout": 10}
    engine = create_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _at_head(engine: Engine) -> bool:
    """The schema is at SCHEMA_HEAD (a plain read of alembic_version; False when it cannot tell)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).fetchall()
    except Exception:  # no table yet, or a driver error: the full check below decides
        return False
    return [r[0] for r in rows] == [SCHEMA_HEAD]


def migrate(engine: Engine) -> None:
    """Bring the schema to head; refuse a database written by a newer ml-connector."""
    if _at_head(engine):
        return
    from alembic import command
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config())
    try:
        current = current_revision(engine)
    except OperationalError as exc:
        raise StoreError(f"cannot open database {describe_url(str(engine.url))}: {exc.orig}") from None
    if current is not None:
        try:
            script.get_revision(current)
        except Exception:
            raise StoreError(
                f"database {describe_url(str(engine.url))} has schema revision {current}, "
                f"newer than this ml-connector knows (up to {script.get_current_head()}); "
                "upgrade ml-connector"
            ) from None
        if current == script.get_current_head():
            return
    elif inspect(engine).get_table_names() and "connections" in inspect(engine).get_table_names():
        raise StoreError(
            f"database {describe_url(str(engine.url))} has ml-connector tables but no "
            "schema revision; refusing to guess"
        )
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
