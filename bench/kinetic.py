"""Kinetic sandbox and client: raw paged read rate, and calls/s under concurrency.

    .venv/bin/python bench/kinetic.py                # 100k generated AP invoices
    .venv/bin/python bench/kinetic.py --records 20000

extract   records/s of KineticClient.extract (keyset pages of 500) over real HTTP, against a bare
          httpx loop issuing the same page requests (the ceiling the outbound flow is measured against)
calls     calls/s of the sandbox at concurrency 1, 4 and 16 (GET $count through the client)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.sftp.sshd import free_port

from ml_connector.connections import EpicorSettings
from ml_connector.kinetic import KineticClient
from ml_connector.sandbox.kinetic import KineticSandbox, SandboxOptions
from ml_connector.secrets import Secret


def start(sb: KineticSandbox) -> tuple[uvicorn.Server, str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(sb.app, host="127.0.0.1", port=port, log_level="error", lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return server, f"http://127.0.0.1:{port}/{sb.options.instance}"


async def ours(settings: EpicorSettings, page: int) -> int:
    n = 0
    async with KineticClient(settings) as k:
        async for rows in k.extract("Erp.BO.APInvoiceSvc", "APInvoices", cursor="SysRevID", after=None, page_size=page):
            n += len(rows)
    return n


async def bare(url: str, key: str, page: int) -> int:
    n, last = 0, 0
    auth = httpx.BasicAuth("manager", "bench-pass")
    async with httpx.AsyncClient(base_url=url, auth=auth, headers={"x-api-key": key}) as http:
        while True:
            resp = await http.get(
                "/api/v2/odata/EPIC06/Erp.BO.APInvoiceSvc/APInvoices",
                params={"$filter": f"SysRevID gt {last}", "$orderby": "SysRevID asc", "$top": str(page)},
            )
            rows = resp.json()["value"]
            n += len(rows)
            if not rows:
                return n
            last = rows[-1]["SysRevID"]


async def calls(settings: EpicorSettings, concurrency: int, total: int) -> float:
    async with KineticClient(settings) as k:
        sem = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with sem:
                await k.count("Erp.BO.VendorSvc", "Vendors")

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(total)))
        return total / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--page", type=int, default=500)
    args = ap.parse_args()
    sb = KineticSandbox(SandboxOptions(api_key="bench-key", users={"manager": "bench-pass"}))
    sb.generate_invoices(args.records)
    server, url = start(sb)
    settings = EpicorSettings(url=url, company="EPIC06", username="manager", api_key=Secret("bench-key"),
                              password=Secret("bench-pass"))  # fmt: skip
    try:
        t = time.perf_counter()
        n_bare = asyncio.run(bare(url, "bench-key", args.page))
        t_bare = time.perf_counter() - t
        t = time.perf_counter()
        n_ours = asyncio.run(ours(settings, args.page))
        t_ours = time.perf_counter() - t
        assert n_ours == n_bare == args.records, (n_ours, n_bare)  # generated invoices only (no seed)
        print("\n| bench | what | rate | ratio |\n|---|---|---:|---|")
        print(
            f"| extract {args.records:,} AP invoices | KineticClient.extract (pages of {args.page}) | {n_ours / t_ours:,.0f} records/s | {t_ours / t_bare:.2f}x bare time |"
        )
        print(
            f"| extract {args.records:,} AP invoices | bare httpx keyset loop | {n_bare / t_bare:,.0f} records/s | 1.00x |"
        )
        for c in (1, 4, 16):
            print(
                f"| sandbox calls | GET $count, concurrency {c} | {asyncio.run(calls(settings, c, 400)):,.0f} calls/s | |"
            )
    finally:
        server.should_exit = True


if __name__ == "__main__":
    main()
