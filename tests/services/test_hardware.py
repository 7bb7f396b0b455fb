"""GPUs are looked for without importing torch (seconds) when the kernel shows there are none."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmctl.services.models import hardware


def _machine(root: Path, *, nvidia_gpus: int = 0, devices: tuple[str, ...] = ()) -> tuple[Path, Path]:
    proc, dev = root / "proc-nvidia-gpus", root / "dev"
    dev.mkdir(parents=True)
    if nvidia_gpus:
        for index in range(nvidia_gpus):
            (proc / f"0000:0{index}:00.0").mkdir(parents=True)
    for name in devices:
        (dev / name).touch()
    return proc, dev


@pytest.mark.parametrize(
    ("nvidia_gpus", "devices", "present"),
    [
        (0, (), False),  # a plain CPU machine or container
        (0, ("nvidiactl", "nvidia-uvm"), False),  # a driver loaded, but no GPU device node
        (2, (), True),  # the NVIDIA driver lists two GPUs
        (0, ("nvidia0",), True),  # a container given one GPU (no /proc/driver/nvidia inside)
        (0, ("kfd",), True),  # AMD ROCm
        (0, ("dxg",), True),  # WSL2's GPU
    ],
)
def test_gpu_device_present(tmp_path: Path, nvidia_gpus: int, devices: tuple[str, ...], present: bool) -> None:
    proc, dev = _machine(tmp_path, nvidia_gpus=nvidia_gpus, devices=devices)
    assert hardware.gpu_device_present(proc, dev) is present


def test_torch_already_loaded_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once torch is imported, asking it costs nothing and knows more than the device files."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(hardware, "gpu_device_present", lambda *args: False)
    found, note = hardware.gpus()
    if torch.cuda.is_available():
        assert len(found) == torch.cuda.device_count() and note is None
    else:
        assert found == () and note == "no CUDA GPU"


PROBE = r"""
import json, sys
from llmctl.services.models import hardware
hardware.gpu_device_present = lambda *args: False  # the same answer on a machine with a GPU
sys.argv = ["llmctl", "models", "info", "demo", "--json"]
from llmctl.cli.app import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})), file=sys.stderr)
"""


def test_models_info_demo_imports_no_torch() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    modules = set(json.loads(done.stderr.strip().splitlines()[-1]))
    assert not modules & {"torch", "transformers", "safetensors", "tokenizers", "huggingface_hub"}
    data = json.loads(done.stdout)
    assert data["parameters"] > 0 and data["hardware"]["gpus"] == []
    assert "no GPU device found" in data["hardware"]["gpu_note"]
