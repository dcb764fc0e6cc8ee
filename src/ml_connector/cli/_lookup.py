"""What the CLI tables need beyond the ledger rows: the reason a file failed, and short run ids."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import NotFoundError, UsageError
from ..states import RecordState

if TYPE_CHECKING:
    from ..store import Store
    from ..store.ledger import FileRow

SHORT_ID = 8  # how many characters of a run id the tables show; any unique prefix is accepted


def file_reason(store: Store, f: FileRow) -> str:
    """Why a file is in error: its first failed record (line and Kinetic's message), else its error."""
    failed = store.ledger.records(f.id, [RecordState.FAILED.value], limit=1) if f.direction == "inbound" else []
    note = (f.error or "").removeprefix(f.name + ": ")
    if failed and failed[0].error:
        first = failed[0].error.removeprefix(f.name + ": ")
        note = f"{note}; first: {first}" if note else first
    return note


def resolve_run_id(store: Store, run: str) -> str:
    """A full run id from the full id or a unique prefix (the 8 characters tables show)."""
    from sqlalchemy import select

    from ..store import models as m

    text = run.strip().lower()
    if len(text) < 4:
        raise UsageError(f"run id {run!r}: give at least 4 characters (tables show {SHORT_ID})")
    with store.session() as s:
        ids = list(s.scalars(select(m.Run.id).where(m.Run.id.like(text.replace("%", "").replace("_", "") + "%"))
                             .limit(3)))  # fmt: skip
    if not ids:
        raise NotFoundError(f"no run whose id starts with {run!r} (see 'ml-connector audit --kind run')")
    if len(ids) > 1:
        raise UsageError(f"run id {run!r} is ambiguous ({', '.join(i[:12] for i in ids)}…): give more characters")
    return ids[0]
