"""Flow runs end to end, against references measured in the same run.

    .venv/bin/python bench/flows.py                       # all three (needs root for sshd)
    .venv/bin/python bench/flows.py --only outbound --invoices 20000

outbound  records/s of a whole outbound run: 100k AP invoices, sandbox over HTTP -> CSV in
          staging -> OpenSSH sftp (atomic upload) -> ledger; as a ratio of a bare httpx keyset
          read of the same records (the raw paged read).  Target >= 0.7.
inbound   records/s posting 10k vendors from a CSV with 20 ms sandbox latency per call, as a
          ratio of the concurrency bound (calls per record x latency / concurrency), and API
          calls per record (target <= 2.2, with batched lookups).  Target ratio >= 0.8.
memory    peak RSS (VmHWM) of a child process taking an inbound CSV through the real run code
          (download over SFTP, sha256, parse, record ledger) at two file sizes: flat = streaming.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.kinetic import bare, start
from tests.sftp.sshd import TEST_USER, free_port, start_sshd

from ml_connector.config import parse_flows
from ml_connector.connections import EpicorSettings, SftpSettings
from ml_connector.flows import RunContext, run_flow
from ml_connector.home import Home
from ml_connector.sandbox.kinetic import KineticSandbox, SandboxOptions
from ml_connector.secrets import Secret
from ml_connector.store import Store

KEY, PASSWORD = "bench-key", "bench-pass"


def world(tmp: Path, sshd: Any, sb: KineticSandbox, url: str) -> tuple[Home, Store, Path]:
    home = Home.resolve(tmp / "home")
    home.init(environ={})
    store = Store.open(home.database_url)
    keyring = home.keyring(environ={})
    store.connections.add("kinetic", EpicorSettings(url=url, company=sb.options.company, username="manager",
                                                    api_key=Secret(KEY), password=Secret(PASSWORD)), keyring)  # fmt: skip
    store.connections.add("sftp", SftpSettings(host="127.0.0.1", port=sshd.port, username=TEST_USER,
                                               password=Secret(sshd.password), host_keys=(sshd.host_key_line,)),
                          keyring)  # fmt: skip
    base = sshd.home / f"bench-{os.getpid()}"
    shutil.rmtree(base, ignore_errors=True)
    for sub in ("", "inbound", "outbound", "archive"):
        (base / sub).mkdir(exist_ok=True)
        shutil.chown(base / sub, TEST_USER, TEST_USER)
    return home, store, base


FLOWS = """
flows:
  invoices-out:
    direction: outbound
    epicor: kinetic
    entity: ap-invoices
    sftp: sftp
    folder: "{base}/outbound"
    filename: "inv_{run}.csv"
    page_size: 500
    format: {type: csv}
  vendors-in:
    direction: inbound
    epicor: kinetic
    entity: vendors
    sftp: sftp
    folder: "{base}/inbound"
    archive_folder: "{base}/archive"
    settle_seconds: 0
    concurrency: 4
    batch_size: 200
    format: {type: csv}
