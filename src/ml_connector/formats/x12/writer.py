"""A strict X12 writer: fixed-width ISA, correct counts, caller-supplied control numbers.

Data is checked element by element against the partner's delimiters and character set. The
partner's policy decides: ``reject`` raises ``X12WriteError`` naming the set, segment and
element; ``replace`` substitutes the partner's replacement character and records each
substitution (for the audit trail). A value can never break the interchange.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from ...config import X12Partner
from ...errors import RecordError
from .model import Delimiters

Element = str | Sequence[str]  # a simple element, or the components of a composite one

BASIC_PUNCTUATION = set(" !\"&'()*+,-./:;?=")
EXTENDED_PUNCTUATION = BASIC_PUNCTUATION | set("%@[]_{}\\|<>~^`#$")


class X12WriteError(RecordError):
    """A value cannot be written under the partner's policy."""


@dataclass(frozen=True)
class Envelope:
    """Interchange and group addressing for one partner."""

    sender_qualifier: str = "ZZ"
    sender_id: str = "MLCONNECTOR"
    receiver_qualifier: str = "ZZ"
    receiver_id: str = "PARTNER"
    gs_sender: str | None = None
    gs_receiver: str | None = None
    usage: str = "P"
    ack_requested: bool = False
    version: str = "004010"  # GS08; ISA12 derives from it
    delimiters: Delimiters = field(default_factory=Delimiters)
    segment_newline: bool = True
    on_delimiter_in_data: str = "reject"  # or "replace"
    replacement: str = " "
    charset: str = "extended"  # or "basic"
    interchange_version: str | None = None  # ISA12 when it should not derive from GS08

    @property
    def isa12(self) -> str:
        return self.interchange_version or "0" + self.version[1:5]  # 004010 -> 00401

    @classmethod
    def from_partner(cls, partner: X12Partner, version: str) -> Envelope:
        """Build from a flow's ``format.partner`` settings."""
        p = partner
        return cls(
            sender_qualifier=p.sender_qualifier,
            sender_id=p.sender_id,
            receiver_qualifier=p.receiver_qualifier,
            receiver_id=p.receiver_id,
            gs_sender=p.gs_sender,
            gs_receiver=p.gs_receiver,
            usage=p.usage,
            version=version,
            delimiters=Delimiters(
                p.element_separator,
                p.component_separator,
                p.segment_terminator,
                p.repetition_separator if version >= "004020" else None,
            ),
            segment_newline=p.segment_newline,
            on_delimiter_in_data=p.on_delimiter_in_data,
            replacement=p.replacement,
            charset=p.charset,
        )


@dataclass(frozen=True)
class Substitution:
    where: str
    original: str
    written: str


def _allowed(ch: str, charset: str) -> bool:
    if charset == "basic":
        return ("A" <= ch <= "Z") or ("0" <= ch <= "9") or ch in BASIC_PUNCTUATION
    return ch.isascii() and (ch.isalnum() or ch in EXTENDED_PUNCTUATION)


