"""Store tests: each runs on SQLite and on the real PostgreSQL (required in CI)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, select, text, update

from ml_connector.connections import EpicorSettings, SftpSettings
from ml_connector.errors import ConfigError, NotFoundError, SecretDecryptError, StoreError
from ml_connector.secrets import Keyring, Secret, generate_key
from ml_connector.store import Store
from ml_connector.store import models as m
from ml_connector.store.db import SCHEMA_HEAD, current_revision, head_revision

CANARIES = {
    "host": "canary-host-8f3a.example",
    "user": "canary-user-51d0",
    "password": "canary-pass-Q9w2",
    "api_key": "canary-apikey-77Hx",
    "url": "https://canary-url-3c1e.example/inst",
}


def epicor(**kw: object) -> EpicorSettings:
    base: dict[str, object] = dict(
        url=CANARIES["url"],
        company="EPIC06",
        username=CANARIES["user"],
        api_key=Secret(CANARIES["api_key"]),
        password=Secret(CANARIES["password"]),
    )
    base.update(kw)
    return EpicorSettings(**base)  # type: ignore[arg-type]


def sftp() -> SftpSettings:
    return SftpSettings(
        host=CANARIES["host"],
        username=CANARIES["user"],
        password=Secret(CANARIES["password"]),
        host_keys=("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKob2geNDHoYKlqtJ6KReJxJg2JCytH/UPiWY57WTl4R",),
    )


def test_migrated_to_head_and_models_match_migrations(store: Store) -> None:
    assert current_revision(store.engine) == head_revision()
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diffs = compare_metadata(ctx, m.Base.metadata)
    assert diffs == []


def test_open_is_idempotent(db_url: str) -> None:
    Store.open(db_url).close()
    s = Store.open(db_url)
    assert current_revision(s.engine) == head_revision()
    s.close()


def test_newer_schema_is_refused_and_untouched(store: Store, db_url: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed9999'"))
    with pytest.raises(StoreError, match="newer than this ml-connector"):
        Store.open(db_url)
    assert current_revision(store.engine) == "f00dfeed9999"


def test_connection_round_trip_and_dump_has_no_plaintext(store: Store, keyring: Keyring) -> None:
    store.connections.add("kinetic", epicor(), keyring)
    store.connections.add("partner", sftp(), keyring)
    got = store.connections.settings("kinetic", keyring)
    assert isinstance(got, EpicorSettings)
    assert got.api_key.reveal() == CANARIES["api_key"]
    assert got.url == CANARIES["url"]
    got_sftp = store.connections.settings("partner", keyring)
    assert isinstance(got_sftp, SftpSettings) and got_sftp.host == CANARIES["host"]
    assert [c.name for c in store.connections.list()] == ["kinetic", "partner"]
    # Every row of every table, as the database returns it: no canary anywhere.
    meta = MetaData()
    meta.reflect(store.engine)
    dump = []
    with store.engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                dump.append(repr(tuple(row)))
    blob = "\n".join(dump)
    assert "kinetic" in blob  # the dump is real
    for canary in CANARIES.values():
        assert canary not in blob


def test_swapped_ciphertext_fails(store: Store, keyring: Keyring) -> None:
    store.connections.add("a", epicor(), keyring)
    store.connections.add("b", epicor(company="OTHER"), keyring)
    with store.engine.begin() as conn:
        a_ct = conn.execute(select(m.Connection.settings_ct).where(m.Connection.name == "a")).scalar_one()
        conn.execute(update(m.Connection).where(m.Connection.name == "b").values(settings_ct=a_ct))
    assert isinstance(store.connections.settings("a", keyring), EpicorSettings)
    with pytest.raises(SecretDecryptError, match=r"connection 'b'.*copied from another row"):
        store.connections.settings("b", keyring)


def test_duplicate_and_unknown_names(store: Store, keyring: Keyring) -> None:
    store.connections.add("dup", epicor(), keyring)
    with pytest.raises(ConfigError, match="already exists"):
        store.connections.add("dup", epicor(), keyring)
    with pytest.raises(NotFoundError, match=r"unknown connection 'nope' \(known: dup\)"):
        store.connections.settings("nope", keyring)
    with pytest.raises(ConfigError, match="connection name"):
        store.connections.add("bad name!", epicor(), keyring)
    store.connections.remove("dup")
    assert store.connections.list() == []


def test_rotate_reencrypts_every_row(store: Store, keyring: Keyring) -> None:
    store.connections.add("a", epicor(), keyring)
    store.connections.add("b", sftp(), keyring)
    new = Keyring((generate_key(), *keyring.keys), "test")
    assert store.connections.rotate(new, new) == 2
    assert store.connections.count_not_under(new.active_id) == 0
    only_new = Keyring((new.keys[0],), "test")
    assert store.connections.settings("b", only_new).host == CANARIES["host"]  # type: ignore[union-attr]
    from ml_connector.errors import MasterKeyError

    with pytest.raises(MasterKeyError):
        store.connections.settings("a", keyring)


def test_audit_record_query_and_redaction(store: Store) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    clock = iter(t0 + timedelta(minutes=i) for i in range(100))
    store.clock = lambda: next(clock)
    store.audit.record("run.started", flow="f1", run_id="r1")
    store.audit.record(
        "epicor.call",
        flow="f1",
        run_id="r1",
        subject="GET Vendors",
        duration_ms=12.5,
        details={"status": 200, "headers": {"x-api-key": "k-should-vanish", "Accept": "json"}},
    )
    store.audit.record("file.uploaded", flow="f2", run_id="r2", subject="/out/a.csv", outcome="ok")
    store.audit.record("run.failed", flow="f2", run_id="r2", outcome="error")
    assert [e.kind for e in store.audit.query(flow="f1")] == ["run.started", "epicor.call"]
    assert [e.kind for e in store.audit.query(run_id="r2")] == ["file.uploaded", "run.failed"]
    assert [e.kind for e in store.audit.query(kind="run")] == ["run.started", "run.failed"]
    assert [e.kind for e in store.audit.query(subject="/out/a.csv")] == ["file.uploaded"]
    assert [e.kind for e in store.audit.query(since=t0 + timedelta(minutes=2))] == [
        "file.uploaded",
        "run.failed",
    ]
    assert len(store.audit.query(limit=1)) == 1
    call = store.audit.query(kind="epicor.call")[0]
    assert call.details["headers"]["x-api-key"] == "********"
    assert call.details["headers"]["Accept"] == "json"
    assert call.duration_ms == 12.5 and call.at == t0 + timedelta(minutes=1)


def test_flow_lock_lease_semantics(store: Store) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    store.clock = lambda: now[0]
    ttl = timedelta(seconds=60)
    assert store.locks.acquire("f", "A", ttl)
    assert not store.locks.acquire("f", "B", ttl)
    assert store.locks.acquire("f", "A", ttl)  # renew
    assert store.locks.holder("f") == ("A", now[0] + ttl)
    assert store.locks.acquire("g", "B", ttl)  # other flows are independent
    now[0] += timedelta(seconds=61)  # A's lease expired (crashed holder)
    assert store.locks.acquire("f", "B", ttl)
    assert not store.locks.release("f", "A")  # A no longer owns it
    assert store.locks.release("f", "B")
    with store.locks.hold("f", "C", ttl) as got:
        assert got
        assert not store.locks.acquire("f", "D", ttl)
    assert store.locks.acquire("f", "D", ttl)


def test_control_numbers_are_unique_under_concurrency(db_url: str) -> None:
    import threading

    Store.open(db_url).close()
    got: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        s = Store(db_url)
        try:
            for _ in range(25):
                got.extend(s.control_numbers.allocate("ACME", "ISA"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(got) == list(range(1, 101))


def test_control_numbers_batches_partners_and_wrap(store: Store) -> None:
    assert store.control_numbers.allocate("ACME", "ST", 3) == [1, 2, 3]
    assert store.control_numbers.allocate("ACME", "GS") == [1]
    assert store.control_numbers.allocate("OTHER", "ST") == [1]
    assert store.control_numbers.allocate("ACME", "ST") == [4]
    with store.engine.begin() as conn:
        conn.execute(update(m.ControlNumber).where(m.ControlNumber.partner == "ACME", m.ControlNumber.level == "ST")
                     .values(last_value=999_999_998))  # fmt: skip
    assert store.control_numbers.allocate("ACME", "ST", 3) == [999_999_999, 1, 2]
    assert store.control_numbers.peek("ACME", "ST") == 2


def test_watermark_moves_only_with_its_transaction(store: Store) -> None:
    assert store.watermarks.get("out") is None
    with store.session() as s, s.begin():
        store.watermarks.set("out", "SysRevID", "42", run_id="r1", session=s)
    assert store.watermarks.get("out") == ("SysRevID", "42")
    with pytest.raises(RuntimeError), store.session() as s, s.begin():
        store.watermarks.set("out", "SysRevID", "99", run_id="r2", session=s)
        raise RuntimeError("the delivery failed: the transaction rolls back")
    assert store.watermarks.get("out") == ("SysRevID", "42")


def test_schema_head_constant_is_alembics_head() -> None:
    """Opening a store at SCHEMA_HEAD skips Alembic: the constant must follow every new migration."""
    assert head_revision() == SCHEMA_HEAD
