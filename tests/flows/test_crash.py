"""Crash safety: runs in a subprocess killed with SIGKILL at random moments and at every named
step boundary, then run again to completion. Kinetic must hold no duplicate, no file may be lost,
every inbound file ends in exactly one final state, and every outbound record reached the
partner exactly once under a final name.

The random kills are timed from the run's first Kinetic API call (seen by the sandbox), not from
process start, and the trials must prove they hit the interesting window: enough kills must
leave a pending intent (outbound) or a file in ``posting`` / records in ``sending`` (inbound).
Kinetic's state is read from the sandbox's own database, never through the product's
``KineticClient`` (a bug that dropped rows in ``extract`` would otherwise hide from the check).
"""

from __future__ import annotations

import csv
import io
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from ml_connector.flows.context import FAILPOINT_ENV
from ml_connector.sandbox.kinetic_schema import TABLES

from .conftest import Env, sha256
from .test_poison import key_auth

TRIALS = 30
# Of 30 trials timed from the first API call, at least this many must kill inside the window
# that matters (measured: about half do); a run whose order was broken (upload before the
# intent) leaves none, so this is what makes the random trials able to fail.
MIN_IN_WINDOW = 6

OUTBOUND = """
invoices-out:
  direction: outbound
  epicor: kinetic
  entity: ap-invoices
  sftp: sftp
  folder: "{base}/outbound"
  filename: "inv_{run}_{seq}.csv"
  split_every: 20
  page_size: 50
  format: {type: csv}
"""
INBOUND = """
vendors-in:
  direction: inbound
  epicor: kinetic
  entity: vendors
  sftp: sftp
  folder: "{base}/inbound"
  pattern: "*.csv"
  archive_folder: "{base}/archive"
  error_folder: "{base}/error"
  settle_seconds: 0
  batch_size: 8
  concurrency: 4
  format: {type: csv}
"""


def _api_calls(env: Env) -> int:
    return sum(env.kinetic.sandbox.calls.copy().values())  # copied first: the server thread adds keys


def _kill_after(env: Env, args: list[str], delay: float, extra_env: dict[str, str] | None = None,
                *, from_first_call: bool = False, from_first_transfer: Path | None = None) -> str:  # fmt: skip
    """Start ``ml-connector ARGS``; SIGKILL it ``delay`` s after start, after its first API call
    reached the sandbox (``from_first_call``), or after a first new name (an upload's temporary
    or final name) appeared in the server folder ``from_first_transfer``. Returns how it ended."""
    before = _api_calls(env)
    names = set(os.listdir(from_first_transfer)) if from_first_transfer else set()
    proc = env.spawn(*args, env=extra_env)
    limit = time.monotonic() + 60
    if from_first_call:
        while _api_calls(env) == before and proc.poll() is None and time.monotonic() < limit:
            time.sleep(0.002)
    if from_first_transfer is not None:
        while set(os.listdir(from_first_transfer)) <= names and proc.poll() is None and time.monotonic() < limit:
            time.sleep(0.001)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.002)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    out = proc.communicate(timeout=60)[0].decode()
    if proc.returncode == -signal.SIGKILL:
        return "killed" if time.monotonic() >= deadline else "killed-itself"
    assert proc.returncode in (0, 1), out
    return "finished"


# --- outbound -----------------------------------------------------------------------------------


def _outbound_check(env: Env) -> dict[str, int]:
    """Every invoice in Kinetic is in exactly one file on the server; the ledger matches the server."""
    delivered = {f.remote_path.rsplit("/", 1)[-1]: f for f in env.store.ledger.files(flow="invoices-out")
                 if f.state == "delivered"}  # fmt: skip
    pending = env.store.ledger.files(flow="invoices-out", states=["intent"])
    assert not pending, f"intents left pending after a completed run: {pending}"
    on_server = env.names("outbound")
    assert not [n for n in on_server if n.startswith(".")], f"temporary files left: {on_server}"
    assert set(on_server) == set(delivered), "every file on the server is a delivered ledger row and vice versa"
    seen: Counter[tuple[str, str]] = Counter()
    for name in on_server:
        path = env.local("outbound") / name
        assert sha256(path) == delivered[name].sha256, f"{name}: bytes differ from the recorded intent"
        for row in csv.DictReader(io.StringIO(path.read_text())):
            seen[(row["VendorID"], row["InvoiceNum"])] += 1
    invoices = _sandbox_invoices(env)
    duplicates = sum(n - 1 for n in seen.values() if n > 1)
    missing = len(invoices - set(seen))
    assert duplicates == 0, [k for k, n in seen.items() if n > 1][:5]
    assert missing == 0, sorted(invoices - set(seen))[:5]
    return {"files": len(on_server), "records": sum(seen.values())}


