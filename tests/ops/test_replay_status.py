"""Replay after a mapping fix, re-sending an outbound file, status, files and prune: through the CLI."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta

from ml_connector.config import parse_flows
from ml_connector.flows.replay import replay_file

from ..flows.conftest import Env, sha256

VENDORS_IN = """
vendors-in:
  direction: inbound
  epicor: kinetic
  entity: vendors
  sftp: sftp
  folder: "{base}/inbound"
  archive_folder: "{base}/archive"
  error_folder: "{base}/error"
  settle_seconds: 0
  on_bad_records: skip-records
  format:
    type: csv
    columns:
      - {field: VendorID, header: Vendor}
      - {field: Name}
      - {field: TermsCode, header: Terms, lookup: {NET30: N30}}
"""


VENDORS_OUT = """
vendors-out:
  direction: outbound
  epicor: kinetic
  entity: vendors
  sftp: sftp
  folder: "{base}/outbound"
  filename: "v_{run}.csv"
  format: {type: csv}
"""


def _cli(env: Env, *args: str) -> tuple[int, str]:
    proc = env.spawn(*args)
    out = proc.communicate(timeout=120)[0].decode()
    return proc.returncode, out


def test_replay_after_a_mapping_fix_posts_exactly_the_failed_records(env: Env) -> None:
    env.flows(VENDORS_IN)
    env.drop("terms.csv", "Vendor,Name,Terms\r\nR1,Replay One,NET30\r\nR2,Replay Two,NET45\r\nR3,Replay Three,NET30\r\n"
                          "R4,Replay Four,NET45\r\nR5,Replay Five,NET30\r\n")  # fmt: skip
    first = env.run("vendors-in")
    assert first.state == "partial" and first.counts["records_posted"] == 3 and first.counts["records_failed"] == 2
    (f,) = env.store.ledger.files(flow="vendors-in")
    assert f.state == "error" and env.names("error") == ["terms.csv", "terms.csv.error.json"]
    before = {v["VendorID"]: v["SysRevID"] for v in env.kinetic_rows("Vendors", "Erp.BO.VendorSvc")}
    calls_before = dict(env.kinetic.sandbox.calls)

    env.flows(VENDORS_IN.replace("{NET30: N30}", "{NET30: N30, NET45: N45}"))  # the mapping fix
    flows = parse_flows(env.flows_text)
    replayed = asyncio.run(replay_file(env.context(trigger="replay"), flows, f.id))
    assert replayed.state == "succeeded", (replayed.error, replayed.counts)
    assert replayed.counts["records_posted"] == 2
    calls = {k: v - calls_before.get(k, 0) for k, v in env.kinetic.sandbox.calls.items()}
    assert calls.get("POST Update") == 2 and calls.get("POST GetNewVendor") == 2
    after = {v["VendorID"]: v for v in env.kinetic_rows("Vendors", "Erp.BO.VendorSvc")}
    assert after["R2"]["TermsCode"] == "N45" and after["R4"]["TermsCode"] == "N45"
    assert all(after[k]["SysRevID"] == before[k] for k in ("R1", "R3", "R5")), "posted records are not posted again"
    f2 = env.store.ledger.file(f.id)
    assert f2 is not None and f2.state == "done"
    # the error note does not stay in the error folder saying the file failed
    assert env.names("archive") == ["terms.csv", "terms.csv.error.json.resolved"] and env.names("error") == []
    note = json.loads((env.local("archive") / "terms.csv.error.json.resolved").read_text())
    assert note["reason"] == "2 of 5 records failed"
    assert env.store.audit.query(kind="file.sidecar_resolved")
    assert env.store.audit.query(run_id=replayed.run_id, kind="replay.records")[0].details["retrying"] == 2


def test_replay_of_a_rejected_file_and_of_an_outbound_file_through_the_cli(env: Env) -> None:
    whole = VENDORS_IN.replace("skip-records", "reject-file") + VENDORS_OUT
    env.flows(whole.replace("header: Vendor}", "header: Supplier}"))
    env.drop("wrong-header.csv", "Vendor,Name,Terms\r\nW1,Wrong Header,NET30\r\n")
    env.run("vendors-in")
    (f,) = env.store.ledger.files(flow="vendors-in")
    assert f.state == "error" and "cannot be read" in (f.error or "") and not env.store.ledger.records(f.id)
    assert "VendorID is required" in json.dumps(f.details["problems"])
    env.flows(whole)  # the mapping fix
    code, out = _cli(env, "replay", str(f.id))
    assert code == 0, out
    assert "W1" in {v["VendorID"] for v in env.kinetic_rows("Vendors", "Erp.BO.VendorSvc")}

    sent = env.run("vendors-out")
    (name,) = env.names("outbound")
    digest = sha256(env.local("outbound") / name)
    (env.local("outbound") / name).unlink()  # the partner lost it
    code, out = _cli(env, "replay", "--run", str(sent.run_id))
    assert code == 0, out
    assert env.names("outbound") == [name] and sha256(env.local("outbound") / name) == digest
    assert env.store.audit.query(kind="replay.resent", limit=None)


def test_status_files_and_prune(env: Env) -> None:
    env.flows(VENDORS_IN.replace("on_bad_records: skip-records", 'schedule: "*/15 * * * *"'))
    env.drop("a.csv", "Vendor,Name,Terms\r\nST1,Status One,NET30\r\n")
    env.run("vendors-in")
    env.drop("waiting.csv", "Vendor,Name,Terms\r\nST2,Status Two,NET30\r\n")
    code, out = _cli(env, "status", "--json")
    rows = json.loads(out)
    assert code == 0, out
    (row,) = rows
    assert row["health"] == "ok" and row["last_state"] == "succeeded" and row["files_waiting"] == 1
    assert row["next_run"] and datetime.fromisoformat(row["next_run"]) > datetime.now(UTC)
    env.drop("bad.csv", "Vendor,Name,Terms\r\nST3,Bad Terms,NET99\r\n")
    env.run("vendors-in")
    code, out = _cli(env, "status", "--json", "--no-remote")
    assert code == 1 and json.loads(out)[0]["health"] == "attention" and json.loads(out)[0]["files_error"] == 1
    code, table = _cli(env, "status", "--no-remote")
    assert code == 1 and "vendors-in" in table
    code, out = _cli(env, "files", "--flow", "vendors-in", "--state", "error", "--json")
    assert code == 0 and [r["remote_path"].rsplit("/", 1)[-1] for r in json.loads(out)] == ["bad.csv"]

    # prune: old audit events and old staged copies go, the ledgers stay
    old = datetime.now(UTC) - timedelta(days=200)
    env.store.audit.record("test.old", subject="x")
    with env.store.session() as s, s.begin():
        from ml_connector.store import models as m

        s.query(m.AuditEvent).filter(m.AuditEvent.kind == "test.old").update({"at": old})
    staged = [p for p in (env.home.staging / "inbound").rglob("*") if p.is_file()]
    assert staged
    for p in staged:
        os.utime(p, (old.timestamp(), old.timestamp()))
    code, out = _cli(env, "prune")
    assert code == 0 and "pruned 1 audit events" in out, out
    assert not env.store.audit.query(kind="test.old") and not [p for p in staged if p.exists()]
    assert len(env.store.ledger.files(flow="vendors-in")) == 3
