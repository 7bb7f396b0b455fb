"""Hostile inputs against the security promises, run through the real entry point.

* A Hub repo id never resolves to a folder in the current directory (that folder's Python would run
  with ``trust_remote_code``); a folder is loaded only when it is written as a path or ``path = ...``.
* Secrets never appear, whole or in part: a key pasted into ``api_key_env``, credentials and token
  parameters in ``base_url``, ``api_key_cmd``'s command line and stderr. Every check scans stdout,
  stderr and every file under LLMCTL_HOME (the SQLite ledger, conversation files) for any 8-character
  piece of the secret.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from llmctl.config import Settings
from llmctl.errors import ModelNotFoundError
from llmctl.providers.registry import resolve
from llmctl.redaction import MASK, redact
from tests.conftest import CliResult

Run = Callable[..., CliResult]
MARKER = "remote-code-ran"


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


# -- a repo id is never a folder in the current directory ------------------------------------------------


@pytest.fixture
def trap(tmp_path: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding ./microsoft/phi-2/: a real tiny model whose config runs Python when trusted."""
    work = tmp_path / "work"
    folder = work / "microsoft" / "phi-2"
    shutil.copytree(tiny_models["llama"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil.py").write_text(
        "from pathlib import Path\n"
        f"Path({str(tmp_path / MARKER)!r}).write_text('ran')\n"
        "from transformers import LlamaConfig, LlamaForCausalLM\n"
        "class EvilConfig(LlamaConfig):\n    pass\n"
        "class EvilModel(LlamaForCausalLM):\n    config_class = EvilConfig\n"
    )
    monkeypatch.chdir(work)
    return folder


ALIAS = '[models.phi]\nprovider = "hf"\nid = "microsoft/phi-2"\ntrust_remote_code = true\n'


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (("generate", "-m", "phi", "hi"), None),
        (("generate", "-m", "hf/microsoft/phi-2", "hi"), None),
        (("generate", "hi"), None),  # default_model = "phi"
        (("chat", "-m", "phi", "--no-save"), b"hi\n"),
        (("models", "info", "phi"), None),
        (("models", "info", "hf/microsoft/phi-2"), None),
        (("models", "load", "phi"), None),
        (("tokens", "count", "-m", "phi", "hi"), None),
        (("tokens", "count", "-m", "hf/microsoft/phi-2", "hi"), None),
        (("bench", "phi", "--runs", "1", "--warmup", "0"), None),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else None,
)
def test_a_repo_id_never_loads_the_folder_of_that_name_in_the_current_directory(
    run_llmctl: Run, config_file: Path, trap: Path, tmp_path: Path, args: tuple[str, ...], stdin: bytes | None
) -> None:
    config_file.write_text('default_model = "phi"\n' + ALIAS)

    result = run_llmctl(*args, stdin=stdin)

    assert not (tmp_path / MARKER).exists(), "the folder's Python ran"
    assert result.exit_code == 2, result.stderr
    assert "not in the local Hugging Face cache" in result.stderr or "is not downloaded" in result.stderr
    assert "llmctl models download microsoft/phi-2" in result.stderr
    assert "Traceback" not in result.stderr


def test_models_rm_of_a_repo_id_leaves_the_folder_of_that_name_alone(
    run_llmctl: Run, config_file: Path, trap: Path
) -> None:
    config_file.write_text(ALIAS)
    for reference in ("phi", "hf/microsoft/phi-2", "microsoft/phi-2"):
        result = run_llmctl("models", "rm", reference, "--yes")
        assert result.exit_code == 2 and "not in the Hugging Face cache" in result.stderr, result.stderr
    assert (trap / "model.safetensors").is_file()


def test_models_list_shows_nothing_of_the_folder_of_that_name(run_llmctl: Run, config_file: Path, trap: Path) -> None:
    config_file.write_text(ALIAS)
    result = run_llmctl("models", "list", "--json")
    assert result.exit_code == 0, result.stderr
    [phi] = [e for e in json.loads(result.stdout) if e["name"] == "phi"]
    assert phi["location"] is None and phi["parameters"] is None


def test_a_bare_org_name_is_not_a_folder_either_and_the_hint_says_how_to_write_one(run_llmctl: Run, trap: Path) -> None:
    result = run_llmctl("tokens", "count", "-m", "microsoft/phi-2", "hi")
    assert result.exit_code == 2
    assert "Unknown provider 'microsoft'" in result.stderr and "-m ./microsoft/phi-2" in result.stderr


