"""The ``ml-connector`` command line (Typer + Rich).

Exit codes (DESIGN.md section 5): 0 success, 1 run finished with failed records/files,
2 usage/config error, 3 connection/auth failure.
"""

from __future__ import annotations

import logging
import sys

import typer

from ..errors import MLConnectorError
from ..logs import configure_logging, redact_text
from . import check as _check  # noqa: F401 - registers "connections check"
from ._app import app


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one-line errors with the documented exit codes."""
    configure_logging(logging.WARNING)
    try:
        # Standalone mode: Typer itself reports usage errors (exit 2) and handles Exit/Abort.
        app(args=argv, prog_name="ml-connector")
    except MLConnectorError as exc:
        sys.stderr.write(f"error: {redact_text(str(exc))}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)


__all__ = ["app", "main", "typer"]
