"""Poison files (issue 17): one file that crashes the run's code never blocks the files behind it.

OpenSSH sshd + the sandbox over HTTP. An internal error (a plain exception, injected where good
input cannot crash) is recorded on the file, the run goes on, and after ``max_file_attempts`` runs
the file goes to the error folder with a sidecar naming the error, an alert and (X12) a TA1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import ml_connector.flows.inbound as inbound_mod
import ml_connector.flows.x12_inbound as x12_inbound_mod
from ml_connector.formats.x12 import read_x12

from .conftest import Env
from .test_inbound import REMIT_IN, VENDORS_IN, payment, vendor_csv, x12_820

GOLDEN_820 = Path(__file__).parents[1] / "formats" / "golden" / "820_004010.edi"
FW_IN = """
vendors-fw-in:
  direction: inbound
  epicor: kinetic
  entity: vendors
  sftp: sftp
  folder: "{base}/inbound"
  pattern: "*.txt"
  archive_folder: "{base}/archive"
  error_folder: "{base}/error"
  settle_seconds: 0
  format: {type: fixed-width}
"""


def key_auth(env: Env) -> Env:
    """Log in to sshd with the session's own key: the test user's password is one system-wide
    value that another pytest session on this machine may reset at any moment."""
    if env.target.kind == "openssh":
        env.store.connections.remove("sftp")
        env.store.connections.add("sftp", env.target.settings(use_key=True), env.keyring)
    return env


def _receipts(env: Env) -> list[str]:
    return sorted(r["CheckRef"] for r in env.kinetic_rows("CashRecs", "Erp.BO.CashRecSvc"))


def _vendor_ids(env: Env) -> set[str]:
    return {v["VendorID"] for v in env.kinetic_rows("Vendors", "Erp.BO.VendorSvc")}


def test_820_with_a_non_ascii_control_number_is_rejected_and_the_good_file_posts(env: Env) -> None:
    """The issue's reproduction: ST02 '²' used to raise ValueError in the reader and jam the flow."""
    key_auth(env).flows(REMIT_IN)
    golden = GOLDEN_820.read_text()
    bad = golden.replace("ST*820*0001~", "ST*820*²~").replace("SE*14*0001~", "SE*14*2~")
    assert bad != golden and "²" in bad
    env.drop("a-bad.820", bad.encode())
    env.drop("b-good.820", x12_820([payment("CHK-5001", [("1001", "10.00")])], isa13=501))
    first = env.run("remit-in")
    assert first.state == "partial" and first.exit_code == 1, (first.error, first.files)
    assert first.error is None, "no internal error: the reader reports the bad control number as a finding"
    assert _receipts(env) == ["CHK-5001"]
    assert env.names("archive") == ["b-good.820"]
    assert sorted(env.names("error")) == ["a-bad.820", "a-bad.820.error.json"]
    side = json.loads((env.local("error") / "a-bad.820.error.json").read_text())
    assert "SE02" in json.dumps(side) and "ST02" in json.dumps(side), side
    acks = {n: (env.local("acks") / n).read_text() for n in env.names("acks")}
    (bad_ack,) = [t for n, t in acks.items() if n.startswith("a-bad.820")]
    sets, _ = read_x12(bad_ack)
    assert sets[0].id == "997" and next(s for s in sets[0].segments if s[0] == "AK5")[1] == "R"
    # run again: nothing is left open, nothing is resumed, nothing fails
    second = env.run("remit-in")
    assert second.state == "succeeded" and "resumed" not in second.counts, second.counts
    assert _receipts(env) == ["CHK-5001"]


