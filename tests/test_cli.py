"""The command line, in-process, against a home in tmp_path."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from ml_connector.secrets import encode_key, generate_key

CANARY = {
    "epicor_url_host": "canary-kinetic-9d2b.example",
    "epicor_user": "canary-kuser-4e1f",
    "api_key": "canary-apikey-X81q",
    "epicor_password": "canary-kpass-P02m",
    "sftp_host": "canary-sftp-6a7c.example",
    "sftp_user": "canary-suser-0b3d",
    "sftp_password": "canary-spass-L55r",
    "passphrase": "canary-phrase-T3v9",
}
HOST_KEY = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()


def _init(cli: Any) -> Path:
    r = cli("init")
    assert r.exit_code == 0, r.output
    home: Path = cli.home
    return home


def _add_all(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, encrypted_key: bool = False) -> str:
    """Add both kinds of connection with canary values via env, file and stdin; returns key body.

    An encrypted key costs ~3 s of bcrypt KDF, so only the leak test asks for one.
    """
    monkeypatch.setenv("KIN_PW", CANARY["epicor_password"])
    (tmp_path / "apikey.txt").write_text(CANARY["api_key"] + "\n")
    r = cli(
        "connections", "add-epicor", "kinetic",
        "--url", f"https://{CANARY['epicor_url_host']}/EpicorPilot",
        "--company", "EPIC06", "--username", CANARY["epicor_user"], "--auth", "token",
        "--api-key-file", str(tmp_path / "apikey.txt"), "--password-env", "KIN_PW",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = tmp_path / "id_ed25519"
    key.write_private_key(str(key_path), passphrase=CANARY["passphrase"] if encrypted_key else None)
    phrase = ["--passphrase-stdin"] if encrypted_key else []
    r = cli(
        "connections", "add-sftp", "partner",
        "--host", CANARY["sftp_host"], "--port", "2222", "--username", CANARY["sftp_user"],
        "--key-file", str(key_path), *phrase, "--host-key", HOST_KEY,
        stdin=CANARY["passphrase"] + "\n",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    monkeypatch.setenv("SFTP_PW", CANARY["sftp_password"])
    r = cli(
        "connections", "add-sftp", "partner-pw", "--host", CANARY["sftp_host"],
        "--username", CANARY["sftp_user"], "--password-env", "SFTP_PW", "--host-key", HOST_KEY,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    body = "".join(key_path.read_text().splitlines()[1:-1])
    return body


def test_init_creates_home(cli: Any) -> None:
    home = _init(cli)
    assert (home / "ml-connector.db").exists()
    assert (home / "staging").is_dir()
    assert (home / "flows.yaml").read_text().startswith("# ml-connector flows")
    assert (home / "master.key").stat().st_mode & 0o777 == 0o600
    before = (home / "master.key").read_text()
    again = cli("init")
    assert again.exit_code == 0 and "nothing was changed" in again.stdout
    assert (home / "master.key").read_text() == before


def test_init_with_env_key_writes_no_key_file(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_CONNECTOR_MASTER_KEY", encode_key(generate_key()))
    home = _init(cli)
    assert not (home / "master.key").exists()


def test_canaries_never_leak(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _init(cli)
    key_body = _add_all(cli, tmp_path, monkeypatch, encrypted_key=True)
    outputs = []
    for args in (
        ("connections", "list"),
        ("connections", "list", "--json"),
        ("connections", "show", "kinetic"),
        ("connections", "show", "partner", "--json"),
        ("connections", "show", "partner-pw"),
        ("-vv", "connections", "show", "kinetic", "--reveal-identity"),
        ("audit",),
        ("audit", "--json"),
        ("-vv", "keys", "rotate"),
    ):
        r = cli(*args)
        assert r.exit_code == 0, (args, r.output)
        outputs.append(r.output)
    text = "\n".join(outputs)
    assert "SHA256:" in text and "set" in text  # the outputs are real
    revealed = cli("connections", "show", "kinetic", "--reveal-identity").stdout
    assert CANARY["epicor_url_host"] in revealed  # identity on request only
    credential_canaries = ["api_key", "epicor_password", "sftp_password", "passphrase"]
    for name in credential_canaries:
        assert CANARY[name] not in text, name
    # Host, user and URL are shown only by --reveal-identity (outputs[5]).
    without_reveal = "\n".join(outputs[:5] + outputs[6:])
    for name in ("sftp_host", "sftp_user", "epicor_user", "epicor_url_host"):
        assert CANARY[name] not in without_reveal, name
    # Every byte the database left on disk (main file, WAL, shared memory).
    raw = b"".join(p.read_bytes() for p in home.iterdir() if p.name.startswith("ml-connector.db"))
    assert len(raw) > 10_000
    for name, value in CANARY.items():
        assert value.encode() not in raw, name
    assert key_body[:40].encode() not in raw
    # Audit rows, read back through SQL.
    with sqlite3.connect(home / "ml-connector.db") as db:
        audit_rows = repr(db.execute("select * from audit_events").fetchall())
    assert "connection.added" in audit_rows
    for value in CANARY.values():
        assert value not in audit_rows


def test_secret_as_argument_is_refused_without_echo(cli: Any) -> None:
    _init(cli)
    r = cli(
        "connections", "add-epicor", "k", "--url", "https://h/i", "--company", "C",
        "--username", "u", "--api-key", "argv-secret-123", "--password-env", "X",
    )  # fmt: skip
    assert r.exit_code == 2
    assert "does not take a value on the command line" in r.stderr
    assert "argv-secret-123" not in r.output
    r = cli(
        "connections", "add-sftp", "s", "--host", "h", "--username", "u",
        "--password", "argv-secret-456", "--host-key", HOST_KEY,
    )  # fmt: skip
    assert r.exit_code == 2 and "argv-secret-456" not in r.output


def test_env_name_is_never_echoed(cli: Any) -> None:
    _init(cli)
    r = cli(
        "connections", "add-epicor", "k", "--url", "https://h/i", "--company", "C",
        "--username", "u", "--api-key-env", "typed-the-secret-here", "--password-env", "X",
    )  # fmt: skip
    assert r.exit_code == 2
    assert "typed-the-secret-here" not in r.output
    assert "--api-key-env" in r.stderr


def test_sftp_requires_pinned_host_key(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _init(cli)
    monkeypatch.setenv("PW", "pw-value-1")
    r = cli("connections", "add-sftp", "s", "--host", "h", "--username", "u", "--password-env", "PW")
    assert r.exit_code == 2 and "no host key pinned" in r.stderr
    r = cli(
        "connections", "add-sftp", "s", "--host", "h", "--username", "u", "--password-env", "PW",
        "--host-key", "ssh-ed25519 not-base64!",
    )  # fmt: skip
    assert r.exit_code == 2 and "--host-key" in r.stderr
    assert cli("connections", "list", "--json").stdout.strip() == "[]"


def test_known_hosts_and_fingerprint_pins(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _init(cli)
    monkeypatch.setenv("PW", "pw-value-2")
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[sftp.partner.example]:2222 {HOST_KEY}\nother.example {HOST_KEY}\n")
    r = cli(
        "connections", "add-sftp", "s", "--host", "sftp.partner.example", "--port", "2222",
        "--username", "u", "--password-env", "PW", "--known-hosts", str(kh),
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    fp = asyncssh.import_public_key(HOST_KEY).get_fingerprint("sha256")
    shown = json.loads(cli("connections", "show", "s", "--json").stdout)
    assert shown["pinned_host_keys"] == [fp]
    r = cli(
        "connections", "add-sftp", "t", "--host", "nowhere.example", "--username", "u",
        "--password-env", "PW", "--known-hosts", str(kh),
    )  # fmt: skip
    assert r.exit_code == 2 and "has no key for nowhere.example" in r.stderr
    r = cli(
        "connections", "add-sftp", "t", "--host", "h", "--username", "u", "--password-env", "PW",
        "--fingerprint", fp,
    )  # fmt: skip
    assert r.exit_code == 0, r.output


def test_wrong_passphrase_is_reported_without_key(cli: Any, tmp_path: Path) -> None:
    _init(cli)
    key_path = tmp_path / "k"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(key_path), passphrase="right-one")
    r = cli(
        "connections", "add-sftp", "s", "--host", "h", "--username", "u",
        "--key-file", str(key_path),
        "--passphrase-stdin", "--host-key", HOST_KEY, stdin="wrong-one\n",
    )  # fmt: skip
    assert r.exit_code == 2 and "not a usable private key" in r.stderr
    assert "wrong-one" not in r.output


def test_swapped_ciphertext_cli_error(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _init(cli)
    _add_all(cli, tmp_path, monkeypatch)
    with sqlite3.connect(home / "ml-connector.db") as db:
        (ct,) = db.execute("select settings_ct from connections where name='partner'").fetchone()
        db.execute("update connections set settings_ct=? where name='partner-pw'", (ct,))
    r = cli("connections", "show", "partner-pw")
    assert r.exit_code == 2
    assert r.stderr.startswith("error: connection 'partner-pw'") and "failed authentication" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert cli("connections", "show", "partner").exit_code == 0


def test_rotate_retires_old_key(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _init(cli)
    _add_all(cli, tmp_path, monkeypatch)
    old_key_text = (home / "master.key").read_text()
    r = cli("keys", "rotate")
    assert r.exit_code == 0 and "re-encrypted 3 connection(s)" in r.stdout
    new_key_text = (home / "master.key").read_text()
    assert new_key_text != old_key_text
    assert len([ln for ln in new_key_text.splitlines() if not ln.startswith("#")]) == 1
    for name in ("kinetic", "partner", "partner-pw"):
        assert cli("connections", "show", name).exit_code == 0
    # The old key no longer decrypts anything.
    (home / "master.key").write_text(old_key_text)
    for name in ("kinetic", "partner", "partner-pw"):
        r = cli("connections", "show", name)
        assert r.exit_code == 2 and "not in" in r.stderr
    events = [json.loads(x) for x in cli("audit", "--json", "--kind", "keys").stdout.splitlines()]
    assert events[-1]["kind"] == "keys.rotated" and events[-1]["details"]["rows"] == 3


def test_rotate_with_env_key(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_CONNECTOR_MASTER_KEY", encode_key(generate_key()))
    _init(cli)
    _add_all(cli, tmp_path, monkeypatch)
    r = cli("keys", "rotate")
    assert r.exit_code == 2 and "--new-key-out" in r.stderr
    out = tmp_path / "new.key"
    r = cli("keys", "rotate", "--new-key-out", str(out))
    assert r.exit_code == 0, r.output
    assert out.stat().st_mode & 0o777 == 0o600
    assert cli("connections", "show", "kinetic").exit_code == 2  # old env key retired
    new = next(ln for ln in out.read_text().splitlines() if not ln.startswith("#"))
    monkeypatch.setenv("ML_CONNECTOR_MASTER_KEY", new)
    assert cli("connections", "show", "kinetic").exit_code == 0


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda p: p.write_text("garbage!!\n"), "not a base64 key"),
        (lambda p: p.unlink(), "does not exist"),
        (lambda p: p.chmod(0o644), "too open"),
    ],
)
def test_bad_master_key(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: Any, expected: str) -> None:
    home = _init(cli)
    _add_all(cli, tmp_path, monkeypatch)
    db_before = (home / "ml-connector.db").read_bytes()
    damage(home / "master.key")
    r = cli("connections", "show", "kinetic")
    assert r.exit_code == 2 and expected in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert cli("keys", "rotate").exit_code == 2
    assert (home / "ml-connector.db").read_bytes() == db_before


def test_unknown_connection_and_missing_home(cli: Any) -> None:
    r = cli("connections", "list")
    assert r.exit_code == 2 and "run 'ml-connector init'" in r.stderr
    _init(cli)
    r = cli("connections", "show", "ghost")
    assert r.exit_code == 2 and "unknown connection 'ghost'" in r.stderr


def test_newer_schema_refused(cli: Any) -> None:
    home = _init(cli)
    with sqlite3.connect(home / "ml-connector.db") as db:
        db.execute("update alembic_version set version_num='ffffffff'")
    r = cli("connections", "list")
    assert r.exit_code == 2 and "newer than this ml-connector" in r.stderr


def test_flows_validate_list_schema(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _init(cli)
    assert cli("flows", "validate").exit_code == 0
    _add_all(cli, tmp_path, monkeypatch)
    flows = home / "flows.yaml"
    flows.write_text(
        "flows:\n  out:\n    direction: outbound\n    epicor: kinetic\n    sftp: partner\n"
        "    entity: vendors\n    folder: /out\n    format: {type: csv}\n"
    )
    r = cli("flows", "validate")
    assert r.exit_code == 0 and "1 flow(s) valid" in r.stdout
    listed = json.loads(cli("flows", "list", "--json").stdout)
    assert listed[0]["name"] == "out" and listed[0]["entity"] == "vendors"
    flows.write_text(flows.read_text().replace("sftp: partner", "sftp: kinetic"))
    r = cli("flows", "validate")
    assert r.exit_code == 2 and "flow 'out': sftp: 'kinetic' is a epicor connection" in r.stderr
    flows.write_text("flows:\n  out:\n    direction: outbound\n    folder: [unclosed\n")
    r = cli("flows", "validate")
    assert r.exit_code == 2 and f"{flows}:" in r.stderr and "invalid YAML" in r.stderr
    flows.write_text(
        "flows:\n  out:\n    direction: outbound\n    epicor: kinetic\n    sftp: partner\n"
        "    entity: vendors\n    folder: /out\n    format: {type: csv, delimiter: ';;'}\n"
    )
    r = cli("flows", "validate")
    assert r.exit_code == 2 and "flow 'out': format.delimiter:" in r.stderr
    schema_path = tmp_path / "schema.json"
    assert cli("flows", "schema", "-o", str(schema_path)).exit_code == 0
    assert json.loads(schema_path.read_text())["title"] == "ml-connector flows.yaml"


def test_audit_filters_and_json(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _init(cli)
    _add_all(cli, tmp_path, monkeypatch)
    cli("connections", "remove", "partner-pw", "--yes")
    lines = cli("audit", "--json", "--kind", "connection").stdout.splitlines()
    kinds = [json.loads(x)["kind"] for x in lines]
    assert kinds == ["connection.added"] * 3 + ["connection.removed"]
    assert cli("audit", "--json", "--since", "1h").stdout.count("\n") == 5
    assert cli("audit", "--json", "--since", "2999-01-01").stdout == ""
    r = cli("audit", "--since", "yesterday-ish")
    assert r.exit_code == 2 and "--since" in r.stderr


def test_postgres_database_url(cli: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ML_CONNECTOR_DATABASE_URL", pg_url)
    home = _init(cli)
    assert not (home / "ml-connector.db").exists()
    _add_all(cli, tmp_path, monkeypatch)
    listed = json.loads(cli("connections", "list", "--json").stdout)
    assert sorted(c["name"] for c in listed) == ["kinetic", "partner", "partner-pw"]
    r = cli("--database-url", "sqlite:///" + str(tmp_path / "other.db"), "connections", "list", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == []


def test_version_and_help(cli: Any) -> None:
    r = cli("--version")
    assert r.exit_code == 0 and r.stdout.startswith("ml-connector ")
    r = cli("--help")
    assert r.exit_code == 0 and "connections" in r.stdout
    r = cli("no-such-command")
    assert r.exit_code == 2


def test_console_script_runs_in_subprocess(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    exe = shutil.which("ml-connector") or str(Path(sys.executable).with_name("ml-connector"))
    env = {**os.environ, "ML_CONNECTOR_HOME": str(tmp_path / "h")}
    env.pop("ML_CONNECTOR_MASTER_KEY", None)
    env.pop("ML_CONNECTOR_DATABASE_URL", None)
    done = subprocess.run([exe, "init"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    bad = subprocess.run([exe, "connections", "show", "x"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: unknown connection 'x' (none are defined)"


FLOW_OUT = (
    "  out:\n    direction: outbound\n    epicor: kinetic\n    sftp: partner\n"
    "    entity: vendors\n    folder: /out\n    format: {type: csv}\n"
)


def test_validate_refuses_a_flow_defined_twice_naming_both_lines(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _init(cli)
    _add_all(cli, tmp_path, monkeypatch)
    (home / "flows.yaml").write_text("flows:\n" + FLOW_OUT + FLOW_OUT)
    r = cli("flows", "validate")
    assert r.exit_code == 2
    assert f"{home / 'flows.yaml'}:9:3: 'out' is defined twice (first at line 2)" in r.stderr


def test_validate_lists_the_known_connections(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _init(cli)
    _add_all(cli, tmp_path, monkeypatch)
    (home / "flows.yaml").write_text("flows:\n" + FLOW_OUT.replace("epicor: kinetic", "epicor: kinetik"))
    r = cli("flows", "validate")
    assert r.exit_code == 2
    assert (
        "flow 'out': epicor: no connection named 'kinetik' "
        "(connections: kinetic (epicor), partner (sftp), partner-pw (sftp))" in r.stderr
    )


def test_validate_warns_on_unknown_field_names_with_location_and_suggestion(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _init(cli)
    _add_all(cli, tmp_path, monkeypatch)
    flows = home / "flows.yaml"
    flows.write_text(
        "flows:\n"
        + FLOW_OUT.replace(
            "format: {type: csv}",
            "format:\n      type: csv\n      columns:\n        - {field: VendorID}\n        - {field: Nmae}\n"
            "        - {field: Where, concat: [City, Stat]}",
        )
    )
    r = cli("flows", "validate")
    assert r.exit_code == 0, r.output  # warnings: a real instance may have fields this list lacks
    assert "1 flow(s) valid (2 warning(s))" in r.stdout
    assert (
        f"{flows}:12: flow 'out': format.columns[1].field: 'Nmae' is not a known vendors field (did you mean 'Name'?)"
        in r.stderr
    )
    assert (
        f"{flows}:13: flow 'out': format.columns[2].concat[1]: 'Stat' is not a known vendors field (did you mean 'State'?)"
        in r.stderr
    )
    flows.write_text(flows.read_text().replace("Nmae", "Name").replace("Stat]", "State]"))
    r = cli("flows", "validate")
    assert r.exit_code == 0 and "warning" not in r.output


def test_starter_file_takes_an_appended_flow(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _init(cli)
    _add_all(cli, tmp_path, monkeypatch)
    with (home / "flows.yaml").open("a") as fh:
        fh.write(FLOW_OUT)
    r = cli("flows", "validate")
    assert r.exit_code == 0 and "1 flow(s) valid" in r.stdout, r.output


def test_verbose_is_a_count_anywhere_on_the_line(cli: Any) -> None:
    _init(cli)
    r = cli("--help")
    assert "<int>" not in r.stdout and "-vv" in r.stdout
    for argv in (("-vv", "flows", "validate"), ("flows", "validate", "-vv"), ("flows", "-v", "validate")):
        r = cli(*argv)
        assert r.exit_code == 0, (argv, r.output)
        assert "INFO ml_connector.cli: flows: home" in r.stderr, argv
    r = cli("flows", "validate")
    assert "INFO" not in r.stderr


def test_files_subcommands_need_a_pending_intent(cli: Any) -> None:
    _init(cli)
    r = cli("files", "abandon", "99")
    assert r.exit_code == 2 and "no file 99 in the ledger" in r.stderr
    r = cli("files")
    assert r.exit_code == 0 and "no files match" in r.stdout
    r = cli("audit", "--run", "abc")
    assert r.exit_code == 2 and "at least 4 characters" in r.stderr


def test_hoist_verbose_leaves_other_arguments_alone() -> None:
    from ml_connector.cli import hoist_verbose

    assert hoist_verbose(["run", "x", "-vv", "--json"]) == ["-vv", "run", "x", "--json"]
    assert hoist_verbose(["run", "--", "-v"]) == ["run", "--", "-v"]
    assert hoist_verbose(["--version"]) == ["--version"]


def test_each_command_loads_only_its_module_and_the_table_says_which() -> None:
    """``main`` imports the modules ``cli.COMMANDS`` names for the command word; the table must be right.

    In a fresh interpreter per word: load that word's modules only, and the word (with every
    subcommand of a group) must be registered exactly as when every module is loaded.
    """
    import subprocess
    import sys

    code = """
