"""Shared plumbing for the loopback vendor servers in ``tests/wire``.

Everything here is stdlib only.  A :class:`LoopbackServer` owns a
``ThreadingHTTPServer`` bound to ``127.0.0.1`` on an ephemeral port, serves it
from a daemon thread, records every request it receives and answers each one
from a *script*: a queue of planned responses (the plan dataclasses below).
When the queue is empty the server's ``default`` plan (a normal successful
reply) is used.

The vendor modules (``openai_server``, ``anthropic_server``) subclass
:class:`LoopbackServer` and turn plans into each vendor's wire format.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import struct
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

LOOPBACK_HOST = "127.0.0.1"

DEFAULT_TEXT = "Paris is the capital of France."

#: Errors raised while talking to a client that went away (timeouts, closes).
_CLIENT_GONE = (BrokenPipeError, ConnectionError, TimeoutError, OSError)


# --------------------------------------------------------------------------- #
# Recorded requests
# --------------------------------------------------------------------------- #


class Headers(Mapping[str, str]):
    """Read-only, case-insensitive header mapping.

    Iteration yields lower-cased names.  Repeated headers are joined with
    ``", "``; :meth:`get_all` returns them separately.
    """

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._items: list[tuple[str, str]] = list(items)
        self._map: dict[str, str] = {}
        for name, value in self._items:
            key = name.lower()
            self._map[key] = f"{self._map[key]}, {value}" if key in self._map else value

    def __getitem__(self, key: str) -> str:
        return self._map[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def get_all(self, key: str) -> list[str]:
        wanted = key.lower()
        return [value for name, value in self._items if name.lower() == wanted]

    def raw_items(self) -> list[tuple[str, str]]:
        """Header (name, value) pairs as received, original case preserved."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._map!r})"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    """Request path without the query string, e.g. ``/v1/chat/completions``."""
    query: dict[str, list[str]]
    headers: Headers
    raw_body: bytes
    body: Any
    """The parsed JSON body, or ``None`` when there was none / it was not JSON."""

    @property
    def bearer_token(self) -> str | None:
        """The token of an ``Authorization: Bearer ...`` header, if any."""
        value = self.headers.get("authorization")
        if value is None:
            return None
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None

    @property
    def json(self) -> dict[str, Any]:
        """The body as a dict (asserts it was a JSON object)."""
        assert isinstance(self.body, dict), f"request body is not a JSON object: {self.raw_body!r}"
        return self.body


# --------------------------------------------------------------------------- #
# Plans
# --------------------------------------------------------------------------- #

UsageSpec = tuple[int, int] | Literal["auto"] | None


@dataclass(frozen=True)
class Reply:
    """A normal successful answer.

    ``chunks`` are the streamed text deltas; when omitted ``text`` is split into
    one delta per word (whitespace kept), so a stream always has several
    deltas.  When ``chunks`` is given, the reply's text is ``"".join(chunks)``.

    ``usage`` is ``(input_tokens, output_tokens)``, ``"auto"`` (computed with
    :func:`estimate_tokens` from the request and the reply text) or ``None``
    (no usage at all: no usage chunk for OpenAI streams, no ``usage`` key in
    OpenAI non-streaming bodies and in Anthropic bodies/events).
    ``cached_tokens`` is OpenAI ``prompt_tokens_details.cached_tokens`` and
    Anthropic ``cache_read_input_tokens``; ``cache_creation_tokens`` is
    Anthropic ``cache_creation_input_tokens``.  Each vendor's own meaning of
    the input count is kept (OpenAI prompt_tokens *includes* cached tokens,
    Anthropic input_tokens excludes them): the numbers are sent as given.

    ``finish_reason`` defaults to the vendor's normal one (``"stop"`` /
    ``"end_turn"``).  ``model`` defaults to the model named in the request.
    ``chunk_delay_s`` sleeps between streamed deltas.
    """

    text: str = DEFAULT_TEXT
    chunks: Sequence[str] | None = None
    usage: UsageSpec = "auto"
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    finish_reason: str | None = None
    model: str | None = None
    chunk_delay_s: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def content(self) -> str:
        return "".join(self.chunks) if self.chunks is not None else self.text

    def deltas(self) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        return split_words(self.text)

    def resolve_usage(self, request_body: Any) -> tuple[int, int] | None:
        if self.usage is None:
            return None
        if self.usage == "auto":
            return estimate_tokens(request_body), text_tokens(self.content)
        return self.usage


