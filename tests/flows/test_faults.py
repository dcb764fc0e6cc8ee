"""Runs under faults: lost responses after commit, token expiry, 429 storms, SFTP cuts. Each run
completes, or fails cleanly and the next run finishes the work; nothing is doubled or lost.
And the audit trail of a run lists every call the sandbox saw and every transfer on the server.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections import Counter
from collections.abc import Callable

from ml_connector.flows import run_flow

from ..sftp.conftest import FaultProxy, proxy_for  # noqa: F401 - fixture re-exported
from .conftest import Env, sha256
from .test_crash import INBOUND, OUTBOUND


def _vendors(n: int, tag: str) -> str:
    rows = [f"{f'V{i + 1:04d}' if i < 6 else f'L{tag}{i:04d}'},Vendor {tag} {i},Town {i}" for i in range(n)]
    return "VendorID,Name,City\r\n" + "".join(r + "\r\n" for r in rows)


def _run_until_done(env: Env, flow: str, limit: int = 5) -> list[str]:
    states = []
    for _ in range(limit):
        result = env.run(flow)
        states.append(result.state)
        if result.state == "succeeded":
            return states
    raise AssertionError(f"{flow} did not finish in {limit} runs: {states} {env.runs[-1].error}")


def _no_duplicate_vendors(env: Env) -> dict[str, dict[str, object]]:
    vendors = env.kinetic_rows("Vendors", "Erp.BO.VendorSvc")
    counts = Counter(v["VendorID"] for v in vendors)
    assert not [k for k, n in counts.items() if n > 1], "duplicate vendors"
    return {str(v["VendorID"]): v for v in vendors}


def test_lost_responses_after_commit_during_inbound_posting(env: Env) -> None:
    env.flows(INBOUND)
    faults = env.kinetic.sandbox.faults
    faults.lose_response_rate = 0.3
    env.drop("lost-500.csv", _vendors(30, "A"), age_s=120)
    states = _run_until_done(env, "vendors-in")
    faults.lose_response_by = "cut"
    env.drop("lost-cut.csv", _vendors(30, "B"))
    states += _run_until_done(env, "vendors-in")
    faults.lose_response_rate = 0
    lost = env.kinetic.sandbox.lost_responses
    vendors = _no_duplicate_vendors(env)
    assert all(f"LA{i:04d}" in vendors and f"LB{i:04d}" in vendors for i in range(6, 30))
    assert vendors["V0001"]["Name"] == "Vendor B 0"  # the later file's update won
    assert {f.state for f in env.store.ledger.files(flow="vendors-in")} == {"done"}
    print(f"\nlost responses after commit: {lost} over runs {states}; duplicates 0, missing 0")
    assert lost >= 5


def test_token_expiry_and_429_storm_in_the_middle_of_runs(env: Env) -> None:
    sb = env.kinetic.sandbox
    sb.options.token_lifetime_s = 1
    env.store.connections.remove("kinetic")
    env.store.connections.add("kinetic", env.kinetic.settings(auth="token", token_refresh_margin_s=0.2), env.keyring)
    sb.faults.latency_ms = 15
    sb.faults.rate_429 = 0.25
    sb.faults.retry_after_s = 0.05
    sb.generate_invoices(150, vendor_num=3)
    env.flows(OUTBOUND + INBOUND)
    env.drop("storm.csv", _vendors(40, "S"))
    out = env.run("invoices-out")
    inb = env.run("vendors-in")
    sb.faults.rate_429 = 0
    sb.faults.latency_ms = 0
    assert out.state == "succeeded", out.error
    assert inb.state == "succeeded", (inb.error, inb.counts)
    throttled = [e for r in (out, inb) for e in env.store.audit.query(run_id=r.run_id, kind="epicor.call", limit=None)
                 if e.details.get("status") == 429]  # fmt: skip
    tokens = [e for r in (out, inb) for e in env.store.audit.query(run_id=r.run_id, kind="epicor.call", limit=None)
              if "TokenResource" in (e.subject or "")]  # fmt: skip
    assert len(throttled) >= 5 and len(tokens) >= 2, (len(throttled), len(tokens))
    rows = [
        r for n in env.names("outbound") for r in csv.DictReader(io.StringIO((env.local("outbound") / n).read_text()))
    ]
    assert len(rows) == 162 and len({(r["VendorID"], r["InvoiceNum"]) for r in rows}) == 162
    assert len(_no_duplicate_vendors(env)) == 12 + 34
    print(f"\n429 answers retried: {len(throttled)}; tokens fetched: {len(tokens)}; both runs complete")


def test_sftp_connection_cuts_in_the_middle_of_runs(env: Env, proxy_for: Callable[..., FaultProxy]) -> None:  # noqa: F811
    proxy = proxy_for(env.target)
    env.store.connections.remove("sftp")
    env.store.connections.add("sftp", env.target.settings(port=proxy.port), env.keyring)
    env.kinetic.sandbox.generate_invoices(400, vendor_num=1)
    env.flows(OUTBOUND.replace("split_every: 20", "split_every: 200") + INBOUND)
    delivered_runs = []
    for up in (30_000, 9_000):
        proxy.arm(up=up)  # the connection carrying the upload is cut after this many bytes
        result = env.run("invoices-out")
        delivered_runs.append(result.state)
        env.kinetic.sandbox.generate_invoices(200, vendor_num=2)
    env.run("invoices-out")
    on_server = env.names("outbound")
    ledger = {f.remote_path.rsplit("/", 1)[-1]: f for f in env.store.ledger.files(flow="invoices-out")}
    assert set(on_server) == {n for n, f in ledger.items() if f.state == "delivered"}
    assert all(sha256(env.local("outbound") / n) == ledger[n].sha256 for n in on_server)
    keys = [(r["VendorID"], r["InvoiceNum"]) for n in on_server
            for r in csv.DictReader(io.StringIO((env.local("outbound") / n).read_text()))]  # fmt: skip
    assert len(keys) == len(set(keys)) == 12 + 400 + 400

    env.drop(
        "cut-in.csv", _vendors(40, "C") + "".join(f"PAD{i:05d},Padding vendor {'x' * 200},Town\r\n" for i in range(200))
    )
    proxy.arm(down=20_000)  # the download is cut part way
    inb = env.run("vendors-in")
    if inb.state != "succeeded":
        inb = env.run("vendors-in")
    assert inb.state == "succeeded", (inb.error, inb.counts)
    retries = env.store.audit.query(kind="sftp.retry", limit=None)
    assert len(retries) >= 2 and proxy.connections >= 3
    assert env.names("archive") == ["cut-in.csv"] and len(_no_duplicate_vendors(env)) == 12 + 34 + 200
    print(f"\nSFTP cuts: {len(retries)} reconnects; outbound runs {delivered_runs}; inbound {inb.state}")


def test_audit_trail_lists_every_call_the_sandbox_saw_and_every_transfer(env: Env) -> None:
    env.flows(OUTBOUND + INBOUND)
    env.kinetic.sandbox.generate_invoices(45, vendor_num=2)
    env.drop("audit.csv", _vendors(25, "Q"))
    before = sum(env.kinetic.sandbox.calls.values())
    ctx = env.context()
    out = asyncio.run(
        run_flow(
            ctx,
            "invoices-out",
            __import__("ml_connector.config", fromlist=["x"]).parse_flows(env.flows_text).flows["invoices-out"],
        )
    )
    inb = env.run("vendors-in")
    seen = sum(env.kinetic.sandbox.calls.values()) - before
    calls = [e for r in (out, inb) for e in env.store.audit.query(run_id=r.run_id, kind="epicor.call", limit=None)]
    assert len(calls) == seen, (len(calls), seen)
    assert all(e.details.get("status") and e.duration_ms is not None for e in calls)
    uploads = env.store.audit.query(run_id=out.run_id, kind="sftp.upload", limit=None)
    assert sorted((u.subject or "").rsplit("/", 1)[-1] for u in uploads) == env.names("outbound")
    for u in uploads:
        path = env.local("outbound") / (u.subject or "").rsplit("/", 1)[-1]
        assert u.details["sha256"] == sha256(path) and u.details["size"] == path.stat().st_size
    (download,) = env.store.audit.query(run_id=inb.run_id, kind="sftp.download", limit=None)
    assert download.details["sha256"] == sha256(env.local("archive") / "audit.csv")
    posted = env.store.audit.query(run_id=inb.run_id, kind="record.posted", limit=None)
    assert len(posted) == 25
    text = " ".join(str(e.details) + (e.subject or "") for e in env.store.audit.query(limit=None))
    assert env.kinetic.sandbox.options.api_key not in text and env.target.password not in text
