"""A flow's health as the ledger counts it: one definition for ``status`` and the console.

Failed records, files in error, files still open, names the last run refused and outbound
interchanges overdue for their 997/TA1; the health word is decided here from the last run's state
and those counts, so every view says the same thing.

The queries are plain SQL with named parameters (``:flow``) and no SQLAlchemy import, run by a
``store.readers`` reader: the standard library's ``sqlite3`` when ``ml-connector status`` reads a
SQLite home whose schema is current, the store's engine everywhere else (PostgreSQL, the console).
The two kinds of value the backends return differently (timestamps: ISO text on SQLite; JSON:
text on SQLite) are normalised below; ``tests/test_health.py`` runs both readers on the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..states import CLEAN_RUNS, OPEN_FILES, FileState, RecordState, RunState
from .readers import Reader
from .rows import RunRow

DEFAULT_ACK_TIMEOUT_MINUTES = 240.0  # flows.yaml alerts.ack_timeout_minutes


@dataclass(frozen=True)
class FlowHealth:
    """What an operator must look at for one flow."""

    records_failed: int = 0
    files_error: int = 0
    files_open: int = 0
    files_refused: int = 0  # names the last run refused (still on the server)
    acks_overdue: int = 0  # outbound interchanges still waiting for their 997/TA1

    @property
    def outstanding(self) -> bool:
        return bool(
            self.records_failed or self.files_error or self.files_open or self.files_refused or self.acks_overdue
        )

    def word(self, last: RunRow | None) -> str:
        """``never run``, ``ok``, ``running``, ``failing`` or ``attention``."""
        if last is None:
            return "never run"
        if last.state == RunState.RUNNING:
            return "running"
        if last.state in (RunState.FAILED, RunState.CRASHED):
            return "failing"
        if last.state in CLEAN_RUNS and not self.outstanding:
            return "ok"
        return "attention"


@dataclass(frozen=True)
class FlowLedger:
    """One flow's last run and health counts."""

    flow: str
    last: RunRow | None
    health: FlowHealth

    @property
    def word(self) -> str:
        return self.health.word(self.last)


# --- queries ---------------------------------------------------------------------------------------

LAST_RUN_SQL = (
    'SELECT id, flow, direction, "trigger", state, started_at, finished_at, counts, error '
    "FROM runs WHERE flow = :flow ORDER BY started_at DESC LIMIT 1"
)
FAILED_SQL = (
    "SELECT f.flow, COUNT(*) FROM records r JOIN files f ON f.id = r.file_id WHERE r.state = :failed GROUP BY f.flow"
)
FILE_STATES_SQL = (
    "SELECT flow, state, COUNT(*) FROM files "
    "WHERE state IN (:error, :open0, :open1, :open2, :open3, :open4) GROUP BY flow, state"
)
REFUSED_SQL = "SELECT COUNT(*) FROM files WHERE flow = :flow AND state = :refused AND run_id = :run"
OVERDUE_SQL = (
    "SELECT f.flow, COUNT(*) FROM x12_interchanges x JOIN files f ON f.id = x.file_id "
    "WHERE x.direction = 'outbound' AND x.state = 'sent' AND x.created_at < :before GROUP BY f.flow"
)
_FILE_STATES = {"error": FileState.ERROR.value, **{f"open{i}": s.value for i, s in enumerate(OPEN_FILES)}}


def utc(value: Any) -> datetime | None:
    """A timestamp column as an aware UTC datetime (SQLite hands back naive ISO text)."""
    if value is None:
        return None
    when: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def json_value(value: Any) -> Any:
    """A JSON column as Python (SQLite hands back the text)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def run_row(row: Sequence[Any]) -> RunRow:
    """A ``runs`` row selected as in ``LAST_RUN_SQL``."""
    run_id, flow, direction, trigger, state, started, finished, counts, error = row
    started_at = utc(started)
    assert started_at is not None  # NOT NULL column
    counts = dict(json_value(counts) or {})
    return RunRow(run_id, flow, direction, trigger, state, started_at, utc(finished), counts, error)


def read_flows(
    reader: Reader,
    flows: Sequence[str],
    *,
    now: datetime,
    ack_timeout_minutes: float = DEFAULT_ACK_TIMEOUT_MINUTES,
) -> list[FlowLedger]:
    """The last run and health counts of each named flow: one indexed probe per flow, three grouped counts."""
    last: dict[str, RunRow] = {}
    for name in flows:
        found = reader.rows(LAST_RUN_SQL, {"flow": name})
        if found:
            last[name] = run_row(found[0])
    failed = {flow: int(n) for flow, n in reader.rows(FAILED_SQL, {"failed": RecordState.FAILED.value})}
    by_state = {(flow, state): int(n) for flow, state, n in reader.rows(FILE_STATES_SQL, _FILE_STATES)}
    before = reader.when(now - timedelta(minutes=ack_timeout_minutes))
    overdue = {flow: int(n) for flow, n in reader.rows(OVERDUE_SQL, {"before": before})}
    out = []
    for name in flows:
        run = last.get(name)
        refused = (
            int(reader.rows(REFUSED_SQL, {"flow": name, "run": run.id, "refused": FileState.REFUSED.value})[0][0])
            if run
            else 0
        )
        health = FlowHealth(
            records_failed=failed.get(name, 0),
            files_error=by_state.get((name, FileState.ERROR.value), 0),
            files_open=sum(by_state.get((name, s.value), 0) for s in OPEN_FILES),
            files_refused=refused,
            acks_overdue=overdue.get(name, 0),
        )
        out.append(FlowLedger(name, run, health))
    return out
