"""``models info``'s precision line: derived from CPU flags and the GPU, saying what it rests on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmctl.services.models.hardware import Gpu, Hardware
from llmctl.services.models.precision import cpu_flags, precision_advice

X86_CPUINFO = (
    "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile amx_bf16\n"
)
ARM_CPUINFO = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd sve bf16 i8mm\n"
OLD_CPUINFO = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
CPU_ONLY = Hardware(8 * 2**30, 4 * 2**30)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (X86_CPUINFO, {"avx512_bf16", "amx_bf16", "avx2"}),
        (ARM_CPUINFO, {"bf16", "sve"}),
        ("processor\t: 0\n", None),  # no flags line at all
    ],
)
def test_cpu_flags_from_cpuinfo(text: str, expected: set[str] | None, tmp_path: Path) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    flags = cpu_flags(path)
    assert flags is None if expected is None else expected <= set(flags or ())


def test_no_cpuinfo_is_unknown_not_a_guess(tmp_path: Path) -> None:
    assert cpu_flags(tmp_path / "missing") is None
    line = precision_advice(CPU_ONLY, None, "tiny")
    assert line.startswith("unknown") and "llmctl bench tiny --dtype bfloat16" in line


# (cpuinfo text, GPUs, what the line must say, what it must not)
CASES: list[tuple[str, tuple[Gpu, ...], tuple[str, ...], tuple[str, ...]]] = [
    (X86_CPUINFO, (), ("bfloat16", "avx512_bf16, amx_bf16", "not measured"), ("float16 on",)),
    (ARM_CPUINFO, (), ("bfloat16", "bf16 supported by this CPU: bf16"), ()),
    (OLD_CPUINFO, (), ("not known from the CPU flags", "no native bf16", "--dtype float32"), ("bf16 supported",)),
    (OLD_CPUINFO, (Gpu(0, "H200", 2**37, bf16=True),), ("bfloat16 on cuda:0", "H200"), ("CPU flags",)),
    (OLD_CPUINFO, (Gpu(0, "T4", 2**34, bf16=False),), ("float16 on cuda:0", "no native bf16"), ()),
]


@pytest.mark.parametrize(("cpuinfo", "gpus", "says", "never"), CASES)
def test_precision_line_says_what_it_rests_on(
    cpuinfo: str, gpus: tuple[Gpu, ...], says: tuple[str, ...], never: tuple[str, ...], tmp_path: Path
) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    line = precision_advice(Hardware(8 * 2**30, 4 * 2**30, gpus), cpu_flags(path), "tiny")
    for words in says:
        assert words in line
    for words in never:
        assert words not in line


def test_models_info_shows_the_precision_line(run_llmctl: Any) -> None:
    shown = run_llmctl("models", "info", "demo")
    assert shown.exit_code == 0, shown.stderr
    line = next(row for row in shown.stdout.splitlines() if row.startswith("fastest precision"))
    assert "bf16" in line and "llmctl bench demo" in line
    as_json = run_llmctl("models", "info", "demo", "--json")
    import json

    assert json.loads(as_json.stdout)["precision_here"] == line.split("\t", 1)[1]
