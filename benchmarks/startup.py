"""How fast llmctl starts, against simonw/llm's ``llm --help`` measured in the same run.

    .venv/bin/python benchmarks/startup.py              # 20 runs each, llm installed into a temp venv
    .venv/bin/python benchmarks/startup.py --runs 40 --llm-venv ~/.cache/llm-bench-venv --json

Targets (issue 7): ``llmctl --help`` under 0.15 s median, and at most 0.3x ``llm --help``.

Method: every command runs once as warm-up (page cache, .pyc files), then the commands are
timed round-robin (one run of each, ``--runs`` times over), so a load spike on a shared
machine hits every command alike. Wall time is what a user waits; CPU time (user + system of
the child) is printed beside it because it is far less sensitive to other processes on a busy
machine. Each command runs with a fresh, empty llmctl home and config, like a new user.
``llm`` is installed from PyPI into a throwaway virtual environment (``pip install llm``), or
reused from ``--llm-venv``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Sample, describe, load_average, machine, run_process, summarize, table

HELP_TARGET_S = 0.15
RATIO_TARGET = 0.3


def llmctl_argv() -> list[str]:
    """The installed ``llmctl`` script beside this Python, as a user runs it."""
    script = Path(sys.executable).parent / "llmctl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "llmctl"]


def ensure_llm(venv_dir: Path) -> Path:
    """``llm`` in ``venv_dir``, installed from PyPI when it is not there yet."""
    llm = venv_dir / "bin" / "llm"
    if llm.exists():
        return llm
    print(f"Installing simonw/llm into {venv_dir} (pip install llm) ...", file=sys.stderr)
    venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
    subprocess.run(
        [str(venv_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "llm"],
        check=True,
    )
    return llm


def has_command(argv: list[str], env: dict[str, str]) -> bool:
    """Whether this llmctl has a command (``usage`` arrives with the ledger)."""
    result = subprocess.run([*argv, "--help"], capture_output=True, env=env, check=False)
    return result.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per command (default 20)")
    parser.add_argument("--llm-venv", type=Path, help="reuse (or create) simonw/llm's venv here instead of a temp dir")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="llmctl-startup-") as tmp:
        root = Path(tmp)
        env = {
            **os.environ,
            "LLMCTL_HOME": str(root / "home"),
            "LLMCTL_CONFIG": str(root / "config.toml"),
            "LLM_USER_PATH": str(root / "llm-home"),
            "HF_HUB_OFFLINE": "1",
        }
        env.pop("LLMCTL_DEBUG", None)
        llm = ensure_llm(args.llm_venv or root / "llm-venv")
        base = llmctl_argv()
        commands: dict[str, list[str]] = {
            "llmctl --help": [*base, "--help"],
            "llmctl config show": [*base, "config", "show"],
            "llmctl models list": [*base, "models", "list"],
        }
        if has_command([*base, "usage"], env):
            commands["llmctl usage"] = [*base, "usage"]
        commands["llm --help"] = [str(llm), "--help"]
        commands["python -c pass"] = [sys.executable, "-c", "pass"]

        load_before = load_average()
        for argv in commands.values():
            run_process(argv, env=env)  # warm-up
        samples: dict[str, list[Sample]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                samples[name].append(run_process(argv, env=env))
        info = machine()
        info["load_average_before"] = load_before
        if args.llm_venv is None:
            shutil.rmtree(root / "llm-venv", ignore_errors=True)

    stats = {name: summarize(runs) for name, runs in samples.items()}
    llm_wall = stats["llm --help"]["wall_median_s"]
    llm_cpu = stats["llm --help"]["cpu_median_s"]
    rows = []
    for name, s in stats.items():
        rows.append(
            [
                name,
                f"{s['wall_median_s'] * 1000:.0f}",
                f"{s['wall_min_s'] * 1000:.0f}",
                f"{s['cpu_median_s'] * 1000:.0f}",
                f"{s['wall_median_s'] / llm_wall:.2f}x",
                f"{s['cpu_median_s'] / llm_cpu:.2f}x" if llm_cpu else "-",
            ]
        )
    print(f"Machine: {describe(info)} (before: {load_before})")
    print(f"{args.runs} runs per command after one warm-up, round-robin.\n")
    headers = ["command", "wall median ms", "wall min ms", "cpu median ms", "wall vs llm", "cpu vs llm"]
    print(table(headers, rows))

    help_stats = stats["llmctl --help"]
    ratio = help_stats["wall_median_s"] / llm_wall
    verdicts = [
        ("llmctl --help median < 0.15 s", help_stats["wall_median_s"] < HELP_TARGET_S),
        ("llmctl --help <= 0.3x llm --help", ratio <= RATIO_TARGET),
    ]
    print()
    for label, ok in verdicts:
        print(f"{'MET ' if ok else 'MISS'}  {label}")
    if args.json:
        payload: dict[str, Any] = {"machine": info, "runs": args.runs, "commands": stats}
        print(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