@dataclass(frozen=True)
class Fault:
    """An HTTP error response in the vendor's error shape.

    ``body=None`` builds the vendor's real error body for ``status`` (message,
    type and - for OpenAI - code can be overridden); any other ``body`` is sent
    as is (dict/list as JSON, ``str``/``bytes`` raw).  For retryable statuses
    (408, 409, 429, >= 500) ``retry-after-ms`` / ``retry-after`` headers of
    ``retry_after_s`` are added so SDK retries are fast; ``None`` leaves them
    out (the SDKs then use their own exponential backoff, 0.5 s and up).
    ``should_retry`` sets the ``x-should-retry`` header both SDKs obey.
    """

    status: int
    body: Any = None
    message: str | None = None
    error_type: str | None = None
    code: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    retry_after_s: float | None = 0.01
    should_retry: bool | None = None


@dataclass(frozen=True)
class DropMidStream:
    """Start a normal 200 answer, then close the socket without finishing it.

    Streaming requests get the stream preamble (OpenAI role chunk / Anthropic
    ``message_start``, ``content_block_start``, ``ping``) and ``after_chunks``
    text deltas; then the connection is closed without the terminating event
    and without the terminating zero-length chunk of the chunked body, so the
    client sees an incomplete body.  Non-streaming requests get the headers
    with the full ``Content-Length`` and half the body.  ``reset=True`` closes
    with a TCP RST instead of a FIN (bytes not yet read by the client may then
    be lost, so partial-text assertions are less reliable).
    """

    after_chunks: int = 1
    reply: Reply | None = None
    reset: bool = False


@dataclass(frozen=True)
class StreamError:
    """Stream ``after_chunks`` deltas, then send the vendor's in-stream error.

    OpenAI: ``data: {"error": {...}}``; Anthropic: ``event: error``.  The body
    is then ended cleanly (no ``[DONE]`` / ``message_stop``).  A non-streaming
    request gets the equivalent HTTP error instead (OpenAI 500, Anthropic the
    status of ``error_type``, e.g. 529 for ``overloaded_error``).
    """

    after_chunks: int = 1
    error_type: str | None = None
    message: str | None = None
    reply: Reply | None = None


@dataclass(frozen=True)
class KeepAlive:
    """Stream ``after_chunks`` deltas, then keep the stream open with keep-alives and no text.

    What a stalled server does (llama.cpp, gateways): every ``interval_s`` it
    sends ``style="comment"`` an SSE comment line (``: ping``), or
    ``style="event"`` an event that carries no text (OpenAI: a chunk whose delta
    content is ``""``; Anthropic: ``event: ping``).  It stops after
    ``duration_s``, when the client goes away, or when the server stops; then
    the connection is dropped without the terminating event.
    """

    after_chunks: int = 0
    interval_s: float = 0.05
    style: Literal["comment", "event"] = "comment"
    duration_s: float = 20.0
    reply: Reply | None = None


@dataclass(frozen=True)
class Slow:
    """Wait ``delay_s`` before answering with ``then`` (default plan if None).

    The wait is cut short when the server stops, so it never blocks shutdown.
    ``math.inf`` waits until the server stops.
    """

    delay_s: float
    then: Plan | None = None


