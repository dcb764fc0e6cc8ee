"""Fuzzing every reader (issue 17): mutated golden and corpus files through the read paths a flow
uses. Bounded for CI (the whole module stays well under 60 s); ``bench/fuzz.py --minutes N`` runs
the same harness for as long as asked. Any exception outside ``ml_connector.errors``, more than
1 s of CPU per 100 KB or more than 200 MB at peak fails (``harness.check``)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .harness import (
    CSV_SEEDS,
    FW_SEEDS,
    GOLDEN,
    KINDS,
    X12_SEEDS,
    FuzzFailure,
    Mutation,
    check,
    mutate,
    read_csv_path,
    read_fw_path,
    read_x12_path,
)

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
mutations = st.lists(
    st.builds(Mutation, st.sampled_from(KINDS), st.floats(0, 1, allow_nan=False), st.integers(1, 400),
              st.integers(0, 255)),
    min_size=1, max_size=6,
)  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def traced() -> Iterator[None]:
    tracemalloc.start()
    yield
    tracemalloc.stop()


@FUZZ
@given(seed=st.sampled_from(range(len(X12_SEEDS))), edits=mutations)
def test_x12_read_path_raises_only_typed_errors(seed: int, edits: list[Mutation]) -> None:
    check(read_x12_path, mutate(X12_SEEDS[seed], edits))


@FUZZ
@given(seed=st.sampled_from(range(len(CSV_SEEDS))), edits=mutations)
def test_csv_read_path_raises_only_typed_errors(seed: int, edits: list[Mutation]) -> None:
    fmt, data = CSV_SEEDS[seed]
    check(lambda d: read_csv_path(fmt, d), mutate(data, edits))


@FUZZ
@given(seed=st.sampled_from(range(len(FW_SEEDS))), edits=mutations)
def test_fixed_width_read_path_raises_only_typed_errors(seed: int, edits: list[Mutation]) -> None:
    fmt, data = FW_SEEDS[seed]
    check(lambda d: read_fw_path(fmt, d), mutate(data, edits))


@FUZZ
@given(data=st.binary(max_size=2000))
def test_x12_reader_on_arbitrary_bytes(data: bytes) -> None:
    check(read_x12_path, b"ISA" + data)


GOLDEN_820 = (GOLDEN / "820_004010.edi").read_text()


@pytest.mark.parametrize(
    "text",
    [
        GOLDEN_820.replace("ST*820*0001~", "ST*820*²~").replace("SE*14*0001~", "SE*14*2~"),  # the file
        GOLDEN_820.replace("ST*820*0001~", "ST*820*" + "1" * 5000 + "~"),  # over int()'s 4300 digits
        GOLDEN_820.replace("*17*X*004010~", "*²*X*004010~").replace("GE*1*17~", "GE*1*2~"),  # GS06 / GE02
        GOLDEN_820.replace("GE*1*17~", "GE*1*" + "7" * 5000 + "~"),
        GOLDEN_820.replace("000000017*0*P", "00000001²*0*P").replace("IEA*1*000000017", "IEA*1*2"),
    ],
    ids=["st02-superscript", "st02-5000-digits", "gs06-superscript", "ge02-5000-digits", "isa13-superscript"],
)
def test_hostile_control_numbers_are_findings_not_crashes(text: str) -> None:
    """Found by fuzzing: ``int()`` after ``isdigit()`` raised ValueError on these."""
    from ml_connector.formats.x12 import read_x12

    assert text != GOLDEN_820
    check(read_x12_path, text.encode())
    sets, reader = read_x12(text.encode(), name="hostile.edi")
    assert len(sets) == 1
    assert any(f.severity == "error" for f in reader.findings), [str(f) for f in reader.findings]


def test_the_check_itself_fails_on_a_foreign_exception_and_on_memory() -> None:
    """The harness must be able to fail: a plain exception, and a 300 MB allocation."""

    def crashes(_: bytes) -> None:
        raise ValueError("not a product error")

    with pytest.raises(FuzzFailure, match="ValueError"):
        check(crashes, b"x")

    def hungry(_: bytes) -> None:
        blob = bytearray(300 * 1024 * 1024)
        del blob

    with pytest.raises(FuzzFailure, match="MB at peak"):
        check(hungry, b"x")
