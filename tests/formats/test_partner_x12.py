"""Hand-written partner 820s (tests/formats/partner/): element tables, qualifiers, mappings, 999.

Every acknowledgment built here is read back with our own strict reader and every code in it
is checked against the code lists of the 997 / 999 guides.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ml_connector.config import X12FieldMap
from ml_connector.errors import RecordError
from ml_connector.flows.lookups import VALUES_PER_QUERY, resolve_lookups
from ml_connector.formats.x12 import read_x12
from ml_connector.formats.x12.ack999 import (
    AK901_CODES,
    AK905_CODES,
    IK304_CODES,
    IK403_CODES,
    IK501_CODES,
    IK502_CODES,
    build_999,
    business_ids_820,
)
from ml_connector.formats.x12.acks import build_997, build_ta1
from ml_connector.formats.x12.elements import AK304_CODES, AK403_CODES, check_segment
from ml_connector.formats.x12.map820 import apply_mapping
from ml_connector.formats.x12.remit820 import interpret_820

PARTNER = Path(__file__).with_name("partner")
WHEN = datetime(2026, 11, 23, 9, 5)
AK501_CODES = frozenset({"A", "E", "M", "R", "W", "X"})
AK502_CODES = frozenset({str(n) for n in range(1, 20)} | {"23", "24", "25", "26", "27"})


def _read(name: str) -> tuple[list[Any], Any]:
    return read_x12((PARTNER / name).read_bytes(), name=name)


def _segments(text: str, sid: str) -> list[list[str]]:
    sets, reader = read_x12(text, name="ack")
    assert reader.findings == [], [str(f) for f in reader.findings]  # clean X12 by our strict reader
    return [s for ts in sets for s in ts.segments if s[0] == sid]


def _check_997_codes(text: str) -> None:
    sets, reader = read_x12(text, name="997")
    assert reader.findings == []
    for seg in (s for ts in sets for s in ts.segments):
        if seg[0] == "AK3":
            assert seg[4] in AK304_CODES, seg
        elif seg[0] == "AK4":
            assert seg[3] in AK403_CODES, seg
        elif seg[0] == "AK5":
            assert seg[1] in AK501_CODES and all(c in AK502_CODES for c in seg[2:] if c), seg
        elif seg[0] == "AK9":
            assert seg[1] in AK901_CODES and all(c in AK905_CODES for c in seg[5:] if c), seg


def _check_999_codes(text: str) -> None:
    sets, reader = read_x12(text, name="999")
    assert reader.findings == []
    (ts,) = sets
    assert ts.id == "999" and ts.summary.st03 == "005010X231A1" and ts.group.version == "005010X231A1"
    for seg in ts.segments:
        if seg[0] == "IK3":
            assert seg[4] in IK304_CODES, seg
        elif seg[0] == "IK4":
            assert seg[3] in IK403_CODES, seg
        elif seg[0] == "IK5":
            assert seg[1] in IK501_CODES and all(c in IK502_CODES for c in seg[2:] if c), seg
        elif seg[0] == "AK9":
            assert seg[1] in AK901_CODES and all(c in AK905_CODES for c in seg[5:] if c), seg
        assert seg[0] not in ("AK3", "AK4", "AK5"), "a 999 carries IK3/IK4/IK5"


# --- item 2: segments read by meaning, element counts and types checked -----------------------


def test_an_n1_with_a_shifted_name_is_rejected_not_read_as_payee_acme() -> None:
    (ts,), reader = _read("820_n1_shifted.edi")
    advice, findings = interpret_820(ts, "820_n1_shifted.edi")
    assert advice is None  # never an advice with payee "ACME" and id "92"
    element = [(f.element_position, f.code, f.element_ref, f.bad_value) for f in findings if f.level == "element"]
    # N103 (id code qualifier, ID 1/2) and N105 (entity relationship, ID 2/2) are too long: AK403 5
    assert element == [(3, "5", "66", "DISTRIBUTION"), (5, "5", "706", "DISTRIB01")]
    plan = build_997(reader.interchanges[0], isa13=9, gs06=9, st02_start=1, when=WHEN)
    assert plan.text is not None and plan.ak9_codes == ["R"]
    _check_997_codes(plan.text)
    assert _segments(plan.text, "AK3") == [["AK3", "N1", "7", "", "8"]]
    assert _segments(plan.text, "AK4") == [
        ["AK4", "3", "66", "5", "DISTRIBUTION"],
        ["AK4", "5", "706", "5", "DISTRIB01"],
    ]
    assert _segments(plan.text, "AK5") == [["AK5", "R", "5"]]


def test_too_many_elements_is_ak4_code_3() -> None:
    (ts,), reader = _read("820_n1_too_many.edi")
    advice, findings = interpret_820(ts)
    assert advice is None
    assert [(f.element_position, f.code, f.bad_value) for f in findings if f.level == "element"] == [(7, "3", "EXTRA")]
    plan = build_997(reader.interchanges[0], isa13=9, gs06=9, st02_start=1, when=WHEN)
    assert plan.text is not None
    _check_997_codes(plan.text)
    assert _segments(plan.text, "AK4") == [["AK4", "7", "", "3", "EXTRA"]]


def test_partner_policy_accept_notes_the_errors_and_leaves_the_segment_out() -> None:
    (ts,), reader = _read("820_n1_shifted.edi")
    advice, findings = interpret_820(ts, on_element_error="accept")
    assert advice is not None and {f.severity for f in findings} == {"warning"}
    # the faulty N1 is not used at all: no payee rather than a shifted one
    assert advice.payee_name is None and advice.payee_id is None and advice.skipped == ["N1 at position 7"]
    assert advice.payer_name == "CUSTOMER ONE" and advice.payer_id == "CUST01" and advice.payer_id_qualifier == "91"
    plan = build_997(reader.interchanges[0], isa13=9, gs06=9, st02_start=1, when=WHEN)
    assert plan.text is not None and plan.ak9_codes == ["E"]
    _check_997_codes(plan.text)
    assert _segments(plan.text, "AK5") == [["AK5", "E", "5"]]


def test_qualifiers_decide_meaning() -> None:
    (ts,), _ = _read("820_invoice_prefix.edi")
    advice, findings = interpret_820(ts)
    assert findings == [] and advice is not None
    assert advice.payer_name == "NORTHWIND TRADERS ACCOUNTS PAYABLE"  # N2 continues the N1*PR name
    assert (advice.payee_name, advice.payee_id_qualifier, advice.payee_id) == ("EPICOR DEMO CO", "FI", "361234567")
    assert advice.references == {"CK": "45521"} and advice.dates == {"097": "20261121"}
    assert [(ln.qualifier, ln.invoice_num, ln.paid, ln.references) for ln in advice.lines] == [
        ("IV", "INV-1001", Decimal("125.50"), (("PO", "PO-7731"),)),
        ("IV", "INV-1005", Decimal("100"), (("PO", "PO-7735"),)),
    ]
    assert advice.lines[0].invoice_date is not None and advice.lines[0].invoice_date.isoformat() == "2026-11-01"
    assert advice.mismatch is None and advice.paid_sum == advice.amount == Decimal("225.50")


@pytest.mark.parametrize(
    ("seg", "version", "expected"),
    [
        (["TRN", "1", "X" * 40], "004010", [(2, "5")]),  # TRN02 30 in 004010
        (["TRN", "1", "X" * 40], "005010", []),  # 50 in 005010
        (["TRN", "1", "X" * 51], "005010X218", [(2, "5")]),
        (["TRN", "", "123"], "004010", [(1, "1")]),  # mandatory missing
        (["RMR", "IV", "1", "PI", "1.2.3"], "004010", [(4, "6")]),
        (["RMR", "IV", "1", "PI", "-12.50", "", "", "", "", ""], "004010", []),  # trailing empties are padding
        (["DTM", "097", "20261301"], "004010", [(2, "8")]),
        (["DTM", "097", "261120", "2560"], "004010", [(3, "9")]),
        (["ENT", "1A"], "004010", [(1, "6")]),
        (["ENT", "1234567"], "004010", [(1, "5")]),
        (["BPR", "C", "10", "Q", "CHK"], "004010", [(3, "7")]),  # BPR03 is C (credit) or D (debit)
        (["BPR", "C", "10", "C", "CH"], "004010", [(4, "4")]),
        (["ADX", "-5"], "004010", [(2, "1")]),
        (["N3", "1 MAIN", "SUITE 2", "EXTRA"], "004010", [(3, "3")]),
        (["N4", "CHICAGO", "IL", "60601", "US", "", "", "X"], "005010", []),  # N407 exists in 005010
        (["N4", "CHICAGO", "IL", "60601", "US", "", "", "X"], "004010", [(7, "3")]),
        (["IT1", "anything", "goes"], "004010", []),  # no table: not read, not checked
    ],
)
def test_element_tables(seg: list[str], version: str, expected: list[tuple[int, str]]) -> None:
    found = check_segment(seg, 5, version, "w")
    assert [(f.element_position, f.code) for f in found if f.level == "element"] == expected
    if expected:
        assert [(f.level, f.code) for f in found if f.level == "segment"] == [("segment", "8")]
        assert all(f.code in AK403_CODES for f in found if f.level == "element")


# --- item 3: mappings --------------------------------------------------------------------------


def _advice(name: str) -> Any:
    (ts, *_), _ = _read(name)
    advice, _f = interpret_820(ts)
    assert advice is not None
    return advice


def test_mapping_extract_lookup_default_constant() -> None:
    advice = _advice("820_invoice_prefix.edi")
    mapped = apply_mapping(
        advice,
        {
            "InvoiceNum": X12FieldMap(source="RMR02", extract=r"^INV-(\d+)$"),
            "CheckRef": X12FieldMap(source="REF.CK", lookup={"45521": "CHK-45521"}),
            "VendorID": X12FieldMap(source="N1.PE.N104", lookup={"999": "X"}, lookup_default="V0001"),
            "CheckNum": X12FieldMap(value="45521"),
        },
        "f: set 820 1",
    )
    assert [ln.invoice_num for ln in mapped.lines] == ["1001", "1005"]
    assert mapped.trace_number == "45521" and mapped.payee_id == "V0001"  # CheckNum (a constant) came last
    assert mapped.mapped == {"CheckRef": "CHK-45521", "VendorID": "V0001", "CheckNum": "45521"}
    assert [ln.invoice_num for ln in advice.lines] == ["INV-1001", "INV-1005"]  # the original is untouched
    by_po = apply_mapping(advice, {"InvoiceNum": X12FieldMap(source="RMR.REF.PO", extract=r"PO-(\d+)")}, "w")
    assert [ln.invoice_num for ln in by_po.lines] == ["7731", "7735"]
    dflt = apply_mapping(advice, {"CheckNum": X12FieldMap(source="REF.ZZ", default="0")}, "w")
    assert dflt.trace_number == "0"


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"InvoiceNum": X12FieldMap(source="RMR02", extract=r"^CM-(\d+)$")}, "'INV-1001' does not match extract"),
        ({"CheckRef": X12FieldMap(source="REF.CK", lookup={"1": "2"})}, "'45521' is not in the lookup table"),
        ({"VendorID": X12FieldMap(source="N1.PR.N104")}, "VendorID is empty"),
        ({"InvoiceNum": X12FieldMap(source="TRN02")}, "is not in the RMR loop"),
        ({"CheckRef": X12FieldMap(source="RMR02")}, "is per line"),
    ],
)
def test_mapping_failures_name_the_place(mapping: dict[str, X12FieldMap], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        apply_mapping(_advice("820_invoice_prefix.edi"), mapping, "p.edi: set 820 000000001")


class FakeKinetic:
    """Rows by entity set; records every query (unit test of the batching only)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.calls: list[tuple[str, str, str | None, int]] = []

    async def query(self, service: str, entity_set: str, *, filter: str | None = None,
                    select: list[str] | None = None, top: int = 100) -> list[dict[str, Any]]:  # fmt: skip
        self.calls.append((service, entity_set, filter, top))
        assert top <= 100
        wanted = {part.split(" eq ")[1].strip("()'") for part in (filter or "").split(" or ")}
        return [r for r in self.rows if str(r["LegalNumber"]) in wanted][:top]


