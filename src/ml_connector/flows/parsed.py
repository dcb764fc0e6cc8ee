"""What an inbound file is read into: records with their positions, X12 sets, and a whole-file rejection.

A leaf module (it imports no flow code), so the X12 handling, posting and the preview share these
types without importing the inbound run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import RecordError
from ..formats.x12.model import InterchangeSummary, TransactionSet


@dataclass
class Parsed:
    """One record read from a file: where it is, its Epicor fields, or why it is unusable."""

    idx: int
    position: str
    fields: dict[str, Any] | None
    error: str | None = None
    key: str | None = None


@dataclass
class X12Parse:
    sets: list[TransactionSet]
    interchanges: list[InterchangeSummary]
    records: list[Parsed] = field(default_factory=list)


class FileRejected(RecordError):
    """The whole file goes to the error folder (unreadable, or bad records under reject-file)."""

    def __init__(self, message: str, problems: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []
