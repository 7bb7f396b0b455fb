"""Which precision decodes fastest here, as far as the hardware tells (``llmctl models info``).

Derived, never measured: from the CPU's feature flags (``/proc/cpuinfo``) and the GPU's
compute capability. Where the flags cannot settle it, the line says so and names the
command that measures it, rather than guessing.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from llmctl.services.models.hardware import Hardware

# x86: AVX-512 BF16 and AMX (Sapphire Rapids and later, Zen 4 and later); Arm: the BF16 extension.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(path: Path = CPUINFO) -> frozenset[str] | None:
    """The first CPU's feature flags (x86 ``flags``, Arm ``Features``); None where the file is missing."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return None


def precision_advice(machine: Hardware | None, flags: Iterable[str] | None, model: str = "MODEL") -> str:
    """One line: the precision the hardware favours for decoding, and what that rests on."""
    measure = f"measure: llmctl bench {model} --dtype bfloat16, then --dtype float32"
    if machine is not None and machine.gpus:
        gpu = machine.gpus[0]
        if gpu.bf16:
            return f"bfloat16 on {gpu.device} ({gpu.name} has native bf16: compute capability 8.0 or newer)"
        if gpu.bf16 is False:
            return f"float16 on {gpu.device} ({gpu.name} has no native bf16: compute capability below 8.0)"
    if flags is None:
        return f"unknown (this system does not show its CPU flags); {measure}"
    native = [flag for flag in CPU_BF16_FLAGS if flag in set(flags)]
    if native:
        return f"bfloat16 (bf16 supported by this CPU: {', '.join(native)}; from its flags, not measured; {measure})"
    return (
        "not known from the CPU flags: no native bf16 (avx512_bf16/amx_bf16); bf16 halves the bytes a token "
        f"reads but is widened to float32 as it is used; {measure}"
    )
