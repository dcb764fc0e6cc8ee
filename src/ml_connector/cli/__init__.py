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

# Each command group registers its commands on import.
from . import connections_cmds as _connections  # noqa: F401
from . import console as _console  # noqa: F401  (registers runs, console, users)
from . import flows_cmds as _flows  # noqa: F401
from . import keys_cmds as _keys  # noqa: F401
from . import ledger_cmds as _ledger  # noqa: F401
from . import ops_cmds as _ops  # noqa: F401
from ._app import app


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one-line errors with the documented exit codes."""
    configure_logging(logging.WARNING)
    args = hoist_verbose(sys.argv[1:] if argv is None else argv)
    try:
        # Standalone mode: Typer itself reports usage errors (exit 2) and handles Exit/Abort.
        app(args=args, prog_name="ml-connector")
    except MLConnectorError as exc:
        sys.stderr.write(f"error: {redact_text(str(exc))}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)


def hoist_verbose(argv: list[str]) -> list[str]:
    """``-v``/``-vv``/``--verbose`` count wherever they are written (``ml-connector run X -vv``)."""
    front: list[str] = []
    rest: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--":
            rest += argv[i:]
            break
        if arg == "--verbose" or (arg.startswith("-v") and set(arg[1:]) == {"v"}):
            front.append(arg)
        else:
            rest.append(arg)
    return front + rest


__all__ = ["app", "hoist_verbose", "main", "typer"]
