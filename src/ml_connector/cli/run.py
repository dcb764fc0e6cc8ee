"""``ml-connector run FLOW``: one run now, with progress bars on a terminal and a summary table."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..alerts import deliver_run_alerts
from ..config import AlertsConfig, InboundFlow, OutboundFlow
from ..flows import Progress as RunProgress
from ..flows import RunContext, RunResult, run_flow
from ..home import Home
from ..states import FileState, RunState
from ..store import Store
from ._lookup import file_reason

log = logging.getLogger("ml_connector.run")


class RichProgress(RunProgress):
    """Bars on a terminal; plain log lines otherwise."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal
        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(), console=console, transient=True, disable=not self.live,
        )  # fmt: skip
        self.task: Any = None
        self.bytes_task: Any = None

    def __enter__(self) -> RichProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)

    def phase(self, text: str, total: int | None = None) -> None:
        if not self.live:
            self.console.print(text, highlight=False)
            return
        if self.task is not None:
            self.bar.update(self.task, visible=False)
        self.task = self.bar.add_task(text, total=total, unit="bytes" if total else "records")

    def advance(self, records: int = 0, files: int = 0, nbytes: int = 0) -> None:
        if self.live and self.task is not None:
            self.bar.advance(self.task, nbytes if self.bar.tasks[-1].fields.get("unit") == "bytes" else records)

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)


def run_command(home: Home, store: Store, name: str, flow: OutboundFlow | InboundFlow, *, dry_run: bool,
                as_json: bool, console: Console, trigger: str = "cli",
                alerts: AlertsConfig | None = None, sample: Path | None = None) -> int:  # fmt: skip
    """One run with progress, SIGTERM = finish the current step, Ctrl-C recorded; then alerts and the summary."""
    progress = RichProgress(console if not as_json else Console(quiet=True))
    observe = _log_event if log.isEnabledFor(logging.INFO) else None
    ctx = RunContext(store=store, keyring=home.keyring(), staging=home.staging, trigger=trigger, progress=progress,
                     observe=observe)  # fmt: skip

    async def main() -> RunResult:
        stop = ctx.stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_sigterm() -> None:
            if not stop.is_set():
                progress.note("SIGTERM: finishing the current step, then stopping")
            stop.set()

        # Like `serve`: a stop request ends the run between steps, every ledger row consistent.
        handled = True
        try:
            loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            handled = False
        try:
            result = await run_flow(ctx, name, flow, dry_run=dry_run, sample=sample)
        finally:
            if handled:
                loop.remove_signal_handler(signal.SIGTERM)
        if alerts is not None and result.run_id and result.run_id != "dry-run":
            sent = await deliver_run_alerts(alerts, store, result)
            if any(sent.values()):
                progress.note(f"alerts: {sent['sent']} sent, {sent['throttled']} throttled, {sent['failed']} failed")
        return result

    try:
        with progress:
            result = asyncio.run(main())
    except KeyboardInterrupt:
        last = store.ledger.runs(name, limit=1)
        rid = last[0].id if last and last[0].state == RunState.INTERRUPTED else None
        console.print(
            f"interrupted: flow {name}"
            + (f" run {rid[:8]} recorded as interrupted" if rid else "")
            + "; what was confirmed is kept and the next run resumes",
            highlight=False,
        )
        return INTERRUPTED
    if result.state == RunState.LOCKED and not as_json:
        console.print(f"locked: {result.error}", highlight=False)
        return result.exit_code
    attach_reasons(store, result)
    if as_json:
        console.print_json(json.dumps(summary_json(result), default=str))
    else:
        print_summary(result, console)
    if result.state == RunState.STOPPED:
        return STOPPED
    return result.exit_code


INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
STOPPED = 143  # 128 + SIGTERM: the run stopped early, cleanly; the next run carries on


def _log_event(kind: str, event: dict[str, Any]) -> None:
    """-v: every audit event of the run as a log line (the same scrubbing applies on the handler)."""
    level = logging.INFO if not kind.startswith(("http", "sftp.op")) else logging.DEBUG
    details = event.get("details") or {}
    log.log(level, "%s %s %s %s", kind, event.get("subject") or "", event.get("outcome") or "ok",
            json.dumps(details, default=str, sort_keys=True) if details else "")  # fmt: skip


