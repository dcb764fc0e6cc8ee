"""The short soak (CI): ``serve`` in a subprocess, flows every 5 s with 1 % sandbox faults; the
serve process's open fds and RSS must not grow with the number of deliveries (``bench/soak.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.soak import Report, Sample, judge, soak


@pytest.mark.slow
def test_short_soak_fds_and_rss_do_not_grow_with_deliveries(tmp_path: Path) -> None:
    report = soak(1.25, 5, workdir=tmp_path, min_deliveries=8, log=lambda *_: None)
    summary = report.summary()
    print(f"\nshort soak: {summary}")
    assert report.ok, summary["problems"]
    early, late = report.windows()
    assert late[0].deliveries - early[0].deliveries >= 3, "the judged windows must be apart by deliveries"
    assert min(s.fds for s in late) - min(s.fds for s in early) <= 2, summary["fds"]
    assert report.files_in >= 8, "inbound files were posted during the soak"


def _samples(fds: list[int], rss_kb: list[int]) -> list[Sample]:
    return [Sample(float(i), f, r, i, i) for i, (f, r) in enumerate(zip(fds, rss_kb, strict=True))]


def test_judge_flags_fds_that_grow_with_deliveries() -> None:
    leaking = Report(1, 5, _samples(list(range(10, 50)), [100_000] * 40), runs=40, deliveries=40)
    judge(leaking, min_deliveries=3)
    assert any("open fds grew" in p for p in leaking.problems), leaking.problems
    flat = Report(1, 5, _samples([10, 14] * 20, [100_000] * 40), runs=40, deliveries=40)
    judge(flat, min_deliveries=3)
    assert flat.ok, flat.problems


def test_judge_flags_rss_growth_and_a_soak_that_delivered_nothing() -> None:
    growing = Report(1, 5, _samples([10] * 40, [100_000 + 2_000 * i for i in range(40)]), runs=40, deliveries=0)
    judge(growing, min_deliveries=3)
    assert any("RSS grew" in p for p in growing.problems), growing.problems
    assert any("deliveries" in p for p in growing.problems), growing.problems
