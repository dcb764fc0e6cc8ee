"""Commands. Each one resolves the home once, opens what it needs, and prints through Rich."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from .. import __version__
from ..errors import ConfigError
from ..home import Home
from ..logs import configure_logging

# Start-up time matters (every cron line and monitor check pays it): the database, pydantic models,
# asyncssh and the flow engine are imported inside the commands that use them, not here.
if TYPE_CHECKING:
    from ..config import FlowsFile
    from ..store import Store

app = typer.Typer(
    name="ml-connector",
    help="Epicor Kinetic <-> SFTP flat files (CSV, fixed-width, X12), with a ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
connections_app = typer.Typer(help="Epicor and SFTP connections (stored encrypted).", no_args_is_help=True)
keys_app = typer.Typer(help="The master key.", no_args_is_help=True)
flows_app = typer.Typer(help="Flows defined in flows.yaml.", no_args_is_help=True)
app.add_typer(connections_app, name="connections")
app.add_typer(keys_app, name="keys")
app.add_typer(flows_app, name="flows")

# emoji=False: a partner's file name such as ``inv:ok:1.csv`` prints as written, not with an emoji.
out = Console(soft_wrap=True, emoji=False)
err = Console(stderr=True, soft_wrap=True, emoji=False)


@dataclass
class _State:
    home: Home


def _state(ctx: typer.Context) -> _State:
    state = ctx.find_root().obj
    assert isinstance(state, _State)
    return state


def _load_flows(path: Path) -> FlowsFile:
    from ..config import load_flows

    return load_flows(path)


def _database_url(ctx: typer.Context) -> str:
    """The home's database URL; a default SQLite home must exist (``init`` creates it)."""
    home = _state(ctx).home
    default_sqlite = f"sqlite:///{home.sqlite_path}" == home.database_url
    if default_sqlite and not home.sqlite_path.exists():
        raise ConfigError(f"no database at {home.sqlite_path}; run 'ml-connector init' first")
    return home.database_url


def _open_store(ctx: typer.Context) -> Store:
    from ..store import Store

    return Store.open(_database_url(ctx))


def _version(value: bool) -> None:
    if value:
        out.print(f"ml-connector {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option("--home", envvar="ML_CONNECTOR_HOME", help="Home folder [default: ~/.ml-connector]"),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="ML_CONNECTOR_DATABASE_URL",
            help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db [default: SQLite in home]",
            show_envvar=True,
        ),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            metavar="",
            help="More log detail on stderr: -v info, -vv debug (repeat the letter)",
        ),
    ] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version")
    ] = False,
) -> None:
    """ml-connector: move vendors, invoices and payments between Kinetic and partners' SFTP."""
    state = _State(Home.resolve(home, database_url))
    if verbose:
        _verbose(verbose, state.home, ctx.invoked_subcommand)
    ctx.obj = state


def _verbose(level: int, home: Home, command: str | None) -> None:
    """-v: ml-connector's own log lines (each run's events); -vv: debug, plus HTTP and SSH libraries."""
    from ..store.db import describe_url

    handler = configure_logging(logging.INFO if level == 1 else logging.DEBUG)
    for name in ("httpx", "asyncssh"):
        lib = logging.getLogger(name)
        lib.handlers = [h for h in lib.handlers if not getattr(h, "_ml_connector", False)]
        lib.addHandler(handler)  # the same redacting handler: secrets are scrubbed here too
        lib.setLevel(logging.INFO if level >= 2 else logging.WARNING)
        lib.propagate = False
    logging.getLogger("ml_connector.cli").info(
        "%s: home %s, database %s", command or "-", home.path, describe_url(home.database_url)
    )


# --- init ------------------------------------------------------------------------------------


@app.command()
def init(ctx: typer.Context) -> None:
    """Create the home folder, master key, database, staging folder and a starter flows.yaml."""
    from ..store import Store
    from ..store.db import describe_url

    home = _state(ctx).home
    done = home.init()
    with Store.open(home.database_url) as store:
        store.audit.record("home.init", subject=str(home.path), details={"created": done})
    for line in done:
        out.print(f"[green]✓[/] {line}")
    out.print(f"[green]✓[/] database ready: {describe_url(home.database_url)}")
    if not done:
        out.print("(everything already existed; nothing was changed)")


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
