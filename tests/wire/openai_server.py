"""Loopback server speaking the OpenAI Chat Completions wire format.

Routes (``base_url`` is ``http://127.0.0.1:PORT/v1``, what ``openai.OpenAI``
expects)::

    POST /v1/chat/completions   chat.completion, or an SSE stream of
                                chat.completion.chunk objects ending in [DONE]
    GET  /v1/models             {"object": "list", "data": [...]}
    GET  /v1/models/{id}        one model, or 404 model_not_found

Example::

    with OpenAIServer(api_key="sk-test") as server:
        server.add(Fault(429), Reply(text="Hi there", usage=(10, 2)))
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test")
        ...
        assert server.last_request.json["model"] == "gpt-4o-mini"
"""

from __future__ import annotations

import json
import time
import uuid
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
    "DEFAULT_OPENAI_MODELS",
    "ContextTooLong",
    "DropMidStream",
    "Fault",
    "KeepAlive",
    "OpenAIServer",
    "Plan",
    "Raw",
    "Reply",
    "Slow",
    "StreamError",
    "estimate_tokens",
    "openai_error",
    "openai_wire",
]

DEFAULT_OPENAI_MODELS: tuple[str, ...] = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini")

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"

_DEFAULT_MESSAGES: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: (
        "Incorrect API key provided: sk-wron****. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    ),
    403: ("You are not allowed to access this resource.", "invalid_request_error", None),
    404: ("The requested resource does not exist.", "invalid_request_error", None),
    408: ("Request timed out.", "timeout", None),
    409: ("The request conflicted with another request.", "invalid_request_error", None),
    429: (
        "Rate limit reached for requests. Please try again in 10ms. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


def openai_error(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """An OpenAI error body: ``{"error": {message, type, param, code}}``."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _redact(key: str) -> str:
    if len(key) <= 8:
        return key[:3] + "*" * max(0, len(key) - 3)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


class OpenAIServer(LoopbackServer):
    """OpenAI-compatible loopback server (Chat Completions + Models)."""

    vendor = "openai"

    def __init__(
        self,
        *,
        models: Sequence[str | Mapping[str, Any]] = DEFAULT_OPENAI_MODELS,
        context_window: int = 128_000,
        system_fingerprint: str | None = "fp_loopback",
        owned_by: str = "openai",
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
        self.system_fingerprint = system_fingerprint
        self.owned_by = owned_by

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, the ``base_url`` for ``openai.OpenAI``."""
        return f"{self.root_url}/v1"

    # -- hooks -------------------------------------------------------------- #

    def common_headers(self) -> dict[str, str]:
        return {
            "x-request-id": new_id("req_"),
            "openai-version": "2020-10-01",
            "openai-processing-ms": "7",
            "openai-organization": "loopback-org",
        }

    def error_body_for(self, fault: Fault, request: RecordedRequest) -> Any:
        message, type_, code = _DEFAULT_MESSAGES.get(
            fault.status,
            (f"Error {fault.status}.", "server_error" if fault.status >= 500 else "invalid_request_error", None),
        )
        if fault.status == 404 and isinstance(request.body, dict) and "model" in request.body:
            message = f"The model `{request.body['model']}` does not exist or you do not have access to it."
            code = "model_not_found"
        return openai_error(
            fault.message if fault.message is not None else message,
            fault.error_type if fault.error_type is not None else type_,
            None,
            fault.code if fault.code is not None else code,
        )

    def _send_unauthorized(self, request: RecordedRequest, writer: ResponseWriter) -> None:
        token = request.bearer_token
        if not token:
            body = openai_error(
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank "
                "username) if you're accessing the API from your browser and are prompted for a username and "
                "password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
            )
        else:
            body = openai_error(
                f"Incorrect API key provided: {_redact(token)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                None,
                "invalid_api_key",
            )
        writer.json(401, body, self.common_headers())

    def serve(self, request: RecordedRequest, plan: Plan, writer: ResponseWriter) -> None:
        path, method = request.path.rstrip("/"), request.method
        if method == "POST" and path == CHAT_PATH:
            self._chat(request, plan, writer)
        elif method == "GET" and path == MODELS_PATH:
            self._plain(request, plan, writer, lambda: {"object": "list", "data": self._model_objects()})
        elif method == "GET" and path.startswith(MODELS_PATH + "/"):
            self._get_model(request, plan, writer, path[len(MODELS_PATH) + 1 :])
        else:
            writer.json(
                404,
                openai_error(f"Invalid URL ({method} {request.path})", "invalid_request_error"),
                self.common_headers(),
            )

    # -- helpers ------------------------------------------------------------ #

    def _model_objects(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for entry in self.models:
            if isinstance(entry, str):
                out.append({"id": entry, "object": "model", "created": 1715367049, "owned_by": self.owned_by})
            else:
                out.append({"object": "model", "created": 1715367049, "owned_by": self.owned_by, **entry})
        return out

    def _get_model(self, request: RecordedRequest, plan: Plan, writer: ResponseWriter, model_id: str) -> None:
        found = [m for m in self._model_objects() if m["id"] == model_id]
        if not found:
            writer.json(
                404,
                openai_error(
                    f"The model '{model_id}' does not exist", "invalid_request_error", "model", "model_not_found"
                ),
                self.common_headers(),
            )
            return
        self._plain(request, plan, writer, lambda: found[0])

    def _plan_error(self, plan: Plan) -> tuple[int, dict[str, Any]] | None:
        """The HTTP error a plan means for a non-streaming answer, if any."""
        if isinstance(plan, ContextTooLong):
            limit = plan.limit if plan.limit is not None else self.context_window
            tokens = plan.prompt_tokens if plan.prompt_tokens is not None else limit + 1024
            return 400, openai_error(
                f"This model's maximum context length is {limit} tokens. However, your messages resulted in "
                f"{tokens} tokens. Please reduce the length of the messages.",
                "invalid_request_error",
                "messages",
                "context_length_exceeded",
            )
        if isinstance(plan, StreamError):
            return 500, openai_error(plan.message or _DEFAULT_MESSAGES[500][0], plan.error_type or "server_error")
        return None

    def _plain(
        self, request: RecordedRequest, plan: Plan, writer: ResponseWriter, build: Callable[[], dict[str, Any]]
    ) -> None:
        """Answer a non-generation endpoint according to ``plan``."""
        error = self._plan_error(plan)
        if error is not None:
            writer.json(error[0], error[1], self.common_headers())
            return
        body: dict[str, Any] = build()
        if isinstance(plan, DropMidStream):
            writer.partial(200, json.dumps(body).encode(), "application/json", self.common_headers())
            return
        writer.json(200, body, self.common_headers())

    def _validate_chat(self, body: Any) -> dict[str, Any] | None:
        if not isinstance(body, dict):
            return openai_error(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
                "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid "
                "JSON.)",
                "invalid_request_error",
            )
        if not body.get("model"):
            return openai_error("you must provide a model parameter", "invalid_request_error")
        messages = body.get("messages")
        if not isinstance(messages, list):
            return openai_error(
                "Missing required parameter: 'messages'.",
                "invalid_request_error",
                "messages",
                "missing_required_parameter",
            )
        if not messages:
            return openai_error(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array "
                "instead.",
                "invalid_request_error",
                "messages",
                "empty_array",
            )
        temperature = body.get("temperature")
        if isinstance(temperature, (int, float)) and not 0 <= temperature <= 2:
            above = temperature > 2
            return openai_error(
                f"Invalid 'temperature': decimal {'above maximum' if above else 'below minimum'} value. Expected a "
                f"value {'<= 2' if above else '>= 0'}, but got {temperature} instead.",
                "invalid_request_error",
                "temperature",
                "decimal_above_max_value" if above else "decimal_below_min_value",
            )
        if body.get("stream_options") is not None and body.get("stream") is not True:
            return openai_error(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                "invalid_request_error",
                "stream_options",
            )
        return None

    def _usage(self, usage: tuple[int, int], cached: int) -> dict[str, Any]:
        prompt, completion = usage
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    # -- chat completions --------------------------------------------------- #

    def _chat(self, request: RecordedRequest, plan: Plan, writer: ResponseWriter) -> None:
        body = request.body
        if self.validate:
            invalid = self._validate_chat(body)
            if invalid is not None:
                writer.json(400, invalid, self.common_headers())
                return
        body = body if isinstance(body, dict) else {}
        stream = body.get("stream") is True
        if not stream or isinstance(plan, ContextTooLong):
            error = self._plan_error(plan)
            if error is not None:
                writer.json(error[0], error[1], self.common_headers())
                return
        reply = plan if isinstance(plan, Reply) else getattr(plan, "reply", None)
        if not isinstance(reply, Reply):
            reply = self.default if isinstance(self.default, Reply) else Reply()
        model = reply.model or str(body.get("model", "gpt-4o-mini"))
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:29]}"
        created = int(time.time())
        usage = reply.resolve_usage(body)
        finish = reply.finish_reason or "stop"
        headers = {**self.common_headers(), **reply.headers}

        if not stream:
            completion: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": reply.content,
                            "refusal": None,
                            "annotations": [],
                        },
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
                "service_tier": "default",
                "system_fingerprint": self.system_fingerprint,
            }
            if usage is not None:
                completion["usage"] = self._usage(usage, reply.cached_tokens)
            if isinstance(plan, DropMidStream):
                writer.partial(200, json.dumps(completion).encode(), "application/json", headers)
            else:
                writer.json(200, completion, headers)
            return

        options = body.get("stream_options")
        options = options if isinstance(options, dict) else {}
        include_usage = options.get("include_usage") is True
        obfuscate = options.get("include_obfuscation", True) is not False

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            out: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": self.system_fingerprint,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                out["usage"] = None
            if obfuscate:
                out["obfuscation"] = uuid.uuid4().hex[:8]
            return out

        writer.start_stream(headers)
        writer.sse(chunk({"role": "assistant", "content": "", "refusal": None}))
        for index, piece in enumerate(reply.deltas()):
            if isinstance(plan, KeepAlive) and index >= plan.after_chunks:
                writer.keep_alive(plan, lambda: writer.sse(chunk({"content": ""})))
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
            writer.sse(chunk({"content": piece}))
        if isinstance(plan, DropMidStream):
            writer.drop(plan.reset)
            return
        if isinstance(plan, StreamError):
            self._stream_error(plan, writer)
            return
        writer.sse(chunk({}, finish))
        if include_usage and usage is not None:
            final: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": self.system_fingerprint,
                "choices": [],
                "usage": self._usage(usage, reply.cached_tokens),
            }
            if obfuscate:
                final["obfuscation"] = uuid.uuid4().hex[:8]
            writer.sse(final)
        writer.sse("[DONE]")

    def _stream_error(self, plan: StreamError, writer: ResponseWriter) -> None:
        writer.sse(openai_error(plan.message or _DEFAULT_MESSAGES[500][0], plan.error_type or "server_error"))


@pytest.fixture
def openai_wire() -> Iterator[OpenAIServer]:
    """A running :class:`OpenAIServer`, stopped after the test."""
    with OpenAIServer() as server:
        yield server
    assert not server.leaked_threads, f"server threads still alive: {server.leaked_threads}"
