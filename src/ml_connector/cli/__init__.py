"""The ``ml-connector`` command line (Typer + Rich).

Exit codes (DESIGN.md section 5): 0 success, 1 run finished with failed records/files,
2 usage/config error, 3 connection/auth failure.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import typer

from ..errors import MLConnectorError
from ..logs import configure_logging, redact_text

# Each command module registers its commands on import. ``main`` imports only the module of the
# command the line names (Typer then builds a tree of a few commands, not all 30: start-up time
# is paid by every cron line and monitor check); the root ``--help``, no command, or a word that
# is not a command import them all, in this order (the order of the help listing).
# tests/test_cli.py holds this table equal to what each module registers.
MODULES = ("check", "connections_cmds", "console", "flows_cmds", "keys_cmds", "ledger_cmds", "ops_cmds")
COMMANDS: dict[str, tuple[str, ...]] = {
    "init": (),  # in _app
    "connections": ("check", "connections_cmds"),
    "keys": ("keys_cmds",),
    "flows": ("flows_cmds",),
    "run": ("flows_cmds",),
    "runs": ("console",),
    "users": ("console",),
    "console": ("console",),
    "audit": ("ledger_cmds",),
    "files": ("ledger_cmds",),
    "replay": ("ledger_cmds",),
    "sandbox": ("ops_cmds",),
    "demo": ("ops_cmds",),
    "serve": ("ops_cmds",),
    "status": ("ops_cmds",),
    "prune": ("ops_cmds",),
}
ROOT_OPTIONS_WITH_VALUE = ("--home", "--database-url")


def command_word(argv: list[str]) -> str | None:
    """The command a command line names (None when there is none, e.g. ``--help`` alone)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ROOT_OPTIONS_WITH_VALUE:
            skip = True
        elif arg == "--":
            return None
        elif not arg.startswith("-"):
            return arg
    return None


def load_commands(argv: list[str] | None = None) -> typer.Typer:
    """The app with the commands ``argv`` needs registered (all of them when ``argv`` is None)."""
    word = None if argv is None else command_word(argv)
    names = COMMANDS.get(word, MODULES) if word is not None else MODULES
    for name in names:
        importlib.import_module(f".{name}", __name__)
    from ._app import app

    return app


def __getattr__(name: str) -> Any:
    if name == "app":  # ``from ml_connector.cli import app``: every command
        return load_commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one-line errors with the documented exit codes."""
    configure_logging(logging.WARNING)
    args = hoist_verbose(sys.argv[1:] if argv is None else argv)
    app = load_commands(args)
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


__all__ = ["app", "command_word", "hoist_verbose", "load_commands", "main", "typer"]