def test_lookups_batch_under_the_row_cap_and_never_guess() -> None:
    import asyncio

    advice = _advice("820_invoice_prefix.edi")
    spec = {"InvoiceNum": X12FieldMap.model_validate({"source": "RMR02", "find": {"by": "LegalNumber"}})}
    advices = [apply_mapping(advice, spec, "w") for _ in range(60)]
    for n, a in enumerate(advices):  # 120 distinct legal numbers
        a.lookups[:] = [("InvoiceNum", f"L{n}-{i}", i) for i in range(2)]
    rows = [{"LegalNumber": f"L{n}-{i}", "InvoiceNum": 5000 + 2 * n + i} for n in range(60) for i in range(2)]
    rows[0:1] = [{"LegalNumber": "L0-0", "InvoiceNum": 1}, {"LegalNumber": "L0-0", "InvoiceNum": 2}]  # ambiguous
    del rows[-1]  # L59-1 matches nothing
    k = FakeKinetic(rows)
    asyncio.run(resolve_lookups(k, advices, spec))
    assert len(k.calls) == 3 and all(c[:2] == ("Erp.BO.ARInvoiceSvc", "ARInvoices") for c in k.calls)
    assert max(c[2].count(" eq ") for c in k.calls if c[2]) == VALUES_PER_QUERY  # type: ignore[union-attr]
    assert [ln.invoice_num for ln in advices[1].lines] == ["5002", "5003"]
    assert advices[0].lines[0].invoice_num == "INV-1001"  # left as mapped before the look-up: never a guess
    assert "2 different Kinetic records" in advices[0].lookup_errors[0]
    assert advices[59].lines[1].invoice_num == "INV-1005" and "no Kinetic records" in advices[59].lookup_errors[0]
    assert advices[59].lines[0].invoice_num == str(5000 + 2 * 59)


