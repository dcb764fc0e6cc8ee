"""SFTP fixtures: a real OpenSSH sshd on a loopback port, the embedded server, a fault proxy.

Both servers run outside the test's event loop (sshd as a process, the embedded server and the
proxy on a background thread's loop), so tests drive the client with plain ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from ml_connector.connections import SftpSettings
from ml_connector.sandbox.loop import LoopThread
from ml_connector.sandbox.sftp_server import EmbeddedSftpServer, SftpUser
from ml_connector.secrets import Secret

from .sshd import TEST_USER, Sshd, SshdUnavailable, start_sshd

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.stop()


@dataclass
class Target:
    """One SFTP server under test: how to log in, and where its files are on this disk."""

    kind: str
    host: str
    port: int
    username: str
    password: str
    client_key: asyncssh.SSHKey
    host_key_line: str
    remote_base: str  # a per-test folder, as the client names it
    local_base: Path  # the same folder on this machine's disk

    def settings(self, *, use_key: bool = False, **overrides: Any) -> SftpSettings:
        base: dict[str, Any] = dict(
            host=self.host,
            port=self.port,
            username=self.username,
            password=None if use_key else Secret(self.password),
            private_key=Secret(self.client_key.export_private_key().decode()) if use_key else None,
            host_keys=(self.host_key_line,),
        )
        base.update(overrides)
        return SftpSettings(**base)

    def remote(self, *parts: str) -> str:
        return "/".join([self.remote_base.rstrip("/"), *parts])

    def local(self, *parts: str) -> Path:
        return self.local_base.joinpath(*parts)


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"the OpenSSH server is required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sshd() -> Iterator[Sshd]:
    """A real OpenSSH sshd (Debian's openssh-server) on a free loopback port."""
    try:
        server = start_sshd()
    except SshdUnavailable as exc:
        _unavailable(str(exc))
        raise
    yield server
    server.stop()


@pytest.fixture(scope="session")
def embedded(loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedSftpServer]:
    root = tmp_path_factory.mktemp("embedded-sftp")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    users = {"partner": SftpUser(password="embedded-pw-1", public_keys=[client_key.export_public_key().decode()])}
    server = EmbeddedSftpServer(root, users)
    loop_thread.run(server.start())
    server.client_key = client_key  # type: ignore[attr-defined]
    yield server
    loop_thread.run(server.stop())


@pytest.fixture(params=["openssh", "embedded"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """A fresh folder on each kind of server."""
    folder = f"t-{uuid.uuid4().hex[:10]}"
    if request.param == "openssh":
        sshd: Sshd = request.getfixturevalue("sshd")
        local = sshd.home / folder
        local.mkdir()
        shutil.chown(local, TEST_USER, TEST_USER)
        yield Target("openssh", "127.0.0.1", sshd.port, TEST_USER, sshd.password, sshd.client_key,
                     sshd.host_key_line, str(local), local)  # fmt: skip
        shutil.rmtree(local, ignore_errors=True)
    else:
        server: EmbeddedSftpServer = request.getfixturevalue("embedded")
        local = server.root / folder
        local.mkdir()
        yield Target("embedded", "127.0.0.1", server.port, "partner", "embedded-pw-1",
                     server.client_key, server.host_key_line, f"/{folder}", local)  # type: ignore[attr-defined]  # fmt: skip
        shutil.rmtree(local, ignore_errors=True)


def own(target: Target, path: Path) -> None:
    """Files the test creates on disk must belong to the SFTP user on the OpenSSH server."""
    if target.kind == "openssh":
        for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
            shutil.chown(p, TEST_USER, TEST_USER)


class FaultProxy:
    """A TCP relay that can cut a connection after N bytes in either direction (RST)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.cut_up_after: int | None = None  # client -> server bytes
        self.cut_down_after: int | None = None  # server -> client bytes
        self.cuts_left = 0
        self.connections = 0
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    def arm(self, *, up: int | None = None, down: int | None = None) -> None:
        self.cut_up_after, self.cut_down_after, self.cuts_left = up, down, 1

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        cut = self.cuts_left > 0
        if cut:
            self.cuts_left -= 1
        up_limit = self.cut_up_after if cut else None
        down_limit = self.cut_down_after if cut else None
        try:
            t_reader, t_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return

        def abort() -> None:
            for w in (writer, t_writer):
                w.transport.abort()

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, limit: int | None) -> None:
            sent = 0
            try:
                while data := await src.read(65536):
                    if limit is not None and sent + len(data) >= limit:
                        dst.write(data[: max(0, limit - sent)])
                        abort()
                        return
                    sent += len(data)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort() if dst.transport else None

        await asyncio.gather(pipe(reader, t_writer, up_limit), pipe(t_reader, writer, down_limit))


@pytest.fixture
def proxy_for(loop_thread: LoopThread) -> Iterator[Callable[[Target], FaultProxy]]:
    made: list[FaultProxy] = []

    def make(target: Target) -> FaultProxy:
        p = FaultProxy(target.port)
        loop_thread.run(p.start())
        made.append(p)
        return p

    yield make
    for p in made:
        loop_thread.run(p.stop())


async def no_sleep(_seconds: float) -> None:
    """Injected into the client: backoff and settle waits take no wall time in tests."""
