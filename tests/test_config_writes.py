"""The config file is never clobbered: parallel `config set`s all keep their key, a symlinked
config stays a symlink, and a write that fails is one line with no temporary file left behind."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from llmctl import files
from tests.conftest import CliResult

Run = Callable[..., CliResult]
REPO = Path(__file__).resolve().parent.parent


def _leftovers(folder: Path) -> list[str]:
    """Anything a write left beside the config: temp files (the lock file is meant to stay)."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_twelve_parallel_sets_of_different_keys_all_survive(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    env = {**os.environ, "PYTHONPATH": str(REPO), "LLMCTL_CONFIG": str(config)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "llmctl", "config", "set", f"budget.providers.p{n}.daily_usd", str(n + 1)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for n in range(12)
    ]
    failures = [p.communicate(timeout=120)[1].decode() for p in procs if p.wait(timeout=120) != 0]
    assert not failures, failures
    budgets = tomllib.loads(config.read_text())["budget"]["providers"]
    assert {name: b["daily_usd"] for name, b in budgets.items()} == {f"p{n}": n + 1 for n in range(12)}
    assert _leftovers(tmp_path) == []


def test_a_symlinked_config_stays_a_symlink(run_llmctl: Run, config_file: Path, tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "llmctl.toml"
    real.write_text('default_model = "demo"\n')
    config_file.symlink_to(real)

    result = run_llmctl("config", "set", "defaults.temperature", "0.2")
    assert result.exit_code == 0, result.stderr
    assert config_file.is_symlink() and config_file.resolve() == real
    assert tomllib.loads(real.read_text())["defaults"]["temperature"] == 0.2
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert _leftovers(dotfiles) == [] and _leftovers(tmp_path) == []
    assert run_llmctl("config", "init", "--force").exit_code == 0
    assert config_file.is_symlink() and "[defaults]" in real.read_text()


def _fail(errno_name: str) -> Callable[..., object]:
    import errno as errno_module

    code = getattr(errno_module, errno_name)

    def fail(*args: object, **kwargs: object) -> object:
        raise OSError(code, os.strerror(code))

    return fail


@pytest.mark.parametrize(
    ("target", "errno_name", "reason"),
    [
        ("mkstemp", "EACCES", "Permission denied"),  # read-only folder: the temp file cannot be made
        ("fsync", "ENOSPC", "No space left on device"),  # full disk: the temp file exists, half written
        ("replace", "EROFS", "Read-only file system"),  # the rename fails after a complete temp file
    ],
)
def test_a_failed_write_is_one_line_and_leaves_no_temp_file(
    run_llmctl: Run,
    config_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    errno_name: str,
    reason: str,
) -> None:
    config_file.write_text('default_model = "demo"\n')
    before = config_file.read_text()
    owner = files.tempfile if target == "mkstemp" else files.os
    monkeypatch.setattr(owner, target, _fail(errno_name))

    result = run_llmctl("config", "set", "defaults.temperature", "0.2")
    assert result.exit_code in (1, 2)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: Cannot write {config_file}: {reason}."], result.stderr
    assert "Traceback" not in result.stderr
    assert config_file.read_text() == before  # the old file is whole
    assert _leftovers(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
def test_a_read_only_folder_for_real(run_llmctl: Run, tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "config.toml").write_text('default_model = "demo"\n')
    folder.chmod(0o555)
    try:
        result = run_llmctl("--config", str(folder / "config.toml"), "config", "set", "defaults.seed", "1")
    finally:
        folder.chmod(0o755)
    assert result.exit_code in (1, 2) and "Permission denied" in result.stderr
    assert _leftovers(folder) == []


def test_config_set_on_a_named_file_that_does_not_exist_creates_nothing(run_llmctl: Run, tmp_path: Path) -> None:
    typo = tmp_path / "confg.toml"
    result = run_llmctl("--config", str(typo), "config", "set", "defaults.seed", "1")
    assert result.exit_code == 2 and "does not exist" in result.stderr and "config init" in result.stderr
    assert not typo.exists()
