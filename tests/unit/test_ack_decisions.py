"""Acknowledgment decisions: the 997/999/TA1 we send, and partner acks applied to our ledger.

Runs against the in-memory partner file system (flows/memfs.py) and a SQLite file: no network.
"""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from ml_connector.errors import RecordError
from ml_connector.flows import posting, x12_inbound
from ml_connector.flows.inbound import InboundRun
from ml_connector.flows.memfs import MemoryPartnerFiles
from ml_connector.flows.parsed import AckLine
from ml_connector.formats.x12 import read_x12
from ml_connector.formats.x12.acks import AckStatus, read_acks
from ml_connector.formats.x12.remit820 import Payment, RemittanceLine, payment_to_820
from ml_connector.formats.x12.writer import Envelope, X12Writer
from ml_connector.store.ledger import FileRow

from .conftest import FIXED


def x12_820(traces: list[str], isa13: int = 101) -> str:
    import io

    out = io.StringIO()
    w = X12Writer(out, Envelope(sender_id="PAYER01", receiver_id="MLCONNECTOR"))
    w.begin_interchange(isa13, FIXED)
    w.begin_group("RA", isa13, FIXED)
    for n, trace in enumerate(traces, 1):
        pay = Payment(trace_number=trace, payment_date=date(2026, 11, 20), amount=Decimal("10.00"),
                      payer_name="Customer One", payee_name="Demo Co",
                      lines=(RemittanceLine("1001", Decimal("10.00")),))  # fmt: skip
        w.write_set("820", n, payment_to_820(pay, "004010", FIXED))
    w.end_group()
    w.end_interchange()
    return out.getvalue()


def staged(run: InboundRun, fs: MemoryPartnerFiles, path: str, text: str) -> FileRow:
    """A partner file listed, downloaded into staging and recorded, as the run's first steps do."""
    fs.put(path, text.encode())
    f, _ = run.ledger.see(flow=run.name, run_id=str(run.run_id), remote_path=path, size=len(text), mtime=1)
    local = asyncio.run(fs.download(path, run.staging, expected_size=len(text)))
    run.ledger.update_file(f.id, state="downloaded", local_path=str(local.path), sha256=local.sha256)
    row = run.ledger.file(f.id)
    assert row is not None
    return row


def statuses(text: str) -> list[AckStatus]:
    sets, reader = read_x12(text.encode(), name="ack")
    return read_acks(sets, reader.interchanges)


def test_good_820_gets_a_997_accepting_it_dated_by_the_run_clock(make_run: Any) -> None:
    run, fs = make_run("payments-in"), MemoryPartnerFiles()
    f = staged(run, fs, "/in820/pay.x12", x12_820(["T1", "T2"]))
    written = asyncio.run(
        x12_inbound.acknowledge(run, fs, f, x12_inbound.read_x12_file(run, f.name, str(f.local_path)))
    )
    assert len(written) == 1 and written[0].startswith("/acks-out/")
    text = fs.files[written[0]].decode()
    assert "*261120*1030*" in text  # ISA09/ISA10 from the context's clock, not the wall clock
    got = statuses(text)
    assert {(s.kind, s.group, s.set_control, s.code) for s in got} >= {("997", "101", None, "A")}
    assert all(s.accepted for s in got)
    assert run.result.counts["acks_sent"] == 1


def test_999_when_the_flow_asks_for_it(make_run: Any) -> None:
    run, fs = make_run("payments-in", ack="999"), MemoryPartnerFiles()
    f = staged(run, fs, "/in820/pay.x12", x12_820(["T1"]))
    written = asyncio.run(
        x12_inbound.acknowledge(run, fs, f, x12_inbound.read_x12_file(run, f.name, str(f.local_path)))
    )
    got = statuses(fs.files[written[0]].decode())
    assert got and {s.kind for s in got} == {"999"} and all(s.code == "A" for s in got)


def test_a_broken_set_is_rejected_in_the_997(make_run: Any) -> None:
    run, fs = make_run("payments-in"), MemoryPartnerFiles()
    good = x12_820(["T1", "T2"])
    broken = good.replace("SE*", "SE*99", 1)  # the first set's segment count is wrong
    f = staged(run, fs, "/in820/pay.x12", broken)
    written = asyncio.run(
        x12_inbound.acknowledge(run, fs, f, x12_inbound.read_x12_file(run, f.name, str(f.local_path)))
    )
    by_set = {s.set_control: s for s in statuses(fs.files[written[0]].decode()) if s.set_control}
    assert by_set["0001"].code == "R" and not by_set["0001"].accepted
    assert by_set["0002"].code == "A"


