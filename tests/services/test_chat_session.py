"""ChatSession and ConversationStore with a scripted provider: history, fitting, turns, saving, recording."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from llmctl.config import Settings
from llmctl.domain import (
    CountSource,
    GenerationParams,
    Message,
    Usage,
)
from llmctl.errors import ContextLengthError, ProviderError, UsageError
from llmctl.services.chat.conversation import (
    Conversation,
    Turn,
    conversation_from_json,
    conversation_to_json,
    usage_totals,
)
from llmctl.services.chat.export import export, to_markdown
from llmctl.services.chat.session import ChatSession, TurnOutcome, hosted_prompt_tokens
from llmctl.services.chat.store import ConversationStore
from llmctl.services.usage.ledger import UsageLedger
from tests.fakes import FakeBackend, FakeProvider


def _words(messages: Sequence[Message]) -> int:
    return sum(len(m.content.split()) + 1 for m in messages)


def _session(
    replies: list[str],
    *,
    window: int | None = None,
    system: str | None = None,
    store: ConversationStore | None = None,
    max_tokens: int = 4,
    record: bool = False,
    conversation: Conversation | None = None,
) -> tuple[ChatSession, list[FakeProvider]]:
    """A session whose providers answer ``replies`` word by word (a token each) and count a token per word."""
    fake = FakeBackend(window=window, count_tokens=_words)
    for reply in replies:
        fake.enqueue_words(reply)

    session = ChatSession(
        Settings(),
        "openai/scripted-model",
        params=GenerationParams(temperature=0, max_tokens=max_tokens),
        system=system,
        store=store,
        opener=fake.open,
        record_usage=record,
        conversation=conversation,
    )
    return session, fake.opened


def _say(session: ChatSession, text: str, *, stop_after: int | None = None) -> TurnOutcome:
    turn = session.start_turn(text)
    pieces = turn.deltas()
    try:
        for count, _ in enumerate(pieces, start=1):
            if stop_after is not None and count >= stop_after:
                turn.interrupted()
                break
    except ProviderError:
        pass
    finally:
        pieces.close()
    return turn.finish()


def test_each_turn_sends_the_whole_history_after_the_system_prompt() -> None:
    session, [provider] = _session(["Hi there.", "You said hello."], system="Be brief.")
    _say(session, "Hello")
    outcome = _say(session, "What did I say?")
    assert provider.requests[1].messages == (
        Message("system", "Be brief."),
        Message("user", "Hello"),
        Message("assistant", "Hi there."),
        Message("user", "What did I say?"),
    )
    assert outcome.turn.reply == "You said hello."
    assert outcome.totals.turns == 2
    assert outcome.totals.output_tokens == 2 + 3


def test_oldest_turns_are_dropped_to_fit_never_the_system_prompt_and_the_user_is_told_once() -> None:
    replies = [f"reply number {i} has five" for i in range(8)]
    # 40-token window, 4 reserved for the reply: 36 tokens of prompt.
    session, [provider] = _session(replies, window=40, system="Keep it short please.")
    notices = []
    for i in range(8):
        _say(session, f"message {i} of the test")
        notices.append(session.take_drop_notice())
        assert _words(provider.requests[-1].messages) <= 36
        assert provider.requests[-1].messages[0] == Message("system", "Keep it short please.")
        assert provider.requests[-1].messages[-1] == Message("user", f"message {i} of the test")
    told = [n for n in notices if n]
    assert len(told) == 1 and told[0] >= 1  # told once, with how many were dropped then
    assert session.turns_out_of_context > told[0]  # later drops happen silently
    assert len(session.conversation.turns) == 8  # everything stays in the saved history
    first_user = next(m for m in provider.requests[-1].messages if m.role == "user")
    assert first_user.content != "message 0 of the test"


def test_a_message_that_cannot_fit_even_alone_is_refused() -> None:
    session, _ = _session(["never sent"], window=10)
    with pytest.raises(ContextLengthError):
        session.start_turn("this message is far too long for a ten token window, by a lot")
    assert session.conversation.turns == []


def test_interrupted_reply_is_kept_and_marked() -> None:
    session, [provider] = _session(["one two three four five", "ok"])
    outcome = _say(session, "count", stop_after=2)
    assert outcome.turn.status == "interrupted"
    assert outcome.turn.reply == "one two"
    assert outcome.turn.usage.output_tokens == 2  # counted from the deltas received
    _say(session, "go on")
    assert Message("assistant", "one two") in provider.requests[1].messages


def test_failed_reply_keeps_its_text_and_error() -> None:
    session, [provider] = _session(["alpha beta gamma"])
    provider.fake.fail_after = 1
    outcome = _say(session, "hi")
    assert outcome.turn.status == "error"
    assert outcome.turn.reply == "alpha"
    assert outcome.turn.error == "The stream broke off."


def test_retry_replaces_the_last_reply() -> None:
    session, [provider] = _session(["first answer", "second answer"])
    _say(session, "question")
    turn = session.retry()
    for _ in turn.deltas():
        pass
    outcome = turn.finish()
    assert [t.reply for t in session.conversation.turns] == ["second answer"]
    assert outcome.turn.user == "question"
    assert provider.requests[1].messages == (Message("user", "question"),)


def test_retry_with_nothing_to_retry() -> None:
    session, _ = _session([])
    with pytest.raises(UsageError, match="Nothing to retry"):
        session.retry()


def test_a_failed_turn_with_no_text_is_not_sent_back_but_an_empty_reply_is() -> None:
    session, [provider] = _session(["alpha", "", "fine", "end"])
    provider.fake.fail_after = 0
    _say(session, "failed")
    provider.fake.fail_after = None
    _say(session, "empty answer")
    _say(session, "third")
    assert provider.requests[2].messages == (
        Message("user", "empty answer"),
        Message("assistant", ""),
        Message("user", "third"),
    )
    assert [t.status for t in session.conversation.turns] == ["error", "ok", "ok"]


def test_system_change_applies_to_the_next_turn() -> None:
    session, [provider] = _session(["a", "b"], system="Old.")
    _say(session, "one")
    session.set_system("New.")
    _say(session, "two")
    assert provider.requests[1].messages[0] == Message("system", "New.")
    session.set_system(None)
    assert session.conversation.system is None


def test_reset_starts_a_new_conversation_with_the_same_system_prompt(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path)
    session, _ = _session(["a", "b"], system="Sys.", store=store)
    _say(session, "one")
    old_id = session.conversation.id
    new = session.reset()
    assert new.id != old_id and new.system == "Sys." and new.turns == []
    _say(session, "two")
    assert {s.id for s in store.list()} == {old_id, new.id}


def test_switch_model_keeps_history_and_closes_the_old_provider() -> None:
    session, opened = _session(["a", "b"])
    _say(session, "one")
    session.switch_model("anthropic/other-model")
    assert opened[0].closed
    outcome = _say(session, "two")
    assert opened[1].requests[0].messages[:2] == (Message("user", "one"), Message("assistant", "a"))
    assert outcome.turn.model == "anthropic/other-model"
    assert session.conversation.model == "anthropic/other-model"


def test_turns_are_saved_as_they_go_and_resume(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path)
    session, _ = _session(["hello back", "fine"], system="Sys.", store=store)
    assert list(tmp_path.iterdir()) == []  # nothing saved before the first turn
    _say(session, "hello\nsecond line")
    saved = store.load(session.conversation.id)
    assert [t.reply for t in saved.turns] == ["hello back"]
    assert (tmp_path / f"{saved.id}.json").stat().st_mode & 0o777 == 0o600

    resumed, [provider] = _session(["again"], store=store, conversation=store.latest())
    _say(resumed, "more")
    assert provider.requests[0].messages[:3] == (
        Message("system", "Sys."),
        Message("user", "hello\nsecond line"),
        Message("assistant", "hello back"),
    )
    summary = store.list()[0]
    assert (summary.turns, summary.title, summary.model) == (2, "hello", "openai/scripted-model")


def test_store_finds_by_prefix_and_explains_misses(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path)
    for suffix in ("aaaa", "aabb", "ccdd"):
        store.save(Conversation(id=f"20250101-120000-{suffix}", model="demo", turns=[Turn("q", "a", "demo")]))
    assert store.load("20250101-120000-cc").id == "20250101-120000-ccdd"
    with pytest.raises(UsageError, match="matches 2 conversations"):
        store.load("20250101-120000-aa")
    with pytest.raises(UsageError, match="No saved conversation"):
        store.load("nope")
    (tmp_path / "broken.json").write_text("{not json")
    assert len(store.list()) == 3  # a damaged file is skipped, not fatal


def test_json_round_trip_and_exports(tmp_path: Path) -> None:
    conversation = Conversation(
        id="20250101-120000-abcd",
        model="demo",
        system="Sys.",
        turns=[
            Turn("hi", "hello", "demo", usage=Usage(10, 2, CountSource.EXACT, cached_input_tokens=4), cost_usd=0.0),
            Turn("more", "par", "demo", status="interrupted"),
            Turn("again", "", "openai/x", status="error", error="boom"),
        ],
    )
    again = conversation_from_json(json.loads(json.dumps(conversation_to_json(conversation))))
    assert again == conversation

    markdown = to_markdown(conversation)
    assert "## System\n\nSys." in markdown
    assert "*(interrupted)*" in markdown and "*(failed: boom)*" in markdown
    assert "## Assistant (openai/x)" in markdown
    assert export(conversation, tmp_path / "c.md") == "markdown"
    assert export(conversation, tmp_path / "c.json") == "json"
    assert json.loads((tmp_path / "c.json").read_text())["turns"][1]["status"] == "interrupted"


def test_usage_totals_keep_unknown_apart() -> None:
    turns = [
        Turn("a", "b", "m", usage=Usage(10, 5, CountSource.EXACT, cached_input_tokens=3), cost_usd=0.5),
        Turn("c", "d", "m", usage=Usage(None, None)),
    ]
    totals = usage_totals(turns)
    assert (totals.input_tokens, totals.output_tokens, totals.cached_input_tokens) == (10, 5, 3)
    assert totals.turns_with_unknown_usage == 1
    assert totals.cost_usd == 0.5 and totals.turns_with_unknown_cost == 1
    assert usage_totals([Turn("a", "b", "m")]).input_tokens is None


def test_every_turn_is_recorded_in_the_usage_ledger() -> None:
    session, [provider] = _session(["done fine", "cut short here", "x y"], record=True)
    _say(session, "ok turn")
    _say(session, "interrupted turn", stop_after=1)
    provider.fake.fail_after = 1
    _say(session, "failed turn")
    with UsageLedger() as ledger:
        rows = list(ledger.records())
    assert sorted(r.status for r in rows) == ["error", "interrupted", "ok"]
    assert {r.command for r in rows} == {"chat"}
    assert {r.conversation_id for r in rows} == {session.conversation.id}


def test_hosted_models_are_fitted_with_offline_counts_and_listed_windows() -> None:
    from llmctl.providers.registry import resolve
    from llmctl.services.token_counting import count_tokens

    messages = [Message("system", "Be brief."), Message("user", "What is the capital of France?")]
    resolved = resolve("openai/gpt-4o-mini", Settings())
    assert hosted_prompt_tokens(resolved, messages) == count_tokens(resolved, messages).tokens  # exact, offline
    assert hosted_prompt_tokens(resolve("anthropic/claude-3-5-haiku-latest", Settings()), messages) > 10  # estimate

    uncounted = FakeBackend()  # a hosted provider as the real adapters are: no tokenizer of its own, no window
    uncounted.enqueue("Paris.")
    session = ChatSession(
        Settings(),
        "openai/gpt-4o-mini",
        params=GenerationParams(max_tokens=16),
        opener=uncounted.open,
        record_usage=False,
    )
    window = session.context_window()
    assert window is not None and window >= 100_000  # from genai-prices' listing for gpt-4o-mini
    _say(session, "What is the capital of France?")
    tokens, listed = session.context_usage()
    assert listed == window and tokens is not None and 10 < tokens < 100


def test_budget_is_checked_before_each_turn() -> None:
    from llmctl.services.usage.budget import BudgetExceededError

    settings = Settings.model_validate(
        {"budget": {"daily_usd": 0.0}, "providers": {"openai": {"input_price_per_mtok": 1, "output_price_per_mtok": 1}}}
    )
    never, fine = FakeBackend(), FakeBackend()
    never.enqueue_words("never")
    fine.enqueue_words("fine")
    session = ChatSession(
        settings,
        "openai/priced-model",
        params=GenerationParams(max_tokens=16),
        opener=never.open,
        record_usage=False,
    )
    with pytest.raises(BudgetExceededError):
        session.start_turn("hello")
    allowed = ChatSession(
        settings,
        "openai/priced-model",
        params=GenerationParams(max_tokens=16),
        opener=fine.open,
        record_usage=False,
        ignore_budget=True,
    )
    turn = allowed.start_turn("hello")
    assert any("Ignoring the daily budget" in w for w in turn.warnings)
