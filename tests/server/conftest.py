"""Servers shared by a module: starting one (and loading the demo model in it) costs seconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server.harness import ServeProcess, start_serve


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """A server with the demo model loaded at start (``-m demo``), its own home, greedy sampling
    (the Anthropic SDK has no temperature: the config's [defaults] make answers repeatable)."""
    root = tmp_path_factory.mktemp("serve")
    config = root / "config.toml"
    config.write_text("[defaults]\ntemperature = 0.0\n")
    served = start_serve(root / "home", config, "-m", "demo")
    yield served
    served.terminate()
