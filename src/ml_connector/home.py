"""The home folder: database, master key, staging and flows.yaml, resolved once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .secrets import MASTER_KEY_ENV, Keyring, generate_key, load_keyring, write_key_file

HOME_ENV = "ML_CONNECTOR_HOME"
DATABASE_URL_ENV = "ML_CONNECTOR_DATABASE_URL"
DEFAULT_HOME = Path("~/.ml-connector")

STARTER_FLOWS = """\
# ml-connector flows. One entry per flow, indented two spaces under `flows:`.
# `ml-connector flows validate` checks this file; `ml-connector flows schema > flows.schema.json`
# writes a JSON Schema for your editor; every key is in docs/configuration.md.
#
# Connections named below are created with `ml-connector connections add-epicor|add-sftp`.
# Flows may be appended at the end of this file (`cat >> flows.yaml`): the examples are comments.
#
# An outbound example (vendors changed in Kinetic -> CSV on the partner's SFTP):
#
#   vendors-to-partner:
#     direction: outbound
#     schedule: "0 19 * * 1-5"        # cron (5 fields), in `timezone`
#     timezone: America/Chicago
#     epicor: kinetic-prod            # connection name
#     entity: vendors
#     cursor: SysRevID
#     sftp: partner-sftp
#     folder: /outbound
#     filename: "vendors_{now:%Y%m%d_%H%M%S}.csv"
#     format:
#       type: csv
#       columns:
#         - {header: VendorID, field: VendorID}
#         - {header: Name, field: Name}
#
# An inbound example (X12 820 payment advice -> cash receipts, with a 997 back):
#
#   remittance-in:
#     direction: inbound
#     schedule: "*/15 * * * *"
#     sftp: partner-sftp
#     folder: /inbound
#     pattern: "*.820"
#     archive_folder: /archive
#     error_folder: /error
#     ack_folder: /acks
#     epicor: kinetic-prod
#     entity: cash-receipts
#     constants: {GroupID: CASH01}        # the cash receipt group to post into
#     format: {type: x12, set: "820"}

flows:
"""


@dataclass(frozen=True)
class Home:
    """Where one ml-connector installation keeps its state."""

    path: Path
    database_url: str

    @property
    def key_file(self) -> Path:
        return self.path / "master.key"

    @property
    def staging(self) -> Path:
        return self.path / "staging"

    @property
    def flows_file(self) -> Path:
        return self.path / "flows.yaml"

    @property
    def sqlite_path(self) -> Path:
        return self.path / "ml-connector.db"

    @classmethod
    def resolve(
        cls,
        home: Path | None = None,
        database_url: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Home:
        env = os.environ if environ is None else environ
        raw = home or Path(env.get(HOME_ENV) or DEFAULT_HOME)
        path = Path(raw).expanduser().resolve()
        url = database_url or env.get(DATABASE_URL_ENV) or f"sqlite:///{path / 'ml-connector.db'}"
        return cls(path=path, database_url=url)

    def keyring(self, environ: Mapping[str, str] | None = None) -> Keyring:
        return load_keyring(self.key_file, environ)

    def init(self, environ: Mapping[str, str] | None = None) -> list[str]:
        """Create what is missing; returns a line per thing created (idempotent)."""
        env = os.environ if environ is None else environ
        done: list[str] = []
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path} exists and is not a folder")
        if not self.path.exists():
            self.path.mkdir(parents=True, mode=0o700)
            done.append(f"created home {self.path}")
        if not self.staging.exists():
            self.staging.mkdir(mode=0o700)
            done.append(f"created staging folder {self.staging}")
        if env.get(MASTER_KEY_ENV):
            load_keyring(self.key_file, env)  # validates the variable's content
            done.append(f"using the master key from ${MASTER_KEY_ENV}")
        elif not self.key_file.exists():
            write_key_file(self.key_file, [generate_key()])
            done.append(f"created master key {self.key_file} (mode 0600; back it up apart)")
        else:
            load_keyring(self.key_file, env)  # validates the existing file
        if not self.flows_file.exists():
            self.flows_file.write_text(STARTER_FLOWS, encoding="utf-8")
            done.append(f"created starter {self.flows_file}")
        return done
