"""``llmctl serve``, ``llmctl ps`` and ``llmctl stop``: start the server, and ask the running one."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from llmctl.cli import output
from llmctl.cli.options import JsonOpt, app_state


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (default [server] host: 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=0, max=65535, help="Port (default [server] port: 8484; 0: any free).")
    ] = None,
    models: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Load this local model at start (repeatable).")
    ] = None,
) -> None:
    """Serve every model llmctl can name over the OpenAI and Anthropic APIs, kept warm and metered.

    OpenAI: POST /v1/chat/completions, GET /v1/models. Anthropic: POST /v1/messages,
    POST /v1/messages/count_tokens. Also GET /health and GET /status. Every request is a
    row in the usage ledger (command serve; `llmctl usage --by client`) and obeys [budget].
    A local model stays loaded for [server] keep_alive (default 5m) after its last request.
    Listening anywhere but loopback needs [server.api_keys]. SIGTERM or Ctrl-C let the
    answers in flight finish, then stop (exit 143 / 130).
    """
    from llmctl.server.runner import Server

    settings = app_state(ctx).settings()
    server = Server(
        settings,
        host=host if host is not None else settings.server.host,
        port=port if port is not None else settings.server.port,
    )
    for name in server.preload(models or []):
        output.status(f"Loaded {name}.")
    output.status(f"llmctl serve: listening on {server.url} (OpenAI base URL {server.url}/v1). Ctrl-C stops it.")
    server.run()


def ps(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Show the models the running server has loaded: device, dtype, memory, and until when."""
    from llmctl.domain import human_bytes
    from llmctl.services.running_server import request_json, require_server

    server = require_server(app_state(ctx).settings())
    status = request_json(server, "/status")
    if as_json:
        output.print_json({"url": server.url, **status})
        return
    rows = status.get("models", [])
    if not rows:
        output.status(f"No models loaded in the server at {server.url}.")
        return
    output.table(
        (
            output.Column("model"),
            output.Column("device"),
            output.Column("dtype"),
            output.Column("memory", justify="right"),
            output.Column("until"),
        ),
        (
            (
                row["model"],
                row.get("device"),
                row.get("quantization") or row.get("dtype"),
                human_bytes(row.get("memory_bytes")),
                _until(row),
            )
            for row in rows
        ),
    )


def _until(row: dict[str, object]) -> str:
    if row.get("active_requests"):
        return "in use"
    until = row.get("idle_until")
    if not isinstance(until, int | float):
        return "forever"
    left = max(0, int(until - time.time()))
    return f"{left // 60}m{left % 60:02d}s" if left >= 60 else f"{left}s"


def stop(ctx: typer.Context, model: Annotated[str, typer.Argument(help="The model to unload.")]) -> None:
    """Unload MODEL from the running server (at once, or when its current request ends)."""
    from llmctl.errors import UsageError
    from llmctl.services.running_server import request_json, require_server

    server = require_server(app_state(ctx).settings())
    answer = request_json(server, "/llmctl/v1/stop", {"model": model})
    if answer.get("stopped") is None:
        raise UsageError(f"{model} is not loaded in the server at {server.url}.", hint="`llmctl ps` lists what is.")
    output.status(f"Unloaded {answer['stopped']}.")
