"""The console's guards: security headers, CSRF tokens, login rate limits, one-shot action nonces.

Cookies are signed by Starlette's ``SessionMiddleware`` (itsdangerous), ``HttpOnly``,
``SameSite=Strict``, ``Secure`` whenever TLS or a TLS-terminating proxy is in front, and expire
(the signature carries a timestamp checked on every request).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..secrets import Keyring

# No inline script or style anywhere: every script and stylesheet is a file under /static.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds the CSP and friends to every response; pages are not cached (they show ledgers)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += HEADERS
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)


def host_name(header: str) -> str:
    """The host of a ``Host`` header without its port: ``[::1]:8080`` -> ``::1``, ``A.b:80`` -> ``a.b``."""
    h = header.strip().lower()
    if h.startswith("["):
        end = h.find("]")
        return h[1:end] if end > 0 else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


class HostCheck:
    """Answers 400 to a request for a host the console does not serve.

    On loopback (no TLS, no proxy) only loopback names are served: a web page whose name an
    attacker resolves to 127.0.0.1 (DNS rebinding) cannot talk to the console through a browser.
    ``allowed_hosts`` adds names (a leading ``*.`` matches subdomains); with TLS or a proxy and no
    ``allowed_hosts`` every name is served, as before.
    """

    def __init__(self, app: ASGIApp, allowed: list[str], loopback_only: bool) -> None:
        self.app = app
        self.allowed = [a.lower() for a in allowed]
        self.loopback_only = loopback_only

    def allows(self, host: str) -> bool:
        from .settings import is_loopback

        if any(host == a or (a.startswith("*.") and host.endswith(a[1:])) for a in self.allowed):
            return True
        if self.loopback_only or self.allowed:
            return is_loopback(host)
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")
            if not self.allows(host_name(header)):
                from starlette.responses import PlainTextResponse

                await PlainTextResponse("Invalid host header", status_code=400)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def session_secret(keyring: Keyring) -> str:
    """A signing key for session cookies derived from the master key (rotating it logs everyone out)."""
    return hmac.new(keyring.keys[0], b"ml-connector console session cookies v1", hashlib.sha256).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(a: object, b: object) -> bool:
    """Constant-time comparison of two tokens (False unless both are non-empty strings)."""
    return isinstance(a, str) and isinstance(b, str) and bool(a) and hmac.compare_digest(a.encode(), b.encode())


@dataclass
class LoginLimiter:
    """At most ``attempts`` failed logins per name and per address within ``window_s``."""

    attempts: int = 5
    window_s: float = 300.0
    clock: Callable[[], float] = time.monotonic
    max_keys: int = 10_000
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, key: str) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        cutoff = self.clock() - self.window_s
        while q and q[0] < cutoff:
            q.popleft()
        return q

    def blocked(self, name: str, address: str) -> bool:
        return any(len(self._recent(k)) >= self.attempts for k in (f"user:{name.lower()}", f"addr:{address}"))

    def failed(self, name: str, address: str) -> None:
        for k in (f"user:{name.lower()}", f"addr:{address}"):
            self._recent(k).append(self.clock())
        if len(self._failures) > self.max_keys:  # a flood of names must not grow memory without bound
            self._evict()

    def _evict(self) -> None:
        """Drop keys with no failure inside the window, then (still too many) the stalest half."""
        cutoff = self.clock() - self.window_s
        for k in [k for k, q in self._failures.items() if not q or q[-1] < cutoff]:
            del self._failures[k]
        if len(self._failures) > self.max_keys:
            by_age = sorted(self._failures, key=lambda k: self._failures[k][-1])
            for k in by_age[: len(by_age) - self.max_keys // 2]:
                del self._failures[k]

    def succeeded(self, name: str) -> None:
        self._failures.pop(f"user:{name.lower()}", None)


@dataclass
class Nonces:
    """One-shot tokens on confirmation forms: a double submit or a replayed POST acts once at most."""

    ttl_s: float = 900.0
    clock: Callable[[], float] = time.monotonic
    _issued: dict[str, tuple[str, float]] = field(default_factory=dict)

    def issue(self, purpose: str) -> str:
        now = self.clock()
        for k in [k for k, (_, at) in self._issued.items() if now - at > self.ttl_s]:
            del self._issued[k]
        token = new_token()
        self._issued[token] = (purpose, now)
        return token

    def consume(self, token: str, purpose: str) -> bool:
        """True once for a token issued for ``purpose`` within the TTL; False ever after."""
        found = self._issued.pop(token, None)
        return found is not None and found[0] == purpose and self.clock() - found[1] <= self.ttl_s
