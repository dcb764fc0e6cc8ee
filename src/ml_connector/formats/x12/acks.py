"""997 and TA1: built from the reader's findings; and read back from partners (997/999/TA1).

Rules (reference/x12.md section 3): one 997 transaction set per inbound functional group,
never one for a 997/999/TA1 (FA groups), sender and receiver swapped, the partner's version
and delimiters; AK9 ``P`` when some but not all sets were accepted.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from .model import Finding, GroupSummary, InterchangeSummary, TransactionSet, element
from .reader import KNOWN_VERSIONS
from .writer import Element, Envelope, X12Writer

NEVER_ACKNOWLEDGED = {"FA"}  # 997 and 999 groups
MAX_CODES = 5


def set_ack_code(findings: Sequence[Finding]) -> str:
    if any(f.severity == "error" for f in findings):
        return "R"
    return "E" if findings else "A"


def _ak5_codes(findings: Sequence[Finding]) -> list[str]:
    codes: list[str] = []
    for f in findings:
        code = f.code if f.level == "set" else "5"  # segment/element errors -> "5"
        if code not in codes:
            codes.append(code)
    return codes[:MAX_CODES]


def group_body(
    group: GroupSummary,
    *,
    segments: tuple[str, str, str] = ("AK3", "AK4", "AK5"),
    with_versions: bool = True,
    business_ids: dict[str, str] | None = None,
) -> list[tuple[str, Sequence[Element | None]]]:
    """AK1, AK2 + segment/element/set notes per set, AK9, for one acknowledged group.

    The 997 and the 999 share this frame; the 999 names its notes IK3/IK4/IK5 and adds a CTX
    after each IK3 when ``business_ids`` maps the set's ST02 to ``name:value``.
    """
    seg_note, element_note, set_note = segments
    ids = business_ids or {}
    body: list[tuple[str, Sequence[Element | None]]] = [
        (
            "AK1",
            [group.functional_id, group.control_number.strip(), (group.version or None) if with_versions else None],
        )
    ]
    accepted = 0
    any_noted = False
    for st in group.sets:
        body.append(("AK2", [st.st01, st.st02, st.st03 if with_versions else None]))
        by_segment: dict[tuple[str, int], list[Finding]] = {}
        for f in st.findings:
            if f.level in ("segment", "element") and f.segment_id and f.segment_position:
                by_segment.setdefault((f.segment_id, f.segment_position), []).append(f)
        for (seg_id, pos), found in by_segment.items():
            seg_codes = [f.code for f in found if f.level == "segment"]
            body.append((seg_note, [seg_id, str(pos), None, seg_codes[0] if seg_codes else "8"]))
            if st.st02 in ids:
                name, _, value = ids[st.st02].partition(":")
                body.append(("CTX", [[name, value]]))
            for f in found:
                if f.level == "element":
                    bad = (f.bad_value or "")[:99] or None
                    body.append((element_note, [str(f.element_position or 1), f.element_ref, f.code, bad]))
        code = set_ack_code(st.findings)
        codes = _ak5_codes(st.findings) if code != "A" else []
        body.append((set_note, [code, *codes]))
        if code in ("A", "E"):
            accepted += 1
        any_noted = any_noted or code == "E"
    group_errors = [f for f in group.findings if f.severity == "error"]
    group_noted = [f for f in group.findings if f.severity != "error"]
    received = len(group.sets)
    if group_errors or (received and accepted == 0):
        ak901 = "R"
    elif accepted < received:
        ak901 = "P"
    elif any_noted or group_noted:
        ak901 = "E"
    else:
        ak901 = "A"
    included = element(group.ge, 1).strip() if group.ge else str(received)
    codes = list(dict.fromkeys(f.code for f in group.findings))[:MAX_CODES]
    body.append(("AK9", [ak901, included or str(received), str(received), str(accepted), *codes]))
    return body


def group_body_997(group: GroupSummary, version: str) -> list[tuple[str, Sequence[Element | None]]]:
    """AK1, AK2/AK3/AK4/AK5 per set, AK9, for one acknowledged group."""
    return group_body(group, with_versions=version >= "005010")


def _reply_envelope(ic: InterchangeSummary, *, sender_qualifier: str | None = None,
                    sender_id: str | None = None, version: str | None = None) -> Envelope:  # fmt: skip
    """Our envelope for a reply: the inbound parties swapped, its delimiters and version."""
    (s_q, s_id), (r_q, r_id) = ic.sender, ic.receiver
    return Envelope(
        sender_qualifier=sender_qualifier or r_q,
        sender_id=sender_id or r_id,
        receiver_qualifier=s_q,
        receiver_id=s_id,
        usage=element(ic.isa, 15).strip() or "P",
        version=version or ("00" + ic.version[2:5] + "0" if len(ic.version) == 5 else "004010"),
        # Echo the partner's ISA12 when it is a real version; a typo there gets 00401 back.
        interchange_version=ic.version if ic.version in KNOWN_VERSIONS else "00401",
        delimiters=ic.delimiters,
        segment_newline=ic.delimiters.segment != "\n",
        on_delimiter_in_data="replace",
    )


@dataclass
class AckPlan:
    """The 997 for one inbound interchange (None when it holds nothing to acknowledge)."""

    text: str | None
    groups_acknowledged: list[str] = field(default_factory=list)  # GS06 values
    ak9_codes: list[str] = field(default_factory=list)


def build_fa(
    ic: InterchangeSummary,
    *,
    set_id: str,
    version: str,
    isa13: int,
    gs06: int,
    st02_start: int,
    when: datetime,
    body: Callable[[GroupSummary], list[tuple[str, Sequence[Element | None]]]],
    st03: str | None = None,
    interchange_version: str | None = None,
) -> AckPlan:
    """One interchange with one FA group holding a ``set_id`` set per acknowledged inbound group."""
    groups = [g for g in ic.groups if g.functional_id not in NEVER_ACKNOWLEDGED]
    if not groups:
        return AckPlan(None)
    env = _reply_envelope(ic, version=version)
    # GS02/GS03 swap the inbound group's application ids.
    first = groups[0]
    env = replace(env, gs_sender=element(first.gs, 3).strip() or None,
                  gs_receiver=element(first.gs, 2).strip() or None,
                  interchange_version=interchange_version or env.interchange_version)  # fmt: skip
    out = io.StringIO()
    w = X12Writer(out, env)
    w.begin_interchange(isa13, when)
    w.begin_group("FA", gs06, when)
    plan = AckPlan(None)
    for n, group in enumerate(groups):
        set_body = body(group)
        w.write_set(set_id, st02_start + n, set_body, st03=st03)
        plan.groups_acknowledged.append(group.control_number.strip())
        plan.ak9_codes.append(str(set_body[-1][1][0]))
    w.end_group()
    w.end_interchange()
    plan.text = out.getvalue()
    return plan


def build_997(ic: InterchangeSummary, *, isa13: int, gs06: int, st02_start: int,
              when: datetime) -> AckPlan:  # fmt: skip
    """One interchange with one FA group holding a 997 per acknowledged inbound group."""
    groups = [g for g in ic.groups if g.functional_id not in NEVER_ACKNOWLEDGED]
    version = (groups[0].version[:6] if groups else "") or "004010"
    return build_fa(ic, set_id="997", version=version, isa13=isa13, gs06=gs06, st02_start=st02_start,
                    when=when, body=lambda g: group_body_997(g, version))  # fmt: skip


def ta1_code(ic: InterchangeSummary) -> tuple[str, str]:
    """(TA104, TA105) for an interchange: R with the first error, E with the first warning."""
    errors = [f for f in ic.findings if f.level == "interchange" and f.severity == "error"]
    if errors:
        return "R", errors[0].code
    warnings = [f for f in ic.findings if f.level == "interchange"]
    if warnings:
        return "E", warnings[0].code
    return "A", "000"


def build_ta1(ic: InterchangeSummary, *, isa13: int, when: datetime,
              note: str | None = None, ack: str | None = None) -> str:  # fmt: skip
    """A TA1 in its own interchange (IEA01 = 0). ``note``/``ack`` override (e.g. 025 duplicate)."""
    code, default_note = ta1_code(ic)
    env = _reply_envelope(ic)
    out = io.StringIO()
    w = X12Writer(out, env)
    w.begin_interchange(isa13, when)
    w.write_segment(
        "TA1", [ic.control_number, element(ic.isa, 9), element(ic.isa, 10), ack or code, note or default_note]
    )
    w.end_interchange()
    return out.getvalue()


# --- reading partners' acknowledgments ---------------------------------------------------------


@dataclass(frozen=True)
class AckStatus:
    """What a partner said about one of our interchanges, groups or sets."""

    kind: str  # "TA1", "997", "999"
    interchange: str | None  # ISA13 acknowledged (TA1)
    group: str | None  # GS06 acknowledged (997/999)
    set_control: str | None  # ST02 acknowledged (AK2/IK2), None for the group line
    code: str  # A, E, R, P, ...
    errors: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.code in ("A", "E")


def read_acks(sets: Sequence[TransactionSet], interchanges: Sequence[InterchangeSummary]) -> list[AckStatus]:
    """Statuses from inbound 997/999 sets and TA1 segments."""
    out: list[AckStatus] = []
    for ic in interchanges:
        for ta1 in ic.ta1:
            out.append(
                AckStatus("TA1", element(ta1, 1).strip(), None, None, element(ta1, 4).strip(),
                          tuple(c for c in [element(ta1, 5).strip()] if c and c != "000"))
            )  # fmt: skip
    for ts in sets:
        if ts.id not in ("997", "999"):
            continue
        group: str | None = None
        current: str | None = None
        errors: list[str] = []
        for seg in ts.segments:
            sid = seg[0]
            if sid == "AK1":
                group = element(seg, 2).strip()
            elif sid == "AK2":
                current, errors = element(seg, 2).strip(), []
            elif sid in ("AK3", "IK3"):
                errors.append(f"{sid} {element(seg, 1)} at {element(seg, 2)}: code {element(seg, 4)}")
            elif sid in ("AK4", "IK4"):
                errors.append(f"{sid} element {element(seg, 1)}: code {element(seg, 3)}")
            elif sid in ("AK5", "IK5"):
                codes = [c for c in seg[2:] if c.strip()]
                out.append(AckStatus(ts.id, None, group, current, element(seg, 1).strip(), tuple(errors + codes)))
                current, errors = None, []
            elif sid == "AK9":
                codes = [c for c in seg[5:] if c.strip()]
                out.append(AckStatus(ts.id, None, group, None, element(seg, 1).strip(), tuple(codes)))
    return out
