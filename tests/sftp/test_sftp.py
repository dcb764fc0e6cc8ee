"""The SFTP adapter against a real OpenSSH sshd and against the embedded server."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from ml_connector.errors import ConnectError, FatalError, HostKeyError, NotFoundError, RecordError
from ml_connector.sftp import SftpClient, SftpOptions
from ml_connector.sftp.names import UnsafeNameError, check_remote_name

from .conftest import FaultProxy, Target, no_sleep, own


def client(target: Target, audit: list[tuple[str, dict[str, Any]]] | None = None, **kw: Any) -> SftpClient:
    def record(kind: str, **details: Any) -> None:
        if audit is not None:
            audit.append((kind, details))

    opts = kw.pop("options", SftpOptions(retries=6, backoff_s=0.01))
    return SftpClient(kw.pop("settings", target.settings()), options=opts, audit=record, sleep=no_sleep, **kw)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_upload_list_download_round_trip(target: Target, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    src = tmp_path / "out.csv"
    src.write_bytes(data)
    audit: list[tuple[str, dict[str, Any]]] = []

    async def body() -> None:
        async with client(target, audit) as c:
            final = await c.upload_atomic(src, target.remote_base, "vendors.csv")
            assert final == target.remote("vendors.csv")
            listing = await c.list_ready(target.remote_base, pattern="*.csv", settle_s=0)
            assert [f.name for f in listing.ready] == ["vendors.csv"]
            got = await c.download(listing.ready[0], tmp_path / "staging")
            assert got.sha256 == sha(data) and got.size == len(data)
            assert got.path.read_bytes() == data and "vendors" not in got.path.name  # generated local name

    asyncio.run(body())
    assert sorted(p.name for p in target.local_base.iterdir()) == ["vendors.csv"]  # no temporaries left
    kinds = [k for k, _ in audit]
    assert kinds.count("sftp.upload") == 1 and kinds.count("sftp.download") == 1
    up = dict(audit)["sftp.upload"]
    assert up["details"]["sha256"] == sha(data) and up["details"]["size"] == len(data) and up["duration_ms"] > 0


def test_key_auth(target: Target, tmp_path: Path) -> None:
    async def body() -> list[str]:
        async with client(target, settings=target.settings(use_key=True)) as c:
            await c.ensure_folder(target.remote("sub"))
            return (await c.list_ready(target.remote_base, settle_s=0)).ready  # type: ignore[return-value]

    assert asyncio.run(body()) == []
    assert target.local("sub").is_dir()


def test_changed_host_key_refuses_and_is_audited(target: Target) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    audit: list[tuple[str, dict[str, Any]]] = []
    c = client(target, audit, settings=target.settings(host_keys=(other,)))
    with pytest.raises(HostKeyError) as info:
        asyncio.run(c.connect())
    real = asyncssh.import_public_key(target.host_key_line).get_fingerprint("sha256")
    assert info.value.changed and info.value.seen_fingerprint == real
    assert "HOST KEY CHANGED" in str(info.value) and real in str(info.value)
    assert [k for k, _ in audit] == ["sftp.host_key_changed"]


def test_unknown_host_key_shows_fingerprint(target: Target) -> None:
    c = client(target, settings=target.settings(host_keys=()))
    with pytest.raises(HostKeyError) as info:
        asyncio.run(c.connect())
    real = asyncssh.import_public_key(target.host_key_line).get_fingerprint("sha256")
    assert not info.value.changed and real in str(info.value) and "no host key is pinned" in str(info.value)


def test_fingerprint_pin_is_enough(target: Target) -> None:
    real = asyncssh.import_public_key(target.host_key_line).get_fingerprint("sha256")
    c = client(target, settings=target.settings(host_keys=(), host_fingerprints=(real,)))

    async def body() -> str | None:
        async with c:
            return c.host_fingerprint

    assert asyncio.run(body()) == real


@pytest.mark.parametrize("how", ["password", "key"])
def test_wrong_credentials(target: Target, how: str) -> None:
    from ml_connector.secrets import Secret

    if how == "password":
        settings = target.settings(password=Secret("not-the-password"))
    else:
        wrong = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
        settings = target.settings(use_key=True, private_key=Secret(wrong))
    with pytest.raises(ConnectError, match="authentication failed") as info:
        asyncio.run(client(target, settings=settings).connect())
    assert "not-the-password" not in str(info.value)


def test_refused_and_dns_failures(target: Target) -> None:
    from .sshd import free_port

    with pytest.raises(ConnectError, match="connection refused"):
        asyncio.run(client(target, settings=target.settings(port=free_port())).connect())
    with pytest.raises(ConnectError, match=r"cannot resolve host name 'partner\.invalid'"):
        asyncio.run(client(target, settings=target.settings(host="partner.invalid")).connect())


def test_missing_folder(target: Target) -> None:
    async def body() -> None:
        async with client(target) as c:
            await c.list_ready(target.remote("nope"), settle_s=0)

    with pytest.raises(NotFoundError, match="no such file"):
        asyncio.run(body())


def test_listing_filters_and_refuses_unsafe_names(target: Target) -> None:
    for name in ["b.820", "a.820", "notes.txt", ".hidden.820", "upload.820.part", "bad..820", "ctl\x01.820"]:
        target.local(name).write_bytes(b"x" * 10)
    os.utime(target.local("b.820"), (1_700_000_000, 1_700_000_000))
    os.utime(target.local("a.820"), (1_700_000_100, 1_700_000_100))
    target.local("dir.820").mkdir()
    own(target, target.local_base)

    async def body() -> Any:
        async with client(target) as c:
            return await c.list_ready(target.remote_base, pattern="*.820", settle_s=0)

    listing = asyncio.run(body())
    assert [f.name for f in listing.ready] == ["b.820", "a.820"]  # oldest mtime first
    refused = dict(listing.refused)
    assert set(refused) == {"bad..820", "ctl\x01.820"}
    assert "'..'" in refused["bad..820"] and "control characters" in refused["ctl\x01.820"]


def test_growing_file_is_not_ready(target: Target) -> None:
    grow = target.local("growing.csv")
    grow.write_bytes(b"a,b\n")
    target.local("done.csv").write_bytes(b"a,b\n")
    own(target, target.local_base)

    async def partner_still_writing(_seconds: float) -> None:
        with grow.open("ab") as fh:
            fh.write(b"1,2\n")

    async def body() -> Any:
        async with SftpClient(target.settings(), sleep=partner_still_writing) as c:
            return await c.list_ready(target.remote_base, pattern="*.csv", settle_s=5)

    listing = asyncio.run(body())
    assert [f.name for f in listing.ready] == ["done.csv"]
    assert [f.name for f in listing.waiting] == ["growing.csv"]


def test_min_age_skips_the_settle_wait(target: Target) -> None:
    target.local("old.csv").write_bytes(b"x")
    os.utime(target.local("old.csv"), (1_600_000_000, 1_600_000_000))
    own(target, target.local_base)
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    async def body() -> Any:
        async with SftpClient(target.settings(), sleep=sleep) as c:
            return await c.list_ready(target.remote_base, settle_s=5, min_age_s=60)

    assert [f.name for f in asyncio.run(body()).ready] == ["old.csv"] and waited == []


@pytest.mark.parametrize("policy", ["fail", "overwrite", "unique"])
def test_final_name_already_exists(target: Target, tmp_path: Path, policy: str) -> None:
    target.local("out.csv").write_bytes(b"partner's copy")
    own(target, target.local_base)
    src = tmp_path / "new.csv"
    src.write_bytes(b"our new file")

    async def body() -> str:
        async with client(target) as c:
            return await c.upload_atomic(src, target.remote_base, "out.csv", on_conflict=policy)

    if policy == "fail":
        with pytest.raises(RecordError, match="already exists"):
            asyncio.run(body())
        assert target.local("out.csv").read_bytes() == b"partner's copy"
        assert sorted(p.name for p in target.local_base.iterdir()) == ["out.csv"]
    elif policy == "overwrite":
        assert asyncio.run(body()) == target.remote("out.csv")
        assert target.local("out.csv").read_bytes() == b"our new file"
    else:
        assert asyncio.run(body()) == target.remote("out.1.csv")
        assert target.local("out.csv").read_bytes() == b"partner's copy"
        assert target.local("out.1.csv").read_bytes() == b"our new file"


def test_move_creates_folder_and_never_overwrites(target: Target) -> None:
    for name in ("in.820", "in2.820"):
        target.local(name).write_bytes(name.encode())
    (target.local("archive")).mkdir()
    target.local("archive", "in.820").write_bytes(b"older file, same name")
    own(target, target.local_base)

    async def body() -> tuple[str, str]:
        async with client(target) as c:
            a = await c.move(target.remote("in.820"), target.remote("archive"))
            b = await c.move(target.remote("in2.820"), target.remote("error", "2026"))
            return a, b

    a, b = asyncio.run(body())
    assert a == target.remote("archive", "in.1.820") and b == target.remote("error", "2026", "in2.820")
    assert target.local("archive", "in.820").read_bytes() == b"older file, same name"
    assert target.local("archive", "in.1.820").read_bytes() == b"in.820"


def test_leftover_temporaries_are_cleaned(target: Target) -> None:
    target.local(".crashed.csv.part").write_bytes(b"half")
    target.local(".partner-dotfile").write_bytes(b"theirs")
    own(target, target.local_base)

    async def body() -> list[str]:
        async with client(target) as c:
            return await c.cleanup_temporaries(target.remote_base)

    assert asyncio.run(body()) == [".crashed.csv.part"]
    assert sorted(p.name for p in target.local_base.iterdir()) == [".partner-dotfile"]


def test_remove_temporary_takes_down_one_name_only(target: Target) -> None:
    target.local(".a.csv.part").write_bytes(b"half")
    target.local(".b.csv.part").write_bytes(b"another flow's upload in progress")
    own(target, target.local_base)
    audit: list[tuple[str, dict[str, Any]]] = []

    async def body() -> tuple[bool, bool, bool]:
        async with client(target, audit) as c:
            first = await c.remove_temporary(target.remote_base, "a.csv")
            again = await c.remove_temporary(target.remote_base, "a.csv")
            nowhere = await c.remove_temporary(target.remote("no-such-folder"), "a.csv")
            return first, again, nowhere

    assert asyncio.run(body()) == (True, False, False)
    assert sorted(p.name for p in target.local_base.iterdir()) == [".b.csv.part"]
    assert [k for k, _ in audit if k != "sftp.connected"] == ["sftp.temp_removed"]


def test_a_cancelled_upload_takes_its_temporary_down(target: Target, tmp_path: Path) -> None:
    """Ctrl-C (the task cancelled) mid-upload: no ``.NAME.part`` is left on the server."""
    src = tmp_path / "big.csv"
    with src.open("wb") as f:
        for _ in range(128):
            f.write(os.urandom(1 << 20))
    temp = target.local_base / ".big.csv.part"

    async def body() -> None:
        async with client(target) as c:
            task = asyncio.create_task(c.upload_atomic(src, target.remote_base, "big.csv"))
            for _ in range(4000):
                if temp.exists() or task.done():
                    break
                await asyncio.sleep(0.002)
            assert temp.exists() and not task.done(), "the upload must be under way when it is cancelled"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(body())
    assert sorted(p.name for p in target.local_base.iterdir()) == []


def test_check_remote_name() -> None:
    for bad in ["../etc/passwd", "a/b", "..", ".", "x\x00y", "tab\tname", "-rf", "a\\b", "x" * 256]:
        with pytest.raises(UnsafeNameError):
            check_remote_name(bad)
    assert check_remote_name("INV_2026-11-23.820") == "INV_2026-11-23.820"


def test_upload_cut_at_random_bytes_never_exposes_partial_files(target: Target, tmp_path: Path, proxy_for: Any) -> None:
    """20 uploads, each cut once at a random byte: final names only ever hold complete files."""
    proxy: FaultProxy = proxy_for(target)
    rng = random.Random(1234)
    data = os.urandom(400_000)
    src = tmp_path / "big.dat"
    src.write_bytes(data)
    settings = target.settings(port=proxy.port)
    findings = []
    for trial in range(20):
        proxy.arm(up=rng.randint(3_000, len(data) + 20_000))
        name = f"f{trial}.dat"

        async def body(name: str = name) -> str:
            async with client(target, settings=settings) as c:
                return await c.upload_atomic(src, target.remote_base, name)

        final = asyncio.run(body())
        assert final == target.remote(name)
        findings.append(sha(target.local(name).read_bytes()) == sha(data))
    print(
        f"upload cut trials: {len(findings)}, complete and matching: {sum(findings)}, connections: {proxy.connections}"
    )
    assert all(findings)
    assert proxy.connections > 20  # the cuts really forced reconnects
    assert not [p for p in target.local_base.iterdir() if p.name.endswith(".part")]


def test_download_cut_at_random_bytes_hands_on_nothing_truncated(
    target: Target, tmp_path: Path, proxy_for: Any
) -> None:
    proxy: FaultProxy = proxy_for(target)
    rng = random.Random(99)
    data = os.urandom(400_000)
    target.local("in.dat").write_bytes(data)
    own(target, target.local_base)
    settings = target.settings(port=proxy.port)
    staging = tmp_path / "staging"
    ok = 0
    for _trial in range(20):
        proxy.arm(down=rng.randint(3_000, len(data) + 20_000))

        async def body() -> Any:
            async with client(target, settings=settings) as c:
                return await c.download(target.remote("in.dat"), staging)

        got = asyncio.run(body())
        ok += got.sha256 == sha(data) and got.path.read_bytes() == data
    print(f"download cut trials: 20, complete and matching: {ok}, connections: {proxy.connections}")
    assert ok == 20
    assert not list(staging.glob("*.partial"))
    assert len(list(staging.iterdir())) == 20


def test_retry_budget_exhausted_is_transient(target: Target, tmp_path: Path, proxy_for: Any) -> None:
    from ml_connector.errors import TransientError

    proxy: FaultProxy = proxy_for(target)
    src = tmp_path / "x.dat"
    src.write_bytes(os.urandom(200_000))
    proxy.arm(up=150_000)
    proxy.cuts_left = 100  # every connection is cut
    settings = target.settings(port=proxy.port)

    async def body() -> str:
        async with client(target, settings=settings, options=SftpOptions(retries=2, backoff_s=0.01)) as c:
            return await c.upload_atomic(src, target.remote_base, "x.dat")

    with pytest.raises((TransientError, FatalError)):
        asyncio.run(body())
    assert not target.local("x.dat").exists()


@pytest.mark.parametrize(
    ("alg", "fmt", "passphrase"),
    [
        ("ssh-rsa", "openssh", None),  # RSA keys sign with rsa-sha2-256/512, never SHA-1
        ("ssh-rsa", "pkcs1-pem", None),
        ("ecdsa-sha2-nistp256", "openssh", None),
        ("ecdsa-sha2-nistp384", "pkcs8-pem", None),
        ("ssh-ed25519", "openssh", "a passphrase"),
    ],
)
def test_key_types_and_formats(
    target: Target, request: pytest.FixtureRequest, alg: str, fmt: str, passphrase: str | None
) -> None:
    from ml_connector.secrets import Secret

    key = asyncssh.generate_private_key(alg, key_size=2048) if alg == "ssh-rsa" else asyncssh.generate_private_key(alg)
    public = key.export_public_key().decode()
    if target.kind == "openssh":
        sshd = request.getfixturevalue("sshd")
        with (sshd.conf_dir / "authorized_keys").open("a") as fh:
            fh.write(public)
    else:
        request.getfixturevalue("embedded").users["partner"].public_keys.append(public)
    kwargs = (
        {"passphrase": passphrase, "rounds": 16, "ignore_few_rounds": True} if passphrase and fmt == "openssh" else {}
    )
    pem = key.export_private_key(fmt, **kwargs).decode()  # type: ignore[arg-type]
    settings = target.settings(
        use_key=True, private_key=Secret(pem), passphrase=Secret(passphrase) if passphrase else None
    )

    async def body() -> bool:
        async with client(target, settings=settings) as c:
            return await c.final_matches(target.remote_base, "absent", 0)

    assert asyncio.run(body()) is False


def test_write_bytes_atomic_never_overwrites(target: Target, tmp_path: Path) -> None:
    async def body() -> list[str]:
        async with client(target) as c:
            await c.ensure_folder(target.remote("acks"))
            return [await c.write_bytes_atomic(f"ack {n}".encode(), target.remote("acks"), "997_0001.x12", tmp_path / "stage")
                    for n in range(2)]  # fmt: skip

    first, second = asyncio.run(body())
    assert first == target.remote("acks", "997_0001.x12") and second == target.remote("acks", "997_0001.1.x12")
    assert target.local("acks", "997_0001.x12").read_bytes() == b"ack 0"
    assert target.local("acks", "997_0001.1.x12").read_bytes() == b"ack 1"
    assert list((tmp_path / "stage").iterdir()) == []  # the local copy is removed
