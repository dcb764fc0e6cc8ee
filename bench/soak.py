"""Soak: ``ml-connector serve`` for N minutes against the sandbox with 1 % faults; fds and RSS flat.

    .venv/bin/python bench/soak.py --minutes 30            # flows every minute (as in production)
    .venv/bin/python bench/soak.py --minutes 2 --every 5   # flows every 5 s (the CI version)

The Kinetic sandbox (in this process, over real HTTP) injects 1 % each of 429, 503, dropped
connections and lost responses after commit; the embedded SFTP server holds the partner's folders.
``serve`` runs as a subprocess, exactly as users start it. Each period this driver drops an
inbound vendor CSV (the inbound flow posts it, the outbound flow sends the changed vendors on),
and every second it samples the serve process's open fds (``/proc/PID/fd``) and RSS.

Verdict: fds and RSS are compared between the second quarter of the soak (after warm-up) and the
last quarter, using each window's minimum (a run in flight holds sockets; the idle floor is what a
leak raises). It fails when the fd floor rises by more than 2 or the RSS floor by more than 15 %
and 10 MB, or when the runs did not deliver anything (a soak that moved nothing proves nothing).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.kinetic import start

from ml_connector.connections import EpicorSettings, SftpSettings
from ml_connector.home import Home
from ml_connector.sandbox.kinetic import Faults, KineticSandbox, SandboxOptions
from ml_connector.sandbox.loop import LoopThread
from ml_connector.sandbox.sftp_server import EmbeddedSftpServer, SftpUser
from ml_connector.secrets import Secret
from ml_connector.store import Store

KEY, PASSWORD, SFTP_PASSWORD = "soak-key", "soak-pass", "soak-sftp-pw"
FAULT_RATE = 0.01
FD_SLACK = 2
RSS_SLACK = 0.15
RSS_SLACK_MB = 10.0

FLOWS = """
flows:
  vendors-in:
    direction: inbound
    schedule: "{cron}"
    epicor: kinetic
    entity: vendors
    sftp: sftp
    folder: /inbound
    pattern: "*.csv"
    archive_folder: /archive
    error_folder: /error
    settle_seconds: 0
    format: {{type: csv}}
  vendors-out:
    direction: outbound
    schedule: "{cron}"
    epicor: kinetic
    entity: vendors
    sftp: sftp
    folder: /outbound
    filename: "vendors_{{run}}_{{seq}}.csv"
    format: {{type: csv}}
serve:
  metrics_port: 0
  tick_seconds: 0.5