"""


def run(home: Home, store: Store, base: Path, name: str) -> Any:
    flow = parse_flows(FLOWS.replace("{base}", str(base))).flows[name]
    ctx = RunContext(store=store, keyring=home.keyring(environ={}), staging=home.staging, trigger="bench")
    return asyncio.run(run_flow(ctx, name, flow))


def outbound(n: int, sshd: Any) -> list[str]:
    sb = KineticSandbox(SandboxOptions(api_key=KEY, users={"manager": PASSWORD}))
    sb.seed()
    sb.generate_invoices(n - 12, vendor_num=1)
    server, url = start(sb)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        home, store, base = world(Path(tmp), sshd, sb, url)
        raw_t = ours_t = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            got = asyncio.run(bare(url, KEY, 500))
            raw_t = min(raw_t, time.perf_counter() - t)
            store.watermarks.reset("invoices-out")
            t = time.perf_counter()
            result = run(home, store, base, "invoices-out")
            ours_t = min(ours_t, time.perf_counter() - t)
            assert result.state == "succeeded" and result.counts["records"] == got == n, (result, got)
        size = sum(p.stat().st_size for p in (base / "outbound").iterdir())
        rows.append(f"| outbound | {n:,} invoices sandbox -> CSV ({size / 1e6:.1f} MB) -> OpenSSH sftp, whole run "
                    f"| {n / ours_t:,.0f} rec/s | **{raw_t / ours_t:.2f}x** raw paged read ({n / raw_t:,.0f} rec/s) |")  # fmt: skip
        store.close()
        shutil.rmtree(base, ignore_errors=True)
    server.should_exit = True
    return rows


SANDBOX_PROC = r"""
import sys, uvicorn
sys.path.insert(0, sys.argv[1])
from ml_connector.sandbox.kinetic import KineticSandbox, SandboxOptions
sb = KineticSandbox(SandboxOptions(api_key=sys.argv[3], users={"manager": sys.argv[4]}))
sb.seed()
uvicorn.run(sb.app, host="127.0.0.1", port=int(sys.argv[2]), log_level="error", lifespan="off")
"""


async def _bare_creates(url: str, n: int) -> None:
    """GetNewVendor + Update per vendor, 4 at a time, no ledger, no audit: the reference."""
    sem = asyncio.Semaphore(4)
    base = f"{url}/api/v2/odata/EPIC06/Erp.BO.VendorSvc"
    async with httpx.AsyncClient(auth=httpx.BasicAuth("manager", PASSWORD), headers={"x-api-key": KEY},
                                 timeout=30) as http:  # fmt: skip

        async def one(i: int) -> None:
            async with sem:
                ds = (await http.post(f"{base}/GetNewVendor", json={"ds": {}})).json()["parameters"]["ds"]
                ds["Vendor"][-1].update(VendorID=f"X{i:07d}", Name=f"Reference {i}")
                (await http.post(f"{base}/Update", json={"ds": ds})).raise_for_status()

        await asyncio.gather(*(one(i) for i in range(n)))


def inbound(n: int, sshd: Any, latency_ms: float) -> list[str]:
    """The sandbox runs in its own process, as a real Kinetic would: the client's CPU is its own."""
    port = free_port()
    src = str(Path(__file__).resolve().parents[1] / "src")
    proc = subprocess.Popen([sys.executable, "-c", SANDBOX_PROC, src, str(port), KEY, PASSWORD])
    url = f"http://127.0.0.1:{port}/EpicorSandbox"
    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/_sandbox/stats", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    sb = KineticSandbox(SandboxOptions(api_key=KEY, users={"manager": PASSWORD}))  # for its company name only
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            home, store, base = world(Path(tmp), sshd, sb, url)
            lines = ["VendorID,Name,City"] + [f"B{i:07d},Bench Vendor {i},City {i % 50}" for i in range(n)]
            path = base / "inbound" / "vendors.csv"
            path.write_text("\r\n".join(lines) + "\r\n")
            shutil.chown(path, TEST_USER, TEST_USER)
            old = time.time() - 60
            os.utime(path, (old, old))
            httpx.post(f"http://127.0.0.1:{port}/_sandbox/faults", json={"latency_ms": latency_ms}, timeout=5)
            before = sum(httpx.get(f"http://127.0.0.1:{port}/_sandbox/stats", timeout=5).json()["calls"].values())
            t = time.perf_counter()
            result = run(home, store, base, "vendors-in")
            elapsed = time.perf_counter() - t
            after = sum(httpx.get(f"http://127.0.0.1:{port}/_sandbox/stats", timeout=5).json()["calls"].values())
            calls = after - before - 1  # minus our own stats read
            assert result.state == "succeeded" and result.counts["records_posted"] == n, result
            ref_n = max(400, n // 5)
            t = time.perf_counter()
            asyncio.run(_bare_creates(url, ref_n))
            ref_rate = ref_n / (time.perf_counter() - t)
            per_record = calls / n
            bound = n * per_record * (latency_ms / 1000) / 4
            rows.append(
                f"| inbound | {n:,} new vendors from CSV over OpenSSH sftp, {latency_ms:.0f} ms per call, "
                f"concurrency 4, sandbox in its own process | {n / elapsed:,.0f} rec/s, **{per_record:.2f} calls/record** "
                f"| **{bound / elapsed:.2f}x** the bound ({bound:.0f} s ideal vs {elapsed:.0f} s); "
                f"**{n / elapsed / ref_rate:.2f}x** a bare httpx client making the same 2 calls per vendor at "
                f"concurrency 4 ({ref_rate:,.0f} rec/s: the sandbox's own capacity here) |"
            )
            store.close()
            shutil.rmtree(base, ignore_errors=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return rows


PROBE = r"""
import asyncio, sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from ml_connector.config import parse_flows
from ml_connector.flows import RunContext
from ml_connector.flows.inbound import InboundRun
from ml_connector.home import Home
from ml_connector.store import Store
home = Home.resolve(Path(sys.argv[2])); store = Store.open(home.database_url)
flow = parse_flows(sys.argv[3]).flows["vendors-in"]
ctx = RunContext(store=store, keyring=home.keyring(environ={}), staging=home.staging)
async def go():
    r = InboundRun(ctx, "vendors-in", flow)
    r.run_id = "bench"
    sftp = ctx.sftp("sftp", r.audit)
    listing = await sftp.list_ready(flow.folder, settle_s=0)
    (remote,) = listing.ready
    row, _ = store.ledger.see(flow="vendors-in", run_id="bench", remote_path=remote.path, size=remote.size, mtime=remote.mtime)
    row = await r._download(sftp, row, remote)
    row = await r._parse(sftp, row)
    await sftp.close()
    return row
row = asyncio.run(go())
with open("/proc/self/status") as fh:
    rss = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024
print(f"{rss:.1f} {row.details['records']} {row.state}")
"""


def memory(sizes_mb: list[int], sshd: Any) -> list[str]:
    sb = KineticSandbox(SandboxOptions(api_key=KEY, users={"manager": PASSWORD}))
    server, url = start(sb)
    out = []
    for mb in sizes_mb:
        with tempfile.TemporaryDirectory() as tmp:
            home, store, base = world(Path(tmp), sshd, sb, url)
            store.close()
            path = base / "inbound" / "big.csv"
            row = b"B0000001,A vendor name that fills the row to about a hundred bytes of text,Springfield\r\n"
            with path.open("wb") as fh:
                fh.write(b"VendorID,Name,City\r\n")
                block = row * (1 << 14)
                for _ in range(mb * (1 << 20) // len(block)):
                    fh.write(block)
            shutil.chown(path, TEST_USER, TEST_USER)
            old = time.time() - 60
            os.utime(path, (old, old))
            flows = FLOWS.replace("{base}", str(base))
            t = time.perf_counter()
            got = subprocess.run([sys.executable, "-c", PROBE, str(Path(__file__).resolve().parents[1] / "src"),
                                  str(home.path), flows], capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
            elapsed = time.perf_counter() - t
            out.append(f"| memory | inbound CSV {path.stat().st_size / 1e6:,.0f} MB ({int(got[1]):,} records): download, "
                       f"hash, parse, record ledger | peak RSS **{float(got[0]):.0f} MB** | {elapsed:.0f} s, state {got[2]} |")  # fmt: skip
            shutil.rmtree(base, ignore_errors=True)
    server.should_exit = True
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["outbound", "inbound", "memory"])
    ap.add_argument("--invoices", type=int, default=100_000)
    ap.add_argument("--vendors", type=int, default=10_000)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--memory-mb", default="64,1024", help="file sizes for the memory probe")
    args = ap.parse_args()
    sshd = start_sshd()
    rows: list[str] = []
    try:
        if args.only in (None, "outbound"):
            rows += outbound(args.invoices, sshd)
        if args.only in (None, "inbound"):
            rows += inbound(args.vendors, sshd, args.latency_ms)
        if args.only in (None, "memory"):
            rows += memory([int(x) for x in args.memory_mb.split(",")], sshd)
    finally:
        sshd.stop()
    print("\n| bench | what | ours | against the reference |\n|---|---|---:|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
