"""A real ``llmctl serve`` subprocess on a free loopback port, for the end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STARTUP_TIMEOUT_S = 120.0


@dataclass
class ServeProcess:
    process: subprocess.Popen[str]
    home: Path
    url: str = ""
    stderr_lines: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def ledger_rows(self) -> list[dict[str, Any]]:
        import sqlite3

        path = self.home / "usage.sqlite3"
        if not path.exists():
            return []
        with sqlite3.connect(path) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute("SELECT * FROM calls ORDER BY id")]

    def wait_for_rows(self, count: int, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        rows = self.ledger_rows()
        while len(rows) < count and time.monotonic() < deadline:
            time.sleep(0.1)
            rows = self.ledger_rows()
        return rows

    def terminate(self, timeout_s: float = 60.0) -> tuple[int, str]:
        """SIGTERM, then the exit code and everything it wrote on stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            _, err = self.process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return self.process.returncode, err


def start_serve(home: Path, config: Path, *args: str, env: dict[str, str] | None = None) -> ServeProcess:
    """``python -m llmctl serve --port 0 ARGS`` with its own home; returns once /health answers."""
    environment = {**os.environ, "LLMCTL_HOME": str(home), "LLMCTL_CONFIG": str(config), **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "llmctl", "serve", "--port", "0", *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    served = ServeProcess(process, home)
    announced = home / "server.json"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _, err = process.communicate()
            raise RuntimeError(f"llmctl serve exited {process.returncode}: {err}")
        if announced.exists():
            try:
                served.url = json.loads(announced.read_text())["url"]
                with urllib.request.urlopen(served.url + "/health", timeout=5) as response:
                    if response.status == 200:
                        return served
            except (OSError, ValueError, KeyError):
                pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("llmctl serve did not start in time")
