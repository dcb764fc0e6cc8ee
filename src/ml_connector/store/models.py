"""SQLAlchemy models: the one schema shared by SQLite and PostgreSQL.

The schema itself is created and evolved only by the Alembic migrations in ``migrations/``;
a test checks that these models and the migrations agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive ISO text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class Connection(Base):
    """An Epicor or SFTP connection; all settings sealed in one ciphertext bound to ``id``."""

    __tablename__ = "connections"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # epicor | sftp
    key_id: Mapped[str] = mapped_column(String(32))
    settings_ct: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Watermark(Base):
    """How far an outbound flow has delivered (the cursor value of the last delivered record)."""

    __tablename__ = "watermarks"

    flow: Mapped[str] = mapped_column(String(200), primary_key=True)
    cursor_field: Mapped[str] = mapped_column(String(100))
    value: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]
    run_id: Mapped[str | None] = mapped_column(String(36))
    tiebreak: Mapped[str | None] = mapped_column(Text)  # SysRevID of the last row at ``value`` (date cursors)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    flow: Mapped[str] = mapped_column(String(200), index=True)
    direction: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(32))  # cli | schedule | replay | demo
    state: Mapped[str] = mapped_column(String(16))  # running | succeeded | failed | partial
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_flow_at", "flow", "at"),
        Index("ix_audit_events_run_id", "run_id"),
        Index("ix_audit_events_subject", "subject"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    run_id: Mapped[str | None] = mapped_column(String(36))
    flow: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))  # ok | error | warning | info | skipped
    duration_ms: Mapped[float | None]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class FileEntry(Base):
    """The file ledger: one row per inbound file seen or outbound file intended."""

    __tablename__ = "files"
    __table_args__ = (
        UniqueConstraint("flow", "direction", "remote_path", "size", "mtime", name="uq_files_identity"),
        Index("ix_files_flow_state", "flow", "state"),
        Index("ix_files_sha256", "sha256"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    flow: Mapped[str] = mapped_column(String(200))
    direction: Mapped[str] = mapped_column(String(16))  # inbound | outbound
    remote_path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger, default=-1)
    mtime: Mapped[int] = mapped_column(BigInteger, default=-1)
    sha256: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    local_path: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(36))
    error: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RecordEntry(Base):
    """The record ledger: one row per parsed inbound record, keyed for idempotency."""

    __tablename__ = "records"
    __table_args__ = (
        Index("ix_records_file_state", "file_id", "state"),
        Index("ix_records_file_idx", "file_id", "idx", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"))
    idx: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    position: Mapped[str | None] = mapped_column(String(100))  # "line 12" or "ST 0001 seg 7"
    natural_key: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))  # pending|sending|posted|failed|unknown
    erp_keys: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime]


class ControlNumber(Base):
    """Persisted X12 control-number counters per partner and level (ISA, GS, ST)."""

    __tablename__ = "x12_control_numbers"

    partner: Mapped[str] = mapped_column(String(200), primary_key=True)
    level: Mapped[str] = mapped_column(String(8), primary_key=True)
    last_value: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


class FlowLock(Base):
    """A per-flow lease: one process at a time runs a flow, until ``expires_at``."""

    __tablename__ = "flow_locks"

    flow: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class X12Interchange(Base):
    """Interchanges sent and received: duplicate ISA13 detection, and 997/TA1 matching."""

    __tablename__ = "x12_interchanges"
    __table_args__ = (
        UniqueConstraint("direction", "sender", "receiver", "control_number", name="uq_x12_interchanges_identity"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    direction: Mapped[str] = mapped_column(String(16))  # inbound | outbound
    sender: Mapped[str] = mapped_column(String(40))  # "ZZ:SENDERID"
    receiver: Mapped[str] = mapped_column(String(40))
    control_number: Mapped[str] = mapped_column(String(9))
    file_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("files.id", ondelete="SET NULL"))
    groups: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"GS06": {"sets": [...], "state": ...}}
    state: Mapped[str] = mapped_column(String(16))  # received | sent | accepted | rejected
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class FlowSchedule(Base):
    """The last cron slot of a flow that some ``serve`` process claimed (each slot runs once)."""

    __tablename__ = "flow_schedule"

    flow: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_slot: Mapped[datetime]
    owner: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime]


class ConsoleUser(Base):
    """A person who may log in to the operator console (``ml-connector users add``)."""

    __tablename__ = "console_users"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # viewer | operator
    password_hash: Mapped[str] = mapped_column(Text)  # argon2id, PHC string
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class FlowSetting(Base):
    """Operator overrides of a flow kept in the database (the console's enable/disable)."""

    __tablename__ = "flow_settings"

    flow: Mapped[str] = mapped_column(String(200), primary_key=True)
    enabled: Mapped[bool]
    updated_at: Mapped[datetime]
    updated_by: Mapped[str | None] = mapped_column(String(100))


# Indexes the console's pages and `runs` need at 100k runs / 1M records (migration 0006).
Index("ix_runs_started_at", Run.started_at)
Index("ix_runs_flow_started_at", Run.flow, Run.started_at)
Index("ix_records_state", RecordEntry.state)
Index("ix_records_natural_key", RecordEntry.natural_key)
Index("ix_files_run_id", FileEntry.run_id)
Index("ix_x12_interchanges_control_number", X12Interchange.control_number)
Index("ix_x12_interchanges_file_id", X12Interchange.file_id)
