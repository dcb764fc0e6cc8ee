"""Element tables for the segments the 820 reader uses, and the checks they drive.

Each segment the reader takes meaning from is declared for 004010 and 005010 (element
reference number, requirement, type, minimum and maximum length), after the X12 dictionaries
(bots-grammars ``records004010.py`` / ``records005010.py``; Stedi's X12 reference). A segment
is checked against its table before any value is used: too many elements, a mandatory element
missing, a wrong type or length becomes an AK3 (code 8) + AK4 finding with the 997 codes of
reference/x12.md section 3.1, so a partner's extra element can never shift values into the
wrong field unnoticed.

Types: ``ID`` code value, ``AN`` string, ``R`` decimal number, ``N0``/``N2`` implied-decimal
integer, ``DT`` date, ``TM`` time, ``C`` composite (not checked below the element). Length
counts characters; for numbers it counts digits only (sign and decimal point are free), as
the X12 standard counts them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .model import Finding
from .reader import _valid_date

# AK403 element error codes (reference/x12.md section 3.1).
MANDATORY_MISSING = "1"
TOO_MANY_ELEMENTS = "3"
TOO_SHORT = "4"
TOO_LONG = "5"
INVALID_CHARACTER = "6"
INVALID_CODE = "7"
INVALID_DATE = "8"
INVALID_TIME = "9"
# AK304 segment error code for "segment has data element errors".
SEGMENT_HAS_ELEMENT_ERRORS = "8"

AK403_CODES = frozenset(str(n) for n in range(1, 11)) | {"12", "13"}
AK304_CODES = frozenset(str(n) for n in range(1, 9))


@dataclass(frozen=True)
class ElementSpec:
    """One element of a segment: reference number, M/O/C, type, min and max length."""

    ref: str
    req: str  # M mandatory, O optional, C conditional
    type: str  # ID, AN, R, N0, N2, DT, TM, C (composite)
    min: int
    max: int
    codes: frozenset[str] | None = None  # a closed code list, only where the standard's is short
    used: bool = True  # False: the reader takes no value from it, so only its presence is counted


def _e(ref: str, req: str, type_: str, lo: int, hi: int, codes: str | None = None, used: bool = True) -> ElementSpec:
    return ElementSpec(ref, req, type_, lo, hi, frozenset(codes.split()) if codes else None, used)


def _tables(id_len: int, five: bool) -> dict[str, tuple[ElementSpec, ...]]:
    # Bank routing details (BPR05-BPR15, BPR17-BPR21) travel to the bank, not to Kinetic; partners
    # fill them loosely (placeholders, an omitted BPR11), so they are counted but not checked.
    dfi = [_e("506", "C", "ID", 2, 2, used=False), _e("507", "C", "AN", 3, 12, used=False),
           _e("569", "C", "ID", 1, 3, used=False), _e("508", "C", "AN", 1, 35, used=False)]  # fmt: skip
    return {
        "BPR": (
            _e("305", "M", "ID", 1, 2),  # its code list grew across releases: length-checked only
            _e("782", "M", "R", 1, 18),
            _e("478", "M", "ID", 1, 1, "C D"),
            _e("591", "M", "ID", 3, 3),
            _e("812", "O", "ID", 1, 10, used=False),
            *dfi,
            _e("509", "O", "AN", 10, 10, used=False),
            _e("510", "O", "AN", 9, 9, used=False),
            *dfi,
            _e("373", "O", "DT", 8, 8),
            _e("1048", "O", "ID", 3, 3, used=False),
            *dfi,
        ),
        "TRN": (
            _e("481", "M", "ID", 1, 2),
            _e("127", "M", "AN", 1, id_len),
            # TRN03 should be "1" + EIN (10 characters); 9-digit EINs are common and we do not use it.
            _e("509", "O", "AN", 10, 10, used=False),
            _e("127", "O", "AN", 1, id_len),
        ),
        "CUR": (
            _e("98", "M", "ID", 2, 3),
            _e("100", "M", "ID", 3, 3),
            _e("280", "O", "R", 4, 10, used=False),
            _e("98", "O", "ID", 2, 3, used=False),
            _e("100", "O", "ID", 3, 3, used=False),
            _e("669", "O", "ID", 3, 3, used=False),
            *[
                x
                for _ in range(5)
                for x in (
                    _e("374", "C", "ID", 3, 3, used=False),
                    _e("373", "C", "DT", 8, 8, used=False),
                    _e("337", "C", "TM", 4, 8, used=False),
                )
            ],
        ),
        "REF": (
            _e("128", "M", "ID", 2, 3),
            _e("127", "C", "AN", 1, id_len),
            _e("352", "C", "AN", 1, 80),
            _e("C040", "O", "C", 1, 999),
        ),
        "DTM": (
            _e("374", "M", "ID", 3, 3),
            _e("373", "C", "DT", 8, 8),
            _e("337", "C", "TM", 4, 8),
            _e("623", "O", "ID", 2, 2),
            _e("1250", "C", "ID", 2, 3),
            _e("1251", "C", "AN", 1, 35),
        ),
        "N1": (
            _e("98", "M", "ID", 2, 3),
            _e("93", "C", "AN", 1, 60),
            _e("66", "C", "ID", 1, 2),
            _e("67", "C", "AN", 2, 80),
            _e("706", "O", "ID", 2, 2),
            _e("98", "O", "ID", 2, 3),
        ),
        "N2": (_e("93", "M", "AN", 1, 60), _e("93", "O", "AN", 1, 60)),
        "N3": (_e("166", "M", "AN", 1, 55), _e("166", "O", "AN", 1, 55)),
        "N4": (
            _e("19", "O", "AN", 2, 30),
            _e("156", "O", "ID", 2, 2),
            _e("116", "O", "ID", 3, 15),
            _e("26", "O", "ID", 2, 3),
            _e("309", "C", "ID", 1, 2),
            _e("310", "C", "AN", 1, 30),
            *([_e("1715", "C", "ID", 1, 3)] if five else []),
        ),
        "ENT": (
            _e("554", "O", "N0", 1, 6),
            _e("98", "C", "ID", 2, 3),
            _e("66", "C", "ID", 1, 2),
            _e("67", "C", "AN", 2, 80),
            _e("98", "C", "ID", 2, 3),
            _e("66", "C", "ID", 1, 2),
            _e("67", "C", "AN", 2, 80),
            _e("128", "C", "ID", 2, 3),
            _e("127", "C", "AN", 1, id_len),
        ),
        "RMR": (
            _e("128", "C", "ID", 2, 3),
            _e("127", "C", "AN", 1, id_len),
            _e("482", "O", "ID", 2, 2),
            _e("782", "O", "R", 1, 18),
            _e("782", "O", "R", 1, 18),
            _e("782", "O", "R", 1, 18),
            _e("426", "C", "ID", 2, 2),
            _e("782", "C", "R", 1, 18),
        ),
        "ADX": (
            _e("782", "M", "R", 1, 18),
            _e("426", "M", "ID", 2, 2),
            _e("128", "C", "ID", 2, 3),
            _e("127", "C", "AN", 1, id_len),
        ),
        "NTE": (_e("363", "O", "ID", 3, 3), _e("352", "M", "AN", 1, 80)),
    }


TABLES: dict[str, dict[str, tuple[ElementSpec, ...]]] = {
    # Reference identifications grow from 30 to 50 characters in 005010 (reference/x12.md 2.4).
    "004010": _tables(30, five=False),
    "005010": _tables(50, five=True),
}
DECLARED = frozenset(TABLES["004010"])

_R = re.compile(r"^-?(\d*)\.?(\d*)$")
_N = re.compile(r"^-?\d+$")


def table_for(version: str) -> dict[str, tuple[ElementSpec, ...]]:
    """The element tables for a GS08 version: 005010 and later use 005010's, earlier 004010's."""
    return TABLES["005010"] if version[:6] >= "005010" else TABLES["004010"]


def _valid_time(value: str) -> bool:
    if not value.isdigit() or len(value) not in (4, 6, 7, 8):
        return False
    hh, mm = int(value[:2]), int(value[2:4])
    ss = int(value[4:6]) if len(value) >= 6 else 0
    return hh < 24 and mm < 60 and ss < 60


def _check_value(value: str, spec: ElementSpec) -> tuple[str, str] | None:
    """(AK403 code, reason) for a present value that breaks its spec, else None."""
    kind = spec.type
    if kind == "C":
        return None
    if kind == "R":
        m = _R.match(value)
        if m is None or not (m.group(1) or m.group(2)):
            return INVALID_CHARACTER, "is not a decimal number"
        size = len(m.group(1)) + len(m.group(2))
    elif kind.startswith("N"):
        if not _N.match(value):
            return INVALID_CHARACTER, "is not a whole number"
        size = len(value.lstrip("-"))
    elif kind == "DT":
        # 6-digit YYMMDD dates (the pre-4010 form) are still sent in 4010 files; a valid date in
        # either form is read, anything else is AK403 8.
        fmt = "%Y%m%d" if len(value) == 8 else "%y%m%d"
        valid = len(value) in (6, 8) and value.isdigit() and _valid_date(value, fmt)
        return None if valid else (INVALID_DATE, "is not a valid date (CCYYMMDD)")
    else:
        size = len(value)
    if size < spec.min:
        return TOO_SHORT, f"is {size} long, minimum {spec.min}"
    if size > spec.max:
        return TOO_LONG, f"is {size} long, maximum {spec.max}"
    if kind == "TM" and not _valid_time(value):
        return INVALID_TIME, "is not a valid time"
    if spec.codes is not None and value not in spec.codes:
        return INVALID_CODE, f"is not one of {', '.join(sorted(spec.codes))}"
    return None


def check_segment(seg: list[str], position: int, version: str, where: str, severity: str = "error") -> list[Finding]:
    """Findings for one segment against its table (none for segments without a table).

    ``severity`` is the partner's policy: ``error`` rejects the set (AK5 R), ``warning``
    accepts it with errors noted (AK5 E); either way the caller must not use the segment.
    """
    table = table_for(version).get(seg[0])
    if table is None:
        return []
    sid = seg[0]
    out: list[Finding] = []

    def add(index: int, code: str, message: str, ref: str | None, value: str | None) -> None:
        out.append(Finding("element", code, f"{sid}{index:02d} {message}", where, severity, segment_id=sid,
                           segment_position=position, element_position=index, element_ref=ref,
                           bad_value=value[:99] if value else None))  # fmt: skip

    if len(seg) - 1 > len(table):
        # Trailing empty elements are suppressed padding some writers leave; only data counts.
        extra = [i for i in range(len(table) + 1, len(seg)) if seg[i].strip()]
        if extra:
            first = extra[0]
            add(first, TOO_MANY_ELEMENTS,
                f"{seg[first][:40]!r}: {sid} has {len(seg) - 1} elements, the {version[:6] or '004010'} "
                f"table allows {len(table)}", None, seg[first])  # fmt: skip
    for index, spec in enumerate(table, 1):
        value = seg[index].strip() if index < len(seg) else ""
        if not value:
            if spec.req == "M":
                add(index, MANDATORY_MISSING, "is mandatory and missing", spec.ref, None)
            continue
        if not spec.used:
            continue
        problem = _check_value(value, spec)
        if problem is not None:
            add(index, problem[0], f"{value[:40]!r} {problem[1]}", spec.ref, value)
    if out:  # after the element findings: the AK3 is built from the segment's group either way
        out.append(Finding("segment", SEGMENT_HAS_ELEMENT_ERRORS, f"{sid} at position {position} has element "
                           "errors", where, severity, segment_id=sid, segment_position=position))  # fmt: skip
    return out
