"""The pool of warm local models: keep-alive (Ollama's semantics), LRU unloading, fair per-model turns."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from llmctl.config import Settings
from llmctl.domain import GenerationRequest, StreamEvent
from llmctl.errors import ProviderError
from llmctl.provider_specs import HuggingFaceProviderSettings, OpenAIProviderSettings
from llmctl.providers.base import ResolvedModel
from llmctl.providers.registry import resolve
from llmctl.server.pool import FairLock, ModelPool
from llmctl.services.models.load_check import FitCheck


class FakeLocal:
    def __init__(self, resolved: ResolvedModel) -> None:
        self.resolved = resolved
        self.loaded = False
        self.closed = False

    def prepare(self) -> None:
        self.loaded = True

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        return iter(())

    def context_window(self) -> int | None:
        return None

    def close(self) -> None:
        self.loaded, self.closed = False, True

    def runtime_info(self) -> dict[str, Any] | None:
        return {"device": "cpu", "dtype": "float32", "quantization": None, "memory_bytes": 1} if self.loaded else None


def local(name: str) -> ResolvedModel:
    return ResolvedModel("hf", "huggingface", f"/models/{name}", HuggingFaceProviderSettings(), alias=name)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def use(pool: ModelPool, resolved: ResolvedModel, keep_alive: object = None) -> FakeLocal:
    kwargs = {} if keep_alive is None else {"keep_alive": keep_alive}
    with pool.lease(resolved, **kwargs) as provider:  # type: ignore[arg-type]
        provider.prepare()
    assert isinstance(provider, FakeLocal)
    return provider


def loaded(pool: ModelPool) -> list[str]:
    return [row["model"] for row in pool.status()]


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_model_stays_for_keep_alive_after_its_last_request(clock: Clock) -> None:
    pool = ModelPool(300.0, opener=FakeLocal, clock=clock, fit=lambda r: None)
    first = use(pool, local("a"))
    clock.now += 200
    assert use(pool, local("a")) is first  # still warm: the same provider, no second load
    clock.now += 299
    assert pool.reap() == [] and loaded(pool) == ["a"]
    assert pool.status()[0]["idle_until"] == pytest.approx(clock.now + 1)
    clock.now += 2
    assert pool.reap() == ["a"] and loaded(pool) == [] and first.closed


@pytest.mark.parametrize(
    ("keep_alive", "reaped_after_a_year"),
    [(0.0, None), (None, False), (5.0, True)],
    ids=["zero-unloads-at-once", "negative-keeps-forever", "seconds"],
)
def test_per_request_keep_alive(clock: Clock, keep_alive: float | None, reaped_after_a_year: bool | None) -> None:
    pool = ModelPool(300.0, opener=FakeLocal, clock=clock, fit=lambda r: None)
    with pool.lease(local("a"), keep_alive) as provider:
        provider.prepare()
    if reaped_after_a_year is None:
        assert loaded(pool) == []  # 0: gone as the request ended
        return
    clock.now += 365 * 86400
    assert (pool.reap() == ["a"]) is reaped_after_a_year


def test_least_recently_used_idle_model_is_unloaded_when_the_next_would_not_fit(clock: Clock) -> None:
    holds_two = lambda r: FitCheck("float32", 1, "RAM", 1 if len(loaded(pool)) < 2 else 0)  # noqa: E731
    pool = ModelPool(None, opener=FakeLocal, clock=clock, fit=holds_two)
    for name in ("a", "b", "a"):
        clock.now += 1
        use(pool, local(name))
    clock.now += 1
    use(pool, local("c"))
    assert sorted(loaded(pool)) == ["a", "c"]  # b was used least recently


def test_a_model_that_cannot_fit_even_alone_is_refused_with_the_numbers(clock: Clock) -> None:
    demo = resolve("demo", Settings())
    pool = ModelPool(None, opener=FakeLocal, clock=clock, fit=lambda r: FitCheck("float32", 10**12, "RAM", 10**9))
    with pytest.raises(ProviderError, match="needs about"), pool.lease(demo):
        pass


def test_stop_unloads_an_idle_model_now_and_a_busy_one_when_it_is_done(clock: Clock) -> None:
    pool = ModelPool(None, opener=FakeLocal, clock=clock, fit=lambda r: None)
    use(pool, local("a"))
    assert pool.stop(local("a")) == "a" and loaded(pool) == []
    assert pool.stop(local("never")) is None
    with pool.lease(local("b")) as provider:
        provider.prepare()
        assert pool.stop(local("b")) == "b" and loaded(pool) == ["b"]
    assert loaded(pool) == []


def test_hosted_models_are_not_pooled() -> None:
    opened: list[FakeLocal] = []

    def opener(resolved: ResolvedModel) -> FakeLocal:
        opened.append(FakeLocal(resolved))
        return opened[-1]

    pool = ModelPool(None, opener=opener, fit=lambda r: None)
    hosted = ResolvedModel("openai", "openai", "gpt-4o-mini", OpenAIProviderSettings())
    with pool.lease(hosted), pool.lease(hosted):  # concurrently: no lock between them
        pass
    assert len(opened) == 2 and all(p.closed for p in opened) and loaded(pool) == []


def test_fair_lock_serves_waiters_in_arrival_order() -> None:
    lock = FairLock()
    lock.acquire()
    order: list[int] = []
    threads = []
    for index in range(6):
        thread = threading.Thread(target=lambda i=index: (lock.acquire(), order.append(i), lock.release()))
        thread.start()
        threads.append(thread)
        while lock.queued < index + 1:
            time.sleep(0.001)
    lock.release()
    for thread in threads:
        thread.join(5)
    assert order == list(range(6))
