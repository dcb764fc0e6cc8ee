"""The console's settings (``serve.console`` in flows.yaml, or ``ml-connector console`` options).

Pure pydantic with no imports from the rest of the package, so ``config.py`` can embed it.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ConsoleSettings(BaseModel):
    """Off unless ``enabled``; loopback-only unless TLS or a trusted reverse proxy is configured."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="serve the operator console beside /metrics")
    tls_cert: Path | None = Field(None, description="TLS certificate (PEM) for a non-loopback bind")
    tls_key: Path | None = Field(None, description="TLS private key (PEM) for a non-loopback bind")
    behind_proxy: bool = Field(False, description="a reverse proxy terminates TLS; trust its X-Forwarded-*")
    trusted_proxies: list[str] = Field(default_factory=list, description="addresses whose X-Forwarded-* count")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="host names the console answers to besides loopback ones (*.example.com for subdomains); "
        "empty: loopback names only on a loopback bind, any name with TLS or a proxy",
    )
    session_minutes: float = Field(480, gt=0, le=7 * 24 * 60, description="a login lasts this long")
    actions: bool = Field(True, description="operators may act (run, replay, re-send...) from the console")
    login_attempts: int = Field(5, ge=1, description="failed logins per name or address before a pause")
    login_window_s: float = Field(300, gt=0, description="the window (and pause) of the login limit")


def is_loopback(host: str) -> bool:
    """``127.0.0.0/8``, ``::1`` or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, settings: ConsoleSettings) -> str | None:
    """Why the console must not listen on ``host`` with these settings, or None when it may."""
    if is_loopback(host):
        return None
    if bool(settings.tls_cert) != bool(settings.tls_key):
        return "give both --tls-cert and --tls-key"
    if settings.tls_cert and settings.tls_key:
        for p in (settings.tls_cert, settings.tls_key):
            if not p.is_file():
                return f"TLS file {p} does not exist"
        return None
    if settings.behind_proxy:
        if not settings.trusted_proxies:
            return "--behind-proxy needs the proxy's address(es): --trusted-proxy ADDRESS"
        for addr in settings.trusted_proxies:
            try:
                ipaddress.ip_network(addr, strict=False)
            except ValueError:
                return f"--trusted-proxy {addr!r} is not an IP address or network"
        return None
    return (
        f"refusing to serve the console on {host} (not loopback) without TLS: give --tls-cert and --tls-key, "
        "or --behind-proxy with --trusted-proxy ADDRESS"
    )
