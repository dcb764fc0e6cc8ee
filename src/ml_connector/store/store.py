"""The ``Store``: connections (sealed), the audit trail and flow locks over one database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..connections import ConnectionSettings, deserialize, serialize
from ..errors import ConfigError, NotFoundError, StoreError
from ..logs import redact_mapping, redact_text
from ..secrets import Keyring
from . import models as m
from .db import make_engine, migrate
from .ledger import Ledger

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class StoredConnection:
    id: str
    name: str
    kind: str
    key_id: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    run_id: str | None
    flow: str | None
    kind: str
    subject: str | None
    outcome: str
    duration_ms: float | None
    details: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "run_id": self.run_id,
            "flow": self.flow,
            "kind": self.kind,
            "subject": self.subject,
            "outcome": self.outcome,
            "duration_ms": self.duration_ms,
            "details": self.details,
        }


def _context(conn_id: str) -> str:
    return f"connections|{conn_id}|settings_ct"


class ConnectionStore:
    """Connections with every setting sealed under the master key, bound to the row id."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, name: str, settings: ConnectionSettings, keyring: Keyring) -> StoredConnection:
        if not name or len(name) > 100 or not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"connection name {name!r}: use letters, digits, '-' and '_' (1-100 characters)")
        now = self._store.clock()
        conn_id = str(uuid.uuid4())
        key_id, blob = keyring.seal(serialize(settings), context=_context(conn_id))
        row = m.Connection(
            id=conn_id,
            name=name,
            kind=settings.kind,
            key_id=key_id,
            settings_ct=blob,
            created_at=now,
            updated_at=now,
        )
        try:
            with self._store.session() as s, s.begin():
                s.add(row)
        except IntegrityError:
            raise ConfigError(f"a connection named {name!r} already exists (remove it first)") from None
        self._store.audit.record("connection.added", subject=name, details={"kind": settings.kind, "key_id": key_id})
        return self.get(name)

    def get(self, name: str) -> StoredConnection:
        with self._store.session() as s:
            row = s.scalar(select(m.Connection).where(m.Connection.name == name))
            if row is None:
                known = s.scalars(select(m.Connection.name).order_by(m.Connection.name)).all()
                hint = f" (known: {', '.join(known)})" if known else " (none are defined)"
                raise NotFoundError(f"unknown connection {name!r}{hint}")
            return _stored(row)

    def list(self) -> list[StoredConnection]:
        with self._store.session() as s:
            rows = s.scalars(select(m.Connection).order_by(m.Connection.name)).all()
            return [_stored(r) for r in rows]

    def settings(self, name: str, keyring: Keyring) -> ConnectionSettings:
        """Decrypt one connection's settings (the only path to its credentials)."""
        with self._store.session() as s:
            row = s.scalar(select(m.Connection).where(m.Connection.name == name))
            if row is None:
                self.get(name)  # raises NotFoundError with the known names
                raise AssertionError("unreachable")
            try:
                plain = keyring.open(row.key_id, row.settings_ct, context=_context(row.id))
            except Exception as exc:
                exc.args = (f"connection {name!r}: {exc.args[0] if exc.args else exc}",)
                raise
            return deserialize(row.kind, plain)

    def remove(self, name: str) -> None:
        self.get(name)
        with self._store.session() as s, s.begin():
            s.execute(delete(m.Connection).where(m.Connection.name == name))
        self._store.audit.record("connection.removed", subject=name)

    def rotate(self, old: Keyring, new: Keyring) -> int:
        """Re-seal every connection under ``new``'s active key in one transaction."""
        with self._store.session() as s, s.begin():
            rows = s.scalars(select(m.Connection).with_for_update()).all()
            for row in rows:
                plain = old.open(row.key_id, row.settings_ct, context=_context(row.id))
                row.key_id, row.settings_ct = new.seal(plain, context=_context(row.id))
                row.updated_at = self._store.clock()
            return len(rows)

    def count_not_under(self, key_id: str) -> int:
        with self._store.session() as s:
            return s.scalar(select(func.count()).select_from(m.Connection).where(m.Connection.key_id != key_id)) or 0


def _stored(row: m.Connection) -> StoredConnection:
    return StoredConnection(row.id, row.name, row.kind, row.key_id, row.created_at, row.updated_at)


