"""The on-call operator's night, through the real CLI (subprocesses) against the Kinetic sandbox
over HTTP and a real OpenSSH sshd: stuck intents, reasons, short ids, alerts from `run`, Ctrl-C,
SIGTERM, locks, status exit codes, verbose logs, authentication failures and ports in use."""

from __future__ import annotations

import json
import signal
import socket
import time
from datetime import timedelta
from typing import Any

import pytest

from ..flows.conftest import Env
from ..sftp.conftest import own
from .test_alerts import webhook  # noqa: F401 - fixture re-exported

VENDORS_OUT = """
vendors-out:
  direction: outbound
  epicor: kinetic
  entity: vendors
  sftp: sftp
  folder: "{base}/FOLDER"
  filename: "v_{run}.csv"
  format: {type: csv}
"""

VENDORS_IN = """
vendors-in:
  direction: inbound
  epicor: kinetic
  entity: vendors
  sftp: sftp
  folder: "{base}/inbound"
  archive_folder: "{base}/archive"
  error_folder: "{base}/error"
  settle_seconds: SETTLE
  on_bad_records: skip-records
  batch_size: 10
  concurrency: 2
  format:
    type: csv
    columns:
      - {field: VendorID, header: Vendor}
      - {field: Name}
      - {field: TermsCode, header: Terms, lookup: {NET30: N30}}
"""


@pytest.fixture
def op_env(sqlite_env: Env) -> Env:
    """SQLite home; the SFTP connection logs in with a key (tests/ops/conftest.py says why)."""
    return sqlite_env


@pytest.fixture
def both_env(env: Env) -> Env:
    """SQLite and PostgreSQL."""
    return env


