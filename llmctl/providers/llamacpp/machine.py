"""What llama.cpp is given of this machine: threads (one per physical core) and the memory check before loading."""

from __future__ import annotations

import os
from pathlib import Path

from llmctl.domain import human_bytes
from llmctl.errors import ProviderError

_CPU_ROOT = Path("/sys/devices/system/cpu")


def physical_cores(cpu_root: Path = _CPU_ROOT) -> int:
    """Physical cores this process may run on: llama.cpp's decode is memory-bound, and a second
    hyper-thread on a core adds contention, not bandwidth (llama.cpp's own default is the same)."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = list(range(os.cpu_count() or 1))
    cores: set[tuple[str, str]] = set()
    for cpu in allowed:
        topology = cpu_root / f"cpu{cpu}" / "topology"
        try:
            package = (topology / "physical_package_id").read_text().strip()
            core = (topology / "core_id").read_text().strip()
        except OSError:
            return max(1, len(allowed))
        cores.add((package, core))
    return max(1, len(cores))


def available_memory(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(name: str, needed: int, available: int | None) -> None:
    """Refuse a load that cannot fit in RAM: mapping it anyway would swap the machine to a halt."""
    if available is not None and needed > available:
        raise ProviderError(
            f"{name} needs about {human_bytes(needed)} of memory (weights and KV cache); "
            f"{human_bytes(available)} is available.",
            hint="Pick a smaller quantization (e.g. :Q4_K_M), lower n_ctx in [providers.llamacpp], "
            "or offload layers to a GPU build with n_gpu_layers.",
        )