"""


@dataclass
class Sample:
    t: float
    fds: int
    rss_kb: int
    runs: int
    deliveries: int


@dataclass
class Report:
    """What a soak saw: samples, the verdict and its reasons."""

    minutes: float
    every_s: int
    samples: list[Sample] = field(default_factory=list)
    runs: int = 0
    deliveries: int = 0
    files_in: int = 0
    problems: list[str] = field(default_factory=list)
    serve_exit: int | None = None
    faults_seen: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def windows(self) -> tuple[list[Sample], list[Sample]]:
        """The second quarter (after warm-up) and the last quarter of the samples taken while
        serving: the last seconds, when serve closes its files to stop, would hide a leak."""
        serving = [s for s in self.samples if s.t < self.minutes * 60 - 5] or self.samples
        n = len(serving)
        q = max(1, n // 4)
        return serving[q : 2 * q], serving[n - q :]

    def summary(self) -> dict[str, Any]:
        early, late = self.windows()
        first, last = self.samples[0], self.samples[-1]
        return {
            "minutes": self.minutes,
            "flows_every_s": self.every_s,
            "runs": self.runs,
            "deliveries": self.deliveries,
            "inbound_files_done": self.files_in,
            "fds": {"start": first.fds, "end": last.fds, "floor_q2": min(s.fds for s in early),
                    "floor_q4": min(s.fds for s in late), "max": max(s.fds for s in self.samples)},
            "rss_mb": {"start": round(first.rss_kb / 1024, 1), "end": round(last.rss_kb / 1024, 1),
                       "floor_q2": round(min(s.rss_kb for s in early) / 1024, 1),
                       "floor_q4": round(min(s.rss_kb for s in late) / 1024, 1),
                       "max": round(max(s.rss_kb for s in self.samples) / 1024, 1)},
            "by_minute": [(round(x.t), x.fds, round(x.rss_kb / 1024, 1), x.deliveries) for x in self.samples[::60]],
            "faults_injected": self.faults_seen,
            "serve_exit": self.serve_exit,
            "ok": self.ok,
            "problems": self.problems,
        }  # fmt: skip


def judge(report: Report, *, min_deliveries: int) -> None:
    """Fill ``report.problems``: fds or RSS that grow with the runs, or a soak that did nothing."""
    if len(report.samples) < 8:
        report.problems.append(f"only {len(report.samples)} samples: the soak was too short to judge")
        return
    early, late = report.windows()
    fd0, fd1 = min(s.fds for s in early), min(s.fds for s in late)
    delivered_between = late[0].deliveries - early[0].deliveries
    if fd1 - fd0 > FD_SLACK:
        report.problems.append(
            f"open fds grew from {fd0} to {fd1} while {delivered_between} files were delivered (a leak)"
        )
    rss0, rss1 = min(s.rss_kb for s in early) / 1024, min(s.rss_kb for s in late) / 1024
    if rss1 > rss0 * (1 + RSS_SLACK) and rss1 - rss0 > RSS_SLACK_MB:
        report.problems.append(f"RSS grew from {rss0:.1f} MB to {rss1:.1f} MB over {report.runs} runs")
    if report.deliveries < min_deliveries:
        report.problems.append(f"only {report.deliveries} outbound deliveries (wanted >= {min_deliveries})")
    if report.serve_exit not in (0, None):
        report.problems.append(f"serve exited with {report.serve_exit}")


def _proc(pid: int) -> tuple[int, int]:
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return fds, rss


def _counts(store: Store) -> tuple[int, int, int]:
    runs = len(store.ledger.runs("vendors-out", limit=100000)) + len(store.ledger.runs("vendors-in", limit=100000))
    out = store.ledger.files(flow="vendors-out", states=["delivered"])
    inbound = store.ledger.files(flow="vendors-in", states=["done"])
    return runs, len(out), len(inbound)


def soak(minutes: float, every_s: int = 60, *, workdir: Path | None = None, min_deliveries: int = 3,
         fault_rate: float = FAULT_RATE, log: Any = print) -> Report:  # fmt: skip
    """Run one soak and return its report (``bench/soak.py`` and the CI test both call this)."""
    report = Report(minutes, every_s)
    tmp = Path(workdir or tempfile.mkdtemp(prefix="mlc-soak-"))
    faults = Faults(rate_429=fault_rate, rate_503=fault_rate, drop_rate=fault_rate, lose_response_rate=fault_rate,
                    retry_after_s=0.2, seed=1234)  # fmt: skip
    sb = KineticSandbox(SandboxOptions(api_key=KEY, users={"manager": PASSWORD}), faults)
    sb.seed()
    http, url = start(sb)
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)  # the injected cuts, by design
    loop = LoopThread()
    sftp_root = tmp / "sftp"
    server = EmbeddedSftpServer(sftp_root, {"partner": SftpUser(password=SFTP_PASSWORD)})
    loop.run(server.start())
    for sub in ("inbound", "outbound", "archive", "error"):
        (sftp_root / sub).mkdir(parents=True, exist_ok=True)
    home = Home.resolve(tmp / "home")
    home.init(environ={})
    store = Store.open(home.database_url)
    keyring = home.keyring(environ={})
    store.connections.add("kinetic", EpicorSettings(url=url, company=sb.options.company, username="manager",
                                                    api_key=Secret(KEY), password=Secret(PASSWORD)), keyring)  # fmt: skip
    store.connections.add("sftp", SftpSettings(host="127.0.0.1", port=server.port, username="partner",
                                               password=Secret(SFTP_PASSWORD), host_keys=(server.host_key_line,)),
                          keyring)  # fmt: skip
    cron = "* * * * *" if every_s == 60 else f"* * * * * */{every_s}"
    home.flows_file.write_text(FLOWS.format(cron=cron))
    duration = minutes * 60
    argv = [sys.executable, "-m", "ml_connector", "--home", str(home.path), "--database-url", home.database_url,
            "serve", "--metrics-port", "0", "--stop-after", str(duration)]  # fmt: skip
    out_path = tmp / "serve.log"
    with out_path.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    started = time.monotonic()
    next_drop = started
    n = 0
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if now >= next_drop and now - started < duration - every_s:
                n += 1
                rows = "".join(f"K{n:04d}{i:02d},Soak Vendor {n}-{i},Soak City\r\n" for i in range(5))
                path = sftp_root / "inbound" / f"vendors_{n:05d}.csv"
                path.write_text("VendorID,Name,City\r\n" + rows)
                past = time.time() - 120
                os.utime(path, (past, past))
                sb.generate_vendors(1)  # a change the outbound flow must send even if inbound lags
                next_drop += every_s
            try:
                fds, rss = _proc(proc.pid)
            except (FileNotFoundError, ProcessLookupError):
                break
            runs, delivered, done = _counts(store)
            report.samples.append(Sample(now - started, fds, rss, runs, delivered))
            if len(report.samples) % max(1, int(60 / 1)) == 0:
                log(f"t={now - started:6.0f}s fds={fds} rss={rss / 1024:.1f}MB runs={runs} delivered={delivered} "
                    f"inbound done={done}")  # fmt: skip
            time.sleep(1.0)
        report.serve_exit = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        report.runs, report.deliveries, report.files_in = _counts(store)
        report.faults_seen = {"lost_responses": sb.lost_responses, "dropped": sb.dropped}
        store.close()
        loop.run(server.stop())
        loop.stop()
        http.should_exit = True
    judge(report, min_deliveries=min_deliveries)
    if not report.ok:
        log(out_path.read_text()[-4000:])
    if workdir is None:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--every", type=int, default=60, help="seconds between flow runs (60: every minute)")
    parser.add_argument("--json", type=Path, help="write the summary here as well")
    args = parser.parse_args()
    asyncssh.set_log_level("WARNING")
    report = soak(args.minutes, args.every, min_deliveries=max(3, int(args.minutes * 60 / args.every / 2)))
    summary = report.summary()
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