@pytest.mark.parametrize(
    ("reference", "alias"),
    [
        ("./org/tiny", None),
        ("org/../org/tiny", None),  # not written as a path: refused (checked below)
        ("tiny", 'path = "org/tiny"'),
        ("tiny", 'id = "./org/tiny"'),
    ],
)
def test_a_folder_loads_when_written_as_a_path_or_named_by_path(
    run_llmctl: Run,
    config_file: Path,
    tiny_models: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reference: str,
    alias: str | None,
) -> None:
    work = tmp_path / "work"
    shutil.copytree(tiny_models["llama"], work / "org" / "tiny")
    monkeypatch.chdir(work)
    if alias:
        config_file.write_text(f'[models.tiny]\nprovider = "hf"\n{alias}\n')

    result = run_llmctl("tokens", "count", "-m", reference, "hi", "--json")

    if reference.startswith("org/"):
        assert result.exit_code == 2 and "Unknown provider 'org'" in result.stderr
        return
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["source"] == "exact"


def test_a_repo_id_in_the_cache_wins_over_a_folder_of_that_name(
    run_llmctl: Run, tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "hf-home" / "hub" / "models--org--tiny"
    snapshot = repo / "snapshots" / ("a" * 40)
    shutil.copytree(tiny_models["llama"], snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    work = tmp_path / "work"
    shutil.copytree(tiny_models["gemma"], work / "org" / "tiny")
    monkeypatch.chdir(work)

    result = run_llmctl("models", "info", "hf/org/tiny", "--json")

    assert result.exit_code == 0, result.stderr
    details = json.loads(result.stdout)
    assert details["source"] == "hf-cache" and details["location"] == str(snapshot)
    assert details["architecture"] == "LlamaForCausalLM"


@pytest.mark.parametrize(
    ("reference", "models"),
    [
        ("hf/../outside", {}),
        ("hf/./org/tiny", {}),
        ("hf//etc/model", {}),
        ("hf/org/name/extra", {}),
        ("hf/org--name", {}),
        ("hf/.hidden/x", {}),
        ("hf/org/na me", {}),
        ("m", {"m": {"provider": "hf", "id": "org/../../outside"}}),
        ("m", {"m": {"provider": "hf", "id": "../not-there"}}),  # a path: a folder that does not exist
        ("m", {"m": {"provider": "hf", "path": "/does/not/exist"}}),
    ],
)
def test_references_that_are_neither_a_repo_id_nor_an_existing_folder_are_refused(
    reference: str, models: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError):
        resolve(reference, Settings.model_validate({"models": models}))


def test_a_hosted_alias_keeps_a_model_name_that_looks_like_a_path() -> None:
    settings = Settings.model_validate(
        {
            "providers": {"vllm": {"kind": "openai", "base_url": "http://127.0.0.1:8000/v1"}},
            "models": {"served": {"provider": "vllm", "id": "/models/Llama-3"}},
        }
    )
    assert resolve("served", settings).model_id == "/models/Llama-3"
    assert resolve("served", settings).local_folder is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"provider": "hf"}, "set exactly one of id"),
        ({"provider": "hf", "id": "org/x", "path": "./x"}, "set exactly one of id"),
    ],
)
def test_an_alias_needs_exactly_one_of_id_and_path(
    run_llmctl: Run, config_file: Path, table: dict[str, str], message: str
) -> None:
    config_file.write_text("[models.m]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items()))
    result = run_llmctl("config", "show")
    assert result.exit_code == 2 and message in result.stderr and "models.m" in result.stderr


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


@pytest.mark.parametrize("repo_id", ["org/..", "../outside", "org/a--b", ".hidden/x", "org/x.", "org/-x"])
def test_models_download_and_rm_refuse_what_is_not_a_repo_id(run_llmctl: Run, repo_id: str) -> None:
    download = run_llmctl("models", "download", repo_id, "--dry-run")
    remove = run_llmctl("models", "rm", f"hf/{repo_id}", "--yes")
    assert download.exit_code == 2 and "is not a Hub repository id" in download.stderr, download.stderr
    assert remove.exit_code == 2 and "is not a Hub repository id" in remove.stderr, remove.stderr


@pytest.mark.parametrize("pasted", ["sk-proj-Zx81kQpL0aBcDeFgHiJkLmNoPqRsT", "pass show openai --otp 9f8e7d6c5b4a3921"])
def test_a_key_pasted_into_api_key_cmd_is_not_echoed_either(
    run_llmctl: Run, config_file: Path, isolated_home: Path, pasted: str
) -> None:
    config_file.write_text(f"[providers.openai]\napi_key_cmd = {json.dumps(pasted)}\n")
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "hi")
    assert result.exit_code == 1 and "providers.openai.api_key_cmd" in result.stderr, result.stderr
    assert leaked(pasted.split()[-1], [result.stdout, result.stderr, *home_files(isolated_home)]) == []
