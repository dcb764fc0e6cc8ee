"""Alerts: a file in the error folder, failed records, a failed run, repeated failures, a host key
change, an outbound X12 file with no 997/TA1 in time. Delivered by webhook (JSON POST, optional
HMAC-SHA256 signature header) and email (SMTP with STARTTLS and login), throttled per flow and
kind so a broken partner does not send a thousand mails; every alert is in the audit trail.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx

from .config import AlertsConfig
from .flows import RunResult
from .logs import redact_text
from .store import Store

SIGNATURE_HEADER = "X-ML-Connector-Signature"


@dataclass
class Alert:
    kind: str  # file_rejected, records_failed, run_failed, repeated_failures, host_key_changed, ack_overdue, …
    flow: str | None
    subject: str
    message: str
    severity: str = "error"
    details: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


class Alerter:
    def __init__(self, config: AlertsConfig, store: Store, environ: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.store = store
        self.environ = os.environ if environ is None else environ

    # --- what deserves an alert -----------------------------------------------------------------

    def from_run(self, result: RunResult) -> list[Alert]:
        out: list[Alert] = []
        if result.run_id and result.run_id != "dry-run":
            for e in self.store.audit.query(run_id=result.run_id, kind="alert", limit=None):
                kind = e.kind.removeprefix("alert.")
                message = str(e.details.get("reason") or e.details.get("error") or kind.replace("_", " "))
                out.append(
                    Alert(
                        kind,
                        result.flow,
                        e.subject or result.flow,
                        message,
                        "error" if e.outcome == "error" else "warning",
                        dict(e.details),
                    )
                )
            for e in self.store.audit.query(run_id=result.run_id, kind="sftp.host_key_changed", limit=None):
                out.append(
                    Alert(
                        "host_key_changed", result.flow, e.subject or "", "HOST KEY CHANGED", "error", dict(e.details)
                    )
                )
        if result.state == "failed":
            out.append(
                Alert(
                    "run_failed",
                    result.flow,
                    result.flow,
                    result.error or "the run failed",
                    "error",
                    {"run_id": result.run_id},
                )
            )
            runs = self.store.ledger.runs(result.flow, limit=self.config.repeated_failures)
            if len(runs) == self.config.repeated_failures and all(r.state in ("failed", "crashed") for r in runs):
                out.append(
                    Alert(
                        "repeated_failures",
                        result.flow,
                        result.flow,
                        f"the last {len(runs)} runs of {result.flow} failed",
                        "error",
                        {"errors": [r.error for r in runs]},
                    )
                )
        return out

    def overdue_acks(self, now: datetime | None = None) -> list[Alert]:
        """Outbound X12 files still waiting for their 997/TA1 after ``ack_timeout_minutes``."""
        now = now or datetime.now(UTC)
        limit = timedelta(minutes=self.config.ack_timeout_minutes)
        out = []
        for f in self.store.ledger.files(direction="outbound", states=["delivered"]):
            if f.details.get("ack") != "pending" or f.details.get("ack_overdue_alerted"):
                continue
            sent = f.details.get("delivered_at")
            since = datetime.fromisoformat(sent) if isinstance(sent, str) else f.updated_at
            if now - since >= limit:
                out.append(
                    Alert(
                        "ack_overdue",
                        f.flow,
                        f.remote_path,
                        f"no 997/TA1 for {f.remote_path} after {self.config.ack_timeout_minutes:g} minutes",
                        "warning",
                        {"file_id": f.id},
                    )
                )
                self.store.ledger.update_file(f.id, details={"ack_overdue_alerted": True})
        return out

    # --- delivery -------------------------------------------------------------------------------

    def _throttled(self, alert: Alert) -> bool:
        if self.config.throttle_minutes <= 0:
            return False
        since = datetime.now(UTC) - timedelta(minutes=self.config.throttle_minutes)
        sent = self.store.audit.query(flow=alert.flow, kind="alert_delivery.sent", since=since, limit=None)
        return any(e.details.get("kind") == alert.kind for e in sent)

    async def deliver(self, alerts: list[Alert]) -> dict[str, int]:
        counts = {"sent": 0, "throttled": 0, "failed": 0}
        for alert in alerts:
            if self._throttled(alert):
                counts["throttled"] += 1
                self.store.audit.record(
                    "alert_delivery.throttled",
                    flow=alert.flow,
                    subject=alert.subject,
                    outcome="skipped",
                    details={"kind": alert.kind},
                )
                continue
            errors = []
            channels = []
            if self.config.webhook is not None:
                channels.append("webhook")
                try:
                    await self._webhook(alert)
                except (httpx.HTTPError, OSError) as exc:
                    errors.append(f"webhook: {type(exc).__name__}: {exc}")
            if self.config.email is not None:
                channels.append("email")
                try:
                    await asyncio.to_thread(self._email, alert)
                except (smtplib.SMTPException, OSError) as exc:
                    errors.append(f"email: {type(exc).__name__}: {exc}")
            ok = not errors
            counts["sent" if ok else "failed"] += 1
            self.store.audit.record(
                "alert_delivery.sent" if ok else "alert_delivery.failed",
                flow=alert.flow,
                subject=alert.subject,
                outcome="ok" if ok else "error",
                details={
                    "kind": alert.kind,
                    "channels": channels,
                    "message": alert.message,
                    "errors": [redact_text(e) for e in errors],
                },
            )
        return counts

    def _payload(self, alert: Alert) -> bytes:
        return json.dumps({"source": "ml-connector", **asdict(alert)}, default=str, sort_keys=True).encode()

    async def _webhook(self, alert: Alert) -> None:
        hook = self.config.webhook
        assert hook is not None
        body = self._payload(alert)
        headers = {"Content-Type": "application/json", "User-Agent": "ml-connector"}
        if hook.secret_env:
            secret = self.environ.get(hook.secret_env)
            if not secret:
                raise OSError(f"env var {hook.secret_env} (webhook secret) is not set")
            headers[SIGNATURE_HEADER] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        async with httpx.AsyncClient(timeout=hook.timeout_s) as http:
            resp = await http.post(hook.url, content=body, headers=headers)
            resp.raise_for_status()

    def _email(self, alert: Alert) -> None:
        mail = self.config.email
        assert mail is not None
        msg = EmailMessage()
        msg["Subject"] = f"[ml-connector] {alert.severity}: {alert.kind.replace('_', ' ')} ({alert.flow or '-'})"
        msg["From"] = mail.sender
        msg["To"] = ", ".join(mail.to)
        msg.set_content(
            f"{alert.message}\n\nflow: {alert.flow}\nsubject: {alert.subject}\nat: {alert.at}\n\n"
            + json.dumps(alert.details, indent=2, default=str)
        )
        with smtplib.SMTP(mail.host, mail.port, timeout=mail.timeout_s) as smtp:
            if mail.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=mail.ca_file))
            if mail.username:
                password = self.environ.get(mail.password_env or "", "")
                if not password:
                    raise smtplib.SMTPException(f"env var {mail.password_env} (SMTP password) is not set")
                smtp.login(mail.username, password)
            smtp.send_message(msg)


async def deliver_run_alerts(config: AlertsConfig, store: Store, result: RunResult) -> dict[str, int]:
    """The alerts a finished run deserves, delivered and throttled in the database.

    One path for `serve` and `run` alike: a flow scheduled by cron alerts exactly as one run by
    the scheduler does, and the throttle (alert_delivery.sent events) is shared between them.
    """
    if config.webhook is None and config.email is None:
        return {"sent": 0, "throttled": 0, "failed": 0}  # no channel: the alert.* audit events are the record
    alerter = Alerter(config, store)
    return await alerter.deliver(alerter.from_run(result))
