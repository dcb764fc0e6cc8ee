"""Connections: add, list, show, test, remove (secrets never on argv)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ..errors import UsageError
from ._secrets_input import check_single_stdin, read_secret, refuse_argv_secret

# Start-up time matters (every cron line and monitor check pays it): the database, pydantic models,
# asyncssh and the flow engine are imported inside the commands that use them, not here.
if TYPE_CHECKING:
    from ..store import Store
from ._app import _load_flows, _open_store, _state, _ts, connections_app, out

# --- connections -----------------------------------------------------------------------------

SecretEnv = Annotated[str | None, typer.Option(metavar="NAME", help="read from this environment variable")]
SecretFile = Annotated[Path | None, typer.Option(metavar="PATH", help="read from this file")]
SecretStdin = Annotated[bool, typer.Option(help="read one line from standard input")]
Refused = Annotated[str | None, typer.Option(hidden=True)]


@connections_app.command("add-epicor")
def add_epicor(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Connection name, used by flows")],
    url: Annotated[str, typer.Option(help="Base URL: https://HOST/INSTANCE")],
    company: Annotated[str, typer.Option(help="Company ID (e.g. EPIC06)")],
    username: Annotated[str, typer.Option(help="Kinetic user")],
    plant: Annotated[str | None, typer.Option(help="Plant / site")] = None,
    auth: Annotated[str, typer.Option(help="basic, or token (TokenResource.svc Bearer)")] = "basic",
    api_key_env: SecretEnv = None,
    api_key_file: SecretFile = None,
    api_key_stdin: SecretStdin = False,
    password_env: SecretEnv = None,
    password_file: SecretFile = None,
    password_stdin: SecretStdin = False,
    timeout: Annotated[float, typer.Option(help="HTTP timeout, seconds")] = 30.0,
    ca_bundle: Annotated[Path | None, typer.Option(help="CA bundle (PEM) for an instance with a private CA")] = None,
    datetime_literal: Annotated[
        str, typer.Option(help="$filter datetimes: zoned (2026-01-31T00:00:00Z) or naive (no zone)")
    ] = "zoned",
    api_key: Refused = None,
    password: Refused = None,
) -> None:
    """Add an Epicor Kinetic connection (API key and password from env, file or stdin)."""
    from ..connections import EpicorSettings

    refuse_argv_secret("--api-key", api_key)
    refuse_argv_secret("--password", password)
    check_single_stdin(api_key_stdin, password_stdin)
    key = read_secret("api-key", env=api_key_env, file=api_key_file, stdin=api_key_stdin)
    pw = read_secret("password", env=password_env, file=password_file, stdin=password_stdin)
    if key is None:
        raise UsageError("an API key is required: --api-key-env NAME, --api-key-file PATH or --api-key-stdin")
    if pw is None:
        raise UsageError("a password is required: --password-env NAME, --password-file PATH or --password-stdin")
    if auth not in ("basic", "token"):
        raise UsageError("--auth must be 'basic' or 'token'")
    settings = EpicorSettings(
        url=url.rstrip("/"),
        company=company,
        plant=plant,
        auth=auth,  # type: ignore[arg-type]
        username=username,
        api_key=key,
        password=pw,
        timeout_s=timeout,
        ca_bundle=str(ca_bundle.resolve()) if ca_bundle else None,
        datetime_literal=datetime_literal,
    )
    if ca_bundle and not ca_bundle.is_file():
        raise UsageError(f"--ca-bundle {ca_bundle}: not a file")
    home = _state(ctx).home
    keyring = home.keyring()
    with _open_store(ctx) as store:
        stored = store.connections.add(name, settings, keyring)
    out.print(f"[green]✓[/] added Epicor connection {stored.name!r} (encrypted with key {stored.key_id})")


@connections_app.command("add-sftp")
def add_sftp(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Connection name, used by flows")],
    host: Annotated[str, typer.Option(help="SFTP server host name or address")],
    username: Annotated[str, typer.Option(help="SFTP user")],
    port: Annotated[int, typer.Option(help="SSH port")] = 22,
    key_file: Annotated[Path | None, typer.Option(help="Private key file (OpenSSH or PEM)")] = None,
    passphrase_env: SecretEnv = None,
    passphrase_file: SecretFile = None,
    passphrase_stdin: SecretStdin = False,
    password_env: SecretEnv = None,
    password_file: SecretFile = None,
    password_stdin: SecretStdin = False,
    host_key: Annotated[
        list[str] | None,
        typer.Option(help="Pinned host public key line, e.g. 'ssh-ed25519 AAAA…' (repeatable)"),
    ] = None,
    fingerprint: Annotated[
        list[str] | None, typer.Option(help="Pinned host key fingerprint 'SHA256:…' (repeatable)")
    ] = None,
    known_hosts: Annotated[
        Path | None, typer.Option(help="Take pinned keys for --host from this known_hosts file")
    ] = None,
    password: Refused = None,
    passphrase: Refused = None,
    private_key: Refused = None,
) -> None:
    """Add an SFTP connection (key or password auth) with its host key pinned."""
    from ..connections import SftpSettings, check_fingerprint, check_private_key, host_key_line, known_hosts_keys

    refuse_argv_secret("--password", password)
    refuse_argv_secret("--passphrase", passphrase)
    if private_key is not None:
        raise UsageError("--private-key does not take key material on the command line; use --key-file PATH")
    check_single_stdin(passphrase_stdin, password_stdin)
    pw = read_secret("password", env=password_env, file=password_file, stdin=password_stdin)
    phrase = read_secret("passphrase", env=passphrase_env, file=passphrase_file, stdin=passphrase_stdin)
    pkey = read_secret("private-key", env=None, file=key_file, stdin=False) if key_file else None
    if pkey is not None:
        check_private_key(pkey.reveal(), phrase.reveal() if phrase else None, key_file)
    pins = [host_key_line(line) for line in host_key or []]
    fps = [check_fingerprint(fp) for fp in fingerprint or []]
    if known_hosts is not None:
        pins += known_hosts_keys(known_hosts, host, port)
    if not pins and not fps:
        raise UsageError(
            "no host key pinned: give --host-key 'TYPE BASE64', --fingerprint SHA256:… or "
            "--known-hosts PATH (ml-connector never accepts an unknown host key)"
        )
    settings = SftpSettings(
        host=host,
        port=port,
        username=username,
        password=pw,
        private_key=pkey,
        passphrase=phrase,
        host_keys=tuple(pins),
        host_fingerprints=tuple(fps),
    )
    keyring = _state(ctx).home.keyring()
    with _open_store(ctx) as store:
        stored = store.connections.add(name, settings, keyring)
    out.print(f"[green]✓[/] added SFTP connection {stored.name!r} (encrypted with key {stored.key_id})")
    for fp in settings.pinned_fingerprints():
        out.print(f"  pinned host key {fp}")


@connections_app.command("list")
def list_connections(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False
) -> None:
    """List connections (names and kinds; never secrets)."""
    with _open_store(ctx) as store:
        rows = store.connections.list()
    if as_json:
        out.print_json(
            data=[
                {
                    "name": r.name,
                    "kind": r.kind,
                    "key_id": r.key_id,
                    "created_at": r.created_at.isoformat(),
                }
                for r in rows
            ]
        )
        return
    table = Table("name", "kind", "key id", "created", "updated")
    for r in rows:
        table.add_row(r.name, r.kind, r.key_id, _ts(r.created_at), _ts(r.updated_at))
    out.print(table if rows else "no connections yet: ml-connector connections add-epicor|add-sftp")


@connections_app.command("show")
def show_connection(
    ctx: typer.Context,
    name: str,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    reveal_identity: Annotated[
        bool,
        typer.Option(help="Show host, URL and user name in full (credentials are never shown)"),
    ] = False,
) -> None:
    """Show one connection's settings; credentials appear only as set / not set."""
    keyring = _state(ctx).home.keyring()
    with _open_store(ctx) as store:
        stored = store.connections.get(name)
        settings = store.connections.settings(name, keyring)
    view: dict[str, Any] = {"name": stored.name, "kind": stored.kind, "key_id": stored.key_id}
    view.update(settings.public_view(reveal_identity))
    if as_json:
        out.print_json(data=view)
        return
    table = Table("setting", "value", show_header=False)
    for key, value in view.items():
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    out.print(table)


