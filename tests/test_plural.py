"""Counts in messages read right: ``1 token``, ``2 tokens``."""

from __future__ import annotations

import pytest

from llmctl.domain import plural


@pytest.mark.parametrize(
    ("count", "noun", "plural_noun", "expected"),
    [
        (0, "token", None, "0 tokens"),
        (1, "token", None, "1 token"),
        (2, "file", None, "2 files"),
        (1234, "call", None, "1,234 calls"),
        (1, "entry", "entries", "1 entry"),
        (3, "entry", "entries", "3 entries"),
    ],
)
def test_plural(count: int, noun: str, plural_noun: str | None, expected: str) -> None:
    assert plural(count, noun, plural_noun) == expected
