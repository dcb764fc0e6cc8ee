"""Helper process for test_locks: contends for one flow lock, logging its critical sections."""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from pathlib import Path

from ml_connector.store import Store


def main() -> None:
    url, flow, log_path, start_file, rounds = sys.argv[1:6]
    store = Store(url)  # the parent already migrated
    owner = f"pid-{os.getpid()}"
    while not Path(start_file).exists():
        time.sleep(0.005)
    entered = 0
    deadline = time.monotonic() + 60
    while entered < int(rounds) and time.monotonic() < deadline:
        if store.locks.acquire(flow, owner, timedelta(seconds=30)):
            with open(log_path, "a") as log:
                log.write(f"enter {owner}\n")
                log.flush()
                time.sleep(0.02)
                log.write(f"exit {owner}\n")
            store.locks.release(flow, owner)
            entered += 1
        time.sleep(0.001)
    store.close()
    print(entered)


if __name__ == "__main__":
    main()
