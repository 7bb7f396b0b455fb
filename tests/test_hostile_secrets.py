"""Hostile inputs against "secrets never appear, whole or in part".

A key pasted into ``api_key_env`` or ``api_key_cmd``, credentials and token parameters in ``base_url``,
``api_key_cmd``'s command line and stderr. Every check scans stdout, stderr and every file under
LLMCTL_HOME (the SQLite ledger and its WAL, conversation files) for any 8-character piece of the secret.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from llmctl.config import Settings
from llmctl.redaction import MASK, redact
from tests.conftest import CliResult

Run = Callable[..., CliResult]


def pieces(secret: str, size: int = 8) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)} or {secret}


def leaked(secret: str, texts: Iterable[str | bytes]) -> list[str]:
    found = []
    for text in texts:
        data = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
        found += [piece for piece in pieces(secret) if piece.encode() in data]
    return found


def home_files(home: Path) -> list[bytes]:
    """Every file llmctl wrote under LLMCTL_HOME: the ledger (and its WAL), conversation files."""
    return [p.read_bytes() for p in home.rglob("*") if p.is_file()] if home.is_dir() else []


# -- secrets -----------------------------------------------------------------------------------------------

PASTED_KEYS = [
    "sk-proj-Zx81kQpL0aBcDeFgHiJkLmNoPqRsT",
    "sk-ant-api03-Q1w2E3r4T5y6U7i8O9p0-AAAA",
    "hf_AbCdEfGhIjKlMnOpQrStUvWx",
    "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6",
    "AIzaSyA1b2C3d4E5f6G7h8I9j0K",
    "key with spaces 12345678",
]


@pytest.mark.parametrize("key", PASTED_KEYS)
@pytest.mark.parametrize(
    "args",
    [
        ("config", "show"),
        ("models", "list"),
        ("models", "info", "openai/gpt-4o-mini"),
        ("generate", "-m", "openai/gpt-4o-mini", "hi"),
    ],
    ids=" ".join,
)
def test_a_key_pasted_into_api_key_env_is_refused_without_being_echoed(
    run_llmctl: Run, config_file: Path, isolated_home: Path, key: str, args: tuple[str, ...]
) -> None:
    config_file.write_text(f"[providers.openai]\napi_key_env = {json.dumps(key)}\n")

    result = run_llmctl(*args)

    assert result.exit_code == 2
    assert "providers.openai.api_key_env" in result.stderr and "NAME of an environment variable" in result.stderr
    assert leaked(key, [result.stdout, result.stderr, *home_files(isolated_home)]) == []


@pytest.mark.parametrize("key", PASTED_KEYS)
def test_config_set_refuses_a_pasted_key_without_echoing_or_writing_it(
    run_llmctl: Run, config_file: Path, key: str
) -> None:
    result = run_llmctl("config", "set", "providers.openai.api_key_env", key)
    assert result.exit_code == 2
    assert leaked(key, [result.stdout, result.stderr]) == []
    assert not config_file.exists() or leaked(key, [config_file.read_bytes()]) == []


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "MY_GATEWAY_KEY", "work_openai_key", "AZURE_OPENAI_API_KEY_2"])
def test_real_variable_names_are_accepted(name: str) -> None:
    Settings.model_validate({"providers": {"openai": {"api_key_env": name}}})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SECRET_URLS = [
    ("http://alice:s3cretPassw0rd42@127.0.0.1:{port}/v1", "s3cretPassw0rd42"),
    ("http://tok_9f8e7d6c5b4a3921@127.0.0.1:{port}/v1", "tok_9f8e7d6c5b4a3921"),
    ("http://bob:p@ss@w0rdWithAt99@127.0.0.1:{port}/v1", "ss@w0rdWithAt99"),
    ("http://127.0.0.1:{port}/v1?api_key=QUERYSECRET1234567", "QUERYSECRET1234567"),
    ("http://127.0.0.1:{port}/v1?api-version=2024-06-01&access_token=AccessTok987654321", "AccessTok987654321"),
    ("http://127.0.0.1:{port}/v1?sig=SignatureValue0001&x=1", "SignatureValue0001"),
    ("http://127.0.0.1:{port}/v1?Authorization=Bearer%20abcdefgh12345678", "abcdefgh12345678"),
]


@pytest.mark.parametrize(("template", "secret"), SECRET_URLS)
def test_credentials_in_base_url_never_appear(
    run_llmctl: Run, config_file: Path, isolated_home: Path, template: str, secret: str
) -> None:
    url = template.format(port=closed_port())
    config_file.write_text(
        f'[providers.gw]\nkind = "openai"\nbase_url = {json.dumps(url)}\nmax_retries = 0\ntimeout = 5\n'
        '[models.gm]\nprovider = "gw"\nid = "some-model"\n'
    )
    results = [
        run_llmctl("config", "show"),
        run_llmctl("config", "show", "--json"),
        run_llmctl("models", "list"),
        run_llmctl("models", "list", "--json"),
        run_llmctl("models", "info", "gw/some-model", "--json"),
        run_llmctl("generate", "-m", "gm", "hi"),
        run_llmctl("chat", "-m", "gw/some-model"),  # a terminal-less chat: stdin is empty
        run_llmctl("chat", "-m", "gm", stdin=b"hello\n"),
        run_llmctl("config", "set", "providers.gw.base_url", url),
        run_llmctl("models", "list", "--remote", "gw"),
        run_llmctl("tokens", "count", "-m", "gm", "hi"),
    ]
    generate = results[5]
    assert generate.exit_code == 1 and "Cannot connect to gw" in generate.stderr and MASK in generate.stderr
    outputs = [text for r in results for text in (r.stdout, r.stderr)]
    assert leaked(secret, [*outputs, *home_files(isolated_home)]) == []
    assert "127.0.0.1" in results[0].stdout  # the rest of the URL is still shown
    assert results[9].exit_code == 1 and MASK in results[9].stderr


@pytest.mark.parametrize(
    "url",
    [
        "ftp://user:SECRETPW12345678@host/v1",
        "http://user:SECRETPW12345678@",
        "http://[::1:SECRETPW12345678/v1",
        "SECRETPW12345678",
        "http://host:SECRETPW12345678/v1",
        "file:///SECRETPW12345678",
    ],
)
def test_a_base_url_that_is_not_an_http_url_is_refused_without_being_echoed(
    run_llmctl: Run, config_file: Path, url: str
) -> None:
    config_file.write_text(f'[providers.gw]\nkind = "openai"\nbase_url = {json.dumps(url)}\n')
    result = run_llmctl("config", "show")
    assert result.exit_code == 2 and "providers.gw.base_url" in result.stderr and "http" in result.stderr
    assert leaked("SECRETPW12345678", [result.stdout, result.stderr]) == []


def test_api_key_cmd_failure_names_the_key_and_status_but_not_the_command_or_its_stderr(
    run_llmctl: Run, config_file: Path, isolated_home: Path
) -> None:
    password = "hunter2hunter2hunter2"
    echoed = "TOKEN=abcd1234SECRETabcd"
    script = f"import sys; sys.stderr.write({echoed!r}); sys.exit(3)"
    command = f"{sys.executable} -c {json.dumps(script)} --password={password}"
    config_file.write_text(f"[providers.openai]\napi_key_cmd = {json.dumps(command)}\n")

    results = [run_llmctl("generate", "-m", "openai/gpt-4o-mini", "hi"), run_llmctl("config", "show")]

    generate = results[0]
    assert generate.exit_code == 1
    assert "providers.openai.api_key_cmd" in generate.stderr and "exit status 3" in generate.stderr
    texts = [*(t for r in results for t in (r.stdout, r.stderr)), *home_files(isolated_home)]
    assert leaked(password, texts) == [] and leaked(echoed, texts) == []


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("https://u:pw@host/v1", (), f"https://{MASK}@host/v1"),
        ("see http://a:b@c@host:8/x?y=1 now", (), f"see http://{MASK}@host:8/x?y=1 now"),
        ("https://host/v1?api_key=abc&api-version=2024", (), f"https://host/v1?api_key={MASK}&api-version=2024"),
        ("https://host/v1?x=1&token=abc#frag", (), f"https://host/v1?x=1&token={MASK}#frag"),
        ("https://host/v1?key=", (), "https://host/v1?key="),
        ("plain text, a=b", (), "plain text, a=b"),
        ("key sk-123456 echoed: sk-123456", ("sk-123456",), f"key {MASK} echoed: {MASK}"),
        ("short abc stays", ("abc",), "short abc stays"),
        ("overlap sk-1234567890", ("sk-1234", "sk-1234567890"), f"overlap {MASK}"),
    ],
)
def test_redact(text: str, secrets: tuple[str, ...], expected: str) -> None:
    assert redact(text, secrets) == expected


@pytest.mark.parametrize("pasted", ["sk-proj-Zx81kQpL0aBcDeFgHiJkLmNoPqRsT", "pass show openai --otp 9f8e7d6c5b4a3921"])
def test_a_key_pasted_into_api_key_cmd_is_not_echoed_either(
    run_llmctl: Run, config_file: Path, isolated_home: Path, pasted: str
) -> None:
    config_file.write_text(f"[providers.openai]\napi_key_cmd = {json.dumps(pasted)}\n")
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "hi")
    assert result.exit_code == 1 and "providers.openai.api_key_cmd" in result.stderr, result.stderr
    assert leaked(pasted.split()[-1], [result.stdout, result.stderr, *home_files(isolated_home)]) == []
