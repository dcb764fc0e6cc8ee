"""Kinetic authentication as an ``httpx.Auth``: the API key on every call, plus Basic or a token.

Token auth (``TokenResource.svc``): a token is requested before the first call, refreshed ahead
of its expiry (a margin, at most a tenth of a short lifetime), and once more when a call gets a
401 (revoked or expired early); a second 401 is the answer. The token request is an ordinary
request yielded from the auth flow, so it shares the client's connection pool and timeouts; a
refused token request raises the mapped error (throttling carries ``Retry-After``), and the
client's one retry loop decides what to do with it. Kept apart from the retry loop on purpose.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

import httpx

from ..connections import EpicorSettings

TOKEN_PATH = "/TokenResource.svc/"  # noqa: S105 - a URL path, not a secret
Observe = Callable[[httpx.Response, float], None]
MapError = Callable[[httpx.Response], Exception]


class KineticAuth(httpx.Auth):
    """``x-api-key`` + Basic, or ``x-api-key`` + a Bearer token kept fresh."""

    def __init__(
        self,
        settings: EpicorSettings,
        *,
        map_error: MapError,
        clock: Callable[[], float] = time.monotonic,
        observe: Observe | None = None,
    ) -> None:
        self.settings = settings
        self._map_error = map_error
        self._clock = clock
        self._observe = observe
        self._token: str | None = None
        self._expires = 0.0
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()
        self.refreshes = 0
        self.lifetime_s: float | None = None
        self.sending_token_request = False  # the client's write classification needs to know

    # --- what the client reads --------------------------------------------------------------

    def expires_in(self) -> float | None:
        """Seconds until the current token expires (None: no token yet, or Basic auth)."""
        return None if self._token is None else self._expires - self._clock()

    def _common(self, request: httpx.Request) -> None:
        request.headers["x-api-key"] = self.settings.api_key.reveal()
        request.headers.setdefault("Accept", "application/json")
        if self.settings.plant:
            request.headers["CallSettings"] = f'{{"Company":"{self.settings.company}","Plant":"{self.settings.plant}"}}'

    def _token_request(self, like: httpx.Request) -> httpx.Request:
        url = like.url.copy_with(path=httpx.URL(self.settings.url).path.rstrip("/") + TOKEN_PATH, query=None)
        return httpx.Request(
            "POST",
            url,
            headers={
                "username": self.settings.username,
                "password": self.settings.password.reveal(),
                "x-api-key": self.settings.api_key.reveal(),
                "Accept": "application/json",
            },
        )

    def _take(self, response: httpx.Response, started: float) -> None:
        if self._observe is not None:
            self._observe(response, started)
        if response.status_code != 200:
            raise self._map_error(response)
        data: dict[str, Any] = response.json()
        lifetime = float(data.get("ExpiresIn") or 3600)
        now = self._clock()
        self._token = str(data["AccessToken"])
        self._expires = now + lifetime
        self._refresh_at = now + lifetime - min(self.settings.token_refresh_margin_s, lifetime / 10)
        self.lifetime_s = lifetime
        self.refreshes += 1

    def _stale(self) -> bool:
        return self._token is None or self._clock() >= self._refresh_at

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Sign ``request``; with tokens, refresh ahead of expiry and once after a 401."""
        self._common(request)
        if self.settings.auth != "token":
            user, password = self.settings.username, self.settings.password.reveal()
            request.headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            yield request
            return
        for attempt in (1, 2):
            async with self._lock:  # one token request for many concurrent calls
                stale = self._stale() if attempt == 1 else request.headers.get("Authorization") == self._bearer()
                if stale:
                    self.sending_token_request = True
                    started = time.monotonic()
                    try:
                        token_response = yield self._token_request(request)
                        await token_response.aread()
                    finally:
                        self.sending_token_request = False
                    self._take(token_response, started)
            request.headers["Authorization"] = self._bearer()
            response = yield request
            if response.status_code != 401:
                return

    def _bearer(self) -> str:
        return f"Bearer {self._token}"
