"""Helpers shared by the benchmark scripts: robust statistics and a note on the machine they ran on.

The scripts run by hand (never in CI). Each measures its baseline in the same run,
interleaved with the thing measured, so a busy machine slows both alike; medians
over many runs keep one slow outlier from deciding the result.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Sample:
    """One timed run: wall-clock seconds and CPU seconds (user + system)."""

    wall_s: float
    cpu_s: float


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def summarize(samples: Sequence[Sample]) -> dict[str, float]:
    walls = [s.wall_s for s in samples]
    cpus = [s.cpu_s for s in samples]
    return {
        "runs": len(samples),
        "wall_median_s": median(walls),
        "wall_min_s": min(walls),
        "wall_max_s": max(walls),
        "cpu_median_s": median(cpus),
    }


def run_process(argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Sample:
    """Run a command to completion: its wall time, and its CPU time (user + system).

    Runs are sequential, so the growth of ``RUSAGE_CHILDREN`` across one run is that child's CPU.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(
        list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, cwd=cwd
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        tail = completed.stderr.decode(errors="replace")[-800:]
        raise RuntimeError(f"{' '.join(argv)} exited {completed.returncode}: {tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(wall, cpu)


def machine() -> dict[str, Any]:
    """What the figures came from: CPU model and count, memory, Python, and how busy the machine was."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory_gib = round(pages / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "memory_gib": memory_gib,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_average": load_average(),
    }


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def describe(info: dict[str, Any]) -> str:
    load = info.get("load_average")
    return (
        f"{info['cpu']}, {info['cpu_count']} cores, {info['memory_gib']} GiB, {info['os']}, "
        f"Python {info['python']}, load average {load}"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table (the scripts print to a terminal or a log file)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=False))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append(
            "  ".join(
                str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=False))
            )
        )
    return "\n".join(lines)
