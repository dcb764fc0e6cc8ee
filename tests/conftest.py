"""Shared fixtures: databases (SQLite and the real PostgreSQL), keyrings, an in-process CLI."""

from __future__ import annotations

import io
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from ml_connector.secrets import Keyring, generate_key
from ml_connector.store import Store

PG_ADMIN_URL = os.environ.get("ML_CONNECTOR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# In CI the property tests replay a fixed sequence of examples, so a landing is never decided by
# a new random draw; locally they explore afresh each run (and report the seed of any failure).
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if IN_CI:
    hypothesis_settings.load_profile("ci")


X12_CORPUS = Path(
    os.environ.get("ML_CONNECTOR_X12_CORPUS")
    or Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "x12"
)


def pytest_configure(config: pytest.Config) -> None:
    # UPDATE_GOLDEN=1 rewrites the golden files and then compares output with what it just wrote:
    # in CI that would turn every golden test into a tautology.
    if IN_CI and os.environ.get("UPDATE_GOLDEN") == "1":
        raise pytest.UsageError("UPDATE_GOLDEN=1 refuses to run with CI=true: golden files are updated locally")


@pytest.fixture(scope="session")
def x12_corpus() -> Path:
    """The public X12 samples in ../shared/corpus/x12: required in CI, like PostgreSQL and sshd."""
    if X12_CORPUS.is_dir() and any(X12_CORPUS.glob("*.edi")):
        return X12_CORPUS
    if IN_CI:
        pytest.fail(f"the X12 corpus is required in CI: nothing at {X12_CORPUS}")
    pytest.skip(f"X12 corpus not found at {X12_CORPUS} (it lives in ../shared beside the checkout); required in CI")


def _pg_available() -> str | None:
    engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        return None
    except OperationalError as exc:
        return str(exc.orig).splitlines()[0]
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def pg_ready() -> None:
    problem = _pg_available()
    if problem is None:
        return
    if IN_CI:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required in CI: {problem}")
    pytest.skip(f"PostgreSQL not reachable ({problem}); runs in CI")


@pytest.fixture
def pg_url(pg_ready: None) -> Iterator[str]:
    """A fresh schema in the `test` database, selected through search_path."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_ADMIN_URL else "?"
    yield f"{PG_ADMIN_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.open(db_url)
    yield s
    s.close()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring((generate_key(),), source="test")


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> object:
    """Run ``ml-connector`` in-process against a home in tmp_path."""
    from ml_connector.cli import main

    home = tmp_path / "home"
    monkeypatch.setenv("ML_CONNECTOR_HOME", str(home))
    monkeypatch.delenv("ML_CONNECTOR_MASTER_KEY", raising=False)
    monkeypatch.delenv("ML_CONNECTOR_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str, stdin: str = "") -> CliResult:
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = 0
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    run.home = home  # type: ignore[attr-defined]
    return run
