"""X12 data: delimiters, segments, findings and envelope summaries (plain data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import RecordError


@dataclass(frozen=True)
class Delimiters:
    """The four X12 delimiters; ``repetition`` is None before version 00402."""

    element: str = "*"
    component: str = ":"
    segment: str = "~"
    repetition: str | None = "^"

    def all(self) -> tuple[str, ...]:
        return tuple(d for d in (self.element, self.component, self.segment, self.repetition) if d)


@dataclass(frozen=True)
class Finding:
    """One problem found while reading, with the acknowledgment codes it maps to.

    ``level`` says which acknowledgment carries it: ``interchange`` (TA1 note code in
    ``code``), ``group`` (AK9 AK905 code), ``set`` (AK5 AK502 code), ``segment`` (AK3 AK304
    code) or ``element`` (AK4 AK403 code). ``severity`` ``error`` rejects the unit it is on,
    ``warning`` is reported (997 ``E``) but accepts it.
    """

    level: str
    code: str
    message: str
    where: str
    severity: str = "error"
    segment_id: str | None = None
    segment_position: int | None = None  # within the set, ST = 1
    element_position: int | None = None
    element_ref: str | None = None
    bad_value: str | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class X12ParseError(RecordError):
    """The file cannot be read as X12 at all (no ISA, unusable delimiters)."""

    def __init__(self, message: str, *, ta1_code: str = "022") -> None:
        super().__init__(message)
        self.ta1_code = ta1_code


@dataclass
class SetSummary:
    """What the reader learned about one transaction set (kept; segments are not)."""

    st01: str
    st02: str
    st03: str | None
    segment_count: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)


@dataclass
class GroupSummary:
    gs: list[str]
    ge: list[str] | None = None
    sets: list[SetSummary] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def functional_id(self) -> str:
        return _el(self.gs, 1)

    @property
    def control_number(self) -> str:
        return _el(self.gs, 6)

    @property
    def version(self) -> str:
        return _el(self.gs, 8)


@dataclass
class InterchangeSummary:
    isa: list[str]
    delimiters: Delimiters
    iea: list[str] | None = None
    groups: list[GroupSummary] = field(default_factory=list)
    ta1: list[list[str]] = field(default_factory=list)  # TA1 segments carried in it
    findings: list[Finding] = field(default_factory=list)

    @property
    def control_number(self) -> str:
        return _el(self.isa, 13).strip()

    @property
    def version(self) -> str:
        return _el(self.isa, 12).strip()

    @property
    def sender(self) -> tuple[str, str]:
        return _el(self.isa, 5).strip(), _el(self.isa, 6).strip()

    @property
    def receiver(self) -> tuple[str, str]:
        return _el(self.isa, 7).strip(), _el(self.isa, 8).strip()

    @property
    def accepted(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)


@dataclass
class TransactionSet:
    """One ST…SE with its segments (ST and SE included) and where it sits."""

    interchange: InterchangeSummary
    group: GroupSummary
    summary: SetSummary
    segments: list[list[str]]

    @property
    def id(self) -> str:
        return self.summary.st01

    def find(self, segment_id: str) -> list[list[str]]:
        return [s for s in self.segments if s[0] == segment_id]


def _el(segment: list[str] | None, index: int) -> str:
    if segment is None or index >= len(segment):
        return ""
    return segment[index]


def element(segment: list[str], index: int) -> str:
    """Element ``index`` (1-based, as X12 numbers them) or "" when absent."""
    return segment[index] if index < len(segment) else ""
