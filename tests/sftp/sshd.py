"""Start a real OpenSSH sshd on a free loopback port (tests and bench/sftp.py share this)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import asyncssh

TEST_USER = "mlcsftp"


class SshdUnavailable(Exception):
    """sshd cannot be started here (not installed, not root, failed to start)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sshd:
    port: int
    user: str
    password: str
    client_key: asyncssh.SSHKey
    client_key_file: Path
    host_key_line: str
    home: Path
    conf_dir: Path
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.conf_dir, ignore_errors=True)


PASSWORD_FILE = Path("/root/.mlc-sshd-password")


def _shared_password() -> str:
    """The test user's password, the same for every test session on this machine (root-only file).

    Several pytest sessions may run at once (a CI clone beside a developer's checkout); a fresh
    password per session made each one break the others' password logins.
    """
    try:
        fd = os.open(PASSWORD_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another session may be writing it this instant
            text = PASSWORD_FILE.read_text().strip()
            if text:
                return text
            time.sleep(0.1)
        raise SshdUnavailable(f"{PASSWORD_FILE} is empty") from None
    password = secrets.token_urlsafe(18)
    with os.fdopen(fd, "w") as f:
        f.write(password)
    return password


def start_sshd() -> Sshd:
    """Debian's sshd with a test user (password + key), internal-sftp, on 127.0.0.1."""
    binary = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(binary).exists():
        raise SshdUnavailable("sshd not installed (apt-get install openssh-server; scripts/test does it)")
    if os.geteuid() != 0:
        raise SshdUnavailable("starting sshd with a test user needs root")
    if subprocess.run(["id", "-u", TEST_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", TEST_USER], check=True)
    password = _shared_password()
    subprocess.run(["chpasswd"], input=f"{TEST_USER}:{password}\n".encode(), check=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    # sshd reads authorized_keys as the user: keep it in a folder anyone can traverse.
    conf_dir = Path(f"/tmp/mlc-sshd-{uuid.uuid4().hex[:8]}")
    conf_dir.mkdir(mode=0o755)
    host_key = conf_dir / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = conf_dir / "client_ed25519"
    client_key.write_private_key(str(key_file))
    key_file.chmod(0o600)
    (conf_dir / "authorized_keys").write_bytes(client_key.export_public_key())
    (conf_dir / "authorized_keys").chmod(0o644)
    port = free_port()
    config = conf_dir / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {conf_dir}/sshd.pid\n"
        f"AuthorizedKeysFile {conf_dir}/authorized_keys\nPasswordAuthentication yes\n"
        "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nUsePAM yes\nStrictModes no\n"
        f"Subsystem sftp internal-sftp\nForceCommand internal-sftp\nAllowUsers {TEST_USER}\n"
        "LogLevel ERROR\nMaxStartups 100:30:200\nMaxSessions 50\n"
    )
    log = (conf_dir / "sshd.log").open("wb")
    proc = subprocess.Popen([binary, "-D", "-e", "-f", str(config)], stderr=log)
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-"):
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            raise SshdUnavailable(f"sshd did not start: {(conf_dir / 'sshd.log').read_text(errors='replace')[-500:]}")
        time.sleep(0.1)
    host_line = (conf_dir / "ssh_host_ed25519_key.pub").read_text().strip()
    return Sshd(
        port, TEST_USER, password, client_key, key_file, host_line, Path(f"/home/{TEST_USER}"), conf_dir, proc, log
    )
