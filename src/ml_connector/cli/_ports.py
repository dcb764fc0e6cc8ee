"""Listening ports: a port in use is one clear line naming it and the flag, before anything starts."""

from __future__ import annotations

import errno
import socket

from ..errors import UsageError


def bind(host: str, port: int, what: str, flag: str) -> socket.socket:
    """A listening socket on ``host:port`` (handed to the server), or a UsageError naming the flag."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # As uvicorn and asyncio do: a port in TIME_WAIT after a restart is free, one with a listener is not.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"{what}: port {port} on {host} is already in use; choose another with {flag}") from None
        if exc.errno == errno.EACCES:
            raise UsageError(
                f"{what}: port {port} on {host} needs privileges; choose one above 1023 with {flag}"
            ) from None
        raise UsageError(f"{what}: cannot listen on {host}:{port} ({exc.strerror}); change it with {flag}") from None
    return sock


def check_free(host: str, port: int, what: str, flag: str) -> None:
    """Fail early (nothing started yet) when ``port`` cannot be listened on; 0 means any port."""
    if port:
        bind(host, port, what, flag).close()