class AuditLog:
    """Append and query audit events. Details are redacted before they are written."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def record(
        self,
        kind: str,
        *,
        flow: str | None = None,
        run_id: str | None = None,
        subject: str | None = None,
        outcome: str = "ok",
        duration_ms: float | None = None,
        details: dict[str, Any] | None = None,
        session: Session | None = None,
    ) -> None:
        """Record one event; pass ``session`` to write it in the caller's transaction."""
        clean = redact_mapping(details or {})
        # Round-trip through JSON so nothing non-serialisable reaches the column.
        clean = json.loads(json.dumps(clean, default=str))
        values = {
            "at": self._store.clock(),
            "run_id": run_id,
            "flow": flow,
            "kind": kind,
            "subject": redact_text(subject) if subject else subject,
            "outcome": outcome,
            "duration_ms": duration_ms,
            "details": clean,
        }
        if session is not None:
            session.execute(insert(m.AuditEvent).values(**values))
            return
        with self._store.session() as s, s.begin():
            s.execute(insert(m.AuditEvent).values(**values))

    def prune(self, before: datetime) -> int:
        """Delete events older than ``before`` (the ledgers are kept); returns how many."""
        return _prune_audit(self._store, before)

    def query(
        self,
        *,
        flow: str | None = None,
        run_id: str | None = None,
        subject: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        limit: int | None = 1000,
    ) -> list[AuditRecord]:
        """Events matching every given filter, oldest first (the newest ``limit`` of them)."""
        q = select(m.AuditEvent)
        if flow is not None:
            q = q.where(m.AuditEvent.flow == flow)
        if run_id is not None:
            q = q.where(m.AuditEvent.run_id == run_id)
        if subject is not None:
            q = q.where(m.AuditEvent.subject == subject)
        if kind is not None:
            q = q.where(or_(m.AuditEvent.kind == kind, m.AuditEvent.kind.startswith(kind.rstrip(".") + ".")))
        if since is not None:
            q = q.where(m.AuditEvent.at >= since)
        q = q.order_by(m.AuditEvent.id.desc())
        if limit is not None:
            q = q.limit(limit)
        with self._store.session() as s:
            rows = list(s.scalars(q).all())
        rows.reverse()
        return [
            AuditRecord(r.id, r.at, r.run_id, r.flow, r.kind, r.subject, r.outcome, r.duration_ms, r.details)
            for r in rows
        ]


def _prune_audit(store: Store, before: datetime) -> int:
    with store.session() as s, s.begin():
        gone = s.execute(delete(m.AuditEvent).where(m.AuditEvent.at < before))
        return int(gone.rowcount)  # type: ignore[attr-defined]


