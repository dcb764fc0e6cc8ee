"""An embedded SFTP server (asyncssh) on a loopback port, rooted in a folder.

Used by ``ml-connector sandbox``, the demo and the tests. Users log in with a password or a
public key; each sees the same root folder as ``/``.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh


@dataclass
class SftpUser:
    password: str | None = None
    public_keys: list[str] = field(default_factory=list)  # OpenSSH public key lines


class _Server(asyncssh.SSHServer):
    def __init__(self, users: dict[str, SftpUser]) -> None:
        self._users = users

    def begin_auth(self, username: str) -> bool:
        return True  # always require auth, even for unknown users (no user enumeration)

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        user = self._users.get(username)
        return bool(user and user.password is not None and hmac.compare_digest(user.password, password))

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        user = self._users.get(username)
        if not user:
            return False
        wanted = {asyncssh.import_public_key(k).get_fingerprint("sha256") for k in user.public_keys}
        return key.get_fingerprint("sha256") in wanted


class EmbeddedSftpServer:
    """``async with EmbeddedSftpServer(root, users) as server: server.port, server.host_key_line``."""

    def __init__(
        self,
        root: Path,
        users: dict[str, SftpUser],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        host_key: asyncssh.SSHKey | None = None,
    ) -> None:
        self.root = root
        self.users = users
        self.host = host
        self.port = port
        self.host_key = host_key or asyncssh.generate_private_key("ssh-ed25519")
        self._acceptor: asyncssh.SSHAcceptor | None = None

    @property
    def host_key_line(self) -> str:
        return self.host_key.export_public_key().decode().strip()

    @property
    def fingerprint(self) -> str:
        return str(self.host_key.get_fingerprint("sha256"))

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        root = str(self.root).encode()
        self._acceptor = await asyncssh.listen(
            self.host,
            self.port,
            server_host_keys=[self.host_key],
            server_factory=lambda: _Server(self.users),
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=root),
            allow_scp=False,
        )
        self.port = self._acceptor.get_port()

    async def stop(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None

    async def __aenter__(self) -> EmbeddedSftpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve_forever(server: EmbeddedSftpServer) -> None:
    """Run until cancelled (``ml-connector sandbox``)."""
    await server.start()
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
