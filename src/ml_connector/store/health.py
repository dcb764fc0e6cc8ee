"""A flow's health as the ledger counts it: failed records, files in error, files still open.

``ml-connector status`` and the console read these counts; the health word is decided here,
from the last run's state and the counts, so every view says the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from ..states import CLEAN_RUNS, OPEN_FILES, FileState, RecordState, RunState
from . import models as m

if TYPE_CHECKING:
    from .ledger import RunRow
    from .store import Store


@dataclass(frozen=True)
class FlowHealth:
    """What an operator must look at for one flow."""

    records_failed: int
    files_error: int
    files_open: int
    files_refused: int

    def word(self, last: RunRow | None) -> str:
        """``never run``, ``ok``, ``running``, ``failing`` or ``attention``."""
        if last is None:
            return "never run"
        clean = not (self.records_failed or self.files_error or self.files_open or self.files_refused)
        if last.state in CLEAN_RUNS and clean:
            return "ok"
        if last.state == RunState.RUNNING:
            return "running"
        if last.state in (RunState.FAILED, RunState.CRASHED):
            return "failing"
        return "attention"


def flow_health(store: Store, flow: str, last: RunRow | None) -> FlowHealth:
    """Count the ledger rows that need attention; refused names count for the last run only (still listed)."""
    with store.session() as s:
        failed = s.scalar(
            select(func.count())
            .select_from(m.RecordEntry)
            .join(m.FileEntry)
            .where(m.FileEntry.flow == flow, m.RecordEntry.state == RecordState.FAILED.value)
        )
        errors = s.scalar(
            select(func.count())
            .select_from(m.FileEntry)
            .where(m.FileEntry.flow == flow, m.FileEntry.state == FileState.ERROR.value)
        )
        open_files = s.scalar(
            select(func.count())
            .select_from(m.FileEntry)
            .where(m.FileEntry.flow == flow, m.FileEntry.state.in_([st.value for st in OPEN_FILES]))
        )
    refused = store.ledger.refused_in_run(flow, last.id) if last else 0
    return FlowHealth(int(failed or 0), int(errors or 0), int(open_files or 0), refused)
