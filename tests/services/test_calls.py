"""The one call path: a Call records exactly once, with the right status, whatever ends it."""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmctl.config import Settings
from llmctl.domain import GenerationRequest, Message, TextDelta
from llmctl.errors import LlmctlError, ProviderError
from llmctl.services import interrupts
from llmctl.services.calls import Call
from llmctl.services.usage.ledger import LedgerRecord, UsageLedger
from tests.fakes import FakeBackend, FakeProvider

REQUEST = GenerationRequest((Message("user", "hi"),))


def short(fake: FakeBackend) -> FakeProvider:
    """A provider whose one call answers "done": one token, then Finished with 3 in, 1 out."""
    fake.enqueue(TextDelta("done", tokens=1))
    return fake.open()


def rows() -> list[LedgerRecord]:
    with UsageLedger() as ledger:
        return list(ledger.records()) if ledger.exists() else []


ENDINGS = [
    pytest.param(KeyboardInterrupt(), "interrupted", None, id="ctrl-c"),
    pytest.param(interrupts.Terminated(signal.SIGTERM), "interrupted", None, id="sigterm"),
    pytest.param(interrupts.Terminated(signal.SIGHUP), "interrupted", None, id="sighup"),
    pytest.param(BrokenPipeError(), "interrupted", None, id="closed-pipe"),
    pytest.param(OSError(errno.ENOSPC, "No space left on device"), "error", "OSError", id="disk-full"),
    pytest.param(LlmctlError("shown elsewhere"), "error", "shown elsewhere", id="our-error"),
    pytest.param(RuntimeError("a bug"), "error", "RuntimeError", id="a-bug"),
]


@pytest.mark.parametrize(("ending", "status", "error"), ENDINGS)
def test_a_call_left_by_any_exception_is_recorded_once_and_its_stream_stopped(
    isolated_home: Path, fake_provider: FakeBackend, ending: BaseException, status: str, error: str | None
) -> None:
    fake_provider.enqueue_endless("word ")
    call = Call(fake_provider.open(), REQUEST, settings=Settings(), command="generate")
    with pytest.raises(type(ending)), call:
        for count, _ in enumerate(call.run.deltas()):
            if count == 3:
                raise ending
    assert fake_provider.stopped == 1
    assert call.finish() is call.outcome  # finishing again changes nothing
    (row,) = rows()
    assert row.status == status and row.output_tokens == 4
    if error is None:
        assert row.error is None
    else:
        assert (row.error or "").startswith(error)


def test_a_finished_call_is_ok_and_recorded_once(isolated_home: Path, fake_provider: FakeBackend) -> None:
    call = Call(short(fake_provider), REQUEST, settings=Settings(), command="chat", conversation_id="c1")
    with call:
        assert "".join(call.run.deltas()) == "done"
    call.finish(RuntimeError("too late to matter"))
    (row,) = rows()
    assert (row.status, row.command, row.conversation_id, row.input_tokens) == ("ok", "chat", "c1", 3)


def test_a_provider_error_is_an_error_row(isolated_home: Path, fake_provider: FakeBackend) -> None:
    fake_provider.enqueue(TextDelta("half", tokens=1), ProviderError("dropped"))
    call = Call(fake_provider.open(), REQUEST, settings=Settings(), command="generate")
    with pytest.raises(ProviderError), call:
        list(call.run.deltas())
    (row,) = rows()
    assert (row.status, row.error, row.output_tokens) == ("error", "dropped", 1)


def test_record_false_writes_nothing_but_still_prices(isolated_home: Path, fake_provider: FakeBackend) -> None:
    call = Call(short(fake_provider), REQUEST, settings=Settings(), command="chat", record=False)
    with call:
        list(call.run.deltas())
    assert rows() == [] and call.outcome.cost_usd is not None and not call.outcome.accounting.saved


@pytest.fixture
def our_handlers() -> Iterator[None]:
    saved = {name: signal.getsignal(getattr(signal, name)) for name in interrupts.HANDLED}
    interrupts.install()
    yield
    for name, handler in saved.items():
        signal.signal(getattr(signal, name), handler)


@pytest.mark.usefixtures("our_handlers")
def test_a_signal_while_the_row_is_written_waits_until_it_is_written(
    isolated_home: Path, fake_provider: FakeBackend
) -> None:
    call = Call(short(fake_provider), REQUEST, settings=Settings(), command="generate")
    original = call._account

    def account_while_signalled(result):  # type: ignore[no-untyped-def]
        os.kill(os.getpid(), signal.SIGTERM)  # arrives mid-recording
        return original(result)

    call._account = account_while_signalled  # type: ignore[method-assign]
    with pytest.raises(interrupts.Terminated), call:
        list(call.run.deltas())
    (row,) = rows()
    assert row.status == "ok"
    assert interrupts.exit_code(interrupts.Terminated(signal.SIGTERM)) == 143
    assert interrupts.exit_code(KeyboardInterrupt()) == 130