def test_resent_interchange_gets_ta1_025_and_goes_to_the_error_folder(make_run: Any) -> None:
    run, fs = make_run("payments-in"), MemoryPartnerFiles()
    first = staged(run, fs, "/in820/a.x12", x12_820(["T1"], isa13=7))
    run.ledger.add_interchange(direction="inbound", sender="ZZ:PAYER01", receiver="ZZ:MLCONNECTOR",
                               control_number="000000007", file_id=first.id, groups={}, state="accepted")  # fmt: skip
    again = staged(run, fs, "/in820/b.x12", x12_820(["T1"], isa13=7))
    parsed = x12_inbound.read_x12_file(run, again.name, str(again.local_path))
    assert asyncio.run(x12_inbound.check_interchanges(run, fs, again, parsed)) is True
    ta1 = [p for p in fs.files if p.startswith("/acks-out/")]
    assert len(ta1) == 1 and "TA1*000000007*" in fs.files[ta1[0]].decode() and "*R*025" in fs.files[ta1[0]].decode()
    assert fs.names("/error") == ["b.x12", "b.x12.error.json"] and "/in820/b.x12" not in fs.files
    row = run.ledger.file(again.id)
    assert row is not None and row.state == "duplicate" and "already received" in (row.error or "")


def _ours(run: InboundRun, isa13: str = "000000042", gs06: str = "42") -> tuple[int, int]:
    f = run.ledger.record_intent(flow="out", run_id=str(run.run_id), remote_path="/out/x.x12", local_path="/x",
                                 sha256="0" * 64, size=1, details={})  # fmt: skip
    run.ledger.add_interchange(direction="outbound", sender="ZZ:US", receiver="ZZ:THEM", control_number=isa13,
                               file_id=f, groups={gs06: {"state": "sent"}}, state="sent")  # fmt: skip
    found = run.ledger.interchange("outbound", "ZZ:US", "ZZ:THEM", isa13)
    assert found is not None
    return int(found["id"]), f


def ack(status: AckStatus) -> AckLine:
    return AckLine(status, "ZZ:US", "ZZ:THEM")


def test_partner_997_accepting_our_group_accepts_the_interchange_and_file(make_run: Any) -> None:
    run = make_run("acks-in")
    ic_id, file_id = _ours(run)
    out = posting.apply_ack(run, ack(AckStatus("997", None, "42", None, "A")))
    assert out == {"interchange_id": ic_id, "file_id": file_id, "verdict": "accepted"}
    found = run.ledger.interchange("outbound", "ZZ:US", "ZZ:THEM", "000000042")
    assert found is not None and found["state"] == "accepted" and found["groups"]["42"]["state"] == "accepted"
    row = run.ledger.file(file_id)
    assert row is not None and row.details["ack"] == "accepted" and row.details["ack_kind"] == "997"


def test_partner_ta1_rejecting_our_interchange_rejects_it_with_its_codes(make_run: Any) -> None:
    run = make_run("acks-in")
    _, file_id = _ours(run)
    out = posting.apply_ack(run, ack(AckStatus("TA1", "42", None, None, "R", ("022",))))
    assert out["verdict"] == "rejected"
    row = run.ledger.file(file_id)
    assert row is not None and row.details["ack"] == "rejected" and row.details["ack_codes"] == ["022"]


def test_set_level_line_does_not_decide_the_file(make_run: Any) -> None:
    run = make_run("acks-in")
    _, file_id = _ours(run)
    posting.apply_ack(run, ack(AckStatus("997", None, "42", "0001", "R", ("5",))))
    row = run.ledger.file(file_id)
    assert row is not None and "ack" not in row.details
    found = run.ledger.interchange("outbound", "ZZ:US", "ZZ:THEM", "000000042")
    assert found is not None and found["state"] == "sent"


def test_ack_for_an_interchange_we_never_sent_is_a_record_error(make_run: Any) -> None:
    run = make_run("acks-in")
    _ours(run)
    with pytest.raises(RecordError, match="no outbound interchange from ZZ:US to ZZ:THEM matches this 997 "
                                          r"\(group 77\)"):  # fmt: skip
        posting.apply_ack(run, ack(AckStatus("997", None, "77", None, "A")))
