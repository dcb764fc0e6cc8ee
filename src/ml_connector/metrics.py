"""Prometheus metrics and health while serving: ``/metrics`` and ``/healthz`` on a local port."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .flows import RunResult

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter("mlc_runs", "Flow runs by final state", ["flow", "state"], registry=r)
        self.records = Counter("mlc_records", "Records by outcome", ["flow", "outcome"], registry=r)
        self.files = Counter("mlc_files", "Files by outcome", ["flow", "outcome"], registry=r)
        self.failures = Counter("mlc_failures", "Failed runs, files and records", ["flow", "what"], registry=r)
        self.bytes = Counter("mlc_bytes", "Bytes transferred over SFTP", ["flow", "direction"], registry=r)
        self.last_success = Gauge("mlc_last_success_timestamp_seconds", "Last successful run", ["flow"], registry=r)
        self.api_latency = Histogram(
            "mlc_api_latency_seconds", "Kinetic API call latency", ["method"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.sftp_latency = Histogram(
            "mlc_sftp_latency_seconds", "SFTP transfer latency", ["op"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.started = time.time()
        self.last_results: dict[str, dict[str, Any]] = {}

    def observe(self, kind: str, event: dict[str, Any]) -> None:
        """Audit-event hook (``RunContext.observe``): latencies and bytes as they happen."""
        ms = event.get("duration_ms")
        flow = str(event.get("flow") or "")
        details = event.get("details") or {}
        if kind == "epicor.call" and ms is not None:
            method = str(event.get("subject") or "").rsplit("/", 1)[-1] or "?"
            self.api_latency.labels(method=method).observe(ms / 1000)
        elif kind in ("sftp.upload", "sftp.download", "sftp.move") and ms is not None:
            self.sftp_latency.labels(op=kind.removeprefix("sftp.")).observe(ms / 1000)
            if kind != "sftp.move":
                self.bytes.labels(flow=flow, direction="out" if kind == "sftp.upload" else "in").inc(
                    int(details.get("size") or 0)
                )

    def record(self, result: RunResult) -> None:
        flow, c = result.flow, result.counts
        self.runs.labels(flow=flow, state=result.state).inc()
        if result.state == "succeeded":
            self.last_success.labels(flow=flow).set(time.time())
        if result.state in ("failed", "partial"):
            self.failures.labels(flow=flow, what="run").inc()
        for key, outcome in (
            ("records", "sent"),
            ("records_posted", "posted"),
            ("records_failed", "failed"),
            ("records_unknown", "unknown"),
        ):
            if c.get(key):
                self.records.labels(flow=flow, outcome=outcome).inc(c[key])
        for key, outcome in (
            ("files", "delivered"),
            ("files_done", "done"),
            ("files_error", "error"),
            ("files_duplicate", "duplicate"),
        ):
            if c.get(key):
                self.files.labels(flow=flow, outcome=outcome).inc(c[key])
        if c.get("records_failed"):
            self.failures.labels(flow=flow, what="record").inc(c["records_failed"])
        if c.get("files_error"):
            self.failures.labels(flow=flow, what="file").inc(c["files_error"])
        self.last_results[flow] = {"state": result.state, "run_id": result.run_id, "at": time.time()}

    def app(self, scheduler: Any = None) -> Starlette:
        async def metrics(_: Request) -> Response:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

        async def healthz(_: Request) -> Response:
            running = sorted(getattr(scheduler, "running", {}) or {})
            return JSONResponse(
                {
                    "status": "ok",
                    "uptime_s": round(time.time() - self.started, 1),
                    "running": running,
                    "last": self.last_results,
                }
            )

        return Starlette(routes=[Route("/metrics", metrics), Route("/healthz", healthz)])
