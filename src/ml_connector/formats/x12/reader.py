"""A tolerant, streaming X12 reader with envelope validation.

Delimiters are detected from each ISA (a file may hold several interchanges, each with its
own). Tolerated: a UTF-8 BOM, leading white space, indentation, CR/LF/CRLF after the segment
terminator or as the terminator, an ISA that is not padded to 106 characters or is broken
across lines, lowercase segment ids, a missing final terminator. Every deviation from the
envelope rules becomes a ``Finding`` carrying the TA1 / 997 code it maps to.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, BinaryIO

from .model import (
    Delimiters,
    Finding,
    GroupSummary,
    InterchangeSummary,
    SetSummary,
    TransactionSet,
    X12ParseError,
    element,
)

# 0-based offsets of the element separator inside a fixed-width ISA.
ISA_SEPARATOR_OFFSETS = (3, 6, 17, 20, 31, 34, 50, 53, 69, 76, 81, 83, 89, 99, 101, 103)
ISA_COMPONENT_OFFSET = 104
KNOWN_VERSIONS = frozenset(
    [f"00{v}" for v in ("200", "201", "204", "300", "301", "302", "303", "304", "305", "306", "307")]
    + [f"004{m:02d}" for m in range(0, 7)]
    + [f"005{m:02d}" for m in range(0, 6)]
    + [f"006{m:02d}" for m in range(0, 6)]
    + [f"007{m:02d}" for m in range(0, 9)]
    + ["00800", "00801"]
)
# GS01 -> transaction sets it may carry (only pairs we are sure of; others are not checked).
FUNCTIONAL_IDS = {
    "RA": {"820"},
    "IN": {"810"},
    "AG": {"824"},
    "FA": {"997", "999"},
    "QM": {"214"},
    "HC": {"837"},
    "PO": {"850"},
}
CHUNK_SIZE = 1 << 14  # small batches keep few objects alive: measured ~2x faster than 1 MB (GC)
_ENVELOPE_IDS = frozenset({"ISA", "IEA", "GS", "GE", "ST", "SE", "TA1"})
_WS = " \t\r\n\x0b\x0c"


def _bad_delimiter(ch: str) -> bool:
    return ch.isalnum() or ch in " \t" or ch == ""


def detect_delimiters(text: str, start: int = 0) -> tuple[Delimiters, list[str], int]:
    """Delimiters and ISA elements of the interchange starting at ``text[start]``.

    Returns (delimiters, ISA elements, index just after the ISA's terminator).
    Tries the fixed 106-character layout first (skipping CR/LF inside it), then falls back to
    counting 16 element separators, which survives an unpadded ISA.
    """
    if text[start : start + 3].upper() != "ISA" or len(text) < start + 4:
        raise X12ParseError("the file does not start with an ISA segment", ta1_code="022")
    sep = text[start + 3]
    if _bad_delimiter(sep) or sep in "\r\n":
        raise X12ParseError(f"ISA: element separator {sep!r} is not usable", ta1_code="026")
    chars: list[str] = []
    i = start
    while i < len(text) and len(chars) < 105:
        ch = text[i]
        if ch not in "\r\n":
            chars.append(ch)
        i += 1
    fixed = len(chars) == 105 and all(chars[o] == sep for o in ISA_SEPARATOR_OFFSETS)
    if fixed and i < len(text):
        component, term, end = chars[ISA_COMPONENT_OFFSET], text[i], i + 1
        body = "".join(chars[: ISA_COMPONENT_OFFSET + 1])
    else:
        j, count = start, 0
        while count < 16:
            j = text.find(sep, j + 1)
            if j < 0:
                raise X12ParseError("ISA: fewer than 16 elements before the end of the file", ta1_code="023")
            count += 1
        if j + 2 >= len(text) + 1:
            raise X12ParseError("ISA: the file ends inside the ISA", ta1_code="023")
        component = text[j + 1] if j + 1 < len(text) else ""
        term = text[j + 2] if j + 2 < len(text) else ""
        end = j + 3
        body = text[start : j + 2].replace("\r", "").replace("\n", "")
    if term == "\r":
        term = "\n"
        if end < len(text) and text[end] == "\n":
            end += 1
    if term == "":
        raise X12ParseError("ISA: no segment terminator after ISA16", ta1_code="004")
    if _bad_delimiter(component) or component in "\r\n":
        raise X12ParseError(f"ISA16: component separator {component!r} is not usable", ta1_code="027")
    if _bad_delimiter(term) and term != "\n":
        raise X12ParseError(f"ISA: segment terminator {term!r} is not usable", ta1_code="004")
    if len({sep, component, term}) != 3:
        raise X12ParseError(
            f"ISA: delimiters are not distinct (element {sep!r}, component {component!r}, segment {term!r})",
            ta1_code="026" if sep in (component, term) else "027",
        )
    isa = body.split(sep)
    isa[0] = "ISA"
    version = element(isa, 12).strip()
    rep = element(isa, 11)
    repetition = (
        rep
        if version >= "00402" and len(rep) == 1 and not _bad_delimiter(rep)
        and rep not in (sep, component, term)
        else None
    )  # fmt: skip
    return Delimiters(sep, component, term, repetition), isa, end


def _decode_chunks(source: BinaryIO | bytes | str, encoding: str, name: str) -> Iterator[str]:
    if isinstance(source, str):
        yield source.removeprefix("\ufeff")
        return
    stream: BinaryIO = io.BytesIO(source) if isinstance(source, bytes) else source
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    first = True
    while True:
        raw = stream.read(CHUNK_SIZE)
        final = not raw
        try:
            text = decoder.decode(raw, final=final)
        except UnicodeDecodeError as exc:
            raise X12ParseError(f"{name}: byte {offset + exc.start} is not valid {encoding}", ta1_code="022") from None
        offset += len(raw)
        if first and text:
            text = text.removeprefix("\ufeff")
            first = False
        if text:
            yield text
        if final:
            return


class Tokenizer:
    """Splits a stream into segments (lists of elements), re-detecting delimiters at each ISA.

    Iterating yields *batches* (lists of segments), one per chunk: per-segment work stays in C
    (``str.split``/``str.strip`` inside a comprehension) on the fast path, a chunk holding no
    ``ISA``; only chunks where an interchange starts are walked segment by segment.
    """

    def __init__(self, chunks: Iterable[str]) -> None:
        self._chunks = iter(chunks)
        self.delimiters: Delimiters | None = None
        self.missing_final_terminator = False
        self.trailing_text: str | None = None

    def _more(self) -> str | None:
        return next(self._chunks, None)

    def segments(self) -> Iterator[list[str]]:
        for batch in self:
            yield from batch

    def __iter__(self) -> Iterator[list[list[str]]]:
        buf = ""
        eof = False
        pos = 0
        while True:
            # Start of an interchange (or trailing white space at the end of the file).
            while True:
                while pos < len(buf) and buf[pos] in _WS:
                    pos += 1
                if pos < len(buf) and len(buf) - pos >= 512:
                    break
                if eof:
                    break
                nxt = self._more()
                if nxt is None:
                    eof = True
                else:
                    buf = buf[pos:] + nxt
                    pos = 0
            if pos >= len(buf):
                if self.delimiters is None:
                    raise X12ParseError("the file is empty (no ISA segment)", ta1_code="022")
                return
            if buf[pos : pos + 3].upper() != "ISA":
                if self.delimiters is None:
                    raise X12ParseError("the file does not start with an ISA segment")
                self.trailing_text = buf[pos : pos + 40]
                return
            delims, isa, pos = detect_delimiters(buf, pos)
            self.delimiters = delims
            yield [isa]
            term, sep = delims.segment, delims.element
            isa_start = re.compile(re.escape(term) + r"[ \t\r\n\x0b\x0c]*[Ii][Ss][Aa](?=[^A-Za-z0-9])")
            while True:
                # Split only up to the next interchange: its delimiters may differ.
                m = isa_start.search(buf, pos)
                if m is not None:
                    parts = buf[pos : m.start()].split(term)
                    tail = ""
                else:
                    parts = (buf[pos:] if pos else buf).split(term)
                    tail = parts.pop()
                # Indentation and CR/LF around segments are layout; trailing spaces before a
                # terminator are suppressed padding.
                batch = [seg.split(sep) for seg in [p.strip(_WS) for p in parts] if seg]
                if batch:
                    yield batch
                if m is not None:
                    pos = m.start() + 1
                    break
                nxt = None if eof else self._more()
                if nxt is not None:
                    buf, pos = tail + nxt, 0
                    continue
                eof = True
                seg = tail.strip(_WS)
                if not seg:
                    return
                if seg[:3].upper() == "ISA":
                    buf, pos = tail, 0
                    break
                self.missing_final_terminator = True
                yield [seg.split(sep)]
                return


def _valid_date(value: str, fmt: str) -> bool:
    try:
        datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def _digits(value: str, low: int, high: int) -> bool:
    """X12 N0 of ``low``-``high`` characters: ASCII digits only (``str.isdigit`` accepts '²')."""
    return low <= len(value) <= high and value.isascii() and value.isdigit()


def _same_number(a: str, b: str, high: int = 9) -> bool:
    """Equal as control numbers (zero padding aside); compared as strings, never through ``int``,
    so a hostile element (non-ASCII digits, thousands of digits) cannot raise."""
    a, b = a.strip(), b.strip()
    if not (_digits(a, 1, high) and _digits(b, 1, high)):
        return False
    return a.lstrip("0") == b.lstrip("0")


class X12Reader:
    """Reads X12 from bytes, a binary stream or text; yields ``TransactionSet``s as they end.

    ``interchanges`` holds every interchange's summary (its groups, sets and findings); with
    ``keep_interchanges=False`` only the current one is kept, so memory stays flat however
    large the file. Findings never stop the reader; only an unreadable envelope (no ISA,
    unusable delimiters, undecodable bytes) raises ``X12ParseError``.
    """

    def __init__(
        self,
        source: BinaryIO | bytes | str,
        *,
        name: str = "<x12>",
        encoding: str = "utf-8",
        keep_interchanges: bool = True,
        keep_segments: bool = True,
    ) -> None:
        self.name = name
        self._source = source
        self._encoding = encoding
        self._keep = keep_interchanges
        self._keep_segments = keep_segments
        self.interchanges: list[InterchangeSummary] = []
        self.findings: list[Finding] = []
        self.segment_count = 0

    # --- helpers that record findings ---------------------------------------------------------

    def _finding(self, target: list[Finding], level: str, code: str, message: str, where: str | tuple[Any, ...],
                 severity: str = "error", **kw: object) -> None:  # fmt: skip
        if isinstance(where, tuple):  # built lazily: most sets have no findings
            where = self._where(*where)
        f = Finding(level, code, message, where, severity, **kw)  # type: ignore[arg-type]
        target.append(f)
        self.findings.append(f)

    def _where(self, ic: InterchangeSummary | None, grp: GroupSummary | None = None,
               st: SetSummary | None = None) -> str:  # fmt: skip
        parts = [self.name]
        if ic is not None:
            parts.append(f"interchange {ic.control_number or '?'}")
        if grp is not None:
            parts.append(f"group {grp.control_number or '?'}")
        if st is not None:
            parts.append(f"set {st.st01} {st.st02}")
        return ": ".join(parts)

    def _check_isa(self, ic: InterchangeSummary) -> None:
        isa, w = ic.isa, self._where(ic)
        checks: list[tuple[int, str, Callable[[str], bool], str]] = [
            (1, "010", lambda v: v in {"00", "01", "02", "03", "04", "05", "06"}, "authorization qualifier"),
            (3, "012", lambda v: v in {"00", "01"}, "security qualifier"),
            (5, "005", lambda v: len(v.strip()) == 2, "sender qualifier"),
            (6, "006", lambda v: bool(v.strip()), "sender id"),
            (7, "007", lambda v: len(v.strip()) == 2, "receiver qualifier"),
            (8, "008", lambda v: bool(v.strip()), "receiver id"),
            (9, "014", lambda v: _valid_date(v, "%y%m%d"), "date (YYMMDD)"),
            (10, "015", lambda v: _valid_date(v, "%H%M"), "time (HHMM)"),
            (12, "017", lambda v: v.strip() in KNOWN_VERSIONS, "interchange control version"),
            (14, "019", lambda v: v.strip() in {"0", "1"}, "acknowledgment requested"),
            (15, "020", lambda v: v.strip() in {"P", "T", "I"}, "usage indicator"),
        ]  # fmt: skip
        if len(isa) != 17:
            self._finding(
                ic.findings,
                "interchange",
                "022",
                f"ISA has {len(isa) - 1} elements, expected 16",
                w,
            )
        for index, code, ok, label in checks:
            value = element(isa, index)
            if not ok(value):
                self._finding(ic.findings, "interchange", code, f"ISA{index:02d} {label} {value!r} is invalid",
                              w, severity="warning", element_position=index, bad_value=value)  # fmt: skip
        num = element(isa, 13)
        if not _digits(num.strip(), 9, 9):
            self._finding(ic.findings, "interchange", "018", f"ISA13 control number {num!r} is not 9 digits",
                          w, element_position=13, bad_value=num)  # fmt: skip
        version = element(isa, 12).strip()
        rep = element(isa, 11)
        if version and version < "00402" and rep != "U":
            self._finding(ic.findings, "interchange", "016", f"ISA11 {rep!r} should be 'U' before version 00402",
                          w, severity="warning", element_position=11, bad_value=rep)  # fmt: skip

    # --- the envelope state machine -----------------------------------------------------------

    def __iter__(self) -> Iterator[TransactionSet]:
        tokens = Tokenizer(_decode_chunks(self._source, self._encoding, self.name))
        ic: InterchangeSummary | None = None
        grp: GroupSummary | None = None
        st: SetSummary | None = None
        segs: list[list[str]] = []
        st_ids: set[str] = set()
        gs_ids: set[str] = set()

        def close_set(reason: str | None) -> TransactionSet | None:
            nonlocal st, segs
            if st is None or ic is None or grp is None:
                return None
            if reason:
                self._finding(st.findings, "set", "2", reason, self._where(ic, grp, st))
            done = TransactionSet(ic, grp, st, segs)
            st, segs = None, []
            return done

        def close_group(reason: str | None) -> None:
            nonlocal grp
            if grp is not None and ic is not None and reason:
                self._finding(grp.findings, "group", "3", reason, self._where(ic, grp))
            grp = None

        keep_segments = self._keep_segments
        body_ids: set[str] = set()  # ids already seen valid: the hot path is one set lookup
        w: tuple[Any, ...]
        for batch in tokens:
            self.segment_count += len(batch)
            for seg in batch:
                sid = seg[0]
                if st is not None and sid in body_ids:
                    st.segment_count += 1
                    if keep_segments:
                        segs.append(seg)
                    continue
                if not sid.isupper():  # lowercase ids (or digits only, harmless)
                    sid = seg[0] = sid.upper().strip()
                if st is not None and sid not in _ENVELOPE_IDS:
                    st.segment_count += 1
                    if keep_segments:
                        segs.append(seg)
                    if 1 < len(sid) < 4 and sid.isalnum():
                        body_ids.add(sid)
                    else:
                        self._finding(st.findings, "segment", "1", f"segment id {sid[:10]!r} is not a valid id",
                                      (ic, grp, st), segment_id=sid[:3],
                                      segment_position=st.segment_count)  # fmt: skip
                    continue
                if sid == "ISA":
                    if ic is not None and ic.iea is None:
                        pending = close_set("SE missing before the next ISA")
                        if pending:
                            yield pending
                        close_group("GE missing before the next ISA")
                        self._finding(ic.findings, "interchange", "023", "IEA missing before the next ISA",
                                      self._where(ic))  # fmt: skip
                    assert tokens.delimiters is not None
                    ic = InterchangeSummary(isa=seg, delimiters=tokens.delimiters)
                    if not self._keep:
                        self.interchanges.clear()
                    self.interchanges.append(ic)
                    self._check_isa(ic)
                    gs_ids = set()
                    continue
                if ic is None:  # pragma: no cover - the tokenizer always starts with an ISA
                    raise X12ParseError("segment before ISA")
                if sid == "ST":
                    pending = close_set("SE missing before the next ST")
                    if pending:
                        yield pending
                    if grp is None:
                        self._finding(ic.findings, "interchange", "024", "ST outside a functional group (GS)",
                                      self._where(ic))  # fmt: skip
                        grp = GroupSummary(gs=["GS"])
                        ic.groups.append(grp)
                    st = SetSummary(st01=element(seg, 1), st02=element(seg, 2), st03=element(seg, 3) or None,
                                    segment_count=1)  # fmt: skip
                    segs = [seg] if self._keep_segments else []
                    grp.sets.append(st)
                    w = (ic, grp, st)
                    if not (4 <= len(st.st02) <= 9):
                        self._finding(st.findings, "set", "7", f"ST02 {st.st02!r} must be 4-9 characters", w)
                    if st.st02 in st_ids:
                        self._finding(st.findings, "set", "23", f"ST02 {st.st02} is not unique in the group", w)
                    st_ids.add(st.st02)
                    allowed = FUNCTIONAL_IDS.get(grp.functional_id)
                    if allowed is not None and st.st01 not in allowed:
                        self._finding(st.findings, "set", "6",
                                      f"set {st.st01} does not belong in a {grp.functional_id} group (GS01)",
                                      w, severity="warning")  # fmt: skip
                elif sid == "SE":
                    if st is None:
                        self._finding(ic.findings, "interchange", "024", "SE without ST", self._where(ic, grp))
                        continue
                    st.segment_count += 1
                    if self._keep_segments:
                        segs.append(seg)
                    w = (ic, grp, st)
                    se01, se02 = element(seg, 1).strip(), element(seg, 2).strip()
                    if se01 != str(st.segment_count):
                        self._finding(st.findings, "set", "4",
                                      f"SE01 says {se01!r} segments, the set has {st.segment_count}", w)  # fmt: skip
                    if se02 != st.st02:
                        same = _same_number(se02, st.st02)
                        self._finding(st.findings, "set", "3",
                                      f"SE02 {se02!r} does not match ST02 {st.st02!r}"
                                      + (" (same number, different zero padding)" if same else ""),
                                      w, severity="warning" if same else "error")  # fmt: skip
                    done = close_set(None)
                    if done:
                        yield done
                elif sid == "GS":
                    pending = close_set("SE missing before GS")
                    if pending:
                        yield pending
                    close_group("GE missing before the next GS")
                    grp = GroupSummary(gs=seg)
                    ic.groups.append(grp)
                    st_ids = set()
                    w = (ic, grp, None)
                    num = element(seg, 6).strip()
                    if not _digits(num, 1, 9):
                        self._finding(
                            grp.findings,
                            "group",
                            "6",
                            f"GS06 control number {num!r} is not 1-9 digits",
                            w,
                        )
                    elif num in gs_ids:
                        self._finding(
                            grp.findings,
                            "group",
                            "6",
                            f"GS06 {num} is not unique in the interchange",
                            w,
                        )
                    gs_ids.add(num)
                    if len(seg) < 9:
                        self._finding(grp.findings, "group", "2", "GS08 version is missing", w)
                elif sid == "GE":
                    pending = close_set("SE missing before GE")
                    if pending:
                        yield pending
                    if grp is None:
                        self._finding(ic.findings, "interchange", "024", "GE without GS", self._where(ic))
                        continue
                    grp.ge = seg
                    w = (ic, grp, None)
                    ge01, ge02 = element(seg, 1).strip(), element(seg, 2).strip()
                    if ge01 != str(len(grp.sets)):
                        self._finding(
                            grp.findings,
                            "group",
                            "5",
                            f"GE01 says {ge01!r} sets, the group has {len(grp.sets)}",
                            w,
                        )
                    if ge02 != grp.control_number.strip():
                        same = _same_number(ge02, grp.control_number)
                        self._finding(grp.findings, "group", "4",
                                      f"GE02 {ge02!r} does not match GS06 {grp.control_number!r}",
                                      w, severity="warning" if same else "error")  # fmt: skip
                    close_group(None)
                elif sid == "IEA":
                    pending = close_set("SE missing before IEA")
                    if pending:
                        yield pending
                    close_group("GE missing before IEA")
                    ic.iea = seg
                    w = (ic, None, None)
                    iea01, iea02 = element(seg, 1).strip(), element(seg, 2)
                    if iea01 != str(len(ic.groups)):
                        self._finding(ic.findings, "interchange", "021",
                                      f"IEA01 says {iea01!r} groups, the interchange has {len(ic.groups)}",
                                      w)  # fmt: skip
                    if iea02 != ic.control_number:
                        same = iea02.strip() == ic.control_number
                        self._finding(ic.findings, "interchange", "001",
                                      f"IEA02 {iea02!r} does not match ISA13 {ic.control_number!r}",
                                      w, severity="warning" if same else "error")  # fmt: skip
                elif sid == "TA1":
                    ic.ta1.append(seg)
                    if grp is not None:
                        self._finding(ic.findings, "interchange", "024", "TA1 inside a functional group",
                                      self._where(ic, grp), severity="warning")  # fmt: skip
                    if len(seg) != 6:
                        self._finding(ic.findings, "interchange", "024",
                                      f"TA1 has {len(seg) - 1} elements, expected 5", self._where(ic),
                                      severity="warning")  # fmt: skip
                else:
                    self._finding(ic.findings, "interchange", "024",
                                  f"segment {sid[:10]!r} outside a transaction set", self._where(ic, grp))  # fmt: skip
        if ic is not None:
            pending = close_set("the file ends inside a transaction set (no SE)")
            if pending:
                yield pending
            close_group("the file ends inside a functional group (no GE)")
            if ic.iea is None:
                self._finding(ic.findings, "interchange", "023", "the file ends before IEA", self._where(ic))
        if tokens.trailing_text is not None and ic is not None:
            self._finding(ic.findings, "interchange", "022",
                          f"text after the last IEA is not an interchange: {tokens.trailing_text!r}",
                          self._where(ic))  # fmt: skip
        if tokens.missing_final_terminator and ic is not None:
            self._finding(ic.findings, "interchange", "004", "the last segment has no terminator",
                          self._where(ic), severity="warning")  # fmt: skip


def read_x12(source: BinaryIO | bytes | str, name: str = "<x12>") -> tuple[list[TransactionSet], X12Reader]:
    """Read a whole (small) file: all transaction sets and the reader with its summaries."""
    reader = X12Reader(source, name=name)
    sets = list(reader)
    return sets, reader
