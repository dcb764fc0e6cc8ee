"""An end-to-end world for flow runs: the Kinetic sandbox over HTTP, a real SFTP server (OpenSSH
sshd, or the embedded one), a home with encrypted connections, and a store (SQLite or PostgreSQL).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ml_connector.config import parse_flows
from ml_connector.flows import RunContext, RunResult, run_flow
from ml_connector.home import Home
from ml_connector.kinetic.client import KineticOptions
from ml_connector.secrets import Keyring
from ml_connector.sftp.client import SftpOptions
from ml_connector.store import Store

from ..kinetic.conftest import Running, sandbox  # noqa: F401 - fixture re-exported
from ..sftp.conftest import Target, embedded, loop_thread, own, sshd  # noqa: F401 - fixtures re-exported
from ..sftp.sshd import TEST_USER

FOLDERS = ("inbound", "outbound", "archive", "error", "acks")
FAST_KINETIC = KineticOptions(attempts=8, backoff_s=0.01, backoff_max_s=0.1)
FAST_SFTP = SftpOptions(retries=6, backoff_s=0.01, backoff_max_s=0.1)


@dataclass
class Env:
    home: Home
    store: Store
    keyring: Keyring
    kinetic: Running
    target: Target
    flows_text: str = ""
    runs: list[RunResult] = field(default_factory=list)

    # --- remote folders ---------------------------------------------------------------------------

    def folder(self, name: str) -> str:
        return self.target.remote(name)

    def local(self, name: str) -> Path:
        return self.target.local(name)

    def drop(self, name: str, data: bytes | str, folder: str = "inbound", *, age_s: int = 60) -> Path:
        """A partner's file, complete and old enough to be listed at once."""
        path = self.local(folder) / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        own(self.target, path)
        past = path.stat().st_mtime - age_s
        os.utime(path, (past, past))
        return path

    def names(self, folder: str) -> list[str]:
        return sorted(p.name for p in self.local(folder).iterdir())

    # --- flows ------------------------------------------------------------------------------------

    def flows(self, text: str) -> dict[str, Any]:
        body = textwrap.dedent(text).replace("{base}", self.target.remote_base.rstrip("/"))
        self.flows_text = "flows:\n" + textwrap.indent(body, "  ")
        self.home.flows_file.write_text(self.flows_text)
        return dict(parse_flows(self.flows_text).flows)

    def context(self, **kw: Any) -> RunContext:
        kw.setdefault("kinetic_options", FAST_KINETIC)
        kw.setdefault("sftp_options", FAST_SFTP)
        return RunContext(store=self.store, keyring=self.keyring, staging=self.home.staging,
                          lock_ttl=timedelta(seconds=60), **kw)  # fmt: skip

    def run(self, name: str, *, dry_run: bool = False, **kw: Any) -> RunResult:
        flow = parse_flows(self.flows_text).flows[name]
        result = asyncio.run(run_flow(self.context(**kw), name, flow, dry_run=dry_run))
        self.runs.append(result)
        return result

    def cli_argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "ml_connector", "--home", str(self.home.path),
                "--database-url", self.home.database_url, *args]  # fmt: skip

    def spawn(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.cli_argv(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})  # fmt: skip

    def kinetic_rows(self, entity_set: str, service: str, flt: str | None = None) -> list[dict[str, Any]]:
        from ml_connector.kinetic import KineticClient
        from ml_connector.kinetic.entities import ENTITIES

        # A child set (APTrans, CashDtls) is read through its parent, expanded: Kinetic applies a
        # child set's $filter to the parent type. ``flt`` then names parent columns.
        parent = next((e for e in ENTITIES.values() if e.service == service
                       and any(c.name == entity_set for c in e.children)), None)  # fmt: skip

        async def go() -> list[dict[str, Any]]:
            async with KineticClient(self.kinetic.settings(), options=FAST_KINETIC) as k:
                rows: list[dict[str, Any]] = []
                source = parent.entity_set if parent else entity_set
                async for page in k.extract(service, source, cursor="SysRevID", after=None, extra_filter=flt,
                                            tiebreak=None, page_size=1000,
                                            expand=[entity_set] if parent else None):  # fmt: skip
                    rows.extend(child for r in page for child in r[entity_set]) if parent else rows.extend(page)
                return rows

        saved = (self.kinetic.sandbox.faults.lose_response_rate, self.kinetic.sandbox.faults.drop_rate,
                 self.kinetic.sandbox.faults.latency_ms)  # fmt: skip
        self.kinetic.sandbox.faults.lose_response_rate = 0
        self.kinetic.sandbox.faults.drop_rate = 0
        try:
            return asyncio.run(go())
        finally:
            f = self.kinetic.sandbox.faults
            f.lose_response_rate, f.drop_rate, f.latency_ms = saved


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_env(tmp_path: Path, db_url: str, kinetic: Running, target: Target) -> Env:
    home = Home.resolve(tmp_path / "home", database_url=db_url)
    home.init(environ={})
    store = Store.open(db_url)
    keyring = home.keyring(environ={})
    store.connections.add("kinetic", kinetic.settings(), keyring)
    # Key login: each sshd has its own authorized_keys, while parallel sessions reset the shared password.
    store.connections.add("sftp", target.settings(use_key=True), keyring)
    for name in FOLDERS:
        path = target.local(name)
        path.mkdir(exist_ok=True)
        if target.kind == "openssh":
            shutil.chown(path, TEST_USER, TEST_USER)
    return Env(home, store, keyring, kinetic, target)


