"""999 Implementation Acknowledgment (005010X231A1) for partners on 005010 who want one.

Same frame as the 997 (AK1, AK2 per set, AK9) with IK3/IK4/IK5 in place of AK3/AK4/AK5
(reference/x12.md section 3.2). ``CTX`` business-unit context follows an IK3 when the set has a
business identifier: for an 820 that is the trace number (``CTX*TRN02:4529952``), as 837s carry
``CLM01``; situational-trigger CTX is never required because our checks raise no
implementation-guide situational errors. Code lists below are the 005010X231A1 ones; tests
check every code we write against them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from .acks import AckPlan, build_fa, group_body
from .model import GroupSummary, InterchangeSummary
from .writer import Element

GUIDE = "005010X231A1"
IK304_CODES = frozenset({"1", "2", "3", "4", "5", "6", "7", "8", "I4", "I6", "I7", "I8", "I9"})
IK403_CODES = frozenset(
    {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "12", "13", "I10", "I11", "I12", "I13", "I6", "I9"}
)
IK501_CODES = frozenset({"A", "E", "M", "R", "W", "X"})
IK502_CODES = frozenset(
    {str(n) for n in range(1, 20)} | {"23", "24", "25", "26", "27", "I5", "I6"}
)  # 8-19: security codes
AK901_CODES = frozenset({"A", "E", "M", "P", "R", "W", "X"})
AK905_CODES = frozenset({str(n) for n in range(1, 27)})


def group_body_999(group: GroupSummary, business_ids: dict[str, str] | None = None) -> list[
    tuple[str, Sequence[Element | None]]
]:  # fmt: skip
    """AK1, AK2/IK3/CTX/IK4/IK5 per set, AK9 for one acknowledged group.

    ``business_ids`` maps ST02 to (name, value) text such as ``TRN02:4529952`` for CTX.
    """
    return group_body(group, segments=("IK3", "IK4", "IK5"), business_ids=business_ids)


def build_999(ic: InterchangeSummary, *, isa13: int, gs06: int, st02_start: int, when: datetime,
              business_ids: dict[str, str] | None = None) -> AckPlan:  # fmt: skip
    """One interchange with one FA group (GS08 005010X231A1) holding a 999 per inbound group."""
    # 999 exists from 005010: a reply inside an older ISA would be unreadable.
    return build_fa(ic, set_id="999", version=GUIDE, st03=GUIDE, isa13=isa13, gs06=gs06,
                    st02_start=st02_start, when=when,
                    body=lambda g: group_body_999(g, business_ids),
                    interchange_version=ic.version if ic.version >= "00501" else "00501")  # fmt: skip


def business_ids_820(sets: Sequence[object]) -> dict[str, str]:
    """ST02 -> ``TRN02:value`` for 820 sets that carry a trace number (CTX context in a 999)."""
    out: dict[str, str] = {}
    for ts in sets:
        segments = getattr(ts, "segments", [])
        summary = getattr(ts, "summary", None)
        if summary is None or summary.st01 != "820":
            continue
        trn = next((s for s in segments if s[0] == "TRN" and len(s) > 2 and s[2].strip()), None)
        if trn is not None:
            out[summary.st02] = f"TRN02:{trn[2].strip()}"
    return out
