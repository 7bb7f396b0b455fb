"""Hostile input, table by table: each row is a config, a command line or stdin, and what must come
back: the exit code, a phrase of the one-line error that says how to fix it, and no traceback.

Streams (closed or full stdout, a reader that goes away, a huge stdin) are in
test_hostile_streams.py; the config file's writes under faults and concurrency in
test_config_writes.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from llmctl.paths import example_config_path
from tests.conftest import CliResult

Run = Callable[..., CliResult]


def not_utf8(raw: bytes) -> str:
    """What Python puts in sys.argv for bytes that are not UTF-8 (lone surrogates)."""
    return os.fsdecode(raw)


def assert_clean_failure(result: CliResult, code: int, phrase: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stderr)
    assert phrase in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert "Unexpected" not in result.stderr  # a handled error, not the bug fallback


# -- config values: strict types and bounds ---------------------------------------------------

CONFIG_CASES = [
    # (file text, key path named in the error, phrase of the message)
    ('[defaults]\nmax_tokens = "512"\n', "defaults.max_tokens", "without quotes"),
    ('[defaults]\ntemperature = "0.5"\n', "defaults.temperature", "without quotes"),
    ('[providers.hf]\ntrust_remote_code = "on"\n', "providers.hf.trust_remote_code", "valid boolean"),
    ("[providers.hf]\nallow_pickle_weights = 1\n", "providers.hf.allow_pickle_weights", "valid boolean"),
    ('[usage]\nstore_text = "yes"\n', "usage.store_text", "valid boolean"),
    ('[models.x]\nprovider = "hf"\nid = "a/b"\ntrust_remote_code = 1\n', "models.x.trust_remote_code", "boolean"),
    ("[defaults]\nmax_tokens = true\n", "defaults.max_tokens", "valid integer"),
    ("[defaults]\nseed = 99999999999999999999999\n", "defaults.seed", "less than or equal to 9223372036854775807"),
    ("[defaults]\nseed = -99999999999999999999999\n", "defaults.seed", "greater than or equal to"),
    ("[defaults]\nmax_tokens = 99999999999\n", "defaults.max_tokens", "less than or equal to 2147483647"),
    ("[defaults]\ntop_p = 0\n", "defaults.top_p", "greater than 0"),
    ("[defaults]\ntemperature = nan\n", "defaults.temperature", "finite number"),
    ("[providers.openai]\ntimeout = inf\n", "providers.openai.timeout", "finite number"),
    ("[providers.openai]\ntimeout = 1e12\n", "providers.openai.timeout", "less than or equal to 86400"),
    ("[providers.openai]\nmax_retries = -1\n", "providers.openai.max_retries", "greater than or equal to 0"),
    ('[providers.openai]\nbase_url = "ftp://example.com/v1"\n', "providers.openai.base_url", "http:// or https://"),
    ('[providers.openai]\nbase_url = "localhost:8000/v1"\n', "providers.openai.base_url", "http:// or https://"),
    ('[providers.anthropic]\nbase_url = "https://"\n', "providers.anthropic.base_url", "with a host"),
    ('[models.x]\nprovider = "hf"\nid = "a/b"\ncontext_window = 0\n', "models.x.context_window", "greater than"),
    ('[budget]\ndaily_usd = "5"\n', "budget.daily_usd", "without quotes"),
    ('[providers.mine]\nbase_url = "http://127.0.0.1:8000/v1"\n', "providers.mine.kind", 'add kind = "openai"'),
    ('[providers.mine]\nkind = "gemini"\n', "providers.mine.kind", "unknown kind 'gemini'"),
    ("[defaults]\ntemprature = 0.2\n", "defaults.temprature", str(example_config_path())),
]


@pytest.mark.parametrize(("text", "key", "phrase"), CONFIG_CASES, ids=[c[1] + ":" + c[0][-12:] for c in CONFIG_CASES])
def test_config_values_are_strictly_typed_and_bounded(
    run_llmctl: Run, config_file: Path, text: str, key: str, phrase: str
) -> None:
    config_file.write_text(text)
    result = run_llmctl("config", "show")
    assert_clean_failure(result, 2, phrase)
    assert f"{config_file}:" in result.stderr and f" {key}: " in result.stderr
    assert "discriminator" not in result.stderr  # pydantic's words, not ours


def test_a_url_with_credentials_is_refused_without_echoing_them(run_llmctl: Run, config_file: Path) -> None:
    config_file.write_text('[providers.openai]\nbase_url = "ftp://me:sk-live-s3cret@proxy.example/v1"\n')
    result = run_llmctl("config", "show")
    assert_clean_failure(result, 2, "http:// or https://")
    assert "s3cret" not in result.stderr and "sk-live" not in result.stderr


def test_the_example_it_points_to_is_installed_and_valid(run_llmctl: Run, config_file: Path) -> None:
    shown = run_llmctl("config", "path", "--example")
    assert shown.exit_code == 0 and Path(shown.stdout.strip()) == example_config_path()
    assert run_llmctl("config", "init", "--example").exit_code == 0
    assert config_file.read_text() == example_config_path().read_text()
    assert run_llmctl("config", "show").exit_code == 0


def test_valid_typed_values_still_load(run_llmctl: Run, config_file: Path) -> None:
    config_file.write_text(
        "[defaults]\ntemperature = 1\ntop_p = 1\nseed = -5\nmax_tokens = 2147483647\n"
        '[providers.my-vllm]\nkind = "openai"\nbase_url = "HTTP://127.0.0.1:8000/v1"\ntimeout = 86400\n'
    )
    result = run_llmctl("config", "show", "--json")
    assert result.exit_code == 0, result.stderr


# -- command lines ----------------------------------------------------------------------------

ARGV_CASES = [
    # (argv, exit code, phrase)
    (("generate", not_utf8(b"caf\xe9")), 2, "argument 2 is not valid UTF-8 (byte 3: b'\\xe9')"),
    (("generate", "-s", not_utf8(b"\xff"), "hi"), 2, "argument 3 is not valid UTF-8"),
    (("chat", "-m", not_utf8(b"\xe9t\xe9")), 2, "not valid UTF-8"),
    (("config", "set", "default_model", not_utf8(b"mod\xe8le")), 2, "not valid UTF-8"),
    (("models", "info", not_utf8(b"\xc3")), 2, "not valid UTF-8"),
    (("usage", "--model", not_utf8(b"\xa0")), 2, "not valid UTF-8"),
    (("tokens", "count", not_utf8(b"\xfe\xff")), 2, "not valid UTF-8"),
    (("generate", "--top-p", "0", "hi"), 2, "0<x<=1"),
    (("generate", "--top-p", "1.5", "hi"), 2, "--top-p"),
    (("generate", "--seed", str(2**64), "hi"), 2, "--seed"),
    (("generate", "--max-tokens", str(10**12), "hi"), 2, "--max-tokens"),
    (("generate", "--temperature", "inf", "hi"), 2, "--temperature"),
    (("bench", "demo", "--prompt-tokens", str(10**15)), 2, "--prompt-tokens"),
    (("usage", "--since", "99999999999d"), 2, "out of range"),
    (("usage", "--since", "9" * 400 + "d"), 2, "out of range"),
    (("usage", "--until", "9999-12-31"), 2, "out of range"),
    (("usage", "--since", "0001-01-01"), 2, "out of range"),
    (("usage", "--since", "0001-01-01T00:00"), 2, "out of range"),
    (("usage", "--by", "week"), 2, "use model, provider, day, command or client"),
    (("config", "set", "default_model", "no-such-model"), 2, "Unknown model 'no-such-model'"),
    (("config", "set", "default_model", "nosuchprovider/x"), 2, "Unknown provider 'nosuchprovider'"),
]


@pytest.mark.parametrize(("argv", "code", "phrase"), ARGV_CASES, ids=[" ".join(c[0])[:40] for c in ARGV_CASES])
def test_hostile_command_lines(
    run_llmctl: Run, config_file: Path, argv: tuple[str, ...], code: int, phrase: str
) -> None:
    result = run_llmctl(*argv)
    assert_clean_failure(result, code, phrase)
    assert not config_file.exists()  # a refused `config set` wrote nothing


# -- stdin ----------------------------------------------------------------------------------------

MIB = 2**20
STDIN_CASES = [
    # (argv, where "{llama}" is a tiny model with a 256-token window; stdin; exit code; phrases)
    (("generate",), b"caf\xe9\n", 2, ["Standard input is not valid UTF-8 (byte 3"]),
    (("generate", "-m", "{llama}"), b"word " * MIB, 2, ["at least", "context window of 256 tokens", "-m MODEL"]),
    (("chat", "-m", "{llama}"), b"word " * MIB + b"\n", 2, ["at least", "context window of 256 tokens", "/model"]),
    (("generate",), b"x" * (64 * MIB + 1), 2, ["larger than 64 MiB"]),
    (("tokens", "count"), b"x" * (64 * MIB + 1), 2, ["larger than 64 MiB"]),
]


@pytest.mark.parametrize(("argv", "stdin", "code", "phrases"), STDIN_CASES, ids=[c[0][0] for c in STDIN_CASES])
def test_hostile_stdin(
    run_llmctl: Run,
    tiny_models: dict[str, Path],
    argv: tuple[str, ...],
    stdin: bytes,
    code: int,
    phrases: list[str],
) -> None:
    result = run_llmctl(*(a.format(llama=tiny_models["llama"]) for a in argv), stdin=stdin)
    for phrase in phrases:
        assert_clean_failure(result, code, phrase)


def test_a_resolvable_default_model_is_accepted(run_llmctl: Run, config_file: Path) -> None:
    assert run_llmctl("config", "set", "default_model", "openai/gpt-4o-mini").exit_code == 0
    result = run_llmctl("config", "set", "models.m.provider", "hf", "models.m.id", "a/b", "default_model", "m")
    assert result.exit_code == 0, result.stderr
    assert 'default_model = "m"' in config_file.read_text()


# -- --config paths -----------------------------------------------------------------------------


def _missing(tmp: Path) -> Path:
    return tmp / "typo.toml"


def _dangling(tmp: Path) -> Path:
    link = tmp / "link.toml"
    link.symlink_to(tmp / "gone.toml")
    return link


def _loop(tmp: Path) -> Path:
    link = tmp / "loop.toml"
    link.symlink_to(link)
    return link


def _directory(tmp: Path) -> Path:
    folder = tmp / "folder.toml"
    folder.mkdir()
    return folder


def _latin1(tmp: Path) -> Path:
    path = tmp / "latin1.toml"
    path.write_bytes('default_model = "caf\xe9"\n'.encode("latin-1"))
    return path


@pytest.mark.parametrize(
    ("make", "phrase"),
    [
        (_missing, "does not exist"),
        (_dangling, "symbolic link to"),
        (_loop, "symbolic link to"),
        (_directory, "Cannot read config file"),
        (_latin1, "not UTF-8"),
    ],
    ids=["missing", "dangling-symlink", "symlink-loop", "directory", "not-utf8"],
)
@pytest.mark.parametrize("command", [("config", "show"), ("generate", "hi"), ("config", "set", "defaults.seed", "1")])
def test_a_config_path_that_cannot_be_read_is_exit_2(
    run_llmctl: Run, tmp_path: Path, make: Callable[[Path], Path], phrase: str, command: tuple[str, ...]
) -> None:
    path = make(tmp_path)
    result = run_llmctl("--config", str(path), *command)
    assert_clean_failure(result, 2, phrase)
    assert str(path) in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_config_is_exit_2(run_llmctl: Run, tmp_path: Path) -> None:
    path = tmp_path / "secret.toml"
    path.write_text('default_model = "demo"\n')
    path.chmod(0)
    assert_clean_failure(run_llmctl("--config", str(path), "config", "show"), 2, "Permission denied")


def test_the_default_location_missing_still_means_defaults(run_llmctl: Run, config_file: Path) -> None:
    assert not config_file.exists()
    result = run_llmctl("config", "show")
    assert result.exit_code == 0 and "does not exist; these are the defaults" in result.stderr
    assert run_llmctl("--config", str(config_file), "config", "init").exit_code == 0  # init may create it


def test_a_dangling_symlink_at_the_default_location_is_an_error(run_llmctl: Run, config_file: Path) -> None:
    config_file.symlink_to(config_file.parent / "moved-away.toml")
    assert_clean_failure(run_llmctl("config", "show"), 2, "symbolic link to")
