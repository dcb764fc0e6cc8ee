"""``run`` exits 3 on every connection, TLS or authentication failure (DESIGN.md section 5),
one kind at a time, against the real sshd and the sandbox over HTTP; other failures keep 1."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import asyncssh
import pytest

from ml_connector.secrets import Secret

from ..sftp.sshd import free_port
from .conftest import Env
from .test_poison import key_auth

OUT = """
vendors-out:
  direction: outbound
  epicor: {epicor}
  entity: vendors
  sftp: {sftp}
  folder: "{base}/outbound"
  filename: "vendors_{{run}}.csv"
  format: {{type: csv}}
"""
UNRESOLVABLE = "unresolvable.invalid"


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """The resolver's answer for a name that does not exist, without a query leaving the host."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
        if host in (UNRESOLVABLE, UNRESOLVABLE.encode()):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _other_host_key() -> str:
    return asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()


KINDS: dict[str, tuple[str, Callable[[Env], Any], str]] = {
    "sftp-auth": ("sftp", lambda e: e.target.settings(password=Secret("not-the-password")), "authentication failed"),
    "sftp-host-key": ("sftp", lambda e: e.target.settings(host_keys=(_other_host_key(),)), "HOST KEY CHANGED"),
    "sftp-refused": ("sftp", lambda e: e.target.settings(port=free_port()), "connection refused"),
    "sftp-dns": ("sftp", lambda e: e.target.settings(host=UNRESOLVABLE), "cannot resolve"),
    "kinetic-auth": ("epicor", lambda e: e.kinetic.settings(password=Secret("not-the-password")), "HTTP 401"),
    "kinetic-api-key": ("epicor", lambda e: e.kinetic.settings(api_key=Secret("not-the-key")), "authentication"),
    "kinetic-tls": (
        "epicor",
        lambda e: e.kinetic.settings(url=e.kinetic.settings().url.replace("http://", "https://")),
        "TLS:",
    ),
    "kinetic-refused": (
        "epicor",
        lambda e: e.kinetic.settings(url=f"http://127.0.0.1:{free_port()}/x"),
        "connection refused",
    ),
    "kinetic-dns": ("epicor", lambda e: e.kinetic.settings(url=f"http://{UNRESOLVABLE}/x"), "DNS"),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_run_exits_3_on_each_kind_of_connection_failure(sqlite_env: Env, no_dns: None, kind: str) -> None:
    env = key_auth(sqlite_env)
    role, settings, says = KINDS[kind]
    env.store.connections.add("broken", settings(env), env.keyring)
    env.flows(OUT.format(epicor="broken" if role == "epicor" else "kinetic",
                         sftp="broken" if role == "sftp" else "sftp", base="{base}"))  # fmt: skip
    result = env.run("vendors-out")
    assert result.state == "failed", (kind, result.state, result.error)
    assert says in (result.error or ""), (kind, result.error)
    assert result.exit_code == 3, (kind, result.error)
    assert "not-the-password" not in (result.error or "") and "not-the-key" not in (result.error or "")


def test_a_failure_after_connecting_keeps_exit_1(sqlite_env: Env) -> None:
    """Only connection failures are 3: a server that answers 503 on every call is a failed run."""
    env = key_auth(sqlite_env)
    env.flows(OUT.format(epicor="kinetic", sftp="sftp", base="{base}"))
    env.kinetic.sandbox.faults.rate_503 = 1.0
    env.kinetic.sandbox.faults.retry_after_s = 0
    try:
        result = env.run("vendors-out")
    finally:
        env.kinetic.sandbox.faults.rate_503 = 0
    assert result.state == "failed" and result.exit_code == 1, (result.error, result.counts)


def test_the_run_command_process_exits_3_on_a_tls_failure(sqlite_env: Env) -> None:
    env = key_auth(sqlite_env)
    env.store.connections.add("broken", env.kinetic.settings(url=env.kinetic.settings().url.replace("http://",
                                                                                                  "https://")),
                              env.keyring)  # fmt: skip
    env.flows(OUT.format(epicor="broken", sftp="sftp", base="{base}"))
    proc = env.spawn("run", "vendors-out")
    out = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 3, out
    assert "TLS:" in out
