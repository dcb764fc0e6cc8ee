"""What an inbound file is read into: records with their positions, X12 sets, and a whole-file rejection.

A leaf module (it imports no flow code), so the X12 handling, posting and the preview share these
types without importing the inbound run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import RecordError
from ..formats.x12.acks import AckStatus
from ..formats.x12.model import InterchangeSummary, TransactionSet
from ..formats.x12.remit820 import PaymentAdvice


@dataclass(frozen=True)
class AckLine:
    """One verdict of a partner's 997/999/TA1 on something we sent (parties as ``QUAL:ID``)."""

    status: AckStatus
    ours: str  # the ack's receiver: us
    theirs: str  # the ack's sender: the partner


# What a record carries to posting: mapped Epicor fields (CSV, fixed-width), an 820 payment advice
# read by meaning, or a partner acknowledgment applied to our own ledger.
Payload = dict[str, Any] | PaymentAdvice | AckLine


@dataclass
class Parsed:
    """One record read from a file: where it is, its Epicor fields, or why it is unusable."""

    idx: int
    position: str
    fields: Payload | None
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
