"""llmctl's own wire, for ``generate`` and ``chat`` attached to a running server (warm attach).

``POST /llmctl/v1/stream`` runs a *local* model's ``provider.stream`` in the pool and sends its
events one to one as JSON lines (usage, deltas with their token counts, the finish), so the
attached command shows and records exactly what it would in-process. The call is recorded by
that command's own :class:`~llmctl.services.calls.Call`, once, under its own command name; hence
only local models (free, never budgeted) are served here: hosted ones go through the metered
vendor wires. A failure keeps its llmctl class, message and hint.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from llmctl.domain import (
    SEED_MAX,
    SEED_MIN,
    GenerationParams,
    GenerationRequest,
    Message,
    StreamEvent,
    TextDelta,
    Usage,
    UsageUpdate,
)
from llmctl.errors import LlmctlError, UsageError
from llmctl.providers.base import ResolvedModel
from llmctl.providers.registry import resolve
from llmctl.server.body import read_json, validated
from llmctl.server.dispatch import MAX_OUTPUT_TOKENS, Dispatcher
from llmctl.server.errors import WireError, from_llmctl
from llmctl.server.wire_common import dispatcher, keep_alive_of

router = APIRouter()
STREAM_PATH = "/llmctl/v1/stream"
COUNT_PATH = "/llmctl/v1/count"
_END = object()


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class _Message(_Strict):
    role: str = Field(pattern="^(system|user|assistant)$")
    content: str


class _Params(_Strict):
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_OUTPUT_TOKENS)
    seed: int | None = Field(default=None, ge=SEED_MIN, le=SEED_MAX)


class StreamBody(_Strict):
    model: str
    messages: list[_Message] = Field(min_length=1)
    params: _Params = Field(default_factory=_Params)
    keep_alive: str | int | float | None = None


class CountBody(_Strict):
    model: str
    messages: list[_Message] = Field(default_factory=list)


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "source": usage.source.value,
        "cached_input_tokens": usage.cached_input_tokens,
    }


def event_json(event: StreamEvent) -> dict[str, Any]:
    if isinstance(event, TextDelta):
        return {"type": "delta", "text": event.text, "tokens": event.tokens}
    if isinstance(event, UsageUpdate):
        return {"type": "usage", "usage": usage_json(event.usage)}
    return {"type": "finished", "usage": usage_json(event.usage), "finish_reason": event.finish_reason.value}


def error_json(error: LlmctlError) -> dict[str, Any]:
    return {"error": {"class": type(error).__name__, "message": error.message, "hint": error.hint}}


def _local(target: Dispatcher, model: str) -> ResolvedModel:
    resolved = resolve(model, target.settings)
    if not resolved.spec.local:
        raise UsageError(f"{resolved.display_name} is not a local model; the server runs only local ones for attach.")
    return resolved


@router.post(STREAM_PATH)
async def stream(request: Request) -> Response:
    target = dispatcher(request)
    try:
        body = validated(StreamBody, await read_json(request))
        keep_alive = keep_alive_of(body.keep_alive)
        resolved = _local(target, body.model)
    except WireError as exc:
        return JSONResponse({"error": {"class": "UsageError", "message": exc.message, "hint": None}}, exc.status)
    except LlmctlError as exc:
        return JSONResponse(error_json(exc), from_llmctl(exc).status)
    messages = tuple(Message(m.role, m.content) for m in body.messages)  # type: ignore[arg-type]
    generation = GenerationRequest(messages, GenerationParams(**body.params.model_dump()), stream=True)
    cancelled = threading.Event()

    def events() -> Iterator[StreamEvent]:
        with target.pool.lease(resolved, keep_alive) as provider:
            if cancelled.is_set():
                return
            stream = provider.stream(generation)
            try:
                for event in stream:
                    yield event
                    if cancelled.is_set():
                        return  # the attached command stopped reading (Ctrl-C): the provider stops
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()

    async def lines() -> AsyncIterator[bytes]:
        try:
            async for item in _bridge(target, events(), cancelled):
                yield (json.dumps(item) + "\n").encode()
        finally:
            cancelled.set()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.post(COUNT_PATH)
async def count(request: Request) -> Response:
    """The model's context window, and the prompt's exact length in its tokens (for chat's history fitting)."""
    from starlette.concurrency import run_in_threadpool

    target = dispatcher(request)
    try:
        body = validated(CountBody, await read_json(request))
        resolved = _local(target, body.model)
    except WireError as exc:
        return JSONResponse({"error": {"class": "UsageError", "message": exc.message, "hint": None}}, exc.status)
    except LlmctlError as exc:
        return JSONResponse(error_json(exc), from_llmctl(exc).status)
    messages = tuple(Message(m.role, m.content) for m in body.messages)  # type: ignore[arg-type]

    def measure() -> dict[str, Any]:
        with target.pool.lease(resolved) as provider:
            window = provider.context_window()
            prompt_ids = getattr(provider, "prompt_ids", None)
            tokens = len(prompt_ids(GenerationRequest(messages))) if messages and prompt_ids is not None else None
            return {"context_window": window, "tokens": tokens}

    try:
        return JSONResponse(await run_in_threadpool(measure))
    except LlmctlError as exc:
        return JSONResponse(error_json(exc), from_llmctl(exc).status)


async def _bridge(
    target: Dispatcher, source: Iterator[StreamEvent], cancelled: threading.Event
) -> AsyncIterator[dict[str, Any]]:
    """Run a blocking event stream on a worker thread; its events (and any failure) as JSON objects."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()

    def emit(item: object) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:
            cancelled.set()

    def work() -> None:
        try:
            for event in source:
                emit(event_json(event))
        except LlmctlError as exc:
            emit({"type": "error", **error_json(exc)})
        except Exception as exc:
            emit({"type": "error", **error_json(LlmctlError(f"{type(exc).__name__}: {exc}"))})
        finally:
            emit(_END)

    target.spawn(work, "llmctl-attach")
    while True:
        item = await queue.get()
        if item is _END:
            return
        assert isinstance(item, dict)
        yield item
