"""The ASGI app: the two vendor wires, llmctl's attach wire, health and status, behind one key check.

``create_app`` takes everything it serves with (settings, pool, keys): nothing here reads the
config or the environment itself, so tests build an app as the server does.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmctl import __version__
from llmctl.errors import LlmctlError
from llmctl.providers.registry import resolve
from llmctl.server import anthropic_wire, native_wire, openai_wire
from llmctl.server.body import read_json, validated
from llmctl.server.dispatch import Dispatcher
from llmctl.server.errors import Kind, WireError
from llmctl.server.wire_common import error_response
from llmctl.services.models.hardware import ram

STATUS_PATH = "/status"
STOP_PATH = "/llmctl/v1/stop"
OPEN_PATHS = frozenset({"/health"})
_NO_KEY = "Missing or unknown API key: send Authorization: Bearer KEY or x-api-key: KEY."


def error_body_for(path: str) -> Callable[[WireError], dict[str, Any]]:
    """The error shape the client at ``path`` expects: Anthropic's under /v1/messages, else OpenAI's."""
    return anthropic_wire.error_body if path.startswith("/v1/messages") else openai_wire.error_body


def presented_key(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


def key_label(keys: Mapping[str, str], presented: str | None) -> str | None:
    """The label of the key presented, compared in constant time; None when it is none of them."""
    if presented is None:
        return None
    found = None
    for key, label in keys.items():
        if hmac.compare_digest(key.encode(), presented.encode()):
            found = label
    return found


class _StopBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    model: str


class _Guard:
    """Every request's key checked (its label kept as the client), and a bug answered in the vendor's
    shape. Plain ASGI, not BaseHTTPMiddleware: that one hides a client's disconnect from the routes."""

    def __init__(self, app: ASGIApp, keys: Mapping[str, str]) -> None:
        self._app = app
        self._keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path = scope["path"]
        if self._keys and path not in OPEN_PATHS:
            label = key_label(self._keys, presented_key(Request(scope)))
            if label is None:
                await error_response(WireError(Kind.AUTHENTICATION, _NO_KEY), error_body_for(path))(
                    scope, receive, send
                )
                return
            scope.setdefault("state", {})["client"] = label
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, receive, tracked)
        except Exception as exc:  # a bug: one line in the vendor's shape, never a traceback
            if started:
                raise
            error = WireError(Kind.SERVER, f"Unexpected {type(exc).__name__}: {exc}")
            await error_response(error, error_body_for(path))(scope, receive, send)


def create_app(dispatcher: Dispatcher, *, api_keys: Mapping[str, str] | None = None) -> FastAPI:
    """The app; ``api_keys`` maps each accepted key to its client's label (none: no key needed)."""
    app = FastAPI(title="llmctl serve", version=__version__, docs_url=None, redoc_url=None)
    app.state.dispatcher = dispatcher
    keys = dict(api_keys or {})

    app.add_middleware(_Guard, keys=keys)

    app.include_router(openai_wire.router)
    app.include_router(anthropic_wire.router)
    app.include_router(native_wire.router)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(STATUS_PATH)
    async def status() -> dict[str, Any]:
        total, available = ram()
        return {
            "version": __version__,
            "pid": os.getpid(),
            "models": dispatcher.pool.status(),
            "ram_total_bytes": total,
            "ram_available_bytes": available,
        }

    @app.post(STOP_PATH)
    async def stop(request: Request) -> Response:
        try:
            body = validated(_StopBody, await read_json(request))
            resolved = resolve(body.model, dispatcher.settings)
        except WireError as exc:
            return JSONResponse({"error": {"class": "UsageError", "message": exc.message, "hint": None}}, exc.status)
        except LlmctlError as exc:
            return JSONResponse(native_wire.error_json(exc), 404)
        return JSONResponse({"stopped": dispatcher.pool.stop(resolved)})

    return app