@dataclass(frozen=True)
class ContextTooLong:
    """The vendor's real "context length exceeded" 400 error.

    ``limit`` defaults to the server's ``context_window``; ``prompt_tokens``
    (the count quoted in the message) defaults to ``limit + 1024``.
    """

    limit: int | None = None
    prompt_tokens: int | None = None


@dataclass(frozen=True)
class Raw:
    """Send exactly this response (e.g. an HTML 502 from a proxy)."""

    status: int = 200
    body: bytes | str = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)


Plan = Reply | Fault | DropMidStream | StreamError | KeepAlive | Slow | ContextTooLong | Raw


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def split_words(text: str) -> list[str]:
    """Split ``text`` into word deltas that join back to ``text`` exactly."""
    pieces: list[str] = []
    current = ""
    for char in text:
        if current and not char.isspace() and current[-1].isspace():
            pieces.append(current)
            current = ""
        current += char
    if current:
        pieces.append(current)
    return pieces


def text_tokens(text: str) -> int:
    """The servers' token rule: one token per 4 characters, at least 1."""
    return max(1, math.ceil(len(text) / 4))


def _strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key in ("role", "type", "cache_control", "id", "tool_use_id"):
                continue
            _strings(item, out)
    elif isinstance(value, list):
        for item in value:
            _strings(item, out)


def estimate_tokens(request_body: Any) -> int:
    """Deterministic input-token count of a chat request body.

    :func:`text_tokens` of all the text in ``system``, ``messages`` and
    ``tools`` (role/type/id fields ignored).  Used for ``usage="auto"`` and
    Anthropic ``count_tokens``.
    """
    if not isinstance(request_body, Mapping):
        return 1
    out: list[str] = []
    for key in ("system", "messages", "tools"):
        _strings(request_body.get(key), out)
    return text_tokens("".join(out))


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def retry_after_headers(seconds: float) -> dict[str, str]:
    """``retry-after-ms`` plus ``retry-after`` (integer when whole, else a float)."""
    as_seconds = str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
    return {"retry-after-ms": f"{seconds * 1000:g}", "retry-after": as_seconds}


