"""Operations tests reuse the flows world: sandbox over HTTP, OpenSSH sshd, a home with connections.

Here the SFTP connection logs in with the test key, not the password: every test session that
starts the sshd fixture resets the test user's password (chpasswd), so on a machine where several
sessions run at once password logins fail at random. Key logins do not depend on it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..flows.conftest import Env, _target, embedded, loop_thread, make_env, sandbox, sshd  # noqa: F401 - fixtures
from ..kinetic.conftest import Running


def _keyed_env(tmp_path: Path, db_url: str, kinetic: Running, request: pytest.FixtureRequest) -> Env:
    target = _target(request, "openssh")
    e = make_env(tmp_path, db_url, kinetic, target)
    e.store.connections.remove("sftp")
    e.store.connections.add("sftp", target.settings(use_key=True), e.keyring)
    return e


@pytest.fixture
def env(tmp_path: Path, db_url: str, sandbox: Running, request: pytest.FixtureRequest) -> Iterator[Env]:  # noqa: F811
    """Sandbox + OpenSSH sshd (key login) + store (SQLite and PostgreSQL)."""
    e = _keyed_env(tmp_path, db_url, sandbox, request)
    yield e
    e.store.close()
    shutil.rmtree(e.target.local_base, ignore_errors=True)


@pytest.fixture
def sqlite_env(tmp_path: Path, sandbox: Running, request: pytest.FixtureRequest) -> Iterator[Env]:  # noqa: F811
    """Sandbox + OpenSSH sshd (key login) + SQLite in the home."""
    e = _keyed_env(tmp_path, f"sqlite:///{tmp_path}/home/ml-connector.db", sandbox, request)
    yield e
    e.store.close()
    shutil.rmtree(e.target.local_base, ignore_errors=True)