def _cli(env: Env, *args: str, extra_env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = env.spawn(*args, env={"COLUMNS": "200", **(extra_env or {})})
    out = proc.communicate(timeout=120)[0].decode()
    return proc.returncode, out


def _out(env: Env, folder: str) -> None:
    env.flows(VENDORS_OUT.replace("FOLDER", folder))


def _in(env: Env, settle: float = 0) -> None:
    env.flows(VENDORS_IN.replace("SETTLE", f"{settle:g}"))


# --- 6. a pending intent to a wrong folder -------------------------------------------------------


def test_an_intent_for_a_wrong_folder_is_sent_where_the_fixed_flow_points(op_env: Env) -> None:
    env = op_env
    _out(env, "outbund")  # a typo: no such folder on the server
    code, out = _cli(env, "run", "vendors-out")
    assert code != 0, out
    (f,) = env.store.ledger.files(flow="vendors-out")
    assert f.state == "intent"
    assert f"files resend {f.id}" in out and f"files abandon {f.id}" in out, out
    code, out = _cli(env, "files", "--flow", "vendors-out")
    assert code == 0 and "intent" in out and "files resend" in out
    _out(env, "outbound")  # the fix
    code, out = _cli(env, "run", "vendors-out")
    assert code == 0, out
    done = env.store.ledger.file(f.id)
    assert done is not None and done.state == "delivered"
    assert done.remote_path.endswith("/outbound/" + f.name) and "intended for" in done.details["how"]
    assert env.names("outbound") == [f.name]
    # the watermark moved with it: nothing is sent twice
    code, out = _cli(env, "run", "vendors-out")
    assert code == 0 and env.names("outbound") == [f.name]


def test_files_resend_sends_a_pending_intent_to_a_named_folder(op_env: Env) -> None:
    env = op_env
    _out(env, "outbund")
    _cli(env, "run", "vendors-out")
    (f,) = env.store.ledger.files(flow="vendors-out")
    code, out = _cli(env, "files", "resend", str(f.id), "--folder", env.folder("outbound"))
    assert code == 0, out
    assert f"file {f.id} delivered as {env.folder('outbound')}/{f.name}" in out
    assert env.store.ledger.file(f.id).state == "delivered"  # type: ignore[union-attr]
    assert env.names("outbound") == [f.name]
    assert env.store.audit.query(kind="file.resend_requested")
    code, out = _cli(env, "files", "resend", str(f.id))
    assert code == 2 and "not a pending intent" in out and "replay" in out


def test_files_abandon_drops_an_intent_and_the_next_run_sends_its_records_once(both_env: Env) -> None:
    env = both_env
    _out(env, "outbund")
    _cli(env, "run", "vendors-out")
    (f,) = env.store.ledger.files(flow="vendors-out")
    records = f.details["records"]
    code, out = _cli(env, "files", "abandon", str(f.id))
    assert code == 0, out
    row = env.store.ledger.file(f.id)
    assert row is not None and row.state == "abandoned" and "operator" in (row.error or "")
    (event,) = env.store.audit.query(kind="file.abandoned")
    assert event.details["by"] == "operator" and event.details["checked_server"] is True
    _out(env, "outbound")
    code, out = _cli(env, "run", "vendors-out")
    assert code == 0, out
    (sent,) = env.names("outbound")
    lines = (env.local("outbound") / sent).read_text().splitlines()
    assert len(lines) == records + 1  # header + every record, once


def test_settling_an_intent_takes_down_what_a_killed_upload_left(op_env: Env) -> None:
    """Killed mid-upload: ``.NAME.part`` stays on the server until the intent is settled, then goes."""
    env = op_env
    _out(env, "outbound")
    for settle in (["files", "abandon"], ["files", "resend"], ["run", "vendors-out"]):
        env.kinetic.sandbox.generate_vendors(2)  # something new to send each time
        code, _ = _cli(env, "run", "vendors-out", extra_env={"ML_CONNECTOR_FAILPOINT": "outbound.after-intent"})
        assert code == -signal.SIGKILL
        f = next(f for f in env.store.ledger.files(flow="vendors-out") if f.state == "intent")
        before = set(env.names("outbound"))
        (env.local("outbound") / f".{f.name}.part").write_bytes(b"the first half of a fi")
        own(env.target, env.local("outbound") / f".{f.name}.part")  # as our SFTP user wrote it
        args = [*settle, str(f.id)] if settle[0] == "files" else settle
        if settle[1] == "resend":
            args += ["--folder", env.folder("elsewhere")]
            env.local("elsewhere").mkdir(exist_ok=True)
            own(env.target, env.local("elsewhere"))
        code, out = _cli(env, *args)
        assert code == 0, (settle, out)
        assert f".{f.name}.part" not in env.names("outbound"), settle
        assert not any(n.endswith(".part") for n in env.names("outbound")), (settle, env.names("outbound"))
        assert env.store.ledger.file(f.id).state in ("abandoned", "delivered"), settle  # type: ignore[union-attr]
        assert set(env.names("outbound")) - before <= {f.name}, settle
    # abandon and resend-elsewhere removed it; the run's re-send to the same folder wrote over it and renamed it
    removed = env.store.audit.query(kind="sftp.temp_removed")
    assert len(removed) == 2, [e.subject for e in removed]


def test_abandon_refuses_an_intent_that_reached_the_server(op_env: Env) -> None:
    env = op_env
    _out(env, "outbound")
    code, _ = _cli(env, "run", "vendors-out", extra_env={"ML_CONNECTOR_FAILPOINT": "outbound.after-upload"})
    assert code == -signal.SIGKILL
    (f,) = env.store.ledger.files(flow="vendors-out")
    assert f.state == "intent" and env.names("outbound") == [f.name]
    code, out = _cli(env, "files", "abandon", str(f.id))
    assert code == 2 and "on the server" in out and "twice" in out, out
    assert env.store.ledger.file(f.id).state == "intent"  # type: ignore[union-attr]
    code, out = _cli(env, "files", "resend", str(f.id))
    assert code == 0 and "already on the server" in out, out


# --- 9/10. the reason, short ids, created vs updated ---------------------------------------------


def test_files_and_the_summary_say_why_and_short_run_ids_work(op_env: Env) -> None:
    env = op_env
    _in(env)
    env.drop("terms.csv", "Vendor,Name,Terms\r\nV0001,Updated One,NET30\r\nR2,Replay Two,NET45\r\nR3,New,NET30\r\n")
    code, out = _cli(env, "run", "vendors-in")
    assert code == 1, out
    assert "line 3" in out and "NET45" in out and "lookup" in out  # the first failing line, not only a count
    assert "records created" in out and "records updated" in out
    run = env.store.ledger.runs("vendors-in", limit=1)[0]
    assert run.counts["records_created"] == 1 and run.counts["records_updated"] == 1
    assert f"audit --run {run.id[:8]}" in out
    code, listing = _cli(env, "files", "--state", "error")
    assert code == 0 and "line 3" in listing and "NET45" in listing, listing
    code, events = _cli(env, "audit", "--run", run.id[:8], "--json")
    assert code == 0, events
    kinds = {json.loads(line)["kind"] for line in events.splitlines()}
    assert {"run.start", "alert.records_failed", "run.end"} <= kinds
    code, out = _cli(env, "audit", "--run", "zzzzzzzz")
    assert code == 2 and "no run whose id starts with" in out
    code, out = _cli(env, "run", "vendors-in", "--json")
    assert code == 0, out
    env.flows(VENDORS_IN.replace("SETTLE", "0").replace("{NET30: N30}", "{NET30: N30, NET45: N45}"))
    code, out = _cli(env, "replay", "--run", run.id[:8])
    assert code == 0, out
    assert "NET45" not in _cli(env, "files", "--state", "error")[1]  # replayed: nothing left in error


# --- 8. `run` delivers alerts like `serve` --------------------------------------------------------


def test_run_delivers_alerts_throttled_in_the_database(op_env: Env, webhook: Any) -> None:  # noqa: F811
    env = op_env
    url, received = webhook
    _in(env)
    env.home.flows_file.write_text(env.flows_text + f"alerts:\n  webhook: {{url: '{url}'}}\n  throttle_minutes: 60\n")
    env.drop("a.csv", "Vendor,Name,Terms\r\nA1,Alert One,NET99\r\n")
    code, out = _cli(env, "run", "vendors-in")
    assert code == 1 and "alerts: 2 sent, 0 throttled" in out, out
    assert sorted(json.loads(b)["kind"] for _, b in received) == ["records_failed", "run_partial"]
    env.drop("b.csv", "Vendor,Name,Terms\r\nB1,Alert Two,NET99\r\n")
    code, out = _cli(env, "run", "vendors-in")
    assert code == 1 and "alerts: 0 sent, 2 throttled" in out, out
    assert len(received) == 2  # the same flow and kinds within throttle_minutes: throttled, in the database
    assert env.store.audit.query(kind="alert_delivery.throttled")


# --- 11. Ctrl-C and SIGTERM ------------------------------------------------------------------------


def _start_slow_run(env: Env, n: int = 120) -> Any:
    _in(env)
    rows = "".join(f"S{i:05d},Slow Vendor {i},NET30\r\n" for i in range(n))
    env.drop("big.csv", "Vendor,Name,Terms\r\n" + rows)
    env.kinetic.sandbox.faults.latency_ms = 25
    proc = env.spawn("run", "vendors-in")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        posting = [f for f in env.store.ledger.files(flow="vendors-in") if f.state == "posting"]
        if posting and env.store.ledger.record_states(posting[0].id).get("posted", 0) >= 10:
            return proc
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the run did not start posting")


@pytest.mark.parametrize(
    ("sig", "code", "state"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "stopped")]
)
def test_ctrl_c_and_sigterm_end_the_run_recorded(op_env: Env, sig: int, code: int, state: str) -> None:
    env = op_env
    proc = _start_slow_run(env)
    proc.send_signal(sig)
    out = proc.communicate(timeout=60)[0].decode()
    env.kinetic.sandbox.faults.latency_ms = 0
    assert proc.returncode == code, out
    assert "Traceback" not in out
    run = env.store.ledger.runs("vendors-in", limit=1)[0]
    assert run.state == state and run.finished_at is not None and run.error
    if sig == signal.SIGINT:
        assert f"run {run.id[:8]} recorded as interrupted" in out
    else:
        assert "finishing the current step" in out
        (f,) = env.store.ledger.files(flow="vendors-in")
        assert "sending" not in env.store.ledger.record_states(f.id)  # it stopped between batches
    assert not env.store.locks.holder("vendors-in")
    code2, out2 = _cli(env, "run", "vendors-in")
    assert code2 == 0, out2  # the next run resumes and finishes


