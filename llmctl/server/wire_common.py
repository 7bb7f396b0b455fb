"""What both vendor wires share: turning a request's fields into llmctl's values, and streaming."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from llmctl.config import parse_keep_alive
from llmctl.domain import FinishReason, GenerationParams
from llmctl.server.dispatch import Dispatcher, Done, Event, ServeRequest
from llmctl.server.errors import Kind, WireError
from llmctl.server.pool import DEFAULT
from llmctl.services.generation import resolve_params

DISCONNECT_POLL_S = 0.25
ErrorBody = Callable[[WireError], dict[str, Any]]
SseEvents = AsyncIterator[dict[str, str]]


def dispatcher(request: Request) -> Dispatcher:
    found: Dispatcher = request.app.state.dispatcher
    return found


def client_label(request: Request, user: str | None) -> str | None:
    """Who the call is for: the body's own name for its user, else the API key's label."""
    return user or getattr(request.state, "client", None)


def keep_alive_of(value: str | int | float | None) -> float | object | None:
    if value is None:
        return DEFAULT
    try:
        return parse_keep_alive(value)
    except ValueError as exc:
        raise WireError(Kind.INVALID, f"keep_alive: {exc}.", "keep_alive") from None


def params_of(
    target: Dispatcher, *, temperature: float | None, top_p: float | None, max_tokens: int | None, seed: int | None
) -> GenerationParams:
    """A request's sampling: its own values, else the config's [defaults], as for `llmctl generate`."""
    target.check_max_tokens(max_tokens)
    return resolve_params(
        target.settings.defaults, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed
    )


def error_response(error: WireError, body: ErrorBody, *, status: int | None = None) -> JSONResponse:
    # x-should-retry: the SDKs retry 429 and 5xx unless told not to; a spent budget stays spent.
    headers = {} if error.retryable else {"x-should-retry": "false"}
    return JSONResponse(body(error), status_code=status or error.status, headers=headers)


async def collect(target: Dispatcher, request: ServeRequest, http: Request) -> Done:
    """A whole call, for a request that does not stream; a client that hangs up stops it all the same."""
    cancelled = threading.Event()

    async def watch() -> None:
        while not cancelled.is_set():
            if await http.is_disconnected():
                cancelled.set()
                return
            await asyncio.sleep(DISCONNECT_POLL_S)

    watcher = asyncio.create_task(watch())
    try:
        async for event in target.events(request, cancelled):
            if isinstance(event, Done):
                return event
    finally:
        cancelled.set()
        watcher.cancel()
    raise WireError(Kind.SERVER, "The call ended without a result.")


async def stream(
    target: Dispatcher,
    request: ServeRequest,
    render: Callable[[AsyncIterator[Event]], SseEvents],
    error_body: ErrorBody,
    error_event: Callable[[WireError], dict[str, str]],
) -> Response:
    """An SSE response; a refusal before the first event is a plain error response instead."""
    cancelled = threading.Event()
    events = target.events(request, cancelled)
    try:
        first = await anext(events)
    except WireError as exc:
        cancelled.set()
        return error_response(exc, error_body)

    async def replay() -> AsyncIterator[Event]:
        yield first
        async for event in events:
            yield event

    async def body() -> SseEvents:
        try:
            async for item in render(replay()):
                yield item
        except WireError as exc:  # failed mid-answer: the vendor's in-stream error event
            yield error_event(exc)
        finally:
            cancelled.set()

    return EventSourceResponse(body(), ping=15, send_timeout=30)


def stop_reason(reason: FinishReason, *, length: str, stop: str) -> str:
    return length if reason is FinishReason.LENGTH else stop
