"""The SFTP client on asyncssh: pinned host keys, atomic upload, stable listing, verified download.

One connection is reused across a run and re-established on transient failures (connection
lost, timeouts), with exponential backoff and jitter. Authentication and host-key failures are
never retried. Every transfer and move is reported to the audit hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import stat as stat_mod
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import asyncssh

from ..connections import SftpSettings
from ..errors import (
    ConnectError,
    FatalError,
    HostKeyError,
    NotFoundError,
    RecordError,
    TransientError,
    UnreachableError,
)
from ..retry import RetryPolicy
from .names import (
    TEMP_SUFFIXES,
    TempNaming,
    UnsafeNameError,
    check_remote_name,
    is_temporary,
    name_filter,
    staging_name,
)

T = TypeVar("T")
CANCEL_CLEANUP_S = 5.0  # how long a cancelled upload may spend removing its temporary
Audit = Callable[..., None]
Sleep = Callable[[float], Awaitable[None]]

# AES-GCM first: on CPUs with AES instructions it was ~1.5x chacha20 on loopback (reference/sftp.md §6).
PREFERRED_CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
)
_LOST = (
    asyncssh.ConnectionLost,
    asyncssh.SFTPConnectionLost,
    ConnectionResetError,
    BrokenPipeError,
    asyncio.TimeoutError,
    TimeoutError,
    asyncssh.ChannelOpenError,
)


@dataclass(frozen=True)
class SftpOptions:
    """Timeouts, retries and transfer tuning, with explicit defaults."""

    connect_timeout_s: float = 15.0
    login_timeout_s: float = 30.0
    keepalive_interval_s: float = 30.0
    retries: int = 4
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    max_requests: int = 128
    block_size: int = -1  # -1: the server's limits@openssh.com (255 KiB on OpenSSH), else 16 KiB
    temp: TempNaming = field(default_factory=TempNaming)


@dataclass(frozen=True)
class RemoteFile:
    name: str
    path: str
    size: int
    mtime: int


@dataclass(frozen=True)
class LocalFile:
    """A downloaded file in staging, verified against the remote size."""

    path: Path
    size: int
    sha256: str
    remote_path: str


@dataclass
class Listing:
    ready: list[RemoteFile]
    waiting: list[RemoteFile]  # still changing, or too young
    refused: list[tuple[str, str]]  # (name, reason): unsafe names, not regular files
    temporary: list[str] = field(default_factory=list)  # names of the flow's files still being written


def _final_of_temporary(name: str) -> str:
    """The name a temporary one will likely get (``.a.csv.part`` -> ``a.csv``), to match patterns."""
    stem = name.lstrip(".")
    for suffix in TEMP_SUFFIXES:
        if stem.lower().endswith(suffix):
            return stem[: -len(suffix)]
    return stem


class _PinningClient(asyncssh.SSHClient):
    """Accepts only the pinned host keys; remembers what the server presented."""

    def __init__(self, pins: set[str]) -> None:
        self.pins = pins
        self.seen: str | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.seen = key.get_fingerprint("sha256")
        return self.seen in self.pins


def sha256_file(path: Path) -> str:
    """Hex sha256 of a local file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def join(folder: str, name: str) -> str:
    return str(PurePosixPath(folder) / name)