def attach_reasons(store: Store, result: RunResult) -> None:
    """A failed file's row says why: its first failing line and Kinetic's message, not only a count."""
    for f in result.files:
        if f.get("state") == FileState.ERROR and f.get("id") is not None:
            row = store.ledger.file(int(f["id"]))
            if row is not None:
                f["reason"] = file_reason(store, row)
    if result.error is None and result.state == RunState.PARTIAL:
        reasons = [f"{f['name']}: {f['reason']}" for f in result.files if f.get("reason")]
        if reasons:
            result.error = reasons[0]


def summary_json(result: RunResult) -> dict[str, Any]:
    """The run summary as JSON (``run --json``, ``replay --json``)."""
    return {"flow": result.flow, "direction": result.direction, "run_id": result.run_id, "state": result.state,
            "counts": {k: v for k, v in result.counts.items() if k != "exit_code"}, "files": result.files,
            "error": result.error, "preview": result.preview}  # fmt: skip


def print_summary(result: RunResult, console: Console) -> None:
    """The summary table, the files, the reason and where the audit trail is."""
    colours: dict[str, str] = {RunState.SUCCEEDED: "green", RunState.DRY_RUN: "cyan", RunState.PARTIAL: "yellow"}
    colour = colours.get(result.state, "red")
    table = Table(title=f"{result.flow} ({result.direction}) [{colour}]{result.state}[/]", title_justify="left")
    table.add_column("count")
    table.add_column("value", justify="right")
    for key, value in sorted(result.counts.items()):
        if key != "exit_code":
            table.add_row(key.replace("_", " "), str(value))
    console.print(table)
    if result.files:
        files = Table(title="files", title_justify="left")
        keys = [k for k in ("id", "name", "remote_path", "state", "records", "size", "moved_to", "how", "error",
                            "reason", "local") if any(k in f for f in result.files)]  # fmt: skip
        for k in keys:
            files.add_column(k)
        for f in result.files:
            files.add_row(*[_cell(f.get(k)) for k in keys])
        console.print(files)
    if result.preview:
        console.print("records that would be posted:" if result.state == RunState.DRY_RUN else "first records:",
                      highlight=False)  # fmt: skip
        for row in result.preview:
            if "trace" in row and "lines" in row:
                _print_advice(row, console)
            else:
                console.print("  " + json.dumps(row, default=str), highlight=False, markup=False)
    for f in result.files:
        for problem in f.get("problems") or []:
            console.print(f"  {f.get('name')}: {problem}", highlight=False, markup=False)
        for text in f.get("acks") or []:
            console.print(f"acknowledgment that would be sent for {f.get('name')}:", highlight=False)
            console.print(text, highlight=False, markup=False)
    if result.error:
        console.print(f"[red]error:[/] {result.error}", highlight=False)
    if result.run_id and result.run_id != "dry-run":
        console.print(f"audit trail: ml-connector audit --run {result.run_id[:8]}", highlight=False)


def _print_advice(row: dict[str, Any], console: Console) -> None:
    """One 820 payment as a person reads it: trace, parties, amounts, then each remittance line."""
    payer, payee = row.get("payer") or {}, row.get("payee") or {}
    lines = [
        f"  {row.get('record')}: trace {row.get('trace')}  {row.get('method')} {row.get('amount')} "
        f"{row.get('currency') or ''}  date {row.get('date') or '-'}",
        f"    payer {payer.get('name')!s} ({payer.get('qualifier') or '-'} {payer.get('id') or '-'})"
        f"  payee {payee.get('name')!s} ({payee.get('qualifier') or '-'} {payee.get('id') or '-'})",
        f"    BPR02 {row.get('amount')}  sum of RMR04 {row.get('sum_rmr04')}"
        + (f"  MISMATCH {row['mismatch']}" if "mismatch" in row else ""),
    ]
    if row.get("mapped"):
        lines.append("    mapped " + ", ".join(f"{k}={v}" for k, v in row["mapped"].items()))
    for ln in row.get("lines", []):
        extra = "".join(f" {k} {ln[k]}" for k in ("invoice_amount", "discount", "adjustments") if k in ln)
        lines.append(f"    {ln['qualifier']} {ln['invoice']}: paid {ln['paid']}{extra}")
    for text in lines:
        console.print(text, highlight=False, markup=False)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in sorted(value.items()))
    return str(value)
