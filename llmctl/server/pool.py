"""Local models kept loaded between requests, Ollama's way, and served one request at a time each.

A local model loads on its first request and stays for ``keep_alive`` seconds after its last
one (``[server] keep_alive``, or a request's own ``keep_alive``): ``0`` unloads it as soon as
the request ends, ``None`` (a negative value) keeps it for good. Before a model loads, its
weights are measured against the memory free; the least recently used idle model is unloaded
while it would not fit. Each model has a first-come-first-served lock: one generation at a
time on a model, in arrival order. Hosted models are not pooled: each request opens its own
provider and they run concurrently.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from llmctl.providers.base import Provider, ResolvedModel
from llmctl.providers.registry import open_provider
from llmctl.services.models.load_check import FitCheck, check_fit, refusal

DEFAULT = object()  # a request that says nothing about keep_alive: the server's setting applies
REAP_INTERVAL_S = 1.0


class FairLock:
    """A lock handed to waiters in arrival order (``threading.Lock`` wakes an arbitrary one)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: deque[threading.Event] = deque()
        self._held = False

    def acquire(self) -> None:
        with self._mutex:
            if not self._held:
                self._held = True
                return
            turn = threading.Event()
            self._waiters.append(turn)
        turn.wait()  # release() hands the lock over directly: no one can cut in

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().set()
            else:
                self._held = False

    @property
    def queued(self) -> int:
        return len(self._waiters)


@dataclass
class _Entry:
    name: str
    resolved: ResolvedModel
    provider: Provider
    keep_alive: float | None
    lock: FairLock = field(default_factory=FairLock)
    users: int = 0  # requests holding or waiting for the lock
    last_used: float = 0.0

    def info(self) -> dict[str, Any] | None:
        describe = getattr(self.provider, "runtime_info", None)
        return describe() if callable(describe) else None


class ModelPool:
    """The loaded local models of one server. Thread-safe; ``close()`` unloads everything."""

    def __init__(
        self,
        keep_alive: float | None,
        *,
        opener: Callable[[ResolvedModel], Provider] = open_provider,
        clock: Callable[[], float] = time.time,
        fit: Callable[[ResolvedModel], FitCheck | None] = check_fit,
    ) -> None:
        self._default_keep_alive = keep_alive
        self._opener = opener
        self._clock = clock
        self._fit = fit
        self._mutex = threading.Lock()
        self._entries: dict[tuple[str, str, str], _Entry] = {}
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    @staticmethod
    def _key(resolved: ResolvedModel) -> tuple[str, str, str]:
        return resolved.provider_name, resolved.model_id, repr(resolved.model_settings)

    @contextmanager
    def lease(self, resolved: ResolvedModel, keep_alive: float | object | None = DEFAULT) -> Iterator[Provider]:
        """The provider for ``resolved``, this request's alone while the block runs."""
        if not resolved.spec.local:
            provider = self._opener(resolved)
            try:
                yield provider
            finally:
                provider.close()
            return
        with self._mutex:
            entry = self._entries.get(self._key(resolved))
            if entry is None:
                entry = _Entry(resolved.display_name, resolved, self._opener(resolved), self._default_keep_alive)
                self._entries[self._key(resolved)] = entry
            entry.users += 1
        entry.lock.acquire()
        try:
            if entry.info() is None:
                self._make_room(entry)
            yield entry.provider
        finally:
            with self._mutex:
                entry.users -= 1
                entry.last_used = self._clock()
                if keep_alive is not DEFAULT:
                    entry.keep_alive = keep_alive  # type: ignore[assignment]
                unload_now = entry.keep_alive == 0 and entry.users == 0
            entry.lock.release()
            if unload_now:
                self._unload_if_idle(entry)

    def preload(self, resolved: ResolvedModel) -> None:
        """Load a model now (``llmctl serve -m MODEL``); its keep-alive starts counting from here."""
        with self.lease(resolved) as provider:
            provider.prepare()

    def _make_room(self, entry: _Entry) -> None:
        """Unload idle models, least recently used first, while ``entry``'s weights would not fit."""
        check = self._fit(entry.resolved)
        while check is not None and not check.fits:
            with self._mutex:
                idle = [e for e in self._entries.values() if e is not entry and e.users == 0 and e.info() is not None]
            if not idle:
                raise refusal(check, entry.resolved, entry.name)
            self._unload_if_idle(min(idle, key=lambda e: e.last_used))
            check = self._fit(entry.resolved)

    def _unload_if_idle(self, entry: _Entry) -> bool:
        with self._mutex:
            if entry.users or self._entries.get(self._key(entry.resolved)) is not entry:
                return False
            del self._entries[self._key(entry.resolved)]
        entry.provider.close()
        gc.collect()  # the weights are only freed once nothing refers to them
        return True

    def stop(self, resolved: ResolvedModel) -> str | None:
        """Unload a model (``llmctl stop``): now when idle, else when its last request ends. Its name, or
        None when it was not loaded."""
        with self._mutex:
            entry = self._entries.get(self._key(resolved))
            if entry is None:
                return None
            entry.keep_alive = 0
        self._unload_if_idle(entry)
        return entry.name

    def reap(self) -> list[str]:
        """Unload every idle model whose keep-alive has run out; their names."""
        now = self._clock()
        with self._mutex:
            due = [
                e
                for e in self._entries.values()
                if e.users == 0 and e.keep_alive is not None and e.last_used + e.keep_alive <= now
            ]
        return [e.name for e in due if self._unload_if_idle(e)]

    def start_reaper(self, interval_s: float = REAP_INTERVAL_S) -> None:
        def loop() -> None:
            while not self._stop.wait(interval_s):
                self.reap()

        self._reaper = threading.Thread(target=loop, name="llmctl-keep-alive", daemon=True)
        self._reaper.start()

    def status(self) -> list[dict[str, Any]]:
        """What ``llmctl ps`` shows: each loaded model, where and how it is loaded, and until when."""
        with self._mutex:
            entries = list(self._entries.values())
        rows = []
        for entry in entries:
            info = entry.info()
            if info is None:
                continue  # opened, not loaded yet (its first request is loading it)
            idle_until = None
            if entry.keep_alive is not None and not entry.users:
                idle_until = entry.last_used + entry.keep_alive
            rows.append(
                {
                    "model": entry.name,
                    "provider": entry.resolved.provider_name,
                    **info,
                    "active_requests": entry.users,
                    "keep_alive_s": entry.keep_alive,
                    "idle_until": idle_until,  # unix time; None: in use now, or kept for good
                }
            )
        return rows

    def close(self) -> None:
        self._stop.set()
        with self._mutex:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            entry.provider.close()
