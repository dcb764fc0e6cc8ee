"""State enums, the result's exit code, and flow health as the ledger counts it."""

from __future__ import annotations

from ml_connector.flows.context import RunResult
from ml_connector.states import OPEN_FILES, FileState, RecordState, RunState
from ml_connector.store import Store
from ml_connector.store.health import flow_health


def test_enums_equal_the_stored_text() -> None:
    assert FileState.DONE == "done" and RecordState.UNKNOWN == "unknown" and RunState.DRY_RUN == "dry-run"
    assert set(OPEN_FILES) == {"seen", "downloaded", "parsed", "posting", "intent"}


def test_exit_code_is_a_field_of_the_result_not_a_count() -> None:
    failed = RunResult("f", "inbound", "r1", RunState.FAILED, error_exit_code=3)
    assert failed.exit_code == 3 and "exit_code" not in failed.counts
    assert RunResult("f", "inbound", "r1", RunState.PARTIAL).exit_code == 1
    assert RunResult("f", "inbound", "r1", RunState.LOCKED).exit_code == 4
    assert RunResult("f", "inbound", "r1", RunState.STOPPED, error_exit_code=3).exit_code == 0


def test_health_counts_failed_records_error_and_open_files(store: Store) -> None:
    ledger = store.ledger
    run_id = ledger.start_run("vendors-in", "inbound", "test")
    ledger.finish_run(run_id, RunState.SUCCEEDED, {})
    last = ledger.runs("vendors-in", limit=1)[0]
    assert flow_health(store, "vendors-in", None).word(None) == "never run"
    assert flow_health(store, "vendors-in", last).word(last) == "ok"
    bad, _ = ledger.see(flow="vendors-in", run_id=run_id, remote_path="/in/a.csv", size=1, mtime=1)
    ledger.add_records(bad.id, "0" * 64, [(0, "line 2", "V1", RecordState.FAILED, "no")])
    ledger.update_file(bad.id, state=FileState.ERROR)
    ledger.see(flow="vendors-in", run_id=run_id, remote_path="/in/b.csv", size=1, mtime=1)  # stays seen: open
    ledger.see(flow="other", run_id=run_id, remote_path="/in/c.csv", size=1, mtime=1)  # another flow's
    health = flow_health(store, "vendors-in", last)
    assert (health.records_failed, health.files_error, health.files_open) == (1, 1, 1)
    assert health.word(last) == "attention"
