"""X12: tolerant streaming reader, strict writer, 820 mapping, 997 and TA1."""

from .model import (
    Delimiters,
    Finding,
    GroupSummary,
    InterchangeSummary,
    SetSummary,
    TransactionSet,
    X12ParseError,
)
from .reader import X12Reader, detect_delimiters, read_x12

__all__ = [
    "Delimiters",
    "Finding",
    "GroupSummary",
    "InterchangeSummary",
    "SetSummary",
    "TransactionSet",
    "X12ParseError",
    "X12Reader",
    "detect_delimiters",
    "read_x12",
]
