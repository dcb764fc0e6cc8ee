"""Under CI=true the required checks fail instead of skipping (issue 18): a checkout without the
X12 corpus fails, and UPDATE_GOLDEN=1 refuses to run at all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pytest(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})  # fmt: skip


def test_missing_corpus_fails_every_corpus_test_in_ci(tmp_path: Path) -> None:
    done = _pytest("tests/formats/test_x12_corpus.py", CI="true", ML_CONNECTOR_X12_CORPUS=str(tmp_path / "none"))
    assert done.returncode == 1, done.stdout[-2000:]
    assert "the X12 corpus is required in CI" in done.stdout
    assert " skipped" not in done.stdout.splitlines()[-1], done.stdout.splitlines()[-1]
    assert "passed" not in done.stdout.splitlines()[-1]


def test_missing_corpus_skips_outside_ci(tmp_path: Path) -> None:
    done = _pytest("tests/formats/test_x12_corpus.py", CI="", ML_CONNECTOR_X12_CORPUS=str(tmp_path / "none"))
    assert done.returncode == 0, done.stdout[-2000:]
    assert "skipped" in done.stdout.splitlines()[-1] and "failed" not in done.stdout.splitlines()[-1]


def test_update_golden_refuses_to_run_in_ci() -> None:
    done = _pytest("tests/formats/test_writers.py", CI="true", UPDATE_GOLDEN="1")
    assert done.returncode != 0
    assert "UPDATE_GOLDEN=1 refuses to run with CI=true" in done.stdout + done.stderr
