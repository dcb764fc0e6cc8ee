"""CLI start-up time: whole `ml-connector` processes vs `python -c pass`, measured in the same run.

    .venv/bin/python bench/cli.py            # median of 10 runs per command
    .venv/bin/python bench/cli.py --runs 20
    git archive REV src | tar -x -C /tmp/before && .venv/bin/python bench/cli.py --baseline /tmp/before/src

Each command runs as a fresh process (what a user or cron meets), in alternation with the
reference so machine noise hits both alike. A throwaway home with one flow is created first, so
`flows validate` and `status --no-remote` do their real work (open the database, read flows.yaml).
The ratio is the command's median over the reference's median; the target is under 0.3 s absolute
on the 2-core development machine (see docs/benchmarks.md). ``--baseline SRC`` also times another
source tree (an older commit's ``src/``) in the same rounds, so before and after share the noise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
FLOW = """
flows:
  vendors-out:
    direction: outbound
    epicor: kinetic
    entity: vendors
    sftp: partner
    folder: /outbound
    schedule: "0 2 * * *"
    timezone: America/Chicago
    format: {type: csv}
  vendors-in:
    direction: inbound
    epicor: kinetic
    entity: vendors
    sftp: partner
    folder: /inbound
    schedule: "*/15 * * * *"
    format:
      type: csv
      columns:
        - {field: VendorID, header: vendor_id, required: true}
        - {field: Name, header: name}
"""


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()[-400:]}")
    return elapsed


def history(db: Path, runs: int = 200) -> None:
    """A ledger with history, so ``status`` reads real rows: runs of both flows, a failed record."""
    from ml_connector.store import Store

    with Store.open(f"sqlite:///{db}") as store:
        for i in range(runs):
            for flow, direction in (("vendors-out", "outbound"), ("vendors-in", "inbound")):
                run = store.ledger.start_run(flow, direction, "schedule")
                if direction == "inbound" and i == runs - 1:
                    f, _ = store.ledger.see(flow=flow, run_id=run, remote_path="/inbound/v.csv", size=10, mtime=1)
                    store.ledger.add_records(f.id, "0" * 64, [(0, "line 2", "V1", "failed", "no such vendor")])
                    store.ledger.update_file(f.id, state="done")
                store.ledger.finish_run(run, "succeeded" if direction == "outbound" else "partial", {"records": 3})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--baseline", type=Path, help="another src/ folder to time in the same rounds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlc-bench-cli-") as tmp:
        env = {**os.environ, "ML_CONNECTOR_HOME": str(Path(tmp) / "home")}
        env.pop("ML_CONNECTOR_DATABASE_URL", None)
        env.pop("ML_CONNECTOR_MASTER_KEY", None)
        cli = [PY, "-m", "ml_connector"]
        subprocess.run([*cli, "init"], env=env, check=True, stdout=subprocess.DEVNULL)
        env.update(BENCH_KEY="bench-api-key", BENCH_PW="bench-password")
        subprocess.run([*cli, "connections", "add-epicor", "kinetic", "--url", "https://127.0.0.1:9/K",
                        "--company", "EPIC06", "--username", "u", "--api-key-env", "BENCH_KEY",
                        "--password-env", "BENCH_PW"], env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        subprocess.run([*cli, "connections", "add-sftp", "partner", "--host", "127.0.0.1", "--username", "u",
                        "--password-env", "BENCH_PW", "--fingerprint", "SHA256:" + "A" * 43],
                       env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        (Path(tmp) / "home" / "flows.yaml").write_text(FLOW)
        history(Path(tmp) / "home" / "ml-connector.db")
        commands = {
            "--help": [*cli, "--help"],
            "flows validate": [*cli, "flows", "validate"],
            "status --no-remote": [*cli, "status", "--no-remote"],
        }
        reference = [PY, "-c", "pass"]
        envs = {"": env}
        if args.baseline:
            envs["baseline "] = {**env, "PYTHONPATH": str(args.baseline.resolve())}
        names = [f"{tag}{name}" for tag in envs for name in commands]
        times: dict[str, list[float]] = {name: [] for name in ["python -c pass", *names]}
        for _ in range(args.runs):
            times["python -c pass"].append(timed(reference, env))
            for tag, run_env in envs.items():
                for name, argv in commands.items():
                    times[f"{tag}{name}"].append(timed(argv, run_env))
        ref = statistics.median(times["python -c pass"])
        print(f"| command | median of {args.runs} (s) | ratio vs `python -c pass` |")
        print("|---|---|---|")
        for name, values in times.items():
            med = statistics.median(values)
            print(f"| `{name}` | {med:.3f} | {med / ref:.1f} |")


if __name__ == "__main__":
    main()