# --- item 4: amounts ---------------------------------------------------------------------------


def test_amount_mismatch_is_kept_on_the_advice() -> None:
    advice = _advice("820_amount_mismatch.edi")
    assert (advice.amount, advice.paid_sum, advice.mismatch) == (Decimal("250"), Decimal("150"), Decimal("100"))
    assert "BPR02 250 differs from the sum of RMR04 150 by 100" in advice.warnings[0]


# --- item 6: 999 -------------------------------------------------------------------------------


def test_999_for_a_5010_partner_reads_back_with_valid_codes_and_context() -> None:
    sets, reader = _read("820_5010_two_sets.edi")
    for ts in sets:
        interpret_820(ts)
    ic = reader.interchanges[0]
    plan = build_999(ic, isa13=31, gs06=31, st02_start=1, when=WHEN, business_ids=business_ids_820(sets))
    assert plan.text is not None and plan.ak9_codes == ["P"]
    _check_999_codes(plan.text)
    ack_sets, ack_reader = read_x12(plan.text, name="999")
    segs = [s for s in ack_sets[0].segments if s[0] not in ("ST", "SE")]
    comp = ack_reader.interchanges[0].delimiters.component
    assert segs == [
        ["AK1", "RA", "531", "005010"],
        ["AK2", "820", "0001", "005010"],
        ["IK5", "A"],
        ["AK2", "820", "0002", "005010"],
        ["IK3", "RMR", "7", "", "8"],
        ["CTX", f"TRN02{comp}GLX-2026-00078"],
        ["IK4", "4", "782", "6", "4O.00"],
        ["IK3", "DTM", "8", "", "8"],
        ["CTX", f"TRN02{comp}GLX-2026-00078"],
        ["IK4", "2", "373", "8", "20261131"],
        ["IK5", "R", "5"],
        ["AK9", "P", "2", "2", "1"],
    ]
    assert ack_reader.interchanges[0].version == "00501"
    assert ack_reader.interchanges[0].receiver == ic.sender


