"""The ``oai`` and ``ant`` fixtures: a loopback vendor server that the test's llmctl config points at.

Each starts a server from tests/wire that checks the API key, puts that key in the vendor's
variable, writes the ``[providers.openai]`` / ``[providers.anthropic]`` table of the test's config
file (``timeout = 5``, ``max_retries = 0``) and, after the test, checks that the server met no
error of its own. A test that needs more in the table appends to ``config_file``, or rewrites it
with :func:`provider_table`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.wire import AnthropicServer, OpenAIServer

# Long enough that a leak of any part of one can be searched for (tests/test_hostile_secrets.py does).
OPENAI_KEY = "sk-test-openai-0123456789abcdefghij"
ANTHROPIC_KEY = "sk-ant-test-0123456789abcdefghij"


def provider_table(name: str, base_url: str, *, timeout: float = 5, **keys: Any) -> str:
    """A ``[providers.NAME]`` table for a loopback server: no retries, a short timeout, then ``keys``."""
    lines = [f"[providers.{name}]", f'base_url = "{base_url}"', f"timeout = {timeout}", "max_retries = 0"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def oai(monkeypatch: pytest.MonkeyPatch, config_file: Path) -> Iterator[OpenAIServer]:
    """An OpenAI-wire server that ``openai/MODEL`` reaches, with $OPENAI_API_KEY set to its key."""
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    with OpenAIServer(api_key=OPENAI_KEY) as server:
        config_file.write_text(provider_table("openai", server.base_url))
        yield server
    assert not server.errors


@pytest.fixture
def ant(monkeypatch: pytest.MonkeyPatch, config_file: Path) -> Iterator[AnthropicServer]:
    """An Anthropic-wire server that ``anthropic/MODEL`` reaches, with $ANTHROPIC_API_KEY set to its key."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    with AnthropicServer(api_key=ANTHROPIC_KEY) as server:
        config_file.write_text(provider_table("anthropic", server.base_url))
        yield server
    assert not server.errors