class FlowLocks:
    """Per-flow leases in the database: they exclude other processes, not just other tasks."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def acquire(self, flow: str, owner: str, ttl: timedelta) -> bool:
        """Take or renew the lease on ``flow``; False if another owner holds a live lease."""
        now = self._store.clock()
        with self._store.session() as s, s.begin():
            taken = s.execute(
                update(m.FlowLock)
                .where(
                    m.FlowLock.flow == flow,
                    or_(m.FlowLock.expires_at < now, m.FlowLock.owner == owner),
                )
                .values(owner=owner, acquired_at=now, expires_at=now + ttl)
            )
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                return True
        try:
            with self._store.session() as s, s.begin():
                s.execute(insert(m.FlowLock).values(flow=flow, owner=owner, acquired_at=now, expires_at=now + ttl))
        except IntegrityError:
            return False
        return True

    def release(self, flow: str, owner: str) -> bool:
        with self._store.session() as s, s.begin():
            gone = s.execute(delete(m.FlowLock).where(m.FlowLock.flow == flow, m.FlowLock.owner == owner))
            return bool(gone.rowcount == 1)  # type: ignore[attr-defined]

    def holder(self, flow: str) -> tuple[str, datetime] | None:
        with self._store.session() as s:
            row = s.get(m.FlowLock, flow)
            if row is None or row.expires_at < self._store.clock():
                return None
            return row.owner, row.expires_at

    @contextmanager
    def hold(self, flow: str, owner: str, ttl: timedelta = timedelta(minutes=10)) -> Iterator[bool]:
        """``with locks.hold(flow, owner) as got:`` runs the body either way; check ``got``."""
        got = self.acquire(flow, owner, ttl)
        try:
            yield got
        finally:
            if got:
                self.release(flow, owner)


class ControlNumbers:
    """Persisted X12 control-number counters per partner and level (``ISA``, ``GS``, ``ST``).

    Allocation is one transaction that reads and bumps the counter under a row lock (PostgreSQL
    ``FOR UPDATE``; SQLite serialises writers), so two processes never get the same number.
    ISA13 and GS06 wrap from 999999999 to 1.
    """

    MAX = 999_999_999

    def __init__(self, store: Store) -> None:
        self._store = store

    def allocate(self, partner: str, level: str, count: int = 1, *, session: Session | None = None) -> list[int]:
        if count < 1:
            raise ValueError("count must be >= 1")
        if session is not None:
            return self._allocate(session, partner, level, count)
        for _attempt in range(5):
            try:
                with self._store.session() as s, s.begin():
                    return self._allocate(s, partner, level, count)
            except IntegrityError:  # two first allocations raced to insert the row: retry
                continue
        raise StoreError(f"could not allocate {level} control numbers for {partner!r}")

    def _allocate(self, s: Session, partner: str, level: str, count: int) -> list[int]:
        # The increment happens in SQL: the UPDATE takes the row lock (PostgreSQL) or the write
        # lock (SQLite) before anything is read, so concurrent allocators serialise here.
        now = self._store.clock()
        where = (m.ControlNumber.partner == partner, m.ControlNumber.level == level)
        bumped = s.execute(
            update(m.ControlNumber).where(*where).values(last_value=m.ControlNumber.last_value + count, updated_at=now)
        )
        if bumped.rowcount == 0:  # type: ignore[attr-defined]
            s.execute(insert(m.ControlNumber).values(partner=partner, level=level, last_value=count, updated_at=now))
        last = int(s.execute(select(m.ControlNumber.last_value).where(*where)).scalar_one())
        numbers = [((n - 1) % self.MAX) + 1 for n in range(last - count + 1, last + 1)]
        if last > self.MAX:
            s.execute(update(m.ControlNumber).where(*where).values(last_value=numbers[-1]))
        return numbers

    def peek(self, partner: str, level: str) -> int:
        with self._store.session() as s:
            row = s.get(m.ControlNumber, (partner, level))
            return row.last_value if row is not None else 0


class Watermarks:
    """How far each outbound flow has delivered; written in the same transaction as the ledger."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, flow: str) -> tuple[str, str | None] | None:
        """(cursor field, value) or None before the first delivery."""
        with self._store.session() as s:
            row = s.get(m.Watermark, flow)
            return None if row is None else (row.cursor_field, row.value)

    def get_full(self, flow: str) -> tuple[str, str | None, str | None] | None:
        """(cursor field, value, tie-breaker) or None before the first delivery."""
        with self._store.session() as s:
            row = s.get(m.Watermark, flow)
            return None if row is None else (row.cursor_field, row.value, row.tiebreak)

    def set(self, flow: str, cursor_field: str, value: str | None, *, run_id: str | None = None,
            session: Session, tiebreak: str | None = None) -> None:  # fmt: skip
        """Advance the watermark inside the caller's transaction (never on its own)."""
        row = session.get(m.Watermark, flow)
        now = self._store.clock()
        if row is None:
            session.add(m.Watermark(flow=flow, cursor_field=cursor_field, value=value, updated_at=now, run_id=run_id,
                                    tiebreak=tiebreak))  # fmt: skip
        else:
            row.cursor_field, row.value, row.updated_at, row.run_id = cursor_field, value, now, run_id
            row.tiebreak = tiebreak

    def reset(self, flow: str) -> bool:
        """Forget the watermark: the next run sends everything again."""
        with self._store.session() as s, s.begin():
            row = s.get(m.Watermark, flow)
            if row is None:
                return False
            s.delete(row)
            return True


class Schedules:
    """Claims of cron slots: of all ``serve`` processes on one database, one runs each slot."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def last_slot(self, flow: str) -> datetime | None:
        with self._store.session() as s:
            row = s.get(m.FlowSchedule, flow)
            return None if row is None else row.last_slot

    def claim(self, flow: str, slot: datetime, owner: str) -> bool:
        """Atomically move the flow's last slot forward to ``slot``; False if it already got there."""
        now = self._store.clock()
        with self._store.session() as s, s.begin():
            moved = s.execute(update(m.FlowSchedule).where(m.FlowSchedule.flow == flow, m.FlowSchedule.last_slot < slot)
                              .values(last_slot=slot, owner=owner, updated_at=now))  # fmt: skip
            if moved.rowcount == 1:  # type: ignore[attr-defined]
                return True
            if s.get(m.FlowSchedule, flow) is not None:
                return False
        try:
            with self._store.session() as s, s.begin():
                s.execute(insert(m.FlowSchedule).values(flow=flow, last_slot=slot, owner=owner, updated_at=now))
        except IntegrityError:
            return False
        return True


class Store:
    """The database: one per home (SQLite) or shared by many workers (PostgreSQL)."""

    def __init__(self, url: str, clock: Clock = utcnow, engine: Engine | None = None) -> None:
        self.url = url
        self.clock = clock
        self.engine = engine or make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.connections = ConnectionStore(self)
        self.audit = AuditLog(self)
        self.locks = FlowLocks(self)
        self.control_numbers = ControlNumbers(self)
        self.watermarks = Watermarks(self)
        self.ledger = Ledger(self)
        self.schedules = Schedules(self)

    @classmethod
    def open(cls, url: str, clock: Clock = utcnow) -> Store:
        """Open the database and migrate it to the current schema."""
        store = cls(url, clock)
        try:
            migrate(store.engine)
        except BaseException:
            store.close()
            raise
        return store

    def session(self) -> Session:
        return self._sessions()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
