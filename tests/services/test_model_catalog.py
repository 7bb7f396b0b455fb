"""``models list``'s hosted rows: configured providers, and the built-in ones a key in the environment enables."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmctl.config import parse_settings
from llmctl.services.models.catalog import hosted_provider_entries

OWN_SERVER = '[providers.my-vllm]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
OPENAI_GATEWAY = '[providers.openai]\nbase_url = "https://gateway.example/v1"\n'


@pytest.mark.parametrize(
    ("config", "environ", "expected"),
    [
        ("", {}, {}),
        ("", {"OPENAI_API_KEY": "sk-x"}, {"openai/MODEL": "the OpenAI API (key from $OPENAI_API_KEY)"}),
        ("", {"ANTHROPIC_API_KEY": "sk-ant-x"}, {"anthropic/MODEL": "the Anthropic API (key from $ANTHROPIC_API_KEY)"}),
        ("", {"OPENAI_API_KEY": "  "}, {}),  # a blank key is no key
        (
            "",
            {"OPENAI_API_KEY": "sk-x", "ANTHROPIC_API_KEY": "sk-ant-x"},
            {"openai/MODEL": ..., "anthropic/MODEL": ...},
        ),
        (OWN_SERVER, {}, {"my-vllm/MODEL": "http://127.0.0.1:9/v1"}),
        # Configured under the built-in name: listed once, as configured.
        (OPENAI_GATEWAY, {"OPENAI_API_KEY": "sk-x"}, {"openai/MODEL": "https://gateway.example/v1"}),
    ],
)
def test_hosted_rows(config: str, environ: dict[str, str], expected: dict[str, object]) -> None:
    settings = parse_settings(config, Path("config.toml"))
    entries = hosted_provider_entries(settings, environ)
    assert [e.name for e in entries] == list(expected)
    for entry in entries:
        assert entry.source == "provider" and entry.model_id == "(any it serves)"
        if expected[entry.name] is not ...:
            assert entry.description == expected[entry.name]


def test_the_key_itself_is_never_shown() -> None:
    secret = "sk-proj-SECRETSECRET1234"
    [entry] = hosted_provider_entries(parse_settings("", Path("c.toml")), {"OPENAI_API_KEY": secret})
    assert not any(secret[i : i + 6] in str(entry.to_json()) for i in range(len(secret) - 5))