@pytest.fixture
def env(tmp_path: Path, db_url: str, sandbox: Running, request: pytest.FixtureRequest) -> Iterator[Env]:  # noqa: F811
    """Sandbox + OpenSSH sshd + store (SQLite and PostgreSQL)."""
    target = _target(request, "openssh")
    e = make_env(tmp_path, db_url, sandbox, target)
    yield e
    e.store.close()
    shutil.rmtree(target.local_base, ignore_errors=True)


@pytest.fixture
def sqlite_env(tmp_path: Path, sandbox: Running, request: pytest.FixtureRequest) -> Iterator[Env]:  # noqa: F811
    """Sandbox + OpenSSH sshd + SQLite in the home (what a single-machine install uses)."""
    target = _target(request, "openssh")
    e = make_env(tmp_path, f"sqlite:///{tmp_path / 'home' / 'ml-connector.db'}", sandbox, target)
    yield e
    e.store.close()
    shutil.rmtree(target.local_base, ignore_errors=True)


@pytest.fixture
def embedded_env(tmp_path: Path, sandbox: Running, request: pytest.FixtureRequest) -> Iterator[Env]:  # noqa: F811
    target = _target(request, "embedded")
    e = make_env(tmp_path, f"sqlite:///{tmp_path / 'home' / 'ml-connector.db'}", sandbox, target)
    yield e
    e.store.close()
    shutil.rmtree(target.local_base, ignore_errors=True)


def _target(request: pytest.FixtureRequest, kind: str) -> Target:
    import uuid

    folder = f"f-{uuid.uuid4().hex[:10]}"
    if kind == "openssh":
        server = request.getfixturevalue("sshd")
        local = server.home / folder
        local.mkdir()
        shutil.chown(local, TEST_USER, TEST_USER)
        return Target("openssh", "127.0.0.1", server.port, TEST_USER, server.password, server.client_key,
                      server.host_key_line, str(local), local)  # fmt: skip
    server = request.getfixturevalue("embedded")
    local = server.root / folder
    local.mkdir()
    return Target("embedded", "127.0.0.1", server.port, "partner", "embedded-pw-1", server.client_key,
                  server.host_key_line, f"/{folder}", local)  # fmt: skip
