"""Keeping a hosted stream honest: a watch on its clock, and the checks that make a bad response an error.

The SDKs' ``timeout`` bounds each read from the socket, so a server that keeps a
stream open with SSE comments or pings (and never sends text) would hold llmctl
forever. ``StreamWatch`` sees every chunk of bytes that arrives (through an httpx
response hook the SDK client is built with) and stops the stream once no answer
text has come for ``idle_timeout`` seconds, or once the whole call has run past
``total_timeout``. The check runs when bytes arrive; silence itself is the SDK's
read timeout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx2
from pydantic import BaseModel, ConfigDict, ValidationError

from llmctl.errors import LlmctlError, ProviderError
from llmctl.providers.hosted.errors import one_line, translate

if TYPE_CHECKING:  # hosted.py builds a StreamWatch for each provider
    from llmctl.providers.hosted.base import Endpoint

Clock = Callable[[], float]


class StreamStalled(Exception):
    """Raised inside the HTTP body read when a watch's limit has passed.

    Each adapter raises a subclass that is also its SDK's base error: the SDKs retry
    connection errors (and wrap other exceptions as one), but pass their own errors
    through, and a passed deadline must not be retried.
    """

    def __init__(self, limit: str, seconds: float) -> None:
        super().__init__(f"{limit} of {seconds:g} s passed")
        self.limit = limit  # "idle_timeout" | "total_timeout"
        self.seconds = seconds


class MalformedResponse(Exception):
    """The server answered 200, but not with what its API promises."""


@dataclass
class _Limits:
    idle_s: float | None
    total_s: float | None
    started: float
    last_content: float


class StreamWatch:
    """The limits of the call in flight; the adapter marks answer text as it arrives."""

    def __init__(self, stalled: type[StreamStalled] = StreamStalled, clock: Clock = time.monotonic) -> None:
        self._stalled = stalled
        self._clock = clock
        self._limits: _Limits | None = None

    def start(self, *, idle_s: float | None, total_s: float | None) -> None:
        now = self._clock()
        self._limits = _Limits(idle_s, total_s, now, now)

    def stop(self) -> None:
        self._limits = None

    def saw_content(self) -> None:
        if self._limits is not None:
            self._limits.last_content = self._clock()

    def check(self) -> None:
        limits = self._limits
        if limits is None:
            return
        now = self._clock()
        if limits.total_s is not None and now - limits.started > limits.total_s:
            raise self._stalled("total_timeout", limits.total_s)
        if limits.idle_s is not None and now - limits.last_content > limits.idle_s:
            raise self._stalled("idle_timeout", limits.idle_s)

    def on_response(self, response: httpx2.Response) -> None:
        """httpx response hook: route the body's chunks past ``check``."""
        if isinstance(response.stream, httpx2.SyncByteStream):
            response.stream = _WatchedStream(response.stream, self)


class _WatchedStream(httpx2.SyncByteStream):
    def __init__(self, inner: httpx2.SyncByteStream, watch: StreamWatch) -> None:
        self._inner = inner
        self._watch = watch

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._watch.check()
            yield chunk

    def close(self) -> None:
        self._inner.close()


def stall_in(exc: BaseException) -> StreamStalled | None:
    """The StreamStalled behind ``exc``: the SDK wraps what a body read raises (APIConnectionError)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, StreamStalled):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def wire_error(exc: Exception, sdk: ModuleType, endpoint: Endpoint, model: str, *, mid_stream: bool) -> LlmctlError:
    """The LlmctlError for what went wrong while calling ``sdk`` or reading its answer; other exceptions re-raise."""
    if isinstance(exc, LlmctlError):
        return exc
    stall = stall_in(exc)
    if stall is not None:
        return stall_error(stall, endpoint)
    if isinstance(exc, MalformedResponse):
        return malformed_error(endpoint, str(exc))
    if isinstance(exc, json.JSONDecodeError):
        return malformed_error(endpoint, f"data that is not valid JSON ({exc})")
    if isinstance(exc, UnicodeDecodeError):
        return malformed_error(endpoint, f"bytes that are not UTF-8 (at byte {exc.start})")
    if isinstance(exc, (sdk.APIError, sdk.APIConnectionError, httpx2.TransportError)):
        return translate(exc, sdk, endpoint, model, mid_stream=mid_stream)
    raise exc


def stall_error(stall: StreamStalled, endpoint: Endpoint) -> ProviderError:
    name, label = endpoint.provider_name, endpoint.label
    if stall.limit == "idle_timeout":
        return ProviderError(
            f"{label} kept the connection open but sent no answer text for {stall.seconds:g} s.",
            hint=f"The text received so far was kept. Try again, or raise providers.{name}.idle_timeout (seconds).",
        )
    return ProviderError(
        f"{label} did not finish the answer within {stall.seconds:g} s (providers.{name}.total_timeout).",
        hint=f"The text received so far was kept. Raise providers.{name}.total_timeout, or lower --max-tokens.",
    )


def malformed_error(endpoint: Endpoint, what: str) -> ProviderError:
    return ProviderError(
        f"{endpoint.label} sent a malformed response: {what}.",
        hint="The text received before it was kept. Check that the server speaks this API "
        f"(providers.{endpoint.provider_name}.base_url and kind), or try again.",
    )


def not_an_answer(endpoint: Endpoint, content_type: str | None, *, expected: str) -> ProviderError:
    """A 200 that carried neither text nor a finish reason (an HTML page, an empty body, a stream cut short)."""
    media = (content_type or "").split(";")[0].strip().lower()
    sent = f" (it sent {media or 'no content type'}, not {expected})" if expected not in media else ""
    return ProviderError(
        f"{endpoint.label} ended its response without any answer text or finish reason{sent}.",
        hint="Servers do this for a prompt longer than they accept, or when a proxy answers in their place; "
        f"check providers.{endpoint.provider_name}.base_url and the server's log.",
    )


def error_in_body(endpoint: Endpoint, error: Any) -> ProviderError:
    """A 200 whose JSON body is an error object (some proxies answer so), in the server's words."""
    inner = error.get("message", error) if isinstance(error, dict) else error
    return ProviderError(
        f"{endpoint.label} answered with an error (HTTP 200): {one_line(str(inner), endpoint.key)}",
        hint="The request did not produce an answer; try again, or check the server's log.",
    )


def unfinished(endpoint: Endpoint, event: str) -> ProviderError:
    """A stream that ended cleanly but before the event that finishes every answer on this API."""
    return ProviderError(
        f"{endpoint.label} ended the stream before finishing the answer (no {event} event).",
        hint="The text received so far was kept; run the request again.",
    )


class Checked(BaseModel):
    """A wire object validated for the fields llmctl reads (others are ignored)."""

    model_config = ConfigDict(extra="ignore", strict=True)


def checked(model: type[Checked], raw: Any, what: str) -> Any:
    """``raw`` (an SDK object or a dict) as ``model``; MalformedResponse saying which field is wrong."""
    try:
        return model.model_validate(raw, from_attributes=not isinstance(raw, dict))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise MalformedResponse(f"{what}{f' field {where}' if where else ''}: {first['msg'].lower()}") from None
