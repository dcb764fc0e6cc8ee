"""``ml-connector sandbox``: the Kinetic sandbox and the embedded SFTP server, on loopback.

Credentials are generated at start and written to files (mode 0600) in the sandbox folder; the
printed commands read them from there, so no secret is ever printed or put on a command line.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shlex
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import uvicorn
from rich.console import Console

from .kinetic import KineticSandbox, SandboxOptions
from .sftp_server import EmbeddedSftpServer, SftpUser


@dataclass
class SandboxInfo:
    kinetic_url: str
    company: str
    kinetic_user: str
    api_key_file: Path
    password_file: Path
    sftp_port: int
    sftp_user: str
    sftp_password_file: Path
    sftp_root: Path
    host_key_line: str
    fingerprint: str

    def commands(self) -> list[str]:
        return [
            shlex.join(["ml-connector", "connections", "add-epicor", "sandbox-kinetic", "--url", self.kinetic_url,
                        "--company", self.company, "--username", self.kinetic_user, "--auth", "token",
                        "--api-key-file", str(self.api_key_file), "--password-file", str(self.password_file)]),
            shlex.join(["ml-connector", "connections", "add-sftp", "sandbox-sftp", "--host", "127.0.0.1",
                        "--port", str(self.sftp_port), "--username", self.sftp_user,
                        "--password-file", str(self.sftp_password_file), "--host-key", self.host_key_line]),
        ]  # fmt: skip


def _secret_file(path: Path) -> str:
    """Read the sandbox secret at ``path``, creating it (0600) on first use."""
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


async def run_sandbox(
    folder: Path, kinetic_port: int, sftp_port: int, console: Console, vendors: int = 12, *, lenient: bool = False
) -> None:
    """Serve the Kinetic sandbox (strict unless ``lenient``) and the SFTP sandbox until cancelled."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    api_key = _secret_file(folder / "kinetic-api-key")
    password = _secret_file(folder / "kinetic-password")
    sftp_password = _secret_file(folder / "sftp-password")
    key_path = folder / "sftp_host_ed25519"
    if key_path.exists():
        host_key = asyncssh.read_private_key(str(key_path))
    else:
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        host_key.write_private_key(str(key_path))
        key_path.chmod(0o600)
    make = SandboxOptions.lenient if lenient else SandboxOptions
    sandbox = KineticSandbox(make(api_key=api_key, users={"manager": password}))
    sandbox.seed(vendors)
    sandbox.generate_payments(3, vendor_num=2)  # something for an ap-payments (820) flow to send
    sftp_root = folder / "sftp"
    for sub in ("inbound", "outbound", "archive", "error", "acks"):
        (sftp_root / sub).mkdir(parents=True, exist_ok=True)
    sftp = EmbeddedSftpServer(
        sftp_root, {"partner": SftpUser(password=sftp_password)}, port=sftp_port, host_key=host_key
    )
    await sftp.start()
    server = uvicorn.Server(
        uvicorn.Config(sandbox.app, host="127.0.0.1", port=kinetic_port, log_level="warning", lifespan="off")
    )
    info = SandboxInfo(
        kinetic_url=f"http://127.0.0.1:{kinetic_port}/{sandbox.options.instance}",
        company=sandbox.options.company,
        kinetic_user="manager",
        api_key_file=folder / "kinetic-api-key",
        password_file=folder / "kinetic-password",
        sftp_port=sftp.port,
        sftp_user="partner",
        sftp_password_file=folder / "sftp-password",
        sftp_root=sftp_root,
        host_key_line=sftp.host_key_line,
        fingerprint=sftp.fingerprint,
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            await sftp.stop()
            serving.result()
            raise RuntimeError(f"the Kinetic sandbox could not listen on port {kinetic_port}")
        await asyncio.sleep(0.02)
    console.print(f"Kinetic sandbox  {info.kinetic_url}  company {info.company}  user {info.kinetic_user}")
    console.print(f"                 API key and password in {info.api_key_file} and {info.password_file}")
    mode = "lenient (old behaviour)" if lenient else "strict (options: POST /_sandbox/options; docs/kinetic-sandbox.md)"
    console.print(f"                 rules {mode}")
    console.print(f"SFTP sandbox     127.0.0.1:{info.sftp_port}  user {info.sftp_user}  root {info.sftp_root}")
    console.print(f"                 host key {info.fingerprint}  password in {info.sftp_password_file}")
    console.print("Connect with:")
    for command in info.commands():
        console.print("  " + command, soft_wrap=True, highlight=False, markup=False)
    console.print("Ctrl-C to stop.", highlight=False)
    try:
        await serving
    finally:
        await sftp.stop()
