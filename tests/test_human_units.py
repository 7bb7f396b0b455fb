"""Sizes and counts as people read them: one formatter for bytes (disk: decimal; memory: binary), one for counts."""

from __future__ import annotations

import pytest

from llmctl.domain import human_bytes, human_count

GIB = 2**30
MIB = 2**20


@pytest.mark.parametrize(
    ("value", "binary", "expected"),
    [
        (None, False, "unknown"),
        (None, True, "unknown"),
        (0, False, "0 B"),
        (999, False, "999 B"),
        (1000, False, "1.00 KB"),
        (1_234_567, False, "1.23 MB"),
        (16_060_000_000, False, "16.1 GB"),
        (140_000_000_000, False, "140.0 GB"),
        (3_500_000_000_000_000, False, "3,500.0 TB"),  # the largest unit keeps counting
        (1023, True, "1,023 B"),
        (1024, True, "1.00 KiB"),
        (512 * MIB, True, "512.0 MiB"),
        (int(1.5 * GIB), True, "1.50 GiB"),
        (16 * GIB, True, "16.0 GiB"),
        (1000 * 1024 * GIB, True, "1,000.0 TiB"),
    ],
)
def test_human_bytes(value: int | None, binary: bool, expected: str) -> None:
    assert human_bytes(value, binary=binary) == expected


def test_memory_and_disk_differ_only_in_the_step() -> None:
    assert human_bytes(10**9) == "1.00 GB" and human_bytes(10**9, binary=True) == "953.7 MiB"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "unknown"), (999, "999"), (12_345, "12.3K"), (1_240_000_000, "1.24B"), (70_550_000_000, "70.5B")],
)
def test_human_count(value: int | None, expected: str) -> None:
    assert human_count(value) == expected
