"""Refused names are visible (issue 17): ledger ``refused`` rows, the run summary, ``files``,
``status``, exit code 1 while they are there, and one alert per name. Real OpenSSH sshd."""

from __future__ import annotations

import json
import os
import subprocess

from .conftest import Env
from .test_inbound import VENDORS_IN, vendor_csv
from .test_poison import key_auth

HOSTILE = ["a\nb.csv", "-dash.csv", "x\\..\\evil.csv"]


def _cli(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(env.cli_argv(*args), capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})  # fmt: skip


def test_unsafe_names_and_symlinks_are_refused_visibly_and_alerted_once(sqlite_env: Env) -> None:
    env = key_auth(sqlite_env)
    env.flows(VENDORS_IN)
    for name in HOSTILE:
        env.drop(name, vendor_csv("HOST01,Hostile Vendor,Reno,NV,N30"))
    os.symlink("/etc/passwd", env.local("inbound") / "link.csv")
    os.lchown(env.local("inbound") / "link.csv", *_owner(env))
    env.drop(".hidden.csv", vendor_csv("HID001,Hidden,Reno,NV,N30"))
    env.drop("slow.csv.part", vendor_csv("PRT001,Partial,Reno,NV,N30"))
    env.drop("good.csv", vendor_csv("REFG01,Good Vendor,Reno,NV,N30"))

    first = env.run("vendors-in")
    assert first.state == "partial" and first.exit_code == 1, (first.counts, first.error)
    assert first.counts["files_refused"] == 4 and first.counts["files_done"] == 1
    assert first.counts["files_temporary"] == 2
    shown = {f["name"]: f for f in first.files if f["state"] == "refused"}
    assert set(shown) == {repr("a\nb.csv"), "-dash.csv", "x\\..\\evil.csv", "link.csv"}
    assert "control characters" in shown[repr("a\nb.csv")]["reason"]
    assert "starts with '-'" in shown["-dash.csv"]["reason"]
    assert "not a regular file" in shown["link.csv"]["reason"]
    rows = env.store.ledger.files(flow="vendors-in", states=["refused"])
    assert sorted(r.name for r in rows) == sorted([*HOSTILE, "link.csv"])
    assert all(r.error for r in rows)
    assert env.names("archive") == ["good.csv"]
    vendors = {v["VendorID"] for v in env.kinetic_rows("Vendors", "Erp.BO.VendorSvc")}
    assert "REFG01" in vendors and "HOST01" not in vendors and "HID001" not in vendors

    second = env.run("vendors-in")
    assert second.exit_code == 1 and second.counts["files_refused"] == 4, second.counts
    alerts = env.store.audit.query(flow="vendors-in", kind="alert.file_refused", limit=None)
    assert len(alerts) == 4, "one alert per name, not one per run"
    assert len(env.store.ledger.files(flow="vendors-in", states=["refused"])) == 4, "one row per name"

    listed = _cli(env, "files", "--state", "refused", "--json")
    assert listed.returncode == 0, listed.stderr
    assert sorted(r["remote_path"].rsplit("/", 1)[-1] for r in json.loads(listed.stdout)) == sorted(
        [*HOSTILE, "link.csv"]
    )
    status = _cli(env, "status", "--json")
    (flow,) = json.loads(status.stdout)
    assert flow["files_refused"] == 4 and flow["health"] == "attention", flow
    table = _cli(env, "status")
    assert "4 refused" in table.stdout, table.stdout

    # the partner removes them: the flow is healthy again; the ledger keeps the history
    for name in [*HOSTILE, "link.csv"]:
        (env.local("inbound") / name).unlink()
    third = env.run("vendors-in")
    assert third.state == "succeeded" and third.exit_code == 0 and "files_refused" not in third.counts
    (flow,) = json.loads(_cli(env, "status", "--json").stdout)
    assert flow["files_refused"] == 0 and flow["health"] == "ok", flow


def _owner(env: Env) -> tuple[int, int]:
    st = env.local("inbound").stat()
    return st.st_uid, st.st_gid
