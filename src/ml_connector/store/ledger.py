"""The run, file and record ledgers: what a flow did, so a crash can be resumed exactly.

File states (DESIGN.md section 2):

* outbound: ``intent`` (rendered to staging, name + sha256 + new watermark recorded, not yet
  confirmed on the partner's server) -> ``delivered`` (remote final name confirmed; the watermark
  moved in the same transaction) | ``abandoned`` (the staged bytes were lost before upload: the
  watermark never moved, so the records go out again in a new file). X12 files then get
  ``details.ack`` = accepted / rejected from the partner's 997 or TA1.
* inbound: ``seen -> downloaded -> parsed -> posting -> done | error`` plus ``duplicate``, and
  ``refused`` for names that are never handled (unsafe names, symlinks), one row per name.

Record states: ``pending -> sending -> posted | failed | unknown``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import states
from . import models as m
from .rows import RunRow

if TYPE_CHECKING:
    from .store import Store

# Plain strings (the enums' values) for the queries: drivers bind str, not every str subclass.
INBOUND_OPEN = tuple(s.value for s in states.INBOUND_OPEN)
REFUSED = states.FileState.REFUSED.value  # a listed name never handled (unsafe, not regular): shown, alerted once


@dataclass(frozen=True)
class FileRow:
    id: int
    flow: str
    direction: str
    remote_path: str
    size: int
    mtime: int
    sha256: str | None
    state: str
    local_path: str | None
    run_id: str | None
    error: str | None
    details: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @property
    def name(self) -> str:
        return self.remote_path.rsplit("/", 1)[-1]

    def as_json(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["created_at"] = self.created_at.isoformat()
        out["updated_at"] = self.updated_at.isoformat()
        return out


@dataclass(frozen=True)
class RecordRow:
    id: int
    file_id: int
    idx: int
    idempotency_key: str
    position: str | None
    natural_key: str | None
    state: str
    erp_keys: dict[str, Any]
    error: str | None
    attempts: int


def _file(r: m.FileEntry) -> FileRow:
    return FileRow(
        r.id,
        r.flow,
        r.direction,
        r.remote_path,
        r.size,
        r.mtime,
        r.sha256,
        r.state,
        r.local_path,
        r.run_id,
        r.error,
        dict(r.details or {}),
        r.created_at,
        r.updated_at,
    )


def _record(r: m.RecordEntry) -> RecordRow:
    return RecordRow(
        r.id,
        r.file_id,
        r.idx,
        r.idempotency_key,
        r.position,
        r.natural_key,
        r.state,
        dict(r.erp_keys or {}),
        r.error,
        r.attempts,
    )


def _run(r: m.Run) -> RunRow:
    return RunRow(
        r.id, r.flow, r.direction, r.trigger, r.state, r.started_at, r.finished_at, dict(r.counts or {}), r.error
    )


class Ledger:
    """Repository for runs, files, records and X12 interchanges."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _now(self) -> datetime:
        return self._store.clock()

    # --- runs -----------------------------------------------------------------------------------

    def start_run(self, flow: str, direction: str, trigger: str) -> str:
        run_id = str(uuid.uuid4())
        with self._store.session() as s, s.begin():
            s.add(
                m.Run(
                    id=run_id,
                    flow=flow,
                    direction=direction,
                    trigger=trigger,
                    state="running",
                    started_at=self._now(),
                    counts={},
                )
            )
        return run_id

    def finish_run(self, run_id: str, state: str, counts: dict[str, Any], error: str | None = None) -> None:
        with self._store.session() as s, s.begin():
            s.execute(
                update(m.Run)
                .where(m.Run.id == run_id)
                .values(state=state, counts=counts, error=error, finished_at=self._now())
            )

    def run(self, run_id: str) -> RunRow | None:
        with self._store.session() as s:
            row = s.get(m.Run, run_id)
            return None if row is None else _run(row)

    def runs(self, flow: str | None = None, limit: int = 50) -> list[RunRow]:
        q = select(m.Run).order_by(m.Run.started_at.desc()).limit(limit)
        if flow is not None:
            q = q.where(m.Run.flow == flow)
        with self._store.session() as s:
            return [_run(r) for r in s.scalars(q)]

    def abandon_stale_runs(self, flow: str) -> int:
        """Runs left ``running`` by a crashed process (called while holding the flow's lock)."""
        with self._store.session() as s, s.begin():
            done = s.execute(
                update(m.Run)
                .where(m.Run.flow == flow, m.Run.state == "running")
                .values(state="crashed", finished_at=self._now(), error="the process stopped before the run finished")
            )
            return int(done.rowcount)  # type: ignore[attr-defined]

    # --- files ----------------------------------------------------------------------------------

    def file(self, file_id: int) -> FileRow | None:
        with self._store.session() as s:
            row = s.get(m.FileEntry, file_id)
            return None if row is None else _file(row)

    def files(
        self,
        *,
        flow: str | None = None,
        direction: str | None = None,
        states: Sequence[str] | None = None,
        run_id: str | None = None,
        limit: int | None = None,
    ) -> list[FileRow]:
        q = select(m.FileEntry).order_by(m.FileEntry.id)
        if flow is not None:
            q = q.where(m.FileEntry.flow == flow)
        if direction is not None:
            q = q.where(m.FileEntry.direction == direction)
        if states is not None:
            q = q.where(m.FileEntry.state.in_(list(states)))
        if run_id is not None:
            q = q.where(m.FileEntry.run_id == run_id)
        if limit is not None:
            q = q.order_by(None).order_by(m.FileEntry.id.desc()).limit(limit)
        with self._store.session() as s:
            rows = [_file(r) for r in s.scalars(q)]
        return sorted(rows, key=lambda r: r.id)

    def record_intent(
        self,
        *,
        flow: str,
        run_id: str,
        remote_path: str,
        local_path: str,
        sha256: str,
        size: int,
        details: dict[str, Any],
    ) -> int:
        """Outbound step 4: what we are about to upload, before any byte leaves."""
        now = self._now()
        with self._store.session() as s, s.begin():
            row = m.FileEntry(
                flow=flow,
                direction="outbound",
                remote_path=remote_path,
                size=size,
                mtime=int(now.timestamp() * 1_000_000),
                sha256=sha256,
                state="intent",
                local_path=local_path,
                run_id=run_id,
                details=details,
                created_at=now,
                updated_at=now,
            )
            s.add(row)
            s.flush()
            return int(row.id)

    def see(self, *, flow: str, run_id: str, remote_path: str, size: int, mtime: int) -> tuple[FileRow, bool]:
        """Inbound step 2: the ledger row for a listed file (created ``seen``, or the existing one)."""
        ident = (
            m.FileEntry.flow == flow,
            m.FileEntry.direction == "inbound",
            m.FileEntry.remote_path == remote_path,
            m.FileEntry.size == size,
            m.FileEntry.mtime == mtime,
        )
        with self._store.session() as s:
            found = s.scalars(select(m.FileEntry).where(*ident)).first()
            if found is not None:
                return _file(found), False
        now = self._now()
        try:
            with self._store.session() as s, s.begin():
                row = m.FileEntry(
                    flow=flow,
                    direction="inbound",
                    remote_path=remote_path,
                    size=size,
                    mtime=mtime,
                    state="seen",
                    run_id=run_id,
                    details={},
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                s.flush()
                return _file(row), True
        except IntegrityError:  # another process saw it at the same moment
            with self._store.session() as s:
                return _file(s.scalars(select(m.FileEntry).where(*ident)).one()), False

    def update_file(
        self, file_id: int, *, session: Session | None = None, details: dict[str, Any] | None = None, **values: Any
    ) -> FileRow:
        """Set columns (``state``, ``sha256``, ``local_path``, ``error``, ``run_id``…); ``details`` merges.

        Returns the row as updated, so a caller never re-reads it after a transition.
        """

        def apply(s: Session) -> FileRow:
            row = s.get(m.FileEntry, file_id)
            if row is None:
                raise KeyError(file_id)
            for key, value in values.items():
                setattr(row, key, value)
            if details:
                row.details = {**(row.details or {}), **details}
            row.updated_at = self._now()
            s.flush()
            return _file(row)

        if session is not None:
            return apply(session)
        with self._store.session() as s, s.begin():
            return apply(s)

    def same_content(self, flow: str, sha256: str, exclude: int) -> FileRow | None:
        """An earlier inbound file of this flow with the same bytes that was (being) processed."""
        q = (
            select(m.FileEntry)
            .where(
                m.FileEntry.flow == flow,
                m.FileEntry.direction == "inbound",
                m.FileEntry.sha256 == sha256,
                m.FileEntry.id != exclude,
                m.FileEntry.state.in_(("parsed", "posting", "done", "error")),
            )
            .order_by(m.FileEntry.id)
            .limit(1)
        )
        with self._store.session() as s:
            row = s.scalars(q).first()
            return None if row is None else _file(row)

    # --- records --------------------------------------------------------------------------------

    def add_records(
        self, file_id: int, sha256: str, rows: Iterable[tuple[int, str, str | None, str, str | None]]
    ) -> int:
        """Insert (idx, position, natural key, state, error) rows; idempotency key = sha256:idx."""
        now = self._now()
        values: list[dict[str, Any]] = [
            dict(
                file_id=file_id,
                idx=idx,
                idempotency_key=f"{sha256[:32]}:{file_id}:{idx}",
                position=pos,
                natural_key=key,
                state=state,
                error=error,
                erp_keys={},
                attempts=0,
                updated_at=now,
            )
            for idx, pos, key, state, error in rows
        ]
        if values:
            with self._store.session() as s, s.begin():
                s.execute(insert(m.RecordEntry), values)
        return len(values)

    def clear_records(self, file_id: int) -> None:
        with self._store.session() as s, s.begin():
            s.execute(delete(m.RecordEntry).where(m.RecordEntry.file_id == file_id))

    def records(self, file_id: int, states: Sequence[str] | None = None, *, after: int = -1,
                limit: int | None = None) -> list[RecordRow]:  # fmt: skip
        """Rows in index order; ``after``/``limit`` page by keyset on the index."""
        q = (select(m.RecordEntry).where(m.RecordEntry.file_id == file_id, m.RecordEntry.idx > after)
             .order_by(m.RecordEntry.idx).limit(limit))  # fmt: skip
        if states is not None:
            q = q.where(m.RecordEntry.state.in_(list(states)))
        with self._store.session() as s:
            return [_record(r) for r in s.scalars(q)]

    def record_states(self, file_id: int) -> dict[str, int]:
        q = (
            select(m.RecordEntry.state, func.count())
            .where(m.RecordEntry.file_id == file_id)
            .group_by(m.RecordEntry.state)
        )
        with self._store.session() as s:
            return {state: int(n) for state, n in s.execute(q)}

    def mark_sending(self, file_id: int, idxs: Sequence[int]) -> None:
        """Before the calls: a crash from here on leaves these ``sending``, settled by lookup."""
        with self._store.session() as s, s.begin():
            s.execute(
                update(m.RecordEntry)
                .where(m.RecordEntry.file_id == file_id, m.RecordEntry.idx.in_(list(idxs)))
                .values(state="sending", attempts=m.RecordEntry.attempts + 1, updated_at=self._now())
            )

    def settle_records(
        self,
        file_id: int,
        outcomes: Sequence[tuple[int, str, dict[str, Any], str | None]],
        *,
        session: Session | None = None,
    ) -> None:
        """(idx, state, erp keys, error) after the calls answered (or gave up)."""
        now = self._now()

        def apply(s: Session) -> None:
            for idx, state, keys, error in outcomes:
                s.execute(
                    update(m.RecordEntry)
                    .where(m.RecordEntry.file_id == file_id, m.RecordEntry.idx == idx)
                    .values(state=state, erp_keys=keys, error=error, updated_at=now)
                )

        if session is not None:
            apply(session)
            return
        with self._store.session() as s, s.begin():
            apply(s)

    # --- X12 interchanges -----------------------------------------------------------------------

    def add_interchange(
        self,
        *,
        direction: str,
        sender: str,
        receiver: str,
        control_number: str,
        file_id: int | None,
        groups: dict[str, Any],
        state: str,
        session: Session | None = None,
    ) -> bool:
        """Remember an interchange; False if this (direction, sender, receiver, ISA13) is known."""
        now = self._now()
        row = m.X12Interchange(
            direction=direction,
            sender=sender,
            receiver=receiver,
            control_number=control_number,
            file_id=file_id,
            groups=groups,
            state=state,
            created_at=now,
            updated_at=now,
        )
        if session is not None:
            with session.begin_nested():
                try:
                    session.add(row)
                    session.flush()
                except IntegrityError:
                    return False
            return True
        try:
            with self._store.session() as s, s.begin():
                s.add(row)
        except IntegrityError:
            return False
        return True

    def interchange(self, direction: str, sender: str, receiver: str, control_number: str) -> dict[str, Any] | None:
        q = select(m.X12Interchange).where(
            m.X12Interchange.direction == direction,
            m.X12Interchange.sender == sender,
            m.X12Interchange.receiver == receiver,
            m.X12Interchange.control_number == control_number,
        )
        with self._store.session() as s:
            r = s.scalars(q).first()
            if r is None:
                return None
            return {"id": r.id, "file_id": r.file_id, "groups": dict(r.groups), "state": r.state}

    def outbound_by_group(self, sender: str, receiver: str, gs06: str) -> dict[str, Any] | None:
        """Our outbound interchange that carried functional group ``gs06`` (for a partner's 997)."""
        q = (
            select(m.X12Interchange)
            .where(
                m.X12Interchange.direction == "outbound",
                m.X12Interchange.sender == sender,
                m.X12Interchange.receiver == receiver,
            )
            .order_by(m.X12Interchange.id.desc())
        )
        with self._store.session() as s:
            for r in s.scalars(q):
                if gs06 in (r.groups or {}):
                    return {
                        "id": r.id,
                        "file_id": r.file_id,
                        "groups": dict(r.groups),
                        "state": r.state,
                        "control_number": r.control_number,
                    }
        return None

    def set_interchange_state(self, interchange_id: int, state: str, groups: dict[str, Any] | None = None) -> None:
        with self._store.session() as s, s.begin():
            values: dict[str, Any] = {"state": state, "updated_at": self._now()}
            if groups is not None:
                values["groups"] = groups
            s.execute(update(m.X12Interchange).where(m.X12Interchange.id == interchange_id).values(**values))

    # --- refused inbound names (issue 17) ---------------------------------------------------------

    def refuse(self, *, flow: str, run_id: str, remote_path: str, reason: str) -> tuple[FileRow, bool]:
        """A listed name that is never handled (unsafe name, symlink…): one ``refused`` row per name.

        Returns (row, first time). A later sighting stamps the row with this run, so ``status``
        can tell names still on the server (the last run saw them) from ones since removed.
        """
        ident = (
            m.FileEntry.flow == flow,
            m.FileEntry.direction == "inbound",
            m.FileEntry.remote_path == remote_path,
            m.FileEntry.state == REFUSED,
        )
        now = self._now()
        with self._store.session() as s, s.begin():
            found = s.scalars(select(m.FileEntry).where(*ident)).first()
            if found is not None:
                found.run_id, found.error, found.updated_at = run_id, reason, now
                s.flush()
                return _file(found), False
            row = m.FileEntry(flow=flow, direction="inbound", remote_path=remote_path, size=0, mtime=0,
                              state=REFUSED, run_id=run_id, error=reason, details={"reason": reason},
                              created_at=now, updated_at=now)  # fmt: skip
            s.add(row)
            s.flush()
            return _file(row), True
