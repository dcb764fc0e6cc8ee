"""``ml-connector serve`` as users run it: real processes, one database, signals, /metrics."""

from __future__ import annotations

import signal
import time
from collections import Counter
from itertools import pairwise

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ml_connector.kinetic.recipes import vendors

from ..flows.conftest import Env
from ..sftp.sshd import free_port

EVERY_2S = """
vendors-out:
  direction: outbound
  schedule: "* * * * * */2"
  epicor: kinetic
  entity: vendors
  sftp: sftp
  folder: "{base}/outbound"
  filename: "vendors_{run}.csv"
  format: {type: csv}
"""


def _scrape(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + "".join(f"|{k}={v}" for k, v in sorted(sample.labels.items()))
            values[key] = sample.value
    return values


def _wait_http(port: int, deadline_s: float = 20) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("serve did not open its metrics port")


def test_two_serve_processes_never_run_a_slot_twice_and_expose_metrics(sqlite_env: Env) -> None:
    env = sqlite_env
    env.flows(EVERY_2S)
    ports = [free_port(), free_port()]
    procs = [env.spawn("serve", "--metrics-port", str(p), "--stop-after", "9") for p in ports]
    for p in ports:
        _wait_http(p)
    # something to send on the next slots
    import asyncio

    from ml_connector.kinetic import KineticClient

    async def change() -> None:
        async with KineticClient(env.kinetic.settings()) as k:
            await vendors.upsert(k, {"VendorID": "V0001", "Name": "Changed While Serving"})

    time.sleep(3)
    asyncio.run(change())
    time.sleep(2.5)
    scraped = [_scrape(p) for p in ports]
    health = httpx.get(f"http://127.0.0.1:{ports[0]}/healthz", timeout=5).json()
    outs = [p.communicate(timeout=60)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    slots = env.store.audit.query(flow="vendors-out", kind="schedule.slot", limit=None)
    per_slot = Counter(e.subject for e in slots)
    assert per_slot and max(per_slot.values()) == 1, per_slot  # each slot claimed once
    runs = env.store.ledger.runs("vendors-out", limit=100)
    assert len(runs) == len(slots) and all(r.trigger == "schedule" for r in runs)
    spans = sorted((r.started_at, r.finished_at) for r in runs)
    assert all(b[0] >= a[1] for a, b in pairwise(spans)), "two runs of one flow overlapped"
    owners = Counter(e.details["owner"] for e in slots)
    # the first slot sent all 12 vendors, the change went out once; no vendor file twice
    delivered = env.store.ledger.files(flow="vendors-out")
    assert sum(f.details["records"] for f in delivered) == 13
    runs_metric = sum(v for s in scraped for k, v in s.items() if k.startswith("mlc_runs_total|"))
    assert runs_metric >= 2
    assert any(k.startswith("mlc_api_latency_seconds_count|method=Vendors") for s in scraped for k in s)
    assert health["status"] == "ok"
    print(
        f"\n{len(slots)} slots in 9 s by owners {dict(owners)}; runs never overlapped; "
        f"metrics scraped: runs_total {runs_metric:g}"
    )


def test_sigterm_mid_run_leaves_the_ledger_consistent_and_restart_finishes(sqlite_env: Env) -> None:
    env = sqlite_env
    env.flows("""
    vendors-in:
      direction: inbound
      schedule: "* * * * * */2"
      epicor: kinetic
      entity: vendors
      sftp: sftp
      folder: "{base}/inbound"
      archive_folder: "{base}/archive"
      settle_seconds: 0
      batch_size: 10
      concurrency: 2
      format: {type: csv}
    """)
    rows = "".join(f"S{i:05d},Serve Vendor {i},Town\r\n" for i in range(150))
    env.drop("big.csv", "VendorID,Name,City\r\n" + rows)
    env.kinetic.sandbox.faults.latency_ms = 25
    proc = env.spawn("serve", "--metrics-port", "0")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        posted = [f for f in env.store.ledger.files(flow="vendors-in") if f.state == "posting"]
        if posted and env.store.ledger.record_states(posted[0].id).get("posted", 0) >= 20:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the run did not start posting")
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=60)[0].decode()
    stopped_in = time.monotonic() - sent
    assert proc.returncode == 0, out
    assert stopped_in < 15, stopped_in
    (f,) = env.store.ledger.files(flow="vendors-in")
    states = env.store.ledger.record_states(f.id)
    assert "sending" not in states, states  # it stopped between batches
    assert 0 < states.get("posted", 0) < 150
    run = env.store.ledger.runs("vendors-in", limit=1)[0]
    assert run.state == "stopped"
    env.kinetic.sandbox.faults.latency_ms = 0
    result = env.run("vendors-in")
    assert result.state == "succeeded", result.error
    vendors = env.kinetic_rows("Vendors", "Erp.BO.VendorSvc")
    ids = Counter(v["VendorID"] for v in vendors)
    assert all(ids[f"S{i:05d}"] == 1 for i in range(150))
    print(f"\nSIGTERM while posting: stopped in {stopped_in:.1f} s with {states}; restart finished, no duplicates")


def test_sighup_reloads_flows_and_keeps_the_old_ones_when_invalid(sqlite_env: Env) -> None:
    env = sqlite_env
    env.flows(EVERY_2S)
    proc = env.spawn("serve", "--metrics-port", "0")
    time.sleep(3)
    env.home.flows_file.write_text("flows:\n  broken: {direction: sideways}\n")
    proc.send_signal(signal.SIGHUP)
    time.sleep(2.5)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 0, out
    failed = env.store.audit.query(kind="serve.reload_failed", limit=None)
    assert failed and "broken" in failed[0].details["error"]
    runs_after = [r for r in env.store.ledger.runs("vendors-out", limit=100) if r.started_at > failed[0].at]
    assert runs_after, "the old flows kept running after an invalid reload"
