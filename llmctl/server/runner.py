"""Run the server: bind, announce the URL in ``$LLMCTL_HOME``, serve, drain, clean up.

Safe by default: a non-loopback address needs ``[server] api_keys``. SIGTERM (and Ctrl-C) stop
accepting connections and let the requests in flight finish, each recorded as it ends
(uvicorn's graceful shutdown, with sse-starlette's automatic stream cut switched off); the
signal is then raised again, so the process exits 143 (130 for Ctrl-C) as every llmctl
command does (``services/interrupts.py``).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Sequence

from llmctl.config import Settings
from llmctl.errors import ConfigError, LlmctlError, UsageError
from llmctl.providers.registry import resolve
from llmctl.server.app import create_app
from llmctl.server.dispatch import Dispatcher
from llmctl.server.pool import ModelPool
from llmctl.services import running_server

DRAIN_TIMEOUT_S = 120  # how long SIGTERM waits for answers still streaming before cutting them


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def client_keys(settings: Settings, host: str) -> dict[str, str]:
    """Each accepted key (read from the variable the config names) -> its client's label."""
    named = settings.server.api_keys
    if not named and not is_loopback(host):
        raise UsageError(
            f"Listening on {host} would let anyone who can reach it use your models and API keys.",
            hint='Add clients\' keys under [server.api_keys] in the config (label = "ENV_VAR_NAME"), '
            "or listen on 127.0.0.1.",
        )
    keys: dict[str, str] = {}
    for label, variable in named.items():
        value = os.environ.get(variable, "").strip()
        if not value:
            raise ConfigError(
                f"[server.api_keys] {label} names the variable {variable}, which is not set.",
                hint=f"export {variable}=... (the key that client will send) before `llmctl serve`.",
            )
        keys[value] = label
    return keys


class Server:
    """One ``llmctl serve``: construction binds the socket (so the URL is known), ``run`` serves."""

    def __init__(self, settings: Settings, *, host: str, port: int) -> None:
        self._settings = settings
        self._keys = client_keys(settings, host)
        self.pool = ModelPool(settings.server.keep_alive_s)
        self.dispatcher = Dispatcher(settings, self.pool)
        self._socket = _bind(host, port)
        bound_host, bound_port = self._socket.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.url = f"http://{shown}:{bound_port}"

    def preload(self, models: Sequence[str]) -> list[str]:
        """Load these local models now; their names."""
        names = []
        for reference in models:
            resolved = resolve(reference, self._settings)
            if not resolved.spec.local:
                raise UsageError(f"-m {reference}: {resolved.display_name} is hosted; only local models load.")
            self.pool.preload(resolved)
            names.append(resolved.display_name)
        return names

    def run(self) -> None:
        """Serve until SIGTERM or Ctrl-C (raised again afterwards, as KeyboardInterrupt)."""
        import uvicorn
        from sse_starlette.sse import AppStatus

        AppStatus.disable_automatic_graceful_drain()  # streams in flight finish; uvicorn waits for them
        app = create_app(self.dispatcher, api_keys=self._keys)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=DRAIN_TIMEOUT_S,
            server_header=False,
        )
        server = uvicorn.Server(config)
        self.pool.start_reaper()
        running_server.announce(self.url)
        try:
            server.run(sockets=[self._socket])
        finally:
            running_server.withdraw()
            self.dispatcher.drain(timeout_s=10)
            self.pool.close()
            self._socket.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        reason = "it is in use" if exc.errno in (98, 48) else exc.strerror or str(exc)
        raise LlmctlError(
            f"Cannot listen on {host}:{port}: {reason}.",
            hint="Pick another with --port (0: any free one), or stop the server already there (llmctl ps).",
        ) from None
    return sock
