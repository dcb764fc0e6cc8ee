"""999 Implementation Acknowledgment (005010X231A1) for partners on 005010 who want one.

Same frame as the 997 (AK1, AK2 per set, AK9) with IK3/IK4/IK5 in place of AK3/AK4/AK5
(reference/x12.md section 3.2). ``CTX`` business-unit context follows an IK3 when the set has a
business identifier: for an 820 that is the trace number (``CTX*TRN02:4529952``), as 837s carry
``CLM01``; situational-trigger CTX is never required because our checks raise no
implementation-guide situational errors. Code lists below are the 005010X231A1 ones; tests
check every code we write against them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from .acks import NEVER_ACKNOWLEDGED, AckPlan, _ak5_codes, _reply_envelope, set_ack_code
from .model import Finding, GroupSummary, InterchangeSummary, element
from .writer import Element, X12Writer

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
# Business-unit identifier per set (the element that names the business document).
BUSINESS_UNIT = {"820": ("TRN", 2, "TRN02"), "837": ("CLM", 1, "CLM01"), "810": ("BIG", 2, "BIG02")}


def group_body_999(group: GroupSummary, business_ids: dict[str, str] | None = None) -> list[
    tuple[str, Sequence[Element | None]]
]:  # fmt: skip
    """AK1, AK2/IK3/CTX/IK4/IK5 per set, AK9 for one acknowledged group.

    ``business_ids`` maps ST02 to (name, value) text such as ``TRN02:4529952`` for CTX.
    """
    ids = business_ids or {}
    body: list[tuple[str, Sequence[Element | None]]] = [
        ("AK1", [group.functional_id, group.control_number.strip(), group.version or None])
    ]
    accepted = 0
    any_noted = False
    for st in group.sets:
        body.append(("AK2", [st.st01, st.st02, st.st03]))
        by_segment: dict[tuple[str, int], list[Finding]] = {}
        for f in st.findings:
            if f.level in ("segment", "element") and f.segment_id and f.segment_position:
                by_segment.setdefault((f.segment_id, f.segment_position), []).append(f)
        for (seg_id, pos), found in by_segment.items():
            seg_codes = [f.code for f in found if f.level == "segment"]
            body.append(("IK3", [seg_id, str(pos), None, seg_codes[0] if seg_codes else "8"]))
            if st.st02 in ids:
                name, _, value = ids[st.st02].partition(":")
                body.append(("CTX", [[name, value]]))
            for f in found:
                if f.level == "element":
                    body.append(
                        ("IK4", [str(f.element_position or 1), f.element_ref, f.code, (f.bad_value or "")[:99] or None])
                    )  # fmt: skip
        code = set_ack_code(st.findings)
        codes = _ak5_codes(st.findings) if code != "A" else []
        body.append(("IK5", [code, *codes]))
        if code in ("A", "E"):
            accepted += 1
        any_noted = any_noted or code == "E"
    group_errors = [f for f in group.findings if f.severity == "error"]
    received = len(group.sets)
    if group_errors or (received and accepted == 0):
        ak901 = "R"
    elif accepted < received:
        ak901 = "P"
    elif any_noted or group.findings:
        ak901 = "E"
    else:
        ak901 = "A"
    included = element(group.ge, 1).strip() if group.ge else str(received)
    codes = list(dict.fromkeys(f.code for f in group.findings))[:5]
    body.append(("AK9", [ak901, included or str(received), str(received), str(accepted), *codes]))
    return body


def build_999(ic: InterchangeSummary, *, isa13: int, gs06: int, st02_start: int, when: datetime,
              business_ids: dict[str, str] | None = None) -> AckPlan:  # fmt: skip
    """One interchange with one FA group (GS08 005010X231A1) holding a 999 per inbound group."""
    groups = [g for g in ic.groups if g.functional_id not in NEVER_ACKNOWLEDGED]
    if not groups:
        return AckPlan(None)
    env = _reply_envelope(ic, version=GUIDE)
    first = groups[0]
    env = replace(env, gs_sender=element(first.gs, 3).strip() or None,
                  gs_receiver=element(first.gs, 2).strip() or None,
                  # 999 exists from 005010: a reply inside an older ISA would be unreadable.
                  interchange_version=ic.version if ic.version >= "00501" else "00501")  # fmt: skip
    out = io.StringIO()
    w = X12Writer(out, env)
    w.begin_interchange(isa13, when)
    w.begin_group("FA", gs06, when)
    plan = AckPlan(None)
    for n, group in enumerate(groups):
        body = group_body_999(group, business_ids)
        w.write_set("999", st02_start + n, body, st03=GUIDE)
        plan.groups_acknowledged.append(group.control_number.strip())
        plan.ak9_codes.append(str(body[-1][1][0]))
    w.end_group()
    w.end_interchange()
    plan.text = out.getvalue()
    return plan


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
