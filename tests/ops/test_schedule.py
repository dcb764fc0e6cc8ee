"""Cron schedules in a time zone, across daylight-saving changes; slot claims and catch-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

from ml_connector.config import parse_flows
from ml_connector.flows import RunContext
from ml_connector.scheduler import Scheduler, next_fire, previous_fire
from ml_connector.secrets import Keyring
from ml_connector.store import Store


def _flow(schedule: str, tz: str = "America/New_York"):  # type: ignore[no-untyped-def]
    text = f"""
flows:
  f:
    direction: outbound
    schedule: "{schedule}"
    timezone: {tz}
    epicor: k
    entity: vendors
    sftp: s
    folder: /out
    format: {{type: csv}}
"""
    return parse_flows(text).flows["f"]


def _fires(flow, start: datetime, end: datetime) -> list[datetime]:  # type: ignore[no-untyped-def]
    out, t = [], start
    while True:
        t = next_fire(flow, t)
        if t is None or t > end:
            return out
        out.append(t)


def test_daily_schedule_runs_once_a_day_across_both_dst_changes() -> None:
    spring = _fires(_flow("30 2 * * *"), datetime(2026, 3, 6, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC))
    # 02:30 does not exist on 8 March in New York: that day's run comes right after the gap (03:30 EDT)
    assert [t.strftime("%m-%d %H:%M") for t in spring] == ["03-06 07:30", "03-07 07:30", "03-08 07:30",
                                                           "03-09 06:30"]  # fmt: skip
    autumn = _fires(_flow("30 1 * * *"), datetime(2026, 10, 30, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))
    # 01:30 happens twice on 1 November: it runs once (the first, EDT)
    assert [t.strftime("%m-%d %H:%M") for t in autumn] == ["10-30 05:30", "10-31 05:30", "11-01 05:30",
                                                           "11-02 06:30"]  # fmt: skip


def test_hourly_schedule_is_monotonic_and_never_repeats_across_fall_back() -> None:
    fires = _fires(_flow("0 * * * *"), datetime(2026, 11, 1, 3, tzinfo=UTC), datetime(2026, 11, 1, 9, tzinfo=UTC))
    assert fires == sorted(set(fires))
    assert all(b - a >= timedelta(hours=1) for a, b in pairwise(fires))
    assert previous_fire(_flow("0 * * * *"), fires[2]) == fires[2]


def test_weekday_evening_schedule_in_chicago() -> None:
    flow = _flow("0 19 * * 1-5", "America/Chicago")
    fri = datetime(2026, 11, 20, 12, tzinfo=UTC)  # a Friday
    nxt = next_fire(flow, fri)
    assert nxt == datetime(2026, 11, 21, 1, tzinfo=UTC)  # Friday 19:00 CST
    assert next_fire(flow, nxt) == datetime(2026, 11, 24, 1, tzinfo=UTC)  # Monday 19:00 CST


def test_claims_give_each_slot_to_one_process_and_catch_up_once(tmp_path: Path, db_url: str, keyring: Keyring) -> None:
    store = Store.open(db_url)
    flows_path = tmp_path / "flows.yaml"
    flows_path.write_text("""
flows:
  f:
    direction: outbound
    schedule: "*/5 * * * *"
    epicor: k
    entity: vendors
    sftp: s
    folder: /out
    format: {type: csv}
""")

    def ctx(_: str) -> RunContext:
        return RunContext(store=store, keyring=keyring, staging=tmp_path)

    a = Scheduler(flows_path, store, ctx, "a")
    b = Scheduler(flows_path, store, ctx, "b")
    a.load(first=True)
    b.load(first=True)
    flow = a.flows.flows["f"]
    t0 = datetime(2026, 11, 24, 10, 2, tzinfo=UTC)
    assert a.due("f", flow, t0) is None  # a new flow waits for its next slot
    # down for 40 minutes: eight slots missed, one catch-up run, claimed by exactly one process
    later = t0 + timedelta(minutes=40)
    got = [a.due("f", flow, later), b.due("f", flow, later)]
    assert sorted(map(str, got)) == sorted([str(datetime(2026, 11, 24, 10, 40, tzinfo=UTC)), "None"])
    assert a.due("f", flow, later) is None and b.due("f", flow, later + timedelta(minutes=1)) is None
    assert b.due("f", flow, later + timedelta(minutes=5)) == datetime(2026, 11, 24, 10, 45, tzinfo=UTC)
    store.close()