def is_retryable_status(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


# --------------------------------------------------------------------------- #
# Writing responses
# --------------------------------------------------------------------------- #


class ResponseWriter:
    """Writes one HTTP/1.1 response on a handler's connection."""

    def __init__(self, handler: _Handler, stop: threading.Event) -> None:
        self._handler = handler
        self._stop = stop
        self.streaming = False

    def _head(self, status: int, headers: Mapping[str, str]) -> None:
        handler = self._handler
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()

    def json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        self.raw(status, json.dumps(body).encode(), "application/json", headers)

    def raw(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        all_headers = {"Content-Type": content_type, "Content-Length": str(len(body)), **(headers or {})}
        self._head(status, all_headers)
        self._handler.wfile.write(body)
        self._handler.wfile.flush()

    def partial(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        """Announce the whole ``body`` but send only half of it, then drop."""
        all_headers = {"Content-Type": content_type, "Content-Length": str(len(body)), **(headers or {})}
        self._head(status, all_headers)
        self._handler.wfile.write(body[: len(body) // 2])
        self._handler.wfile.flush()
        self.drop()

    def start_stream(self, headers: Mapping[str, str] | None = None) -> None:
        all_headers = {
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "Transfer-Encoding": "chunked",
            **(headers or {}),
        }
        self._head(200, all_headers)
        self.streaming = True

    def _chunk(self, data: bytes) -> None:
        wfile = self._handler.wfile
        wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        wfile.flush()

    def sse(self, data: Any, event: str | None = None) -> None:
        """One server-sent event; ``data`` that is not a ``str`` is JSON-encoded."""
        payload = data if isinstance(data, str) else json.dumps(data)
        text = (f"event: {event}\n" if event is not None else "") + f"data: {payload}\n\n"
        self._chunk(text.encode())

    def end_stream(self) -> None:
        self._handler.wfile.write(b"0\r\n\r\n")
        self._handler.wfile.flush()
        self.streaming = False

    def drop(self, reset: bool = False) -> None:
        """Close the connection now; the response is left unfinished."""
        handler = self._handler
        handler.close_connection = True
        self.streaming = False
        sock = handler.connection
        try:
            handler.wfile.flush()
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                # close the descriptor now: ``sock.close()`` would wait for the
                # handler's rfile/wfile to let go of it.
                os.close(sock.detach())
            else:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def keep_alive(self, plan: KeepAlive, event: Callable[[], None]) -> None:
        """Send ``event()`` (or an SSE comment) every ``plan.interval_s`` for ``plan.duration_s``, then drop."""
        deadline = time.monotonic() + plan.duration_s
        while time.monotonic() < deadline and self.sleep(plan.interval_s):
            if plan.style == "comment":
                self._chunk(b": ping\n\n")
            else:
                event()
        self.drop()

    def sleep(self, seconds: float) -> bool:
        """Sleep unless the server is stopping; False when it is."""
        if seconds <= 0:
            return not self._stop.is_set()
        return not self._stop.wait(None if math.isinf(seconds) else seconds)


# --------------------------------------------------------------------------- #
# The HTTP server
# --------------------------------------------------------------------------- #


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.owner.handler_timeout_s)

    def _dispatch(self) -> None:
        self.server.owner._dispatch(self)

    do_GET = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_PATCH = _dispatch
    do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, owner: LoopbackServer) -> None:
        self.owner = owner
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._handler_threads: list[threading.Thread] = []
        self._count = 0
        super().__init__((LOOPBACK_HOST, 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._count += 1
            thread = threading.Thread(
                target=self.process_request_thread,
                args=(request, client_address),
                name=f"wire-{self.owner.vendor}-conn-{self._count}",
                daemon=True,
            )
            self._connections.add(request)
            self._handler_threads = [t for t in self._handler_threads if t.is_alive()]
            self._handler_threads.append(thread)
        thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Called from inside socketserver's ``except``: a client hanging up on a
        # keep-alive connection is normal; anything else is kept for the test.
        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, _CLIENT_GONE):
            with self.owner._lock:
                self.owner.errors.append(error)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def abort_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def join_handlers(self, deadline: float) -> list[threading.Thread]:
        with self._lock:
            threads = list(self._handler_threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [t for t in threads if t.is_alive()]


class LoopbackServer:
    """Base class: lifecycle, request recording and the plan script.

    Use as a context manager (``with OpenAIServer() as server: ...``) or call
    :meth:`start` / :meth:`stop`.  ``requests`` lists every request received,
    in order.  :meth:`add` queues plans; each request pops the first queued
    plan whose ``path`` matches (``None`` matches any path), else gets
    ``default``.
    """

    vendor = "loopback"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        script: Iterable[Plan] = (),
        default: Plan | None = None,
        validate: bool = True,
        handler_timeout_s: float = 30.0,
    ) -> None:
        self.api_key = api_key
        self.default: Plan = default if default is not None else Reply()
        self.validate = validate
        self.handler_timeout_s = handler_timeout_s
        self.requests: list[RecordedRequest] = []
        self._script: deque[tuple[Plan, str | None]] = deque((plan, None) for plan in script)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.leaked_threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        """Unexpected exceptions raised while serving (a bug in a server)."""

    # -- lifecycle ---------------------------------------------------------- #

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError("server already started")
        self._stop.clear()
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"wire-{self.vendor}-serve",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving, cut open connections and join every server thread."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        deadline = time.monotonic() + timeout_s
        self._stop.set()
        httpd.shutdown()
        httpd.abort_connections()
        httpd.server_close()
        thread.join(max(0.0, deadline - time.monotonic()))
        leaked = httpd.join_handlers(deadline)
        if thread.is_alive():
            leaked.append(thread)
        self.leaked_threads = leaked
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{LOOPBACK_HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        raise NotImplementedError

    # -- script ------------------------------------------------------------- #

    def add(self, *plans: Plan, path: str | None = None) -> Self:
        """Queue plans; with ``path`` they are only used for requests to it."""
        with self._lock:
            self._script.extend((plan, path) for plan in plans)
        return self

    @property
    def pending(self) -> list[Plan]:
        """Plans queued and not yet used."""
        with self._lock:
            return [plan for plan, _ in self._script]

    def clear(self) -> None:
        """Forget queued plans and recorded requests."""
        with self._lock:
            self._script.clear()
            self.requests.clear()

    def _next_plan(self, path: str) -> Plan:
        for index, (plan, only) in enumerate(self._script):
            if only is None or only == path:
                del self._script[index]
                return plan
        return self.default

    # -- recorded requests -------------------------------------------------- #

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self.requests:
                raise AssertionError("the server received no request")
            return self.requests[-1]

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    # -- serving ------------------------------------------------------------ #

    def _dispatch(self, handler: _Handler) -> None:
        writer = ResponseWriter(handler, self._stop)
        try:
            raw_body = handler.read_body()
            split = urlsplit(handler.path)
            body: Any = None
            if raw_body:
                try:
                    body = json.loads(raw_body)
                except ValueError:
                    body = None
            request = RecordedRequest(
                method=handler.command,
                path=split.path,
                query=parse_qs(split.query),
                headers=Headers(handler.headers.items()),
                raw_body=raw_body,
                body=body,
            )
            with self._lock:
                self.requests.append(request)
                plan = self._next_plan(request.path)
            while isinstance(plan, Slow):
                if not writer.sleep(plan.delay_s):
                    writer.drop()
                    return
                plan = plan.then if plan.then is not None else self.default
            if isinstance(plan, Raw):
                data = plan.body.encode() if isinstance(plan.body, str) else plan.body
                writer.raw(plan.status, data, plan.content_type, plan.headers)
                return
            if isinstance(plan, Fault):
                self._send_fault(request, plan, writer)
                return
            if self.api_key is not None and not self._authorized(request):
                self._send_unauthorized(request, writer)
                return
            self.serve(request, plan, writer)
            if writer.streaming:
                writer.end_stream()
        except _CLIENT_GONE:
            handler.close_connection = True
        except Exception as exc:  # a bug here: keep it for the test to see
            with self._lock:
                self.errors.append(exc)
            writer.drop()

    def _send_fault(self, request: RecordedRequest, fault: Fault, writer: ResponseWriter) -> None:
        headers: dict[str, str] = dict(self.common_headers())
        if fault.retry_after_s is not None and is_retryable_status(fault.status):
            headers.update(retry_after_headers(fault.retry_after_s))
        if fault.should_retry is not None:
            headers["x-should-retry"] = "true" if fault.should_retry else "false"
        headers.update(fault.headers)
        body = fault.body if fault.body is not None else self.error_body_for(fault, request)
        if isinstance(body, (bytes, str)):
            data = body.encode() if isinstance(body, str) else body
            writer.raw(fault.status, data, headers.pop("Content-Type", "text/plain; charset=utf-8"), headers)
        else:
            writer.json(fault.status, body, headers)

    # -- vendor hooks ------------------------------------------------------- #

    def common_headers(self) -> dict[str, str]:
        """Headers sent with every vendor response (request ids and such)."""
        return {}

    def _authorized(self, request: RecordedRequest) -> bool:
        return request.bearer_token == self.api_key

    def _send_unauthorized(self, request: RecordedRequest, writer: ResponseWriter) -> None:
        raise NotImplementedError

    def error_body_for(self, fault: Fault, request: RecordedRequest) -> Any:
        raise NotImplementedError

    def serve(self, request: RecordedRequest, plan: Plan, writer: ResponseWriter) -> None:
        raise NotImplementedError
