"""The OpenAI wire: ``POST /v1/chat/completions`` (streaming or not) and ``GET /v1/models``.

Translated here, once: a Chat Completions body to a :class:`ServeRequest`, and the call's
events to ``chat.completion`` / ``chat.completion.chunk`` objects. With
``stream_options.include_usage`` the last chunk before ``[DONE]`` carries the usage, as
OpenAI sends it. Errors are OpenAI's ``{"error": {message, type, param, code}}``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from llmctl.domain import SEED_MAX, SEED_MIN, Message, Usage
from llmctl.server.body import read_json, validated
from llmctl.server.dispatch import Done, Event, Piece, ServeRequest, Started
from llmctl.server.errors import Kind, WireError
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
    Kind.INVALID: ("invalid_request_error", None),
    Kind.AUTHENTICATION: ("invalid_request_error", "invalid_api_key"),
    Kind.NOT_FOUND: ("invalid_request_error", "model_not_found"),
    Kind.TOO_LARGE: ("invalid_request_error", "request_too_large"),
    Kind.BUDGET: ("insufficient_quota", "insufficient_quota"),
    Kind.UPSTREAM: ("api_error", None),
    Kind.SERVER: ("server_error", None),
}


def error_body(error: WireError) -> dict[str, Any]:
    type_, code = _TYPES[error.kind]
    return {"error": {"message": error.message, "type": type_, "param": error.param, "code": code}}


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class _Part(_Strict):
    type: str
    text: str | None = None


class _Message(_Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[_Part] | None = None


class _StreamOptions(_Strict):
    include_usage: bool = False


class ChatCompletionBody(_Strict):
    model: str = Field(min_length=1)
    messages: list[_Message] = Field(min_length=1)
    stream: bool = False
    stream_options: _StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = Field(default=None, ge=SEED_MIN, le=SEED_MAX)
    n: int | None = Field(default=None, ge=1, le=1)
    user: str | None = Field(default=None, max_length=256)
    keep_alive: str | int | float | None = None  # Ollama's extension: how long the model stays loaded


def _text(message: _Message, index: int) -> str:
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    pieces = []
    for part in message.content:
        if part.type != "text" or part.text is None:
            raise WireError(
                Kind.INVALID, f"messages.{index}.content: {part.type!r} parts are not supported; send text.", "messages"
            )
        pieces.append(part.text)
    return "".join(pieces)


def to_request(body: ChatCompletionBody, request: Request) -> ServeRequest:
    messages = tuple(
        Message("system" if m.role in ("system", "developer") else m.role, _text(m, i))  # type: ignore[arg-type]
        for i, m in enumerate(body.messages)
    )
    params = params_of(
        dispatcher(request),
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        seed=body.seed,
    )
    return ServeRequest(body.model, messages, params, client_label(request, body.user), keep_alive_of(body.keep_alive))


def usage_json(usage: Usage) -> dict[str, Any]:
    found: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cached_input_tokens is not None:
        found["prompt_tokens_details"] = {"cached_tokens": usage.cached_input_tokens}
    return found


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    try:
        body = validated(ChatCompletionBody, await read_json(request))
        serve = to_request(body, request)
        target = dispatcher(request)
        target.resolve(serve.model)  # an unknown model is a 404 before anything starts
        if not body.stream:
            done = await collect(target, serve, request)
            return JSONResponse(_completion(done, body.model))
    except WireError as exc:
        return error_response(exc, error_body)
    include_usage = body.stream_options is not None and body.stream_options.include_usage
    return await stream(
        target,
        serve,
        lambda events: _chunks(events, body.model, include_usage),
        error_body,
        lambda error: {"data": json.dumps(error_body(error))},
    )


def _completion(done: Done, model: str) -> dict[str, Any]:
    completion = done.outcome.result.completion
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": completion.text},
                "finish_reason": stop_reason(completion.finish_reason, length="length", stop="stop"),
                "logprobs": None,
            }
        ],
        "usage": usage_json(completion.usage),
    }


async def _chunks(events: AsyncIterator[Event], model: str, include_usage: bool) -> SseEvents:
    chunk_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, str]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        data = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model}
        return {"data": json.dumps({**data, "choices": [choice]})}

    async for event in events:
        if isinstance(event, Started):
            yield chunk({"role": "assistant", "content": ""})
        elif isinstance(event, Piece):
            yield chunk({"content": event.text})
        elif isinstance(event, Done):
            completion = event.outcome.result.completion
            yield chunk({}, stop_reason(completion.finish_reason, length="length", stop="stop"))
            if include_usage:
                data = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model}
                yield {"data": json.dumps({**data, "choices": [], "usage": usage_json(completion.usage)})}
    yield {"data": "[DONE]"}


@router.get("/v1/models")
async def list_models(request: Request) -> JSONResponse:
    """The models this server can name for certain: the config's aliases, ``demo``, and what is loaded."""
    target = dispatcher(request)
    names = ["demo", *target.settings.models]
    names += [row["model"] for row in target.pool.status() if row["model"] not in names]
    created = int(time.time())
    data = [{"id": name, "object": "model", "created": created, "owned_by": "llmctl"} for name in names]
    return JSONResponse({"object": "list", "data": data})
