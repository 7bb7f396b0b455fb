"""One request from any wire, run through the one call path, its events handed to the event loop.

A wire module parses its vendor's body into a :class:`ServeRequest`; :meth:`Dispatcher.events`
resolves the model, leases its provider from the pool and runs a :class:`~llmctl.services.calls.Call`
(budget, run, record) on a worker thread, yielding :class:`Started`, :class:`Piece` and finally
:class:`Done`. A consumer that stops early (the client disconnected) stops the generation, and
the call is recorded as interrupted. Failures come out as :class:`WireError`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from llmctl.config import Settings
from llmctl.domain import GenerationParams, GenerationRequest, Message, Usage
from llmctl.errors import LlmctlError
from llmctl.providers.base import ResolvedModel
from llmctl.providers.registry import resolve
from llmctl.server.errors import Kind, WireError, from_llmctl
from llmctl.server.pool import DEFAULT, ModelPool
from llmctl.services.calls import Call, CallOutcome

# Bounds on what one request may ask for: a body larger than this is refused before it is
# parsed, and max_tokens above this is refused rather than tying a local model up for hours.
MAX_BODY_BYTES = 8 * 2**20
MAX_OUTPUT_TOKENS = 32_768
COMMAND = "serve"


@dataclass(frozen=True)
class ServeRequest:
    model: str
    messages: tuple[Message, ...]
    params: GenerationParams
    client: str | None = None  # recorded with the call: the OpenAI `user`, else the API key's label
    keep_alive: float | object | None = DEFAULT


@dataclass(frozen=True)
class Started:
    """The model is generating; ``usage`` is what is known before the answer (input tokens)."""

    model: str
    usage: Usage


@dataclass(frozen=True)
class Piece:
    text: str


@dataclass(frozen=True)
class Done:
    outcome: CallOutcome


Event = Started | Piece | Done
_END = object()


class Dispatcher:
    """Runs requests for one server: resolution with its settings, providers from its pool."""

    def __init__(self, settings: Settings, pool: ModelPool) -> None:
        self.settings = settings
        self.pool = pool
        self._workers: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def resolve(self, model: str) -> ResolvedModel:
        try:
            return resolve(model, self.settings)
        except LlmctlError as exc:
            raise from_llmctl(exc) from None

    def check_max_tokens(self, max_tokens: int | None, param: str = "max_tokens") -> None:
        if max_tokens is not None and max_tokens > MAX_OUTPUT_TOKENS:
            raise WireError(
                Kind.INVALID, f"{param} is {max_tokens:,}; this server allows at most {MAX_OUTPUT_TOKENS:,}."
            )

    async def events(self, request: ServeRequest, cancelled: threading.Event) -> AsyncIterator[Event]:
        """The call's events as they happen; WireError for a refusal or a failure.

        Setting ``cancelled`` (the client left) stops the generation at its next piece; the wire
        sets it itself, without awaiting, as a cancelled task may not get to close this iterator.
        """
        resolved = self.resolve(request.model)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()

        def emit(item: object) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone (the server stopped): nobody is listening
                cancelled.set()

        def work() -> None:
            try:
                self._run(resolved, request, emit, cancelled)
            except WireError as exc:
                emit(exc)
            except LlmctlError as exc:
                emit(from_llmctl(exc))
            except Exception as exc:  # a bug: the client gets one line, the call is already recorded
                emit(WireError(Kind.SERVER, f"Unexpected {type(exc).__name__}: {exc}"))
            finally:
                emit(_END)

        self.spawn(work, f"llmctl-call-{resolved.display_name}")
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, WireError):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            cancelled.set()  # the consumer left (client gone, server stopping): stop generating

    def _run(
        self, resolved: ResolvedModel, request: ServeRequest, emit: Callable[[object], None], cancelled: threading.Event
    ) -> None:
        with self.pool.lease(resolved, request.keep_alive) as provider:
            if cancelled.is_set():
                return  # the client left while waiting its turn: nothing was called
            generation = GenerationRequest(request.messages, request.params, stream=True)
            call = Call(
                provider,
                generation,
                settings=self.settings,
                command=COMMAND,
                client=request.client,
                prompt_text=_last_user_text(request.messages),  # what `llmctl logs` shows as the prompt
            )
            started = False
            with call:
                for text in call.run.deltas():
                    if not started:
                        started = True
                        emit(Started(resolved.display_name, call.run.result().completion.usage))
                    emit(Piece(text))
                    if cancelled.is_set():
                        break  # leaving the block closes the stream: the provider stops, the row says interrupted
            if not started:
                emit(Started(resolved.display_name, call.outcome.result.completion.usage))
            emit(Done(call.outcome))

    def spawn(self, work: Callable[[], None], name: str) -> None:
        """Run ``work`` on a worker thread that ``drain`` waits for."""

        def tracked() -> None:
            try:
                work()
            finally:
                with self._lock:
                    self._workers.discard(threading.current_thread())

        worker = threading.Thread(target=tracked, name=name, daemon=True)
        with self._lock:
            self._workers.add(worker)
        worker.start()

    def drain(self, timeout_s: float) -> None:
        """Wait for calls still running (each records itself as it ends)."""
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(timeout_s)


def _last_user_text(messages: tuple[Message, ...]) -> str | None:
    return next((m.content for m in reversed(messages) if m.role == "user"), None)
