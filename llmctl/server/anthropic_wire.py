"""The Anthropic wire: ``POST /v1/messages`` (streaming or not) and ``POST /v1/messages/count_tokens``.

Translated here, once: a Messages body to a :class:`ServeRequest`, and the call's events to a
``message`` or to the event sequence ``message_start``, ``content_block_start``, ``ping``,
``content_block_delta``…, ``content_block_stop``, ``message_delta`` (stop reason and usage),
``message_stop``. Errors are Anthropic's ``{"type": "error", "error": {type, message}}``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from llmctl.domain import Message, Usage
from llmctl.errors import LlmctlError
from llmctl.server.body import read_json, validated
from llmctl.server.dispatch import MAX_OUTPUT_TOKENS, Done, Event, Piece, ServeRequest, Started
from llmctl.server.errors import Kind, WireError, from_llmctl
from llmctl.server.wire_common import (
    SseEvents,
    client_label,
    collect,
    dispatcher,
    error_response,
    keep_alive_of,
    params_of,
    stop_reason,
    stream,
)

router = APIRouter()

_TYPES = {
    Kind.INVALID: "invalid_request_error",
    Kind.AUTHENTICATION: "authentication_error",
    Kind.NOT_FOUND: "not_found_error",
    Kind.TOO_LARGE: "request_too_large",
    Kind.BUDGET: "billing_error",
    Kind.UPSTREAM: "api_error",
    Kind.SERVER: "api_error",
}


def error_body(error: WireError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": _TYPES[error.kind], "message": error.message}}


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class _Block(_Strict):
    type: str
    text: str | None = None


class _Message(_Strict):
    role: Literal["user", "assistant"]
    content: str | list[_Block]


class _Metadata(_Strict):
    user_id: str | None = Field(default=None, max_length=256)


class _Prompt(_Strict):
    model: str = Field(min_length=1)
    messages: list[_Message] = Field(min_length=1)
    system: str | list[_Block] | None = None


class MessagesBody(_Prompt):
    max_tokens: int = Field(ge=1, le=MAX_OUTPUT_TOKENS)
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, gt=0, le=1)
    metadata: _Metadata | None = None
    keep_alive: str | int | float | None = None  # llmctl's extension: how long a local model stays loaded


def _text(content: str | list[_Block], where: str) -> str:
    if isinstance(content, str):
        return content
    pieces = []
    for block in content:
        if block.type != "text" or block.text is None:
            raise WireError(Kind.INVALID, f"{where}: {block.type!r} blocks are not supported; send text.", where)
        pieces.append(block.text)
    return "".join(pieces)


def messages_of(body: _Prompt) -> tuple[Message, ...]:
    system = () if body.system is None else (Message("system", _text(body.system, "system")),)
    turns = tuple(Message(m.role, _text(m.content, f"messages.{i}.content")) for i, m in enumerate(body.messages))
    return system + turns


def to_request(body: MessagesBody, request: Request) -> ServeRequest:
    params = params_of(
        dispatcher(request), temperature=body.temperature, top_p=body.top_p, max_tokens=body.max_tokens, seed=None
    )
    user = body.metadata.user_id if body.metadata else None
    return ServeRequest(
        body.model, messages_of(body), params, client_label(request, user), keep_alive_of(body.keep_alive)
    )


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cached_input_tokens,
        "cache_creation_input_tokens": None,
    }


def _stop(done: Done) -> str:
    return stop_reason(done.outcome.result.completion.finish_reason, length="max_tokens", stop="end_turn")


@router.post("/v1/messages")
async def messages(request: Request) -> Response:
    try:
        body = validated(MessagesBody, await read_json(request))
        serve = to_request(body, request)
        target = dispatcher(request)
        target.resolve(serve.model)
        if not body.stream:
            done = await collect(target, serve, request)
            completion = done.outcome.result.completion
            return JSONResponse(
                {
                    "id": _message_id(),
                    "type": "message",
                    "role": "assistant",
                    "model": body.model,
                    "content": [{"type": "text", "text": completion.text}],
                    "stop_reason": _stop(done),
                    "stop_sequence": None,
                    "usage": usage_json(completion.usage),
                }
            )
    except WireError as exc:
        return error_response(exc, error_body)
    return await stream(
        target,
        serve,
        lambda events: _events(events, body.model),
        error_body,
        lambda error: _sse("error", error_body(error)),
    )


def _message_id() -> str:
    return f"msg_{uuid.uuid4().hex[:24]}"


def _sse(name: str, data: dict[str, Any]) -> dict[str, str]:
    return {"event": name, "data": json.dumps({"type": name, **data})}


async def _events(events: AsyncIterator[Event], model: str) -> SseEvents:
    async for event in events:
        if isinstance(event, Started):
            start: dict[str, Any] = {
                "id": _message_id(),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {**usage_json(event.usage), "output_tokens": 0},
            }
            yield _sse("message_start", {"message": start})
            yield _sse("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
            yield _sse("ping", {})
        elif isinstance(event, Piece):
            yield _sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": event.text}})
        elif isinstance(event, Done):
            yield _sse("content_block_stop", {"index": 0})
            usage = usage_json(event.outcome.result.completion.usage)
            yield _sse("message_delta", {"delta": {"stop_reason": _stop(event), "stop_sequence": None}, "usage": usage})
            yield _sse("message_stop", {})


@router.post("/v1/messages/count_tokens")
async def count_tokens(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    from llmctl.services.token_counting import count_tokens as count

    try:
        body = validated(_Prompt, await read_json(request))
        messages = messages_of(body)
        resolved = dispatcher(request).resolve(body.model)
        try:
            counted = await run_in_threadpool(count, resolved, messages)
        except LlmctlError as exc:
            raise from_llmctl(exc) from None
    except WireError as exc:
        return error_response(exc, error_body)
    return JSONResponse({"input_tokens": counted.tokens})