@connections_app.command("test")
def test_connection(
    ctx: typer.Context,
    name: str,
    folder: Annotated[list[str] | None, typer.Option(help="Also check this remote folder (repeatable)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """Connect, check the host key pin, and probe the folders that flows use (SFTP)."""
    import asyncio

    from ..connections import SftpSettings
    from ..sftp import SftpClient

    home = _state(ctx).home
    keyring = home.keyring()
    with _open_store(ctx) as store:
        settings = store.connections.settings(name, keyring)
        if not isinstance(settings, SftpSettings):
            _test_epicor(store, name, settings, as_json)
            return
        folders = list(folder or [])
        if home.flows_file.exists():
            for flow in _load_flows(home.flows_file).flows.values():
                if flow.sftp == name:
                    folders.append(flow.folder)
                    for extra in ("archive_folder", "error_folder", "ack_folder"):
                        value = getattr(flow, extra, None)
                        if value:
                            folders.append(value)
        folders = list(dict.fromkeys(folders))

        async def probe() -> tuple[str | None, list[dict[str, Any]]]:
            async with SftpClient(settings, name=name, audit=lambda kind, **kw: store.audit.record(kind, **kw)) as c:
                return c.host_fingerprint, [await c.probe_folder(f) for f in folders]

        try:
            fingerprint, results = asyncio.run(probe())
        except Exception as exc:
            store.audit.record("connection.tested", subject=name, outcome="error", details={"error": str(exc)})
            raise
        store.audit.record("connection.tested", subject=name, details={"folders": results})
    if as_json:
        out.print_json(data={"name": name, "host_key": fingerprint, "host_key_matches": True, "folders": results})
        return
    out.print(f"[green]✓[/] connected; host key {fingerprint} matches the pin")
    table = Table("folder", "exists", "listable", "writable", "problem")
    for r in results:
        table.add_row(
            r["folder"], *("yes" if r[k] else "no" for k in ("exists", "listable", "writable")), r["error"] or ""
        )
    out.print(table if results else "no folders to check (add flows, or pass --folder)")
    if any(r["error"] for r in results):
        raise typer.Exit(3)


def _test_epicor(store: Store, name: str, settings: Any, as_json: bool) -> None:
    import asyncio

    from ..errors import ConnectError, MLConnectorError
    from ..kinetic import KineticClient, KineticOptions

    async def ping() -> dict[str, Any]:
        async with KineticClient(settings, options=KineticOptions(attempts=1),
                                 audit=lambda kind, **kw: store.audit.record(kind, **kw)) as k:  # fmt: skip
            return await k.ping()

    try:
        result = asyncio.run(ping())
    except MLConnectorError as exc:
        store.audit.record("connection.tested", subject=name, outcome="error", details={"error": str(exc)})
        raise ConnectError(f"connection {name!r}: {exc}") from None
    store.audit.record("connection.tested", subject=name, details=result)
    if as_json:
        out.print_json(data={"name": name, **result})
        return
    expiry = result["token_expires_in_s"]
    out.print(
        f"[green]✓[/] authenticated to company {result['company']}; round trip {result['round_trip_ms']} ms; "
        + (f"token expires in {expiry} s" if expiry is not None else "Basic auth (no token)")
    )


@connections_app.command("remove")
def remove_connection(
    ctx: typer.Context,
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask")] = False,
) -> None:
    """Remove a connection."""
    with _open_store(ctx) as store:
        store.connections.get(name)
        if not yes and not typer.confirm(f"Remove connection {name!r}?"):
            raise typer.Exit(1)
        store.connections.remove(name)
    out.print(f"[green]✓[/] removed {name!r}")
