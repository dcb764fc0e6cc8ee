"""The ports between a flow and the outside: Epicor, the partner's file system, the clock.

A flow run talks to Kinetic through ``KineticPort`` and to the partner's SFTP folders through
``PartnerFiles``; ``KineticClient`` and ``SftpClient`` are the production adapters (tested against
the sandbox over real HTTP and a real OpenSSH server), ``flows.memfs.MemoryPartnerFiles`` and the
fakes in ``tests/unit`` the fast ones. The clock is the run context's ``clock``: flows never call
``datetime.now`` themselves, so a test fixes the date a 997 or a file name carries.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from ..kinetic.port import KineticPort
from ..sftp.client import Listing, LocalFile, RemoteFile

Clock = Callable[[], datetime]

__all__ = ["Clock", "KineticPort", "PartnerFiles", "utc_clock"]


def utc_clock() -> datetime:
    """The production clock: now, timezone-aware in UTC."""
    return datetime.now(UTC)


class PartnerFiles(Protocol):
    """What a flow needs from the partner's file system (``SftpClient`` fits)."""

    async def list_ready(self, folder: str, *, pattern: str = "*", pattern_type: str = "glob",
                         settle_s: float = 5.0, min_age_s: float = 0.0, max_files: int = 100) -> Listing:  # fmt: skip
        """Files that stopped changing, oldest first, at most ``max_files``."""
        ...

    async def download(self, remote: RemoteFile | str, staging: Path, *, expected_size: int | None = None) -> LocalFile:
        """Copy into ``staging``, verified against the remote size."""
        ...

    async def upload_atomic(
        self, local: Path, folder: str, name: str, *, on_conflict: str = "fail", sha256: str | None = None
    ) -> str:
        """Upload under a temporary name, then rename into place; returns the final path."""
        ...

    async def write_bytes_atomic(self, data: bytes, folder: str, name: str, staging: Path) -> str:
        """Write a small generated file (an acknowledgment, an error note) atomically."""
        ...

    async def final_matches(self, folder: str, name: str, size: int) -> bool:
        """Whether ``folder/name`` exists with ``size`` bytes."""
        ...

    async def exists(self, path: str) -> bool:
        """Whether ``path`` exists."""
        ...

    async def move(self, remote_path: str, dest_folder: str) -> str:
        """Move into ``dest_folder``; a name collision gets a unique suffix."""
        ...

    async def ensure_folder(self, folder: str) -> None:
        """Create ``folder`` if missing."""
        ...

    async def remove_temporary(self, folder: str, name: str) -> bool:
        """Remove the upload temporary of ``name`` left in ``folder`` (a killed upload's), if any."""
        ...

    async def close(self) -> None:
        """Release the connection."""
        ...
