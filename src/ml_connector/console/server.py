"""Serving the console: alone (``ml-connector console``) or beside /metrics in ``serve``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from typing import Any

from rich.console import Console as RichConsole
from starlette.applications import Starlette
from starlette.routing import Mount

from ..errors import UsageError
from ..home import Home
from ..store import Store
from ..users import Users
from .app import Console, create_app
from .settings import ConsoleSettings, check_bind

log = logging.getLogger(__name__)


def uvicorn_options(host: str, settings: ConsoleSettings) -> dict[str, Any]:
    """TLS and proxy options for uvicorn; refuses a bind the settings do not make safe."""
    problem = check_bind(host, settings)
    if problem:
        raise UsageError(problem)
    options: dict[str, Any] = {"proxy_headers": False}
    if settings.tls_cert and settings.tls_key:
        options.update(ssl_certfile=str(settings.tls_cert), ssl_keyfile=str(settings.tls_key))
    if settings.behind_proxy:
        # X-Forwarded-For/-Proto are believed only from these addresses (uvicorn's ProxyHeadersMiddleware).
        options.update(proxy_headers=True, forwarded_allow_ips=",".join(settings.trusted_proxies))
    return options


def console_url(host: str, port: int, settings: ConsoleSettings) -> str:
    """Where the console answers."""
    return f"http{'s' if settings.tls_cert else ''}://{host}:{port}/"


def with_console(
    base: Starlette, home: Home, store: Store, settings: ConsoleSettings, host: str, scheduler: Any = None
) -> tuple[Starlette, dict[str, Any]]:
    """``serve``: the console mounted at / beside /metrics and /healthz when configured, and uvicorn's options."""
    if not settings.enabled:
        return base, {}
    options = uvicorn_options(host, settings)
    base.router.routes.append(Mount("/", create_app(Console(home, store, settings, scheduler))))
    if not Users(store).count():
        log.warning("the console is on but nobody can log in yet: ml-connector users add NAME --role operator")
    return base, options


def serve_console(
    home: Home,
    store: Store,
    settings: ConsoleSettings,
    *,
    host: str,
    port: int,
    console: RichConsole,
    stop_after: float | None = None,
) -> None:
    """Run the console alone until Ctrl-C (``ml-connector console``)."""
    import uvicorn

    options = uvicorn_options(host, settings)
    # Bind first: a port in use is one clear line, not uvicorn's traceback and a half-started server.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another with --port") from None
    app = create_app(Console(home, store, settings))
    if not Users(store).count():
        console.print("no console users yet: add one with 'ml-connector users add NAME --role operator'")
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", **options))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        if stop_after is not None:
            loop.call_later(stop_after, lambda: setattr(server, "should_exit", True))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if server.started:
            mode = "" if settings.actions else " (read-only)"
            console.print(f"console on {console_url(host, port, settings)}{mode}; Ctrl-C stops it", highlight=False)
        await task

    try:
        asyncio.run(main())
    finally:
        sock.close()