class X12Writer:
    """Writes interchanges to a text stream; one interchange at a time, any number of them."""

    def __init__(self, out: TextIO, envelope: Envelope) -> None:
        self._out = out
        self.env = envelope
        d = envelope.delimiters
        self._forbidden = set(d.all()) | {"\r", "\n"}
        self._end = d.segment + ("\n" if envelope.segment_newline and d.segment != "\n" else "")
        self.substitutions: list[Substitution] = []
        self._isa13: int | None = None
        self._groups = 0
        self._gs06: int | None = None
        self._sets = 0
        self.segments_written = 0

    # --- values -------------------------------------------------------------------------------

    def clean(self, value: str, where: str) -> str:
        """Apply the partner's policy to one value."""
        bad = [ch for ch in value if ch in self._forbidden or not _allowed(ch, self.env.charset)]
        if not bad:
            return value
        if self.env.on_delimiter_in_data == "reject":
            shown = ", ".join(repr(c) for c in dict.fromkeys(bad))
            raise X12WriteError(f"{where}: value contains {shown}, not allowed for this partner")
        out = []
        for ch in value:
            if ch in self._forbidden:
                out.append(self.env.replacement)
                continue
            if not _allowed(ch, self.env.charset):
                # Transliterate where a plain letter exists (é -> e, or E for basic).
                base = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
                if self.env.charset == "basic":
                    base = base.upper()
                ch = base if base and all(_allowed(c, self.env.charset) for c in base) else self.env.replacement
            out.append(ch)
        written = "".join(out)
        self.substitutions.append(Substitution(where, value, written))
        return written

    def _segment(self, seg_id: str, elements: Sequence[Element | None], where: str) -> str:
        d = self.env.delimiters
        rendered: list[str] = [seg_id]
        for i, el in enumerate(elements, start=1):
            if el is None:
                rendered.append("")
            elif isinstance(el, str):
                # X12 suppresses trailing spaces in variable-length elements.
                rendered.append(self.clean(el, f"{where} {seg_id}{i:02d}").rstrip(" "))
            else:
                parts = [self.clean(c, f"{where} {seg_id}{i:02d}-{j}") for j, c in enumerate(el, 1)]
                while parts and parts[-1] == "":
                    parts.pop()
                rendered.append(d.component.join(parts))
        while len(rendered) > 1 and rendered[-1] == "":
            rendered.pop()  # X12 drops trailing empty elements
        return d.element.join(rendered) + self._end

    def write_segment(self, seg_id: str, elements: Sequence[Element | None]) -> None:
        """One segment outside any set (a TA1 between ISA and IEA)."""
        if self._isa13 is None or self._gs06 is not None:
            raise RuntimeError("a loose segment goes inside an interchange, outside groups")
        self._emit(self._segment(seg_id, elements, seg_id))

    def _emit(self, text: str) -> None:
        self._out.write(text)
        self.segments_written += 1

    # --- envelope -----------------------------------------------------------------------------

    def begin_interchange(self, isa13: int, when: datetime) -> None:
        if self._isa13 is not None:
            raise RuntimeError("end the open interchange first")
        if not 0 < isa13 < 10**9:
            raise ValueError("ISA13 must be 1..999999999")
        e, d = self.env, self.env.delimiters
        isa11 = d.repetition if (d.repetition and e.isa12 >= "00402") else "U"
        fields = [
            "00", " " * 10, "00", " " * 10,
            e.sender_qualifier.ljust(2), self.clean(e.sender_id, "ISA06").ljust(15)[:15],
            e.receiver_qualifier.ljust(2), self.clean(e.receiver_id, "ISA08").ljust(15)[:15],
            when.strftime("%y%m%d"), when.strftime("%H%M"), isa11, e.isa12, f"{isa13:09d}",
            "1" if e.ack_requested else "0", e.usage, d.component,
        ]  # fmt: skip
        isa = d.element.join(["ISA", *fields]) + self._end
        if len(isa) - len(self._end) + 1 != 106:
            raise X12WriteError("ISA: sender/receiver ids must be at most 15 characters (ISA is 106 wide)")
        self._emit(isa)
        self._isa13, self._groups = isa13, 0

    def begin_group(self, functional_id: str, gs06: int, when: datetime) -> None:
        if self._isa13 is None or self._gs06 is not None:
            raise RuntimeError("a group goes inside an interchange, one at a time")
        e = self.env
        self._emit(
            self._segment(
                "GS",
                [
                    functional_id,
                    e.gs_sender or e.sender_id,
                    e.gs_receiver or e.receiver_id,
                    when.strftime("%Y%m%d"),
                    when.strftime("%H%M"),
                    str(gs06),
                    "X",
                    e.version,
                ],
                "GS",
            )
        )
        self._gs06, self._sets = gs06, 0

    def write_set(
        self,
        st01: str,
        st02: int | str,
        body: Iterable[tuple[str, Sequence[Element | None]]],
        st03: str | None = None,
    ) -> int:
        """Write ST, the body segments and SE; returns the segment count (SE01).

        The set is rendered completely before anything is written, so a value rejected by the
        policy leaves the stream untouched and the caller can skip that record.
        """
        if self._gs06 is None:
            raise RuntimeError("a transaction set goes inside a group")
        control = f"{int(st02):04d}" if isinstance(st02, int) else st02
        where = f"set {st01} {control}"
        lines = [self._segment("ST", [st01, control, st03], where)]
        for n, (seg_id, elements) in enumerate(body, start=2):
            lines.append(self._segment(seg_id, elements, f"{where} segment {n}"))
        count = len(lines) + 1
        lines.append(self._segment("SE", [str(count), control], where))
        for line in lines:
            self._emit(line)
        self._sets += 1
        return count

    def end_group(self) -> None:
        if self._gs06 is None:
            raise RuntimeError("no open group")
        self._emit(self._segment("GE", [str(self._sets), str(self._gs06)], "GE"))
        self._gs06 = None
        self._groups += 1

    def end_interchange(self) -> None:
        if self._isa13 is None or self._gs06 is not None:
            raise RuntimeError("close the group, then the interchange")
        self._emit(self._segment("IEA", [str(self._groups), f"{self._isa13:09d}"], "IEA"))
        self._isa13 = None
