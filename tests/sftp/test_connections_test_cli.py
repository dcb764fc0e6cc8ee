"""`ml-connector connections test NAME` names each failure precisely."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncssh
import pytest

from .conftest import Target
from .sshd import free_port


def _add(cli: Any, target: Target, monkeypatch: pytest.MonkeyPatch, *, password: str | None = None,
         host_key: str | None = None, port: int | None = None) -> None:  # fmt: skip
    assert cli("init").exit_code == 0
    monkeypatch.setenv("SFTP_PW", password or target.password)
    r = cli(
        "connections", "add-sftp", "partner", "--host", target.host, "--port", str(port or target.port),
        "--username", target.username, "--password-env", "SFTP_PW", "--host-key", host_key or target.host_key_line,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    home: Path = cli.home
    (home / "flows.yaml").write_text(
        "flows:\n  in:\n    direction: inbound\n    epicor: k\n    sftp: partner\n    entity: vendors\n"
        f"    folder: {target.remote_base}\n    archive_folder: {target.remote('archive')}\n"
        "    format: {type: csv}\n"
    )


def test_success_lists_folders_and_permissions(cli: Any, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    _add(cli, target, monkeypatch)
    target.local("archive").mkdir()
    if target.kind == "openssh":
        import shutil

        shutil.chown(target.local("archive"), "mlcsftp", "mlcsftp")
    r = cli("connections", "test", "partner")
    fp = asyncssh.import_public_key(target.host_key_line).get_fingerprint("sha256")
    assert r.exit_code == 0, r.output
    assert f"host key {fp} matches the pin" in r.stdout
    assert target.remote_base in r.stdout and "yes" in r.stdout
    assert list(target.local_base.iterdir()) == [target.local("archive")]  # the write probe cleaned up


def test_missing_folder_is_named(cli: Any, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    _add(cli, target, monkeypatch)
    r = cli("connections", "test", "partner")
    assert r.exit_code == 3 and "missing folder" in r.stdout and target.remote("archive") in r.stdout


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("host_key", "HOST KEY CHANGED"),
        ("password", "authentication failed"),
        ("port", "connection refused"),
    ],
)
def test_failures_are_named(
    cli: Any, target: Target, monkeypatch: pytest.MonkeyPatch, case: str, expected: str
) -> None:
    kw: dict[str, Any] = {}
    if case == "host_key":
        kw["host_key"] = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    elif case == "password":
        kw["password"] = "wrong-password-123"
    else:
        kw["port"] = free_port()
    _add(cli, target, monkeypatch, **kw)
    r = cli("connections", "test", "partner")
    assert r.exit_code == 3, r.output
    assert expected in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "wrong-password-123" not in r.output
    events = cli("audit", "--json", "--kind", "connection.tested").stdout
    assert '"outcome": "error"' in events
