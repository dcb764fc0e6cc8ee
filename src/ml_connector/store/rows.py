"""Rows as the store hands them out: plain dataclasses, importable without SQLAlchemy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RunRow:
    id: str
    flow: str
    direction: str
    trigger: str
    state: str
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, Any]
    error: str | None
