"""State enums, the result's exit code, and flow health as the ledger counts it."""

from __future__ import annotations

from datetime import UTC, datetime

from ml_connector.flows.context import RunResult
from ml_connector.states import OPEN_FILES, FileState, RecordState, RunState
from ml_connector.store.health import FlowHealth
from ml_connector.store.rows import RunRow


def test_enums_equal_the_stored_text() -> None:
    assert FileState.DONE == "done" and RecordState.UNKNOWN == "unknown" and RunState.DRY_RUN == "dry-run"
    assert set(OPEN_FILES) == {"seen", "downloaded", "parsed", "posting", "intent"}


def test_exit_code_is_a_field_of_the_result_not_a_count() -> None:
    failed = RunResult("f", "inbound", "r1", RunState.FAILED, error_exit_code=3)
    assert failed.exit_code == 3 and "exit_code" not in failed.counts
    assert RunResult("f", "inbound", "r1", RunState.PARTIAL).exit_code == 1
    assert RunResult("f", "inbound", "r1", RunState.LOCKED).exit_code == 4
    assert RunResult("f", "inbound", "r1", RunState.STOPPED, error_exit_code=3).exit_code == 0


def _last(state: str) -> RunRow:
    at = datetime(2026, 12, 3, tzinfo=UTC)
    return RunRow("r1", "f", "inbound", "cli", state, at, at, {}, None)


def test_health_word_from_the_last_run_and_the_counts() -> None:
    """The ledger side is in tests/test_health.py; the word rules are these, for status and console alike."""
    clean = FlowHealth()
    assert clean.word(None) == "never run"
    assert clean.word(_last(RunState.SUCCEEDED)) == "ok" and clean.word(_last(RunState.STOPPED)) == "ok"
    assert clean.word(_last(RunState.RUNNING)) == "running"
    assert clean.word(_last(RunState.FAILED)) == "failing" and clean.word(_last(RunState.CRASHED)) == "failing"
    assert clean.word(_last(RunState.PARTIAL)) == "attention" and clean.word(_last(RunState.INTERRUPTED)) == "attention"
    for trouble in ("records_failed", "files_error", "files_open", "files_refused", "acks_overdue"):
        assert FlowHealth(**{trouble: 1}).word(_last(RunState.SUCCEEDED)) == "attention", trouble