class SftpClient:
    """An SFTP session to one partner. Use as ``async with SftpClient(settings) as sftp:``."""

    def __init__(
        self,
        settings: SftpSettings,
        *,
        options: SftpOptions | None = None,
        audit: Audit | None = None,
        sleep: Sleep = asyncio.sleep,
        name: str = "sftp",
    ) -> None:
        self.settings = settings
        self.options = options or SftpOptions()
        self._audit = audit
        self._sleep = sleep
        self.name = name
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self.host_fingerprint: str | None = None
        self.posix_rename_supported: bool | None = None

    # --- connection -----------------------------------------------------------------------------

    async def __aenter__(self) -> SftpClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _record(self, kind: str, **kw: Any) -> None:
        if self._audit is not None:
            self._audit(kind, **kw)

    async def connect(self) -> asyncssh.SFTPClient:
        """Connect and authenticate; classify every failure precisely (never retried here)."""
        if self._sftp is not None:
            return self._sftp
        s = self.settings
        pins = set(s.pinned_fingerprints())
        client = _PinningClient(pins)
        keys = []
        if s.private_key:
            try:
                keys.append(
                    asyncssh.import_private_key(s.private_key.reveal(), s.passphrase.reveal() if s.passphrase else None)
                )
            except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError):
                raise ConnectError(
                    f"{self.name}: the stored private key cannot be loaded (wrong passphrase?)"
                ) from None
        where = f"{s.host}:{s.port}"
        started = time.monotonic()
        try:
            conn = await asyncio.wait_for(
                asyncssh.connect(
                    s.host,
                    s.port,
                    username=s.username,
                    password=s.password.reveal() if s.password else None,
                    client_keys=keys or None,
                    known_hosts=([], [], []),  # trust nothing by default; the client checks the pins
                    client_factory=lambda: client,
                    login_timeout=self.options.login_timeout_s,
                    keepalive_interval=self.options.keepalive_interval_s,
                    encryption_algs=list(PREFERRED_CIPHERS),
                    preferred_auth=["publickey", "password", "keyboard-interactive"]
                    if keys
                    else ["password", "keyboard-interactive"],
                    agent_path=None,
                    config=[],
                ),
                timeout=self.options.connect_timeout_s,
            )
        except asyncssh.HostKeyNotVerifiable:
            self.host_fingerprint = client.seen
            if not pins:
                msg = f"{self.name}: {where} presented host key {client.seen}, and no host key is pinned"
                raise HostKeyError(
                    msg + "; confirm it with the partner, then pin it",
                    seen_fingerprint=client.seen or "",
                    changed=False,
                ) from None
            self._record("sftp.host_key_changed", subject=where, outcome="error",
                         details={"seen": client.seen, "pinned": sorted(pins)})  # fmt: skip
            raise HostKeyError(
                f"{self.name}: HOST KEY CHANGED for {where}: it presented {client.seen}, pinned "
                f"{', '.join(sorted(pins))}; refusing to connect (possible interception, or the partner "
                "rotated its key: confirm out of band before re-pinning)",
                seen_fingerprint=client.seen or "",
                changed=True,
            ) from None
        except asyncssh.PermissionDenied:
            raise ConnectError(
                f"{self.name}: authentication failed for user on {where} (key or password refused)"
            ) from None
        except socket.gaierror:
            raise ConnectError(f"{self.name}: cannot resolve host name {s.host!r} (DNS)") from None
        except ConnectionRefusedError:
            raise ConnectError(f"{self.name}: connection refused by {where} (nothing listening?)") from None
        except TimeoutError:
            raise UnreachableError(f"{self.name}: connecting to {where} timed out") from None
        except (OSError, asyncssh.Error) as exc:
            raise UnreachableError(f"{self.name}: cannot connect to {where}: {type(exc).__name__}: {exc}") from None
        self.host_fingerprint = client.seen
        self._conn = conn
        try:
            self._sftp = await conn.start_sftp_client()
        except (asyncssh.Error, OSError) as exc:
            conn.close()
            self._conn = None
            raise ConnectError(f"{self.name}: {where} has no SFTP subsystem ({exc})") from None
        self._record("sftp.connected", subject=where, duration_ms=(time.monotonic() - started) * 1000,
                     details={"host_key": client.seen})  # fmt: skip
        return self._sftp

    async def close(self) -> None:
        sftp, conn = self._sftp, self._conn
        self._sftp = self._conn = None
        if sftp is not None:
            sftp.exit()
        if conn is not None:
            conn.close()
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError, OSError, asyncssh.Error):
                await asyncio.wait_for(conn.wait_closed(), timeout=5)

    async def _retrying(self, what: str, op: Callable[[asyncssh.SFTPClient], Awaitable[T]]) -> T:
        """Run ``op`` with reconnect + backoff on transient failures; others surface at once."""
        o = self.options
        retrying = RetryPolicy(o.retries + 1, o.backoff_s, o.backoff_max_s).retrying(self._sleep)
        async for attempt in retrying:
            with attempt:
                try:
                    sftp = await self.connect()
                    return await op(sftp)
                except _LOST as exc:
                    await self.close()
                    self._record("sftp.retry", subject=what, outcome="warning", details={"error": type(exc).__name__})
                    raise TransientError(f"{self.name}: {what}: connection lost ({type(exc).__name__})") from exc
                except asyncssh.SFTPNoSuchFile as exc:
                    raise NotFoundError(f"{self.name}: {what}: no such file or folder ({exc.reason})") from None
                except asyncssh.SFTPPermissionDenied as exc:
                    raise FatalError(f"{self.name}: {what}: permission denied ({exc.reason})") from None
        raise AssertionError("unreachable")  # pragma: no cover

    # --- listing --------------------------------------------------------------------------------

    async def _snapshot(
        self, folder: str, match: Callable[[str], bool]
    ) -> tuple[dict[str, RemoteFile], list[tuple[str, str]], list[str]]:
        async def op(sftp: asyncssh.SFTPClient) -> tuple[dict[str, RemoteFile], list[tuple[str, str]], list[str]]:
            files: dict[str, RemoteFile] = {}
            refused: list[tuple[str, str]] = []
            temporary: list[str] = []
            async for entry in sftp.scandir(folder):
                raw = entry.filename
                name = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                if name in (".", ".."):
                    continue
                if is_temporary(name):
                    if match(name) or match(_final_of_temporary(name)):
                        temporary.append(name)  # skipped, but reported: a stuck upload needs a look
                    continue
                try:
                    check_remote_name(name)
                except UnsafeNameError as exc:
                    if match(name):  # another flow's pattern may own it; its runs report it
                        refused.append((name, str(exc)))
                    continue
                attrs = entry.attrs
                kind = attrs.type
                if kind not in (asyncssh.FILEXFER_TYPE_REGULAR, asyncssh.FILEXFER_TYPE_UNKNOWN) or (
                    attrs.permissions is not None and not stat_mod.S_ISREG(attrs.permissions)
                ):
                    if kind != asyncssh.FILEXFER_TYPE_DIRECTORY and match(name):
                        refused.append((name, f"{name!r} is not a regular file"))
                    continue
                if not match(name):
                    continue
                files[name] = RemoteFile(name, join(folder, name), attrs.size or 0, int(attrs.mtime or 0))
            return files, refused, temporary

        return await self._retrying(f"list {folder}", op)

    async def list_ready(
        self,
        folder: str,
        *,
        pattern: str = "*",
        pattern_type: str = "glob",
        settle_s: float = 5.0,
        min_age_s: float = 0.0,
        max_files: int = 100,
        now: Callable[[], float] = time.time,
    ) -> Listing:
        """Files that stopped changing: same size and mtime across ``settle_s``, or older than
        ``min_age_s`` (server mtime against our clock: only as good as both clocks).

        Sorted by mtime then name, at most ``max_files``.
        """
        match = name_filter(pattern, pattern_type)
        first, refused, temporary = await self._snapshot(folder, match)
        old = {n: f for n, f in first.items() if min_age_s > 0 and now() - f.mtime >= min_age_s}
        pending = {n: f for n, f in first.items() if n not in old}
        ready = list(old.values())
        waiting: list[RemoteFile] = []
        if pending:
            if settle_s > 0:
                await self._sleep(settle_s)
                second, _, _ = await self._snapshot(folder, match)
            else:
                second = first
            for n, f in pending.items():
                again = second.get(n)
                if again is not None and (again.size, again.mtime) == (f.size, f.mtime):
                    ready.append(again)
                else:
                    waiting.append(again or f)
        ready.sort(key=lambda f: (f.mtime, f.name))
        return Listing(ready[:max_files], waiting + ready[max_files:], refused, temporary)

    # --- download -------------------------------------------------------------------------------

    async def download(self, remote: RemoteFile | str, staging: Path, *, expected_size: int | None = None) -> LocalFile:
        """Fetch into staging under a generated name; verified size, sha256. Nothing partial stays."""
        remote_path = remote.path if isinstance(remote, RemoteFile) else remote
        check_remote_name(PurePosixPath(remote_path).name)
        staging.mkdir(parents=True, exist_ok=True)
        final = staging / staging_name(PurePosixPath(remote_path).name)
        part = final.with_name(final.name + ".partial")
        started = time.monotonic()

        async def op(sftp: asyncssh.SFTPClient) -> int:
            attrs = await sftp.stat(remote_path)
            try:
                await sftp.get(remote_path, str(part), block_size=self.options.block_size,
                               max_requests=self.options.max_requests)  # fmt: skip
            except BaseException:
                part.unlink(missing_ok=True)
                raise
            got = part.stat().st_size
            want = expected_size if expected_size is not None else attrs.size
            if want is not None and got != want:
                part.unlink(missing_ok=True)
                raise TransientError(f"{self.name}: download of {remote_path} got {got} bytes, expected {want}")
            return got

        try:
            size = await self._retrying(f"download {remote_path}", op)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        with part.open("rb") as fh:
            os.fsync(fh.fileno())
        digest = sha256_file(part)
        os.replace(part, final)
        self._record("sftp.download", subject=remote_path, duration_ms=(time.monotonic() - started) * 1000,
                     details={"direction": "in", "size": size, "sha256": digest, "local": final.name})  # fmt: skip
        return LocalFile(final, size, digest, remote_path)

    # --- upload ---------------------------------------------------------------------------------

    async def upload_atomic(
        self, local: Path, folder: str, name: str, *, on_conflict: str = "fail", sha256: str | None = None
    ) -> str:
        """Upload to a temporary name, verify its size, then rename to ``name``.

        ``on_conflict`` when ``name`` exists: ``fail``, ``overwrite`` or ``unique`` (``name.1.ext``…).
        ``sha256`` (for the audit trail) is computed in a thread alongside the upload when the
        caller does not already know it. Returns the final remote path.
        """
        check_remote_name(name)
        digest = asyncio.ensure_future(asyncio.to_thread(sha256_file, local)) if sha256 is None else None
        size = local.stat().st_size
        temp = join(folder, self.options.temp.temp_for(name))
        started = time.monotonic()

        renaming: list[str] = []  # the final name a previous attempt was renaming to

        async def op(sftp: asyncssh.SFTPClient) -> str:
            final = join(folder, name)
            if renaming and not await sftp.exists(temp):
                # The connection dropped during the rename: if it landed, the upload is done.
                landed = renaming[-1]
                try:
                    if (await sftp.stat(landed)).size == size:
                        return landed
                except asyncssh.SFTPNoSuchFile:
                    pass
            try:
                await sftp.put(
                    str(local), temp, block_size=self.options.block_size, max_requests=self.options.max_requests
                )
            except asyncio.CancelledError:
                # Ctrl-C or a stop mid-upload: take the half-written temporary down (briefly; the
                # intent stays pending, and its re-send would overwrite it anyway).
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(_quiet_remove(sftp, temp)), CANCEL_CLEANUP_S)
                raise
            remote_size = (await sftp.stat(temp)).size
            if remote_size != size:
                await _quiet_remove(sftp, temp)
                raise TransientError(f"{self.name}: uploaded {remote_size} of {size} bytes to {temp}")
            if await sftp.exists(final):
                if on_conflict == "fail":
                    await _quiet_remove(sftp, temp)
                    raise RecordError(f"{self.name}: {final} already exists (on_conflict: fail)")
                if on_conflict == "unique":
                    names = set(await sftp.listdir(folder))
                    final = join(folder, _unique(name, names))
            renaming.append(final)
            await self._rename_into_place(sftp, temp, final, overwrite=on_conflict == "overwrite")
            return final

        try:
            final_path = await self._retrying(f"upload {join(folder, name)}", op)
        finally:
            if digest is not None:
                sha256 = await digest
        self._record("sftp.upload", subject=final_path, duration_ms=(time.monotonic() - started) * 1000,
                     details={"direction": "out", "size": size, "sha256": sha256})  # fmt: skip
        return final_path

    async def _rename_into_place(self, sftp: asyncssh.SFTPClient, temp: str, final: str, *, overwrite: bool) -> None:
        if self.posix_rename_supported is not False:
            try:
                if overwrite or not await sftp.exists(final):
                    await sftp.posix_rename(temp, final)
                    self.posix_rename_supported = True
                    return
            except asyncssh.SFTPOpUnsupported:
                self.posix_rename_supported = False
        # Plain SFTP rename refuses an existing target; overwriting means remove then rename
        # (a short window where the name is absent, never one where it is partial).
        if overwrite and await sftp.exists(final):
            await sftp.remove(final)
        await sftp.rename(temp, final)

    async def final_matches(self, folder: str, name: str, size: int) -> bool:
        """Whether ``folder/name`` exists with ``size`` bytes (completing a crashed upload)."""

        async def op(sftp: asyncssh.SFTPClient) -> bool:
            try:
                return (await sftp.stat(join(folder, name))).size == size
            except asyncssh.SFTPNoSuchFile:
                return False

        return await self._retrying(f"stat {join(folder, name)}", op)

    async def exists(self, path: str) -> bool:
        async def op(sftp: asyncssh.SFTPClient) -> bool:
            return bool(await sftp.exists(path))

        return await self._retrying(f"stat {path}", op)

    async def remove_temporary(self, folder: str, name: str) -> bool:
        """Remove the upload temporary of ``name`` (``.NAME.part``) left in ``folder``, if any.

        Only that one name: another flow sharing the folder may be uploading its own file.
        """
        temp = join(folder, self.options.temp.temp_for(check_remote_name(name)))

        async def op(sftp: asyncssh.SFTPClient) -> bool:
            try:
                await sftp.remove(temp)
            except asyncssh.SFTPNoSuchFile:
                return False
            return True

        try:
            removed = await self._retrying(f"remove {temp}", op)
        except NotFoundError:
            return False
        if removed:
            self._record("sftp.temp_removed", subject=temp, outcome="warning")
        return removed

    async def cleanup_temporaries(self, folder: str) -> list[str]:
        """Remove our leftover upload temporaries (``.NAME.part``) from a crashed run."""

        async def op(sftp: asyncssh.SFTPClient) -> list[str]:
            removed = []
            for entry in await sftp.listdir(folder):
                if self.options.temp.is_ours(entry):
                    await _quiet_remove(sftp, join(folder, entry))
                    removed.append(entry)
            return removed

        removed = await self._retrying(f"clean {folder}", op)
        for entry in removed:
            self._record("sftp.temp_removed", subject=join(folder, entry), outcome="warning")
        return removed

    # --- moves ----------------------------------------------------------------------------------

    async def move(self, remote_path: str, dest_folder: str) -> str:
        """Move into ``dest_folder`` (created if missing); a name collision gets a unique suffix."""
        name = check_remote_name(PurePosixPath(remote_path).name)
        started = time.monotonic()

        async def op(sftp: asyncssh.SFTPClient) -> str:
            if not await sftp.isdir(dest_folder):
                try:
                    await sftp.makedirs(dest_folder, exist_ok=True)
                except asyncssh.SFTPFailure as exc:
                    raise FatalError(f"{self.name}: cannot create {dest_folder}: {exc.reason}") from None
            if not await sftp.exists(remote_path):
                moved = [
                    n
                    for n in await sftp.listdir(dest_folder)
                    if n == name or n.startswith(name.rpartition(".")[0] + ".")
                ]
                if moved:  # a retry after the rename landed: the source is already gone
                    return join(dest_folder, moved[-1])
            names = set(await sftp.listdir(dest_folder))
            target = join(dest_folder, _unique(name, names))
            await sftp.rename(remote_path, target)  # plain rename never overwrites
            return target

        target = await self._retrying(f"move {remote_path}", op)
        self._record("sftp.move", subject=remote_path, duration_ms=(time.monotonic() - started) * 1000,
                     details={"to": target})  # fmt: skip
        return target

    async def write_bytes_atomic(self, data: bytes, folder: str, name: str, staging: Path) -> str:
        """Write a small generated file (a 997, an error sidecar) atomically, never overwriting."""
        staging.mkdir(parents=True, exist_ok=True)
        local = staging / staging_name(name)
        local.write_bytes(data)
        try:
            return await self.upload_atomic(local, folder, name, on_conflict="unique")
        finally:
            local.unlink(missing_ok=True)

    async def ensure_folder(self, folder: str) -> None:
        async def op(sftp: asyncssh.SFTPClient) -> None:
            await sftp.makedirs(folder, exist_ok=True)

        await self._retrying(f"mkdir {folder}", op)

    async def probe_folder(self, folder: str) -> dict[str, Any]:
        """For ``connections test``: exists, listable, writable (by a dot-file we remove)."""
        out: dict[str, Any] = {"folder": folder, "exists": False, "listable": False, "writable": False, "error": None}
        sftp = await self.connect()
        try:
            if not await sftp.isdir(folder):
                out["error"] = "missing folder"
                return out
            out["exists"] = True
            out["entries"] = len(await sftp.listdir(folder))
            out["listable"] = True
            probe = join(folder, f".ml-connector-probe-{os.getpid()}")
            async with sftp.open(probe, "wb") as fh:
                await fh.write(b"probe")
            await sftp.remove(probe)
            out["writable"] = True
        except asyncssh.SFTPPermissionDenied as exc:
            out["error"] = f"permission denied ({exc.reason})"
        except asyncssh.SFTPError as exc:
            out["error"] = f"{type(exc).__name__}: {exc.reason}"
        return out


def _unique(name: str, names: set[str]) -> str:
    from .names import unique_name

    return unique_name(name, lambda candidate: candidate in names)


async def _quiet_remove(sftp: asyncssh.SFTPClient, path: str) -> None:
    with contextlib.suppress(asyncssh.SFTPError, OSError):
        await sftp.remove(path)
