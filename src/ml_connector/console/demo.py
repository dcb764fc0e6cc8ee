"""The demo's last lines: where the console is and a login made for this demo home only."""

from __future__ import annotations

import contextlib
import secrets
import shlex
from pathlib import Path

from ..errors import NotFoundError
from ..store import Store
from ..users import Users

DEMO_USER = "demo"


def demo_login(home: Path, port: int = 9464) -> list[str]:
    """Create (or replace) the ``demo`` operator with a fresh random password; the lines to print."""
    password = secrets.token_urlsafe(12)
    store = Store.open(f"sqlite:///{home / 'ml-connector.db'}")
    try:
        users = Users(store)
        with contextlib.suppress(NotFoundError):
            users.remove(DEMO_USER)
        users.add(DEMO_USER, "operator", password)
    finally:
        store.close()
    h = shlex.quote(str(home))
    return [
        "The operator console (runs, files, reasons, replay from the browser):",
        f"  ml-connector --home {h} console --actions      then open http://127.0.0.1:{port}/",
        f"  log in as {DEMO_USER} / {password}   (made for this demo home only; shown once, stored hashed)",
    ]
