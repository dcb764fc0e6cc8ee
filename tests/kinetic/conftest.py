"""The Kinetic sandbox served over real HTTP (uvicorn on a loopback port) for client tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from ml_connector.connections import EpicorSettings
from ml_connector.sandbox.kinetic import Faults, KineticSandbox, SandboxOptions
from ml_connector.secrets import Secret

from ..sftp.sshd import free_port


@dataclass
class Running:
    sandbox: KineticSandbox
    url: str

    def settings(self, **overrides: Any) -> EpicorSettings:
        o = self.sandbox.options
        base: dict[str, Any] = dict(
            url=f"{self.url}/{o.instance}",
            company=o.company,
            username="manager",
            api_key=Secret(o.api_key),
            password=Secret(o.users["manager"]),
            auth="basic",
            timeout_s=10.0,
        )
        base.update(overrides)
        return EpicorSettings(**base)


def serve(options: SandboxOptions) -> Iterator[Running]:
    """Start a seeded sandbox with ``options`` on a loopback port; stop it afterwards."""
    sb = KineticSandbox(options, Faults(seed=7))
    sb.seed()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(sb.app, host="127.0.0.1", port=port, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("sandbox did not start")
        time.sleep(0.01)
    yield Running(sb, f"http://127.0.0.1:{port}")
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def sandbox() -> Iterator[Running]:
    """The sandbox as it starts by default (strict): the client must fit a real Kinetic."""
    yield from serve(SandboxOptions(api_key="sandbox-key-Q7", users={"manager": "mgr-pass-Z4"}))


async def no_sleep(_s: float) -> None:
    """Injected into the client: backoff takes no wall time in tests."""
