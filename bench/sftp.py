"""SFTP throughput: ml-connector's transport vs the OpenSSH `sftp` client, same sshd, same run.

    .venv/bin/python bench/sftp.py              # 200 MB, 3 alternating rounds (needs root + openssh-server)
    .venv/bin/python bench/sftp.py --mb 50

Each round times: our upload, OpenSSH's upload, our download, OpenSSH's download, in alternation,
so machine noise hits both sides alike. Ratios are ours / OpenSSH's throughput (1.0 = as fast).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.sftp.sshd import start_sshd

from ml_connector.connections import SftpSettings
from ml_connector.secrets import Secret
from ml_connector.sftp import SftpClient


def openssh(sshd_port: int, key: Path, known_hosts: Path, user: str, commands: str, cipher: str | None) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".batch", delete=False) as fh:
        batch = Path(fh.name)
    batch.write_text(commands)
    args = ["sftp", "-q", "-b", str(batch), "-P", str(sshd_port), "-i", str(key),
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"]  # fmt: skip
    if cipher:
        args += ["-c", cipher]
    start = time.perf_counter()
    subprocess.run([*args, f"{user}@127.0.0.1"], check=True, capture_output=True)
    took = time.perf_counter() - start
    batch.unlink()
    return took


async def ours_up(settings: SftpSettings, local: Path, folder: str, name: str, sha256: str) -> float:
    async with SftpClient(settings) as c:
        start = time.perf_counter()
        # Flows know the sha256 from the intent they recorded before the upload.
        await c.upload_atomic(local, folder, name, on_conflict="overwrite", sha256=sha256)
        return time.perf_counter() - start


async def ours_down(settings: SftpSettings, remote: str, staging: Path) -> float:
    async with SftpClient(settings) as c:
        start = time.perf_counter()
        got = await c.download(remote, staging)
        took = time.perf_counter() - start
        got.path.unlink()
        return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    sshd = start_sshd()
    try:
        work = Path(tempfile.mkdtemp())
        local = work / "payload.bin"
        with local.open("wb") as fh:
            for _ in range(args.mb):
                fh.write(os.urandom(1_000_000))
        import hashlib

        digest = hashlib.sha256(local.read_bytes()).hexdigest()
        folder = sshd.home / f"bench-{uuid.uuid4().hex[:6]}"
        folder.mkdir()
        import shutil

        shutil.chown(folder, sshd.user, sshd.user)
        known = work / "known_hosts"
        known.write_text(f"[127.0.0.1]:{sshd.port} {sshd.host_key_line}\n")
        settings = SftpSettings(host="127.0.0.1", port=sshd.port, username=sshd.user,
                                private_key=Secret(sshd.client_key.export_private_key().decode()),
                                host_keys=(sshd.host_key_line,))  # fmt: skip
        staging = work / "staging"
        rows: dict[str, list[float]] = {
            k: [] for k in ("ours_up", "ssh_up", "ssh_gcm_up", "ours_down", "ssh_down", "ssh_gcm_down")
        }
        for _ in range(args.rounds):
            rows["ours_up"].append(asyncio.run(ours_up(settings, local, str(folder), "ours.bin", digest)))
            rows["ssh_up"].append(
                openssh(sshd.port, sshd.client_key_file, known, sshd.user, f"put {local} {folder}/cli.bin\n", None)
            )
            rows["ssh_gcm_up"].append(openssh(sshd.port, sshd.client_key_file, known, sshd.user,
                                              f"put {local} {folder}/cli.bin\n", "aes128-gcm@openssh.com"))  # fmt: skip
            rows["ours_down"].append(asyncio.run(ours_down(settings, f"{folder}/ours.bin", staging)))
            rows["ssh_down"].append(openssh(sshd.port, sshd.client_key_file, known, sshd.user,
                                            f"get {folder}/cli.bin {work}/cli.bin\n", None))  # fmt: skip
            rows["ssh_gcm_down"].append(openssh(sshd.port, sshd.client_key_file, known, sshd.user,
                                                f"get {folder}/cli.bin {work}/cli.bin\n", "aes128-gcm@openssh.com"))  # fmt: skip
        mbps = {k: args.mb / statistics.median(v) for k, v in rows.items()}
        print(f"\n| sftp {args.mb} MB, median of {args.rounds} | MB/s | ours / this |\n|---|---:|---:|")
        for key, label in [("ours_up", "ml-connector upload"), ("ssh_up", "OpenSSH sftp upload (default cipher)"),
                           ("ssh_gcm_up", "OpenSSH sftp upload (aes128-gcm)"), ("ours_down", "ml-connector download"),
                           ("ssh_down", "OpenSSH sftp download (default cipher)"),
                           ("ssh_gcm_down", "OpenSSH sftp download (aes128-gcm)")]:  # fmt: skip
            ours = mbps["ours_up" if "up" in key else "ours_down"]
            print(f"| {label} | {mbps[key]:.0f} | {ours / mbps[key]:.2f} |")
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    finally:
        sshd.stop()


if __name__ == "__main__":
    main()
