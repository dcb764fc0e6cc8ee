"""An in-memory partner file system for fast unit tests of flow decisions (``PartnerFiles``).

Same contract as ``SftpClient`` where a flow can see it: names are checked like on SFTP, uploads
never overwrite unless asked, moves pick a unique name on collision, downloads land in staging
with their sha256. What it cannot show (partial writes, settling, lost connections, permissions)
is tested against the real OpenSSH server in ``tests/sftp`` and ``tests/flows``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import FatalError, NotFoundError
from ..sftp.client import Listing, LocalFile, RemoteFile, _final_of_temporary, join
from ..sftp.names import UnsafeNameError, check_remote_name, is_temporary, name_filter, staging_name, unique_name


@dataclass
class MemoryPartnerFiles:
    """Files by full path (``/in/a.csv`` -> bytes); folders exist once named."""

    files: dict[str, bytes] = field(default_factory=dict)
    folders: set[str] = field(default_factory=set)
    mtimes: dict[str, int] = field(default_factory=dict)
    closed: bool = False

    def put(self, path: str, data: bytes, mtime: int = 1_700_000_000) -> None:
        """A partner drops a file."""
        self.files[path] = data
        self.mtimes[path] = mtime
        self.folders.add(str(PurePosixPath(path).parent))

    def names(self, folder: str) -> list[str]:
        """Names directly in ``folder``, sorted."""
        folder = folder.rstrip("/") or "/"
        return sorted(PurePosixPath(p).name for p in self.files if str(PurePosixPath(p).parent) == folder)

    async def list_ready(self, folder: str, *, pattern: str = "*", pattern_type: str = "glob",
                         settle_s: float = 5.0, min_age_s: float = 0.0, max_files: int = 100) -> Listing:  # fmt: skip
        """Every matching file is ready (nothing in memory is still being written)."""
        if folder.rstrip("/") not in self.folders:
            raise NotFoundError(f"memory: no folder {folder}")
        match = name_filter(pattern, pattern_type)
        ready: list[RemoteFile] = []
        refused: list[tuple[str, str]] = []
        temporary: list[str] = []
        for name in self.names(folder):
            if is_temporary(name):
                if match(name) or match(_final_of_temporary(name)):
                    temporary.append(name)
                continue
            if not match(name):
                continue
            try:
                check_remote_name(name)
            except UnsafeNameError as exc:  # as on SFTP: reported, never handled
                refused.append((name, str(exc)))
                continue
            path = join(folder, name)
            ready.append(RemoteFile(name, path, len(self.files[path]), self.mtimes[path]))
        ready.sort(key=lambda r: (r.mtime, r.name))
        return Listing(ready[:max_files], [], refused, temporary)

    async def download(self, remote: RemoteFile | str, staging: Path, *, expected_size: int | None = None) -> LocalFile:
        """Copy into ``staging``; a size other than ``expected_size`` is an error, as on SFTP."""
        path = remote if isinstance(remote, str) else remote.path
        if path not in self.files:
            raise NotFoundError(f"memory: no file {path}")
        data = self.files[path]
        if expected_size is not None and len(data) != expected_size:
            raise FatalError(f"memory: {path} is {len(data)} bytes, the listing said {expected_size}")
        staging.mkdir(parents=True, exist_ok=True)
        local = staging / staging_name(PurePosixPath(path).name)
        local.write_bytes(data)
        return LocalFile(local, len(data), hashlib.sha256(data).hexdigest(), path)

    async def upload_atomic(
        self, local: Path, folder: str, name: str, *, on_conflict: str = "fail", sha256: str | None = None
    ) -> str:
        """Place ``local`` at ``folder/name`` (``fail``, ``overwrite`` or ``unique`` on a collision)."""
        check_remote_name(name)
        folder = folder.rstrip("/")
        target = join(folder, name)
        if target in self.files:
            if on_conflict == "fail":
                raise FatalError(f"memory: {target} exists")
            if on_conflict == "unique":
                target = join(folder, unique_name(name, lambda n: join(folder, n) in self.files))
        self.put(target, local.read_bytes())
        return target

    async def write_bytes_atomic(self, data: bytes, folder: str, name: str, staging: Path) -> str:
        """A small generated file, never overwriting (a unique name instead)."""
        check_remote_name(name)
        folder = folder.rstrip("/")
        target = join(folder, unique_name(name, lambda n: join(folder, n) in self.files))
        self.put(target, data)
        return target

    async def final_matches(self, folder: str, name: str, size: int) -> bool:
        """Whether ``folder/name`` holds ``size`` bytes."""
        data = self.files.get(join(folder.rstrip("/"), name))
        return data is not None and len(data) == size

    async def exists(self, path: str) -> bool:
        """Whether a file or folder ``path`` exists."""
        return path in self.files or path.rstrip("/") in self.folders

    async def move(self, remote_path: str, dest_folder: str) -> str:
        """Into ``dest_folder`` (created), with a unique name on a collision."""
        name = check_remote_name(PurePosixPath(remote_path).name)
        if remote_path not in self.files:
            raise NotFoundError(f"memory: no file {remote_path}")
        dest_folder = dest_folder.rstrip("/")
        self.folders.add(dest_folder)
        target = join(dest_folder, unique_name(name, lambda n: join(dest_folder, n) in self.files))
        self.put(target, self.files.pop(remote_path), self.mtimes.pop(remote_path))
        return target

    async def ensure_folder(self, folder: str) -> None:
        """Create ``folder``."""
        self.folders.add(folder.rstrip("/"))

    async def remove_temporary(self, folder: str, name: str) -> bool:
        """Remove ``.NAME.part`` from ``folder`` if present."""
        return self.files.pop(join(folder.rstrip("/"), f".{name}.part"), None) is not None

    async def close(self) -> None:
        """Nothing to release."""
        self.closed = True