def _sandbox_rows(env: Env, table: str) -> list[dict[str, object]]:
    """A sandbox table read from its database: independent of the product's Kinetic client."""
    with env.kinetic.sandbox.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(TABLES[table]))]


def _sandbox_invoices(env: Env) -> set[tuple[str, str]]:
    vendor_ids = {v["VendorNum"]: v["VendorID"] for v in _sandbox_rows(env, "Vendor")}
    return {(str(vendor_ids[r["VendorNum"]]), str(r["InvoiceNum"])) for r in _sandbox_rows(env, "APInvHed")}


def _window(env: Env, args: list[str]) -> float:
    """Seconds from a run's first API call to its end, in a fresh process: the span to aim at."""
    before = _api_calls(env)
    proc = env.spawn(*args)
    while _api_calls(env) == before and proc.poll() is None:
        time.sleep(0.002)
    first = time.monotonic()
    out = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 0, out
    return time.monotonic() - first


def test_outbound_survives_sigkill_at_random_moments(sqlite_env: Env) -> None:
    env = key_auth(sqlite_env)
    env.flows(OUTBOUND)
    rng = random.Random(20261123)
    env.kinetic.sandbox.generate_invoices(80, vendor_num=1)
    full = _window(env, ["run", "invoices-out"])
    outcomes: Counter[str] = Counter()
    recovered = 0
    in_window = 0
    for trial in range(TRIALS):
        env.kinetic.sandbox.generate_invoices(80, vendor_num=1 + trial % 5)
        if trial % 2:  # anywhere in the run, timed from its first API call
            how = _kill_after(env, ["run", "invoices-out"], rng.uniform(0, full), from_first_call=True)
        else:  # just after the first upload began: the intent must already be recorded by then
            how = _kill_after(env, ["run", "invoices-out"], rng.uniform(0, 0.1),
                              from_first_transfer=env.local("outbound"))  # fmt: skip
        outcomes[how] += 1
        pending = len(env.store.ledger.files(flow="invoices-out", states=["intent"]))
        in_window += pending > 0  # killed between the intent and its commit
        result = env.run("invoices-out")  # run again to completion
        assert result.state == "succeeded", result.error
        recovered += result.counts.get("recovered", 0)
        assert pending == 0 or result.counts.get("recovered", 0) + _abandoned(env) >= pending
        _outbound_check(env)
    totals = _outbound_check(env)
    print(
        f"\noutbound crash trials: {TRIALS} (first API call to end = {full:.2f} s); {dict(outcomes)}; "
        f"killed with a pending intent: {in_window}; pending intents completed on restart: {recovered}; "
        f"files {totals['files']}, records {totals['records']}; duplicates 0, missing 0"
    )
    assert outcomes["killed"] >= TRIALS // 2, "most trials must actually kill a running process"
    assert in_window >= MIN_IN_WINDOW, f"only {in_window} kills left a pending intent: the window was missed"


def _abandoned(env: Env) -> int:
    return len(env.store.ledger.files(flow="invoices-out", states=["abandoned"]))


@pytest.mark.parametrize("step", ["outbound.after-intent", "outbound.after-upload", "outbound.after-commit"])
def test_outbound_survives_sigkill_at_each_step_boundary(sqlite_env: Env, step: str) -> None:
    env = key_auth(sqlite_env)
    env.flows(OUTBOUND)
    env.kinetic.sandbox.generate_invoices(50, vendor_num=2)
    assert _kill_after(env, ["run", "invoices-out"], 120, {FAILPOINT_ENV: step}) == "killed-itself"
    first = env.store.ledger.files(flow="invoices-out")
    assert len(first) == 1
    assert first[0].state == ("intent" if step != "outbound.after-commit" else "delivered")
    result = env.run("invoices-out")
    assert result.state == "succeeded", result.error
    if step == "outbound.after-intent":
        assert result.files[0]["how"] == "re-sent byte-identical"
    elif step == "outbound.after-upload":
        assert result.files[0]["how"] == "already on the server"
    totals = _outbound_check(env)
    print(f"\n{step}: killed there, completed on restart ({result.files[0].get('how')}); {totals}")


# --- inbound ------------------------------------------------------------------------------------


def _vendor_file(rng: random.Random, trial: int, n: int, rows: int) -> tuple[str, dict[str, str]]:
    expected: dict[str, str] = {}
    lines = ["VendorID,Name,City"]
    for i in range(rows):
        vid = f"C{rng.randrange(400):05d}" if i % 3 else f"T{trial:02d}{n}{i:03d}"[:8]
        name = f"Vendor {vid} t{trial} f{n} r{i}"
        expected[vid] = name
        lines.append(f"{vid},{name},City {i}")
    return "\r\n".join(lines) + "\r\n", expected


