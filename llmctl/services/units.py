"""Sizes and counts as people read them (used in messages and tables)."""

from __future__ import annotations


def human_bytes(value: float | None) -> str:
    """``1.23 GB`` (decimal units, as disks and the Hub count); None is "unknown"."""
    if value is None:
        return "unknown"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return (
                f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.2f} {unit}" if size < 10 else f"{size:,.1f} {unit}"
            )
        size /= 1000
    return f"{size:,.1f} TB"


def human_count(value: int | None) -> str:
    """``1.24B``, ``350.5M``, ``12.3K`` parameters; None is "unknown"."""
    if value is None:
        return "unknown"
    for threshold, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if value >= threshold:
            return f"{value / threshold:.2f}{suffix}" if value < threshold * 10 else f"{value / threshold:.1f}{suffix}"
    return str(value)