# --- 12. what a run waits for, and -v -----------------------------------------------------------


def test_settle_wait_is_shown_and_verbose_adds_log_lines_anywhere_on_the_line(op_env: Env) -> None:
    env = op_env
    _in(env, settle=0.5)
    code, out = _cli(env, "run", "vendors-in", "-vv")
    assert code == 0, out
    assert "new files must hold still 0.5 s" in out
    assert "INFO ml_connector.run: run.start" in out and "INFO ml_connector.run: run.end" in out
    code, quiet = _cli(env, "run", "vendors-in")
    assert code == 0 and "INFO" not in quiet
    code, out = _cli(env, "-v", "flows", "validate")
    assert code == 0 and "INFO ml_connector.cli: flows: home" in out


# --- 13. a locked flow ------------------------------------------------------------------------------


def test_a_locked_flow_is_one_line_and_exit_4(op_env: Env) -> None:
    env = op_env
    _in(env)
    assert env.store.locks.acquire("vendors-in", "otherhost:4242:abcd1234", timedelta(minutes=5))
    code, out = _cli(env, "run", "vendors-in")
    assert code == 4, out
    assert out.strip().splitlines() == [
        "locked: flow vendors-in is running in another process (otherhost:4242:abcd1234); nothing was done"
    ]


# --- 14. status for monitors ------------------------------------------------------------------------


