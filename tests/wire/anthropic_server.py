"""Loopback server speaking the Anthropic Messages wire format.

Routes (``base_url`` is ``http://127.0.0.1:PORT``: ``anthropic.Anthropic``
appends ``/v1/...`` itself)::

    POST /v1/messages                a message, or the SSE event stream
                                     (message_start ... message_stop)
    POST /v1/messages/count_tokens   {"input_tokens": N}
    GET  /v1/models                  {"data": [...], "has_more", "first_id", "last_id"}
                                     (limit / after_id / before_id honoured)
    GET  /v1/models/{id}             one model, or 404 not_found_error

Authentication: with ``api_key`` set, a request passes when it carries the
key as ``x-api-key`` *or* as ``Authorization: Bearer`` (anthropic 2.x sends an
``api_key`` as a Bearer token).  With ``require_version`` (default) a
``/v1/messages`` request without ``anthropic-version`` gets the real 400.
A ``{"role": "system"}`` entry in ``messages`` gets a 400 pointing at the
top-level ``system`` parameter unless ``allow_system_messages=True`` (the
2.13 SDK's types admit such entries; the default guards system placement).

Example::

    with AnthropicServer(api_key="sk-ant-test") as server:
        server.add(Fault(529), Reply(text="Hello", usage=(12, 3)))
        client = anthropic.Anthropic(base_url=server.base_url, api_key="sk-ant-test")
        ...
        assert server.last_request.json["system"] == "Be brief."
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import pytest

from ._http import (
    ContextTooLong,
    DropMidStream,
    Fault,
    KeepAlive,
    LoopbackServer,
    Plan,
    Raw,
    RecordedRequest,
    Reply,
    ResponseWriter,
    Slow,
    StreamError,
    estimate_tokens,
    new_id,
)

__all__ = [
    "DEFAULT_ANTHROPIC_MODELS",
    "AnthropicServer",
    "ContextTooLong",
    "DropMidStream",
    "Fault",
    "KeepAlive",
    "Plan",
    "Raw",
    "Reply",
    "Slow",
    "StreamError",
    "anthropic_error",
    "anthropic_wire",
    "estimate_tokens",
]

DEFAULT_ANTHROPIC_MODELS: tuple[str, ...] = (
    "claude-opus-4-7",
    "claude-sonnet-4-6",
    "claude-haiku-4-5-20251001",
)

_DISPLAY_NAMES = {
    "claude-opus-4-7": "Claude Opus 4.7",
    "claude-sonnet-4-6": "Claude Sonnet 4.6",
    "claude-haiku-4-5-20251001": "Claude Haiku 4.5",
}

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
MODELS_PATH = "/v1/models"

#: error type -> (HTTP status, default message)
ERROR_TYPES: dict[str, tuple[int, str]] = {
    "invalid_request_error": (400, "Invalid request."),
    "authentication_error": (401, "invalid x-api-key"),
    "billing_error": (402, "Your credit balance is too low to access the Anthropic API."),
    "permission_error": (403, "Your API key does not have permission to use the specified resource."),
    "not_found_error": (404, "Not found"),
    "request_too_large": (413, "Request exceeds the maximum allowed number of bytes."),
    "rate_limit_error": (
        429,
        "This request would exceed the rate limit for your organization of 50 requests per minute. "
        "For details, refer to: https://docs.claude.com/en/api/rate-limits.",
    ),
    "api_error": (500, "Internal server error"),
    "timeout_error": (504, "Request timed out"),
    "overloaded_error": (529, "Overloaded"),
}

_STATUS_TYPES = {status: type_ for type_, (status, _) in ERROR_TYPES.items()}


def anthropic_error(type_: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    """An Anthropic error body: ``{"type": "error", "error": {type, message}, "request_id"}``."""
    body: dict[str, Any] = {"type": "error", "error": {"type": type_, "message": message}}
    if request_id is not None:
        body["request_id"] = request_id
    return body


def _error_type_for(status: int) -> str:
    if status in _STATUS_TYPES:
        return _STATUS_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


class AnthropicServer(LoopbackServer):
    """Anthropic-compatible loopback server (Messages, count_tokens, Models)."""

    vendor = "anthropic"

    def __init__(
        self,
        *,
        models: Sequence[str | Mapping[str, Any]] = DEFAULT_ANTHROPIC_MODELS,
        context_window: int = 200_000,
        count_tokens: int | None = None,
        require_version: bool = True,
        allow_system_messages: bool = False,
        api_key: str | None = None,
        script: Iterable[Plan] = (),
        default: Plan | None = None,
        validate: bool = True,
        handler_timeout_s: float = 30.0,
    ) -> None:
        super().__init__(
            api_key=api_key,
            script=script,
            default=default,
            validate=validate,
            handler_timeout_s=handler_timeout_s,
        )
        self.models: list[str | Mapping[str, Any]] = list(models)
        self.context_window = context_window
        self.count_tokens = count_tokens
        """Fixed count_tokens answer; ``None`` uses :func:`estimate_tokens`."""
        self.require_version = require_version
        self.allow_system_messages = allow_system_messages
        """Accept ``{"role": "system"}`` entries in ``messages`` (rejected by default)."""

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, the ``base_url`` for ``anthropic.Anthropic``."""
        return self.root_url

    # -- hooks -------------------------------------------------------------- #

    def common_headers(self) -> dict[str, str]:
        return {"request-id": new_id("req_011")}

    def _error(self, writer: ResponseWriter, status: int, type_: str, message: str) -> None:
        headers = self.common_headers()
        writer.json(status, anthropic_error(type_, message, headers["request-id"]), headers)

    def error_body_for(self, fault: Fault, request: RecordedRequest) -> Any:
        type_ = fault.error_type or _error_type_for(fault.status)
        message = fault.message or ERROR_TYPES.get(type_, (fault.status, f"Error {fault.status}"))[1]
        if fault.status == 404 and fault.message is None and isinstance(request.body, dict) and "model" in request.body:
            message = f"model: {request.body['model']}"
        return anthropic_error(type_, message, new_id("req_011"))

    def _authorized(self, request: RecordedRequest) -> bool:
        return self.api_key is not None and self.api_key in (request.headers.get("x-api-key"), request.bearer_token)

    def _send_unauthorized(self, request: RecordedRequest, writer: ResponseWriter) -> None:
        if "x-api-key" not in request.headers and "authorization" not in request.headers:
            self._error(writer, 401, "authentication_error", "x-api-key header is required")
        else:
            self._error(writer, 401, "authentication_error", "invalid x-api-key")

    def serve(self, request: RecordedRequest, plan: Plan, writer: ResponseWriter) -> None:
        path, method = request.path.rstrip("/"), request.method
        if method == "POST" and path == MESSAGES_PATH:
            self._messages(request, plan, writer)
        elif method == "POST" and path == COUNT_TOKENS_PATH:
            self._count_tokens(request, plan, writer)
        elif method == "GET" and path == MODELS_PATH:
            self._plain(plan, writer, lambda: self._model_page(request))
        elif method == "GET" and path.startswith(MODELS_PATH + "/"):
            model_id = path[len(MODELS_PATH) + 1 :]
            found = [m for m in self._model_objects() if m["id"] == model_id]
            if not found:
                self._error(writer, 404, "not_found_error", f"model: {model_id}")
                return
            self._plain(plan, writer, lambda: found[0])
        else:
            self._error(writer, 404, "not_found_error", "Not Found")

    # -- helpers ------------------------------------------------------------ #

    def _model_objects(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for entry in self.models:
            model_id = entry if isinstance(entry, str) else str(entry["id"])
            date = re.search(r"(\d{4})(\d{2})(\d{2})$", model_id)
            created = f"{date[1]}-{date[2]}-{date[3]}T00:00:00Z" if date else "2025-01-01T00:00:00Z"
            base: dict[str, Any] = {
                "type": "model",
                "id": model_id,
                "display_name": _DISPLAY_NAMES.get(model_id, model_id),
                "created_at": created,
                "lifecycle": "active",
            }
            out.append(base if isinstance(entry, str) else {**base, **entry})
        return out

    def _model_page(self, request: RecordedRequest) -> dict[str, Any]:
        models = self._model_objects()
        ids = [m["id"] for m in models]
        limit = int(request.query.get("limit", ["20"])[0])
        after = request.query.get("after_id", [None])[0]
        before = request.query.get("before_id", [None])[0]
        if before is not None and before in ids:
            end = ids.index(before)
            page = models[max(0, end - limit) : end]
            has_more = end - limit > 0
        else:
            start = ids.index(after) + 1 if after is not None and after in ids else 0
            page = models[start : start + limit]
            has_more = start + limit < len(models)
        return {
            "data": page,
            "has_more": has_more,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        }

    def _plan_error(self, plan: Plan) -> tuple[int, str, str] | None:
        """(status, type, message) of the HTTP error a plan means for a non-streaming answer."""
        if isinstance(plan, ContextTooLong):
            limit = plan.limit if plan.limit is not None else self.context_window
            tokens = plan.prompt_tokens if plan.prompt_tokens is not None else limit + 1024
            return 400, "invalid_request_error", f"prompt is too long: {tokens} tokens > {limit} maximum"
        if isinstance(plan, StreamError):
            type_ = plan.error_type or "overloaded_error"
            status, message = ERROR_TYPES.get(type_, (500, "Internal server error"))
            return status, type_, plan.message or message
        return None

    def _plain(self, plan: Plan, writer: ResponseWriter, build: Callable[[], dict[str, Any]]) -> None:
        error = self._plan_error(plan)
        if error is not None:
            self._error(writer, *error)
            return
        body = build()
        if isinstance(plan, DropMidStream):
            writer.partial(200, json.dumps(body).encode(), "application/json", self.common_headers())
            return
        writer.json(200, body, self.common_headers())

    def _validate(self, request: RecordedRequest, *, count_tokens: bool = False) -> str | None:
        """The invalid_request_error message for a bad Messages request, else None."""
        if self.require_version and not count_tokens and "anthropic-version" not in request.headers:
            return "anthropic-version: header is required"
        body = request.body
        if not isinstance(body, dict):
            return "There was an error parsing the body of your request: expected a JSON object."
        if "model" not in body:
            return "model: Field required"
        if not count_tokens and "max_tokens" not in body:
            return "max_tokens: Field required"
        messages = body.get("messages")
        if not isinstance(messages, list):
            return "messages: Field required"
        for index, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role == "system" and not self.allow_system_messages:
                return (
                    'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
                    'not "system" as an input message role.'
                )
            if role not in ("user", "assistant", "system"):
                return f"messages.{index}.role: Input should be 'user' or 'assistant'"
        temperature = body.get("temperature")
        if isinstance(temperature, (int, float)) and not 0 <= temperature <= 1:
            return f"temperature: Input should be {'less' if temperature > 1 else 'greater'} than or equal to " + (
                "1" if temperature > 1 else "0"
            )
        return None

    def _usage(self, reply: Reply, usage: tuple[int, int], output_tokens: int) -> dict[str, Any]:
        return {
            "input_tokens": usage[0],
            "cache_creation_input_tokens": reply.cache_creation_tokens,
            "cache_read_input_tokens": reply.cached_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": reply.cache_creation_tokens,
                "ephemeral_1h_input_tokens": 0,
            },
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    # -- endpoints ---------------------------------------------------------- #

    def _count_tokens(self, request: RecordedRequest, plan: Plan, writer: ResponseWriter) -> None:
        if self.validate:
            invalid = self._validate(request, count_tokens=True)
            if invalid is not None:
                self._error(writer, 400, "invalid_request_error", invalid)
                return
        count = self.count_tokens if self.count_tokens is not None else estimate_tokens(request.body)
        self._plain(plan, writer, lambda: {"input_tokens": count})

    def _messages(self, request: RecordedRequest, plan: Plan, writer: ResponseWriter) -> None:
        if self.validate:
            invalid = self._validate(request)
            if invalid is not None:
                self._error(writer, 400, "invalid_request_error", invalid)
                return
        body = request.body if isinstance(request.body, dict) else {}
        stream = body.get("stream") is True
        if not stream or isinstance(plan, ContextTooLong):
            error = self._plan_error(plan)
            if error is not None:
                self._error(writer, *error)
                return
        reply = plan if isinstance(plan, Reply) else getattr(plan, "reply", None)
        if not isinstance(reply, Reply):
            reply = self.default if isinstance(self.default, Reply) else Reply()
        model = reply.model or str(body.get("model", "claude-sonnet-4-6"))
        message_id = new_id("msg_01")
        usage = reply.resolve_usage(body)
        stop_reason = reply.finish_reason or "end_turn"
        headers = {**self.common_headers(), **reply.headers}

        if not stream:
            message: dict[str, Any] = {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": reply.content}],
                "stop_reason": stop_reason,
                "stop_sequence": None,
            }
            if usage is not None:
                message["usage"] = self._usage(reply, usage, usage[1])
            if isinstance(plan, DropMidStream):
                writer.partial(200, json.dumps(message).encode(), "application/json", headers)
            else:
                writer.json(200, message, headers)
            return

        start: dict[str, Any] = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
        }
        if usage is not None:
            start["usage"] = self._usage(reply, usage, 1)
        writer.start_stream(headers)
        writer.sse({"type": "message_start", "message": start}, "message_start")
        writer.sse(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        )
        writer.sse({"type": "ping"}, "ping")
        for index, piece in enumerate(reply.deltas()):
            if isinstance(plan, KeepAlive) and index >= plan.after_chunks:
                writer.keep_alive(plan, lambda: writer.sse({"type": "ping"}, "ping"))
                return
            if isinstance(plan, DropMidStream) and index >= plan.after_chunks:
                writer.drop(plan.reset)
                return
            if isinstance(plan, StreamError) and index >= plan.after_chunks:
                self._stream_error(plan, writer)
                return
            if index and reply.chunk_delay_s and not writer.sleep(reply.chunk_delay_s):
                writer.drop()
                return
            writer.sse(
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
                "content_block_delta",
            )
        if isinstance(plan, DropMidStream):
            writer.drop(plan.reset)
            return
        if isinstance(plan, StreamError):
            self._stream_error(plan, writer)
            return
        writer.sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        delta: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        }
        if usage is not None:
            delta["usage"] = {
                "input_tokens": usage[0],
                "cache_creation_input_tokens": reply.cache_creation_tokens,
                "cache_read_input_tokens": reply.cached_tokens,
                "output_tokens": usage[1],
            }
        writer.sse(delta, "message_delta")
        writer.sse({"type": "message_stop"}, "message_stop")

    def _stream_error(self, plan: StreamError, writer: ResponseWriter) -> None:
        type_ = plan.error_type or "overloaded_error"
        message = plan.message or ERROR_TYPES.get(type_, (500, "Internal server error"))[1]
        writer.sse(anthropic_error(type_, message), "error")


@pytest.fixture
def anthropic_wire() -> Iterator[AnthropicServer]:
    """A running :class:`AnthropicServer`, stopped after the test."""
    with AnthropicServer() as server:
        yield server
    assert not server.leaked_threads, f"server threads still alive: {server.leaked_threads}"
