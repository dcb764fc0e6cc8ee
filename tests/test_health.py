"""Flow health read from the ledger: one reading for ``status`` and the console, on every reader.

``status`` reads a SQLite home through the standard library's sqlite3 (no SQLAlchemy import, for
start-up time); everything else reads through the store's engine. Both must say the same thing on
the same rows, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ml_connector.errors import StoreError
from ml_connector.states import FileState, RecordState, RunState
from ml_connector.store import Store
from ml_connector.store.health import FlowHealth, FlowLedger, read_flows
from ml_connector.store.readers import EngineReader, open_sqlite_reader, sqlite_file, store_reader
from ml_connector.store.revision import SCHEMA_HEAD

T0 = datetime(2026, 12, 3, 8, 0, 0, 123456, tzinfo=UTC)
FLOWS = ["vendors-in", "remit-out", "quiet", "never"]


@pytest.fixture
def clocked(db_url: str) -> Iterator[tuple[Store, list[datetime]]]:
    now = [T0]
    store = Store.open(db_url, clock=lambda: now[0])
    yield store, now
    store.close()


def engine_read(store: Store, flows: list[str], *, now: datetime) -> list[FlowLedger]:
    with store.engine.connect() as conn:
        return read_flows(EngineReader(conn), flows, now=now)


def _fill(store: Store, now: list[datetime]) -> dict[str, str]:
    """One flow of each health: attention (failed record, error, open, refused), running, ok, never run."""
    ledger = store.ledger
    inbound = ledger.start_run("vendors-in", "inbound", "test")
    bad, _ = ledger.see(flow="vendors-in", run_id=inbound, remote_path="/in/a.csv", size=1, mtime=1)
    ledger.add_records(bad.id, "0" * 64, [(0, "line 2", "V1", RecordState.FAILED, "no such vendor")])
    ledger.update_file(bad.id, state=FileState.ERROR)
    ledger.see(flow="vendors-in", run_id=inbound, remote_path="/in/b.csv", size=1, mtime=1)  # stays seen: open
    ledger.refuse(flow="vendors-in", run_id=inbound, remote_path="/in/link", reason="not a regular file")
    ledger.finish_run(inbound, RunState.PARTIAL, {"records_posted": 3, "records_failed": 1}, "1 of 4 records failed")
    now[0] = T0 + timedelta(minutes=5)
    out = ledger.start_run("remit-out", "outbound", "schedule")  # still running, an interchange sent
    fid = ledger.record_intent(flow="remit-out", run_id=out, remote_path="/out/r.820", local_path="/x",
                               sha256="c" * 64, size=5, details={})  # fmt: skip
    ledger.update_file(fid, state=FileState.DELIVERED)
    ledger.add_interchange(direction="outbound", sender="ZZ:US", receiver="ZZ:THEM", control_number="000000042",
                           file_id=fid, groups={"42": {}}, state="sent")  # fmt: skip
    quiet = ledger.start_run("quiet", "outbound", "cli")
    ledger.finish_run(quiet, RunState.SUCCEEDED, {"records": 0})
    return {"inbound": inbound, "outbound": out, "quiet": quiet}


def test_health_reads_every_kind_of_trouble(clocked: tuple[Store, list[datetime]]) -> None:
    store, now = clocked
    ids = _fill(store, now)
    got = {f.flow: f for f in engine_read(store, FLOWS, now=T0 + timedelta(hours=1))}
    vend = got["vendors-in"]
    assert vend.health == FlowHealth(records_failed=1, files_error=1, files_open=1, files_refused=1)
    assert vend.word == "attention"
    assert vend.last is not None and vend.last.id == ids["inbound"] and vend.last.state == "partial"
    assert vend.last.started_at == T0 and vend.last.started_at.tzinfo is not None
    assert vend.last.counts == {"records_posted": 3, "records_failed": 1}
    assert vend.last.error == "1 of 4 records failed" and vend.last.trigger == "test"
    assert got["remit-out"].word == "running" and got["remit-out"].health.acks_overdue == 0
    assert got["quiet"].word == "ok" and got["quiet"].health == FlowHealth()
    assert got["never"] == FlowLedger("never", None, FlowHealth()) and got["never"].word == "never run"
    # The 997 is overdue once ack_timeout_minutes have passed since the interchange was sent.
    (late,) = engine_read(store, ["remit-out"], now=T0 + timedelta(minutes=5, hours=4, seconds=1))
    assert late.health.acks_overdue == 1
    (soon,) = engine_read(store, ["remit-out"], now=T0 + timedelta(hours=4))
    assert soon.health.acks_overdue == 0


def test_refused_names_count_for_the_last_run_only(clocked: tuple[Store, list[datetime]]) -> None:
    store, now = clocked
    _fill(store, now)
    again = store.ledger.start_run("vendors-in", "inbound", "test")
    store.ledger.finish_run(again, RunState.SUCCEEDED, {})
    (vend,) = engine_read(store, ["vendors-in"], now=T0)
    assert vend.health.files_refused == 0 and vend.health.records_failed == 1


def test_the_sqlite3_reader_says_what_the_engine_says(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'home.db'}"
    now = [T0]
    with Store.open(url, clock=lambda: now[0]) as store:
        _fill(store, now)
        later = T0 + timedelta(hours=6)
        by_engine = engine_read(store, FLOWS, now=later)
    quick = open_sqlite_reader(url)
    assert quick is not None
    try:
        assert read_flows(quick, FLOWS, now=later) == by_engine
    finally:
        quick.close()
    assert by_engine[1].health.acks_overdue == 1  # the timestamp parameter compares as stored


def test_the_sqlite3_reader_is_used_only_on_a_current_sqlite_home(tmp_path: Path) -> None:
    assert sqlite_file("postgresql+psycopg://u@127.0.0.1/db") is None
    assert sqlite_file("sqlite:///:memory:") is None and sqlite_file("sqlite:///x.db?mode=ro") is None
    assert sqlite_file("sqlite:////abs/x.db") == Path("/abs/x.db")
    missing = tmp_path / "missing.db"
    assert open_sqlite_reader(f"sqlite:///{missing}") is None and not missing.exists()
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.execute("INSERT INTO alembic_version VALUES ('0003')")
    conn.close()
    assert open_sqlite_reader(f"sqlite:///{old}") is None
    current = tmp_path / "current.db"
    Store.open(f"sqlite:///{current}").close()
    quick = open_sqlite_reader(f"sqlite:///{current}")
    assert quick is not None
    try:  # read-only: a write is refused by SQLite itself, and reported as a store error naming the file
        with pytest.raises(StoreError, match=rf"cannot read database {current}: .*readonly"):
            quick.rows("DELETE FROM runs")
        assert quick.rows("SELECT version_num FROM alembic_version") == [(SCHEMA_HEAD,)]
    finally:
        quick.close()


def test_a_home_that_needs_migrating_is_opened_by_the_store(tmp_path: Path) -> None:
    """An empty file (no schema yet) goes through Store.open, which migrates it; then it reads."""
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with store_reader(f"sqlite:///{empty}") as reader:
        assert isinstance(reader, EngineReader)
        assert read_flows(reader, ["a"], now=T0) == [FlowLedger("a", None, FlowHealth())]
    assert open_sqlite_reader(f"sqlite:///{empty}") is not None  # at SCHEMA_HEAD now


def test_status_reads_a_sqlite_home_without_importing_sqlalchemy(tmp_path: Path) -> None:
    """The start-up budget of ``status`` (bench/cli.py) depends on this; SQLAlchemy alone is ~0.2 s."""
    home = tmp_path / "home"
    env_home = {"ML_CONNECTOR_HOME": str(home)}
    code = (
        "import sys\n"
        "from ml_connector.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as exc:\n"
        "    print('exit', exc.code)\n"
        "print('loaded:', sorted(m for m in ('sqlalchemy', 'alembic', 'httpx', 'asyncssh', 'cryptography')"
        " if m in sys.modules))\n"
    )
    import os

    env = {**os.environ, **env_home}
    env.pop("ML_CONNECTOR_DATABASE_URL", None)
    subprocess.run([sys.executable, "-m", "ml_connector", "init"], env=env, check=True, capture_output=True)
    (home / "flows.yaml").write_text(
        "flows:\n  out:\n    direction: outbound\n    epicor: k\n    entity: vendors\n    sftp: s\n"
        "    folder: /out\n    format: {type: csv}\n"
    )
    with Store.open(f"sqlite:///{home / 'ml-connector.db'}") as store:
        run = store.ledger.start_run("out", "outbound", "cli")
        store.ledger.finish_run(run, RunState.FAILED, {}, "Kinetic said no")
    done = subprocess.run([sys.executable, "-c", code, "status"], env=env, capture_output=True, text=True, check=True)
    assert "exit 1" in done.stdout and "failing" in done.stdout and "Kinetic said no" in done.stdout, done.stdout
    assert "loaded: []" in done.stdout, done.stdout