def test_x12_internal_error_sets_the_file_aside_after_its_attempts_with_a_ta1(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_auth(env).flows(REMIT_IN)
    real = x12_inbound_mod.interpret_820

    def crashing(ts: Any, name: str, **kw: Any) -> Any:
        if name == "a-poison.820":
            raise ZeroDivisionError("injected crash in the 820 interpretation")
        return real(ts, name, **kw)

    monkeypatch.setattr(x12_inbound_mod, "interpret_820", crashing)
    env.drop("a-poison.820", x12_820([payment("CHK-6001", [("1002", "20.00")])], isa13=601))
    env.drop("b-good.820", x12_820([payment("CHK-6002", [("1003", "30.00")])], isa13=602))
    for attempt in (1, 2, 3):
        if attempt > 1:  # a new file arrives behind the poison one and must not wait for it
            env.drop(f"c-good-{attempt}.820",
                     x12_820([payment(f"CHK-610{attempt}", [("1004", "1.00")])], isa13=610 + attempt))  # fmt: skip
        result = env.run("remit-in")
        assert result.state == "partial" and result.exit_code == 1, (result.error, result.files)
        assert result.error is None, "the run itself did not fail"
        assert result.counts.get("files_internal_error") == 1, result.counts
        (row,) = [f for f in env.store.ledger.files(flow="remit-in") if f.name == "a-poison.820"]
        assert row.details["attempts"] == attempt
        assert "ZeroDivisionError: injected crash" in (row.error or "")
        if attempt < 3:
            assert row.state == "downloaded" and "a-poison.820" in env.names("inbound")
    assert _receipts(env) == ["CHK-6002", "CHK-6102", "CHK-6103"]
    assert row.state == "error"
    assert sorted(env.names("error")) == ["a-poison.820", "a-poison.820.error.json"]
    side = json.loads((env.local("error") / "a-poison.820.error.json").read_text())
    assert "internal error: ZeroDivisionError: injected crash" in side["reason"] and "3 attempts" in side["reason"]
    (ta1_name,) = [n for n in env.names("acks") if n.startswith("a-poison.820") and n.endswith(".ta1")]
    ta1 = (env.local("acks") / ta1_name).read_text()
    assert "TA1*000000601*" in ta1 and "*R*022" in ta1
    events = env.store.audit.query(flow="remit-in", kind="file.internal_error", limit=None)
    assert [e.details["attempt"] for e in events] == [1, 2, 3]
    (alert,) = env.store.audit.query(flow="remit-in", kind="alert.file_poison", limit=None)
    assert alert.details["attempts"] == 3 and "ZeroDivisionError" in alert.details["error"]
    after = env.run("remit-in")
    assert after.state == "succeeded", "the poison file no longer weighs on the flow"


def test_csv_internal_error_never_blocks_later_files(sqlite_env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env = key_auth(sqlite_env)
    env.flows(VENDORS_IN.replace("  min_age_seconds: 1\n", "  min_age_seconds: 1\n  max_file_attempts: 2\n"))
    real = inbound_mod.CsvReader

    class Crashing(real):  # type: ignore[misc,valid-type]
        def __iter__(self) -> Any:
            if self.name == "a-poison.csv":
                raise KeyError("injected crash in the CSV reader")
            return super().__iter__()

    monkeypatch.setattr(inbound_mod, "CsvReader", Crashing)
    env.drop("a-poison.csv", vendor_csv("PSN001,Poison Vendor,Reno,NV,N30"))
    env.drop("b-good.csv", vendor_csv("CSVG01,Good Vendor,Reno,NV,N30"))
    first = env.run("vendors-in")
    assert first.state == "partial" and first.counts.get("files_done") == 1, first.counts
    assert "CSVG01" in _vendor_ids(env) and "PSN001" not in _vendor_ids(env)
    env.drop("c-good.csv", vendor_csv("CSVG02,Later Vendor,Reno,NV,N30"))
    second = env.run("vendors-in")
    assert second.counts.get("files_done") == 1 and second.counts.get("files_error") == 1, second.counts
    assert "CSVG02" in _vendor_ids(env)
    assert sorted(env.names("error")) == ["a-poison.csv", "a-poison.csv.error.json"]
    side = json.loads((env.local("error") / "a-poison.csv.error.json").read_text())
    assert "KeyError" in side["reason"] and "2 attempts" in side["reason"]
    assert env.store.audit.query(flow="vendors-in", kind="alert.file_poison", limit=None)


def test_fixed_width_internal_error_never_blocks_later_files(sqlite_env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env = key_auth(sqlite_env)
    env.flows(FW_IN)
    real = inbound_mod.FixedWidthReader

    class Crashing(real):  # type: ignore[misc,valid-type]
        def __iter__(self) -> Any:
            if self.name == "a-poison.txt":
                raise IndexError("injected crash in the fixed-width reader")
            return super().__iter__()

    monkeypatch.setattr(inbound_mod, "FixedWidthReader", Crashing)

    def line(vendor: str) -> str:
        return vendor.ljust(8) + "Fixed Width Vendor".ljust(50) + "Boise".ljust(30) + "ID" + "83702".ljust(10) + "N30 "

    env.drop("a-poison.txt", line("FWPSN1") + "\r\n")
    env.drop("b-good.txt", line("FWGOD1") + "\r\n")
    states = []
    for _ in range(3):
        result = env.run("vendors-fw-in")
        states.append(result.counts.get("files_internal_error"))
        assert result.exit_code == 1 and result.error is None
    assert states == [1, 1, 1]
    ids = _vendor_ids(env)
    assert "FWGOD1" in ids and "FWPSN1" not in ids
    assert "a-poison.txt.error.json" in env.names("error") and env.names("archive") == ["b-good.txt"]
    (row,) = [f for f in env.store.ledger.files(flow="vendors-fw-in") if f.name == "a-poison.txt"]
    assert row.state == "error" and row.details["attempts"] == 3 and "IndexError" in (row.error or "")


VENDORS_OUT = """
vendors-out:
  direction: outbound
  epicor: kinetic
  entity: vendors
  sftp: sftp
  folder: "{base}/outbound"
  filename: "vendors_{run}.csv"
  format: {type: csv}
"""


def _vendor_ids_in(env: Env) -> list[str]:
    ids = []
    for name in env.names("outbound"):
        lines = (env.local("outbound") / name).read_text().splitlines()[1:]
        ids.extend(line.split(",")[0] for line in lines)
    return ids


def test_outbound_record_that_crashes_mapping_is_reported_and_holds_the_watermark(
    sqlite_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ml_connector.flows.outbound as outbound_mod

    env = key_auth(sqlite_env)
    env.flows(VENDORS_OUT)
    real = outbound_mod.outbound_mapper

    def crashing_mapper(columns: Any) -> Any:
        mapper = real(columns)

        def wrapped(row: dict[str, Any], where: str) -> Any:
            if row.get("VendorID") == "V0005":
                raise ZeroDivisionError("injected crash in the mapping")
            return mapper(row, where)

        return wrapped

    monkeypatch.setattr(outbound_mod, "outbound_mapper", crashing_mapper)
    result = env.run("vendors-out")
    assert result.state == "failed" and result.exit_code == 1
    assert "SysRevID=" in (result.error or "") and "ZeroDivisionError: injected crash" in (result.error or "")
    assert _vendor_ids_in(env)[-1] == "V0004" and "V0005" not in _vendor_ids_in(env)
    (alert,) = env.store.audit.query(flow="vendors-out", kind="alert.record_render_failed", limit=None)
    assert alert.details["stage"] == "mapping" and "VendorID" in alert.details["fields"]
    again = env.run("vendors-out")  # reported again, nothing sent twice
    assert again.exit_code == 1 and "ZeroDivisionError" in (again.error or "")
    assert len(env.names("outbound")) == 1
    monkeypatch.setattr(outbound_mod, "outbound_mapper", real)
    fixed = env.run("vendors-out")
    assert fixed.state == "succeeded"
    ids = _vendor_ids_in(env)
    assert len(ids) == len(set(ids)) == 12, ids


def test_outbound_record_that_crashes_the_renderer_sends_no_partial_file(
    sqlite_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml_connector.flows.render import FlatRenderer

    env = key_auth(sqlite_env)
    env.flows(VENDORS_OUT)
    real = FlatRenderer.write

    def crashing(self: FlatRenderer, row: Any, where: str) -> None:
        if row.get("VendorID") == "V0003":
            raise TypeError("injected crash in the CSV renderer")
        real(self, row, where)

    monkeypatch.setattr(FlatRenderer, "write", crashing)
    result = env.run("vendors-out")
    assert result.state == "failed" and result.exit_code == 1
    assert "TypeError: injected crash" in (result.error or "") and "while rendering" in (result.error or "")
    assert env.names("outbound") == [], "a file the renderer crashed in is never sent"
    assert env.store.watermarks.get_full("vendors-out") is None
    assert list((env.home.staging / "outbound" / "vendors-out").glob("*.out")) == []
    monkeypatch.setattr(FlatRenderer, "write", real)
    assert env.run("vendors-out").state == "succeeded"
    assert sorted(_vendor_ids_in(env)) == [f"V{i:04d}" for i in range(1, 13)]
