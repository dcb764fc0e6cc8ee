"""The in-memory partner file system keeps the SFTP adapter's contract where a flow sees it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ml_connector.errors import FatalError, NotFoundError
from ml_connector.flows.memfs import MemoryPartnerFiles
from ml_connector.flows.ports import PartnerFiles


def test_listing_refuses_unsafe_names_and_skips_temporaries() -> None:
    fs = MemoryPartnerFiles()
    fs.put("/in/b.csv", b"2", mtime=2)
    fs.put("/in/a.csv", b"1", mtime=3)
    fs.put("/in/.a.csv.part", b"")
    fs.put("/in/-rf.csv", b"")
    listing = asyncio.run(fs.list_ready("/in", pattern="*.csv"))
    assert [r.name for r in listing.ready] == ["b.csv", "a.csv"]  # oldest first
    assert [n for n, _ in listing.refused] == ["-rf.csv"]
    assert listing.temporary == [".a.csv.part"]
    with pytest.raises(NotFoundError):
        asyncio.run(fs.list_ready("/nowhere"))


def test_upload_conflicts_and_moves_never_overwrite(tmp_path: Path) -> None:
    fs: PartnerFiles = MemoryPartnerFiles()
    local = tmp_path / "x.csv"
    local.write_bytes(b"new")
    assert asyncio.run(fs.upload_atomic(local, "/out", "x.csv")) == "/out/x.csv"
    with pytest.raises(FatalError):
        asyncio.run(fs.upload_atomic(local, "/out", "x.csv"))
    assert asyncio.run(fs.upload_atomic(local, "/out", "x.csv", on_conflict="unique")) == "/out/x.1.csv"
    assert asyncio.run(fs.move("/out/x.csv", "/archive")) == "/archive/x.csv"
    asyncio.run(fs.upload_atomic(local, "/out", "x.csv"))
    assert asyncio.run(fs.move("/out/x.csv", "/archive")) == "/archive/x.1.csv"
    assert asyncio.run(fs.final_matches("/archive", "x.1.csv", 3)) is True


def test_download_checks_the_listed_size(tmp_path: Path) -> None:
    fs = MemoryPartnerFiles()
    fs.put("/in/a.csv", b"abc")
    got = asyncio.run(fs.download("/in/a.csv", tmp_path, expected_size=3))
    assert got.path.read_bytes() == b"abc" and got.size == 3
    with pytest.raises(FatalError, match="listing said 4"):
        asyncio.run(fs.download("/in/a.csv", tmp_path, expected_size=4))
