"""The memory this machine has for a model: RAM (respecting a container's limit) and each GPU's."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    total_bytes: int
    free_bytes: int | None = None
    bf16: bool | None = None  # native bfloat16 (compute capability 8.0+); None: not asked

    @property
    def device(self) -> str:
        return f"cuda:{self.index}"


@dataclass(frozen=True)
class Hardware:
    ram_total_bytes: int | None
    ram_available_bytes: int | None
    gpus: tuple[Gpu, ...] = field(default_factory=tuple)
    gpu_note: str | None = None  # why there is no GPU list (torch missing, no CUDA)

    def to_json(self) -> dict[str, Any]:
        return {
            "ram_total_bytes": self.ram_total_bytes,
            "ram_available_bytes": self.ram_available_bytes,
            "gpus": [g.__dict__ | {"device": g.device} for g in self.gpus],
            "gpu_note": self.gpu_note,
        }


def _meminfo(path: Path = Path("/proc/meminfo")) -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        for line in path.read_text(encoding="ascii").splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                values[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    except OSError:
        pass
    return values


def _cgroup_limit() -> tuple[int | None, int | None]:
    """(limit, usage) of a cgroup v2 memory limit, when the process runs under one."""
    root = Path("/sys/fs/cgroup")
    try:
        raw = (root / "memory.max").read_text(encoding="ascii").strip()
        if raw == "max":
            return None, None
        current = int((root / "memory.current").read_text(encoding="ascii").strip())
        return int(raw), current
    except (OSError, ValueError):
        return None, None


def ram() -> tuple[int | None, int | None]:
    """(total, available) bytes of RAM this process may use."""
    info = _meminfo()
    total = info.get("MemTotal")
    available = info.get("MemAvailable", info.get("MemFree"))
    if total is None:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        except (OSError, ValueError, AttributeError):
            return None, None
    limit, usage = _cgroup_limit()
    if limit is not None:
        total = min(total, limit)
        if usage is not None:
            available = min(available, max(limit - usage, 0)) if available is not None else limit - usage
    return total, available


NVIDIA_PROC = Path("/proc/driver/nvidia/gpus")  # one folder per GPU the NVIDIA driver sees
DEVICES = Path("/dev")


def gpu_device_present(nvidia_proc: Path = NVIDIA_PROC, devices: Path = DEVICES) -> bool:
    """Whether Linux shows a GPU torch could use: one the NVIDIA driver lists, AMD's ROCm device, WSL's GPU."""
    try:
        if any(nvidia_proc.iterdir()):
            return True
    except OSError:
        pass
    return any(devices.glob("nvidia[0-9]*")) or any((devices / name).exists() for name in ("kfd", "dxg"))


def gpus(*, with_free: bool = False) -> tuple[tuple[Gpu, ...], str | None]:
    """CUDA GPUs through torch (only imported here); a note instead when there are none to ask.

    Importing torch takes seconds, so on Linux it is skipped when the kernel shows no GPU at all
    (unless torch is loaded already); elsewhere only torch can tell.
    """
    if "torch" not in sys.modules:
        if importlib.util.find_spec("torch") is None:
            return (), "torch is not installed: GPUs not checked"
        if sys.platform.startswith("linux") and not gpu_device_present():
            return (), "no GPU device found: no NVIDIA, ROCm or WSL GPU driver"
    import torch

    if not torch.cuda.is_available():
        return (), "no CUDA GPU"
    found = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        free = None
        if with_free:
            free, _ = torch.cuda.mem_get_info(index)
        free_bytes = None if free is None else int(free)
        found.append(Gpu(index, str(props.name), int(props.total_memory), free_bytes, bf16=props.major >= 8))
    return tuple(found), None


def detect(*, include_gpus: bool = True, gpu_free: bool = False) -> Hardware:
    total, available = ram()
    found: tuple[Gpu, ...] = ()
    note = None
    if include_gpus:
        found, note = gpus(with_free=gpu_free)
    return Hardware(total, available, found, note)