import json, sys
import ml_connector.cli as cli
app = cli.load_commands(sys.argv[1:] or None)
tree = {c.name or c.callback.__name__: [] for c in app.registered_commands}
for g in app.registered_groups:
    subs = sorted(c.name for c in g.typer_instance.registered_commands)
    if subs:
        tree[g.name] = subs
print(json.dumps(tree))
"""

    def tree(*argv: str) -> dict[str, list[str]]:
        done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True)
        return dict(json.loads(done.stdout))

    from ml_connector.cli import COMMANDS, command_word

    full = tree()
    assert set(COMMANDS) == set(full), "cli.COMMANDS must list every top-level command and group"
    for word in COMMANDS:
        alone = tree(word)
        assert alone.get(word) == full[word], f"{word}: its modules register {alone.get(word)}, all: {full[word]}"
        assert len(alone) < len(full), f"{word} loaded every command"
    # The word is found past the root options, which take values.
    assert command_word(["--home", "/h", "-vv", "status", "--json"]) == "status"
    assert command_word(["--database-url", "sqlite:///x", "flows", "validate"]) == "flows"
    assert command_word(["--help"]) is None and command_word([]) is None


def test_a_single_command_line_works_without_the_other_modules(tmp_path: Path) -> None:
    """status, flows validate and an unknown word in fresh processes: each works or says so."""
    import subprocess
    import sys

    env = {**os.environ, "ML_CONNECTOR_HOME": str(tmp_path / "home")}
    env.pop("ML_CONNECTOR_DATABASE_URL", None)
    run = [sys.executable, "-m", "ml_connector"]
    subprocess.run([*run, "init"], env=env, check=True, capture_output=True)
    status = subprocess.run([*run, "status", "--json"], env=env, capture_output=True, text=True)
    assert status.returncode == 0 and json.loads(status.stdout) == [], status.stderr
    validate = subprocess.run([*run, "flows", "validate"], env=env, capture_output=True, text=True)
    assert validate.returncode == 0 and "0 flow(s) valid" in validate.stdout, validate.stderr
    typo = subprocess.run([*run, "stauts"], env=env, capture_output=True, text=True)
    assert typo.returncode == 2 and "No such command" in typo.stderr and "status" in typo.stderr, typo.stderr