def _inbound_check(env: Env, expected: dict[str, str], dropped: set[str]) -> dict[str, int]:
    vendors = _sandbox_rows(env, "Vendor")
    counts = Counter(v["VendorID"] for v in vendors)
    duplicates = {k: n for k, n in counts.items() if n > 1}
    assert not duplicates, f"duplicate vendors in Kinetic: {list(duplicates)[:5]}"
    by_id = {v["VendorID"]: v for v in vendors}
    missing = [k for k in expected if k not in by_id]
    assert not missing, f"records lost: {missing[:5]}"
    wrong = [k for k, name in expected.items() if by_id[k]["Name"] != name]
    assert not wrong, f"last write did not win: {wrong[:5]}"
    files = env.store.ledger.files(flow="vendors-in")
    names = Counter(f.remote_path.rsplit("/", 1)[-1] for f in files)
    assert set(names) == dropped and all(n == 1 for n in names.values()), names
    assert {f.state for f in files} == {"done"}, Counter(f.state for f in files)
    assert env.names("inbound") == [] and set(env.names("archive")) == dropped, "each file archived once"
    for f in files:
        assert set(env.store.ledger.record_states(f.id)) == {"posted"}
    return {"files": len(files), "vendors": len(vendors)}


def test_inbound_survives_sigkill_at_random_moments(sqlite_env: Env) -> None:
    env = key_auth(sqlite_env)
    env.flows(INBOUND)
    env.kinetic.sandbox.faults.latency_ms = 3
    rng = random.Random(1123)
    expected: dict[str, str] = {}
    dropped: set[str] = set()

    def drop(trial: int) -> None:
        for n in range(2):  # files are posted in name order: later files win for repeated ids
            text, exp = _vendor_file(rng, trial, n, 20)
            name = f"vendors_{trial:02d}_{n}.csv"
            env.drop(name, text, age_s=300 - n)
            expected.update(exp)
            dropped.add(name)

    drop(99)
    full = _window(env, ["run", "vendors-in"])
    outcomes: Counter[str] = Counter()
    states_at_kill: Counter[str] = Counter()
    in_window = 0
    for trial in range(TRIALS):
        drop(trial)
        outcomes[_kill_after(env, ["run", "vendors-in"], rng.uniform(0, full), from_first_call=True)] += 1
        hit = False
        for f in env.store.ledger.files(flow="vendors-in"):
            if f.state not in ("done",):
                states_at_kill[f.state] += 1
                hit = hit or f.state == "posting"
            for state, n in env.store.ledger.record_states(f.id).items():
                if state == "sending":
                    states_at_kill["records sending"] += n
                    hit = True
        in_window += hit  # killed while a file was posting or records were in flight
        result = env.run("vendors-in")
        assert result.state == "succeeded", (result.error, result.counts)
        _inbound_check(env, expected, dropped)
    totals = _inbound_check(env, expected, dropped)
    print(
        f"\ninbound crash trials: {TRIALS} (first API call to end = {full:.2f} s); {dict(outcomes)}; "
        f"killed while posting: {in_window}; left open by kills and finished on restart: "
        f"{dict(states_at_kill)}; {totals}; duplicates 0, lost 0, every file done once"
    )
    assert outcomes["killed"] >= TRIALS // 2
    assert in_window >= MIN_IN_WINDOW, f"only {in_window} kills hit a file in posting: the window was missed"


@pytest.mark.parametrize("step", ["inbound.after-download", "inbound.after-parse", "inbound.after-sending",
                                  "inbound.after-post", "inbound.after-finish"])  # fmt: skip
def test_inbound_survives_sigkill_at_each_step_boundary(sqlite_env: Env, step: str) -> None:
    env = key_auth(sqlite_env)
    env.flows(INBOUND)
    rng = random.Random(7)
    text, expected = _vendor_file(rng, 1, 0, 30)
    env.drop("vendors_a.csv", text)
    assert _kill_after(env, ["run", "vendors-in"], 120, {FAILPOINT_ENV: step}) == "killed-itself"
    (f,) = env.store.ledger.files(flow="vendors-in")
    left = f.state
    result = env.run("vendors-in")
    assert result.state == "succeeded", (result.error, result.counts)
    totals = _inbound_check(env, expected, {"vendors_a.csv"})
    print(f"\n{step}: file left '{left}', completed on restart; {totals}")