def test_999_and_997_for_every_partner_file_read_back_cleanly() -> None:
    for path in sorted(PARTNER.glob("*.edi")):
        sets, reader = read_x12(path.read_bytes(), name=path.name)
        for ts in sets:
            interpret_820(ts)
        ic = reader.interchanges[0]
        p997 = build_997(ic, isa13=1, gs06=1, st02_start=1, when=WHEN)
        p999 = build_999(ic, isa13=2, gs06=2, st02_start=1, when=WHEN, business_ids=business_ids_820(sets))
        assert p997.text is not None and p999.text is not None
        _check_997_codes(p997.text)
        _check_999_codes(p999.text)
        ta1 = build_ta1(ic, isa13=3, when=WHEN)
        (seg,) = [s for s in _ta1_segments(ta1)]
        assert seg[1] == ic.control_number and seg[4] in ("A", "E", "R") and len(seg[5]) == 3


def _ta1_segments(text: str) -> list[list[str]]:
    sets, reader = read_x12(text, name="ta1")
    assert sets == [] and reader.findings == []
    return reader.interchanges[0].ta1


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ("{CustNum: {source: RMR02}}", "'CustNum' cannot be mapped"),
        ("{InvoiceNum: {source: RMR09}}", "source 'RMR09': expected"),
        ("{InvoiceNum: {source: RMR02, extract: '(INV'}}", "extract: not a valid regular expression"),
        ("{InvoiceNum: {source: RMR02, value: '1'}}", "give exactly one of source or value"),
        ("{CheckRef: {source: TRN02, find: {by: LegalNumber}}}", "CheckRef.find: name service and entity_set"),
    ],
)
def test_mapping_configuration_errors_are_located(mapping: str, message: str) -> None:
    from ml_connector.config import parse_flows
    from ml_connector.errors import ConfigError

    text = f"""flows:
  remit:
    direction: inbound
    epicor: k
    sftp: s
    folder: /in
    entity: cash-receipts
    constants: {{GroupID: CASH01}}
    format: {{type: x12, mapping: {mapping}}}
"""
    with pytest.raises(ConfigError, match=message) as exc:
        parse_flows(text, "flows.yaml")
    assert "flows.yaml:9: flow 'remit': format.mapping" in str(exc.value)
