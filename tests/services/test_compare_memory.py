"""Memory fit of a local model: models info's estimate at the precision it loads in, against this machine."""

from __future__ import annotations

import pytest

from llmctl.config import Settings
from llmctl.providers.registry import resolve
from llmctl.services.compare.memory import memory_fit
from llmctl.services.models.hardware import Gpu, Hardware


@pytest.mark.parametrize(
    ("machine", "fits", "devices"),
    [
        (Hardware(ram_total_bytes=2**34, ram_available_bytes=2**33), True, ("ram",)),
        (Hardware(ram_total_bytes=2**20, ram_available_bytes=2**19), False, ()),  # 1 MiB of RAM
        (Hardware(2**20, 2**19, (Gpu(0, "H200", 2**37),)), True, ("cuda:0",)),
        (Hardware(ram_total_bytes=None, ram_available_bytes=None), None, ()),  # nothing known
    ],
)
def test_the_demo_model_fits_or_not(machine: Hardware, fits: bool | None, devices: tuple[str, ...]) -> None:
    fit = memory_fit(resolve("demo", Settings()), machine)
    assert fit is not None
    assert fit.precision == "fp32"  # the demo's weights are float32 and nothing asks for less
    assert 4 * 2**20 < fit.needed_bytes < 8 * 2**20
    assert (fit.fits, fit.devices) == (fits, devices)


def test_a_model_that_cannot_be_described_has_no_estimate() -> None:
    settings = Settings.model_validate({"models": {"gone": {"provider": "hf", "id": "org/not-downloaded"}}})
    assert memory_fit(resolve("gone", settings), Hardware(2**34, 2**33)) is None
