"""Where a running ``llmctl serve`` can be found: ``server.json`` under ``$LLMCTL_HOME``.

The server writes its URL and process id there once it listens, and removes the file on
exit. ``llmctl ps``/``stop`` and the warm attach of ``generate``/``chat`` read it; a file
left behind by a server that died (its pid gone) is treated as no server at all.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.config import Settings
from llmctl.errors import LlmctlError
from llmctl.files import write_atomically
from llmctl.paths import data_home
from llmctl.providers.base import Provider, ResolvedModel
from llmctl.providers.registry import open_provider

SERVER_FILE = "server.json"


@dataclass(frozen=True)
class RunningServer:
    url: str  # http://HOST:PORT, no trailing slash
    pid: int | None = None  # None: named by [server] url, not started here


def server_file() -> Path:
    return data_home() / SERVER_FILE


def announce(url: str, pid: int | None = None) -> Path:
    """Record that this process serves at ``url`` (readable by its owner only)."""
    path = server_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps({"url": url, "pid": os.getpid() if pid is None else pid}) + "\n", mode=0o600)
    return path


def withdraw(pid: int | None = None) -> None:
    """Remove the file, if it is still this process's (another server may have started since)."""
    path = server_file()
    found = _read(path)
    if found is not None and found.pid == (os.getpid() if pid is None else pid):
        with contextlib.suppress(OSError):
            path.unlink()


def find_server(settings: Settings) -> RunningServer | None:
    """The server to talk to: ``[server] url``, else a live one announced in ``$LLMCTL_HOME``."""
    if settings.server.url:
        return RunningServer(settings.server.url.rstrip("/"))
    found = _read(server_file())
    if found is None or found.pid is None or not _alive(found.pid):
        return None
    return found


def _read(path: Path) -> RunningServer | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        return None
    pid = data.get("pid")
    return RunningServer(data["url"].rstrip("/"), pid if isinstance(pid, int) and not isinstance(pid, bool) else None)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process has that pid now: not our server
        return False
    return True


KEY_ENV = "LLMCTL_API_KEY"  # the key ps/stop/attach send to a server that asks for one
TIMEOUT_S = 10.0


class ServerUnreachable(LlmctlError):
    """No server answers where one was expected."""


def request_json(server: RunningServer, path: str, body: dict[str, Any] | None = None) -> Any:
    """GET (or POST ``body`` to) ``path`` on the server; its JSON answer, or an LlmctlError saying why not."""
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    key = os.environ.get(KEY_ENV)
    if key:
        headers["authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        server.url + path, data=data, headers=headers, method="GET" if data is None else "POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise LlmctlError(f"The server at {server.url} refused: {_message(exc.read())}", hint=_hint(exc.code)) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServerUnreachable(
            f"No llmctl server answers at {server.url} ({reason}).",
            hint="Start one with `llmctl serve`, or fix [server] url in the config.",
        ) from None


def _message(raw: bytes) -> str:
    try:
        error = json.loads(raw.decode("utf-8")).get("error", {})
        return str(error.get("message") or error)
    except (ValueError, AttributeError):
        return raw.decode("utf-8", errors="replace")[:200]


def _hint(status: int) -> str | None:
    return f"Set {KEY_ENV} to a key listed in the server's [server.api_keys]." if status == 401 else None


def require_server(settings: Settings) -> RunningServer:
    found = find_server(settings)
    if found is None:
        raise ServerUnreachable(
            "No llmctl server is running here.", hint="Start one with `llmctl serve` (or set [server] url)."
        )
    return found


def open_model(resolved: ResolvedModel, settings: Settings, *, use_server: bool = True) -> Provider:
    """The provider a command uses: a local model through the running server, when one answers
    (warm attach: no load in this process), else in-process. ``use_server=False`` (--no-server)
    always loads in-process; a server that died or refuses connections is passed over silently."""
    if use_server and resolved.spec.local:
        server = find_server(settings)
        if server is not None and accepts_connections(server.url):
            from llmctl.providers.served import ServedProvider

            return ServedProvider(resolved, server.url, api_key=os.environ.get(KEY_ENV))
    return open_provider(resolved)


def accepts_connections(url: str, timeout_s: float = 0.5) -> bool:
    """Whether something listens at ``url`` (a connect, no request: microseconds on loopback)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False