def test_status_exit_code_and_times_in_the_flows_zone(op_env: Env) -> None:
    env = op_env
    env.flows(
        VENDORS_IN.replace("SETTLE", "0").replace(
            "  batch_size: 10", '  schedule: "0 7 * * *"\n  timezone: America/Chicago\n  batch_size: 10'
        )
    )
    env.drop("ok.csv", "Vendor,Name,Terms\r\nT1,Status One,NET30\r\n")
    assert env.run("vendors-in").state == "succeeded"
    code, out = _cli(env, "status", "--no-remote")
    assert code == 0, out
    assert "07:00 America/Chicago" in out  # the next run, in the flow's zone, named
    env.drop("bad.csv", "Vendor,Name,Terms\r\nT2,Status Two,NET99\r\n")
    env.run("vendors-in")
    code, out = _cli(env, "status", "--no-remote")
    assert code == 1 and "attention" in out, out


# --- 15. authentication failures name the connection --------------------------------------------


def test_kinetic_authentication_failure_names_the_connection(op_env: Env) -> None:
    env = op_env
    from dataclasses import replace

    from ml_connector.secrets import Secret

    settings = replace(env.kinetic.settings(), password=Secret("wrong-password-x"))
    env.store.connections.remove("kinetic")
    env.store.connections.add("kinetic", settings, env.keyring)
    _in(env)
    env.drop("a.csv", "Vendor,Name,Terms\r\nAU1,Auth,NET30\r\n")
    code, out = _cli(env, "run", "vendors-in")
    assert code == 3, out
    assert "Epicor connection 'kinetic'" in out and "authentication failed" in out
    assert "wrong-password-x" not in out


def test_password_env_error_shows_the_variable_name(cli: Any) -> None:
    assert cli("init").exit_code == 0
    r = cli("connections", "add-epicor", "k", "--url", "https://h/i", "--company", "C", "--username", "u",
            "--api-key-env", "MLC_TEST_UNSET_KEY", "--password-env", "MLC_TEST_UNSET_PW")  # fmt: skip
    assert r.exit_code == 2
    assert "environment variable MLC_TEST_UNSET_KEY (--api-key-env) is not set or is empty" in r.stderr


# --- 16. ports in use --------------------------------------------------------------------------------


@pytest.fixture
def busy_port() -> Any:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock.getsockname()[1]
    sock.close()


def test_sandbox_on_a_port_in_use_is_one_clear_line(op_env: Env, busy_port: int) -> None:
    code, out = _cli(op_env, "sandbox", "--kinetic-port", str(busy_port), "--sftp-port", "0")
    assert code == 2, out
    assert out.strip() == (f"error: Kinetic sandbox: port {busy_port} on 127.0.0.1 is already in use; "
                           "choose another with --kinetic-port")  # fmt: skip
    code, out = _cli(op_env, "sandbox", "--kinetic-port", "0", "--sftp-port", str(busy_port))
    assert code == 2 and "--sftp-port" in out and "Traceback" not in out
    assert not (op_env.home.path / "sandbox").exists()  # nothing was started or created


def test_serve_on_a_port_in_use_stops_before_any_flow_runs(op_env: Env, busy_port: int) -> None:
    env = op_env
    _in(env)
    code, out = _cli(env, "serve", "--metrics-port", str(busy_port), "--stop-after", "5")
    assert code == 2, out
    assert f"port {busy_port} on 127.0.0.1 is already in use; choose another with --metrics-port" in out
    assert "Traceback" not in out and "serving" not in out
    assert env.store.ledger.runs("vendors-in") == []
