"""The master key: rotation (the logic is in ``secrets.rotate_master_key``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

# Start-up time matters (every cron line and monitor check pays it): the database, pydantic models,
# asyncssh and the flow engine are imported inside the commands that use them, not here.
if TYPE_CHECKING:
    pass
from ._app import _open_store, _state, keys_app, out

# --- keys ------------------------------------------------------------------------------------


@keys_app.command("rotate")
def rotate_keys(
    ctx: typer.Context,
    new_key_out: Annotated[
        Path | None,
        typer.Option(
            help="When the key comes from ML_CONNECTOR_MASTER_KEY: write the new key to this new "
            "file (mode 0600), then put it in the variable"
        ),
    ] = None,
) -> None:
    """Re-encrypt every stored secret under a new master key and retire the old one."""
    from ..secrets import rotate_master_key

    home = _state(ctx).home
    old = home.keyring()
    with _open_store(ctx) as store:
        done = rotate_master_key(old, home.key_file, store.connections, new_key_out)
        store.audit.record(
            "keys.rotated",
            details={"old_key_ids": list(done.retired), "new_key_id": done.new_key_id, "rows": done.rows},
        )
    out.print(f"[green]✓[/] re-encrypted {done.rows} connection(s) under key {done.new_key_id}")
    out.print(f"  retired key(s): {', '.join(done.retired)}")
    if done.from_env:
        out.print(f"  set ML_CONNECTOR_MASTER_KEY from {new_key_out} now; the old value no longer works")
