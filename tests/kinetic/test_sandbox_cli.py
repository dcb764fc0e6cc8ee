"""`ml-connector sandbox` starts, prints how to connect, and `connections test` works against it."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..sftp.sshd import free_port

EXE = str(Path(sys.executable).with_name("ml-connector"))


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], env=env, capture_output=True, text=True, timeout=60)


def connection_commands(lines: list[str]) -> list[list[str]]:
    """The ``ml-connector connections add-…`` commands the sandbox printed, as arguments."""
    return [shlex.split(line.strip())[1:] for line in lines if line.strip().startswith("ml-connector connections")]


def init_with_connections(env: dict[str, str], lines: list[str], *epicor_options: str) -> None:
    """``init`` and the sandbox's printed connection commands (``epicor_options`` added to add-epicor)."""
    assert run(["init"], env).returncode == 0
    for command in connection_commands(lines):
        if "add-epicor" in command:
            command = [*command, *epicor_options]
        done = run(command, env)
        assert done.returncode == 0, done.stderr


@pytest.fixture
def running_sandbox(tmp_path: Path) -> Iterator[tuple[dict[str, str], list[str]]]:
    env = {**os.environ, "ML_CONNECTOR_HOME": str(tmp_path / "home"), "COLUMNS": "400"}
    env.pop("ML_CONNECTOR_MASTER_KEY", None)
    env.pop("ML_CONNECTOR_DATABASE_URL", None)
    proc = subprocess.Popen(
        [EXE, "sandbox", "--kinetic-port", str(free_port()), "--sftp-port", str(free_port())],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    deadline = time.monotonic() + 30
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Ctrl-C to stop"):
            break
    assert lines and lines[-1].startswith("Ctrl-C"), "\n".join(lines)
    yield env, lines
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=20)[0]
    assert "sandbox stopped" in rest


def test_sandbox_prints_commands_that_work(running_sandbox: tuple[dict[str, str], list[str]]) -> None:
    env, lines = running_sandbox
    text = "\n".join(lines)
    commands = connection_commands(lines)
    assert len(commands) == 2 and "SHA256:" in text
    home = Path(env["ML_CONNECTOR_HOME"])
    for secret_file in ("kinetic-api-key", "kinetic-password", "sftp-password"):
        path = home / "sandbox" / secret_file
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.read_text().strip() not in text  # files named, secrets never printed
    init_with_connections(env, lines)
    kinetic = run(["connections", "test", "sandbox-kinetic"], env)
    assert kinetic.returncode == 0, kinetic.stderr
    assert "authenticated to company EPIC06" in kinetic.stdout and "token expires in" in kinetic.stdout
    sftp = run(["connections", "test", "sandbox-sftp", "--folder", "/inbound"], env)
    assert sftp.returncode == 0, sftp.stderr
    assert "matches the pin" in sftp.stdout and "/inbound" in sftp.stdout


def test_connections_test_names_kinetic_failures(
    running_sandbox: tuple[dict[str, str], list[str]], tmp_path: Path
) -> None:
    env, lines = running_sandbox
    (tmp_path / "wrong-key").write_text("not-the-key\n")
    epicor = next(shlex.split(line.strip())[1:] for line in lines if "add-epicor" in line)
    assert run(["init"], env).returncode == 0
    wrong = [*epicor[:2], "bad-key", *epicor[3:]]
    wrong[wrong.index("--api-key-file") + 1] = str(tmp_path / "wrong-key")
    assert run(wrong, env).returncode == 0
    done = run(["connections", "test", "bad-key"], env)
    assert done.returncode == 3 and "authentication failed" in done.stderr and "API key" in done.stderr
    assert "not-the-key" not in done.stderr
    dns = [*epicor[:2], "bad-dns", *epicor[3:]]
    dns[dns.index("--url") + 1] = "https://kinetic.invalid/EpicorSandbox"
    assert run(dns, env).returncode == 0
    done = run(["connections", "test", "bad-dns"], env)
    assert done.returncode == 3 and "DNS: cannot resolve the host name" in done.stderr
    tls = [*epicor[:2], "bad-tls", *epicor[3:]]
    tls[tls.index("--url") + 1] = epicor[epicor.index("--url") + 1].replace(
        "http://", "https://"
    )  # TLS to a plain port
    assert run(tls, env).returncode == 0
    done = run(["connections", "test", "bad-tls"], env)
    assert done.returncode == 3 and "TLS:" in done.stderr
    company = [*epicor[:2], "bad-company", *epicor[3:]]
    company[company.index("--company") + 1] = "NOPE"
    assert run(company, env).returncode == 0
    done = run(["connections", "test", "bad-company"], env)
    assert done.returncode == 3 and "unknown company" in done.stderr
